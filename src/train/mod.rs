//! `hgn train`: the training loop, run folders, checkpoints and exact resumption.
//!
//! Reads top to bottom like nanoGPT's `train.py`:
//!
//! 1. open the data and check the model's window fits its sequences;
//! 2. create the run folder (or reopen it with `--resume`) and write `config.json` before step 0;
//! 3. every step: draw a batch and the posterior noise from the step's own RNG stream
//!    `(seed, step)`, forward, loss, one backward pass, Adam;
//! 4. log to `metrics.jsonl`, evaluate the test split's pixel MSE next to the mean-frame
//!    baseline, and write checkpoints atomically.
//!
//! Because every random draw of step `s` comes from `(seed, s)` and the checkpoint holds the
//! weights, the optimiser state and the step, a resumed run repeats an uninterrupted one exactly.
//! Which frames of a window the encoder sees and which are targets is the run's
//! [`Protocol`] (see [`crate::protocol`]); the run folder is [`crate::run`]'s.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::data::{SequenceDataset, Split, batch_tensor};
use crate::device::DeviceChoice;
use crate::model::{Hgn, LossParts, loss};
use crate::physics::sampling::standard_normal;
use crate::protocol::{Direction, Protocol};
use crate::rng::{Stream, stream_rng};
use crate::run::{RunDir, load_optimizer, load_weights, save_checkpoint};

mod config;

pub use config::{LrSchedule, PRESETS, RunConfig, TrainConfig};

/// What `hgn train` needs besides the config.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Dataset folder.
    pub data: PathBuf,
    /// Run folder.
    pub run: PathBuf,
    /// The run's configuration (ignored on resume, where `RUN/config.json` rules).
    pub config: RunConfig,
    /// Device to train on.
    pub device: DeviceChoice,
    /// Continue the run in `run` from its checkpoint.
    pub resume: bool,
    /// With `resume`, train up to this many steps instead of the saved total.
    pub steps_override: Option<usize>,
    /// Where the progress of the steps and each evaluation's line go.
    pub reporter: crate::progress::Reporter,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsLine {
    /// Optimisation step the line describes (after `step` updates for eval lines).
    pub step: usize,
    /// `train` or `eval`.
    pub kind: String,
    /// Training objective (train lines).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub loss: Option<f64>,
    /// Reconstruction MSE: of the batch (train) or of the test sequences (eval).
    pub mse: f64,
    /// Normalised KL (train lines).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub kl: Option<f64>,
    /// GECO λ (train lines).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub lambda: Option<f64>,
    /// Mean-frame baseline MSE on the same test sequences (eval lines).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub baseline_mse: Option<f64>,
    /// The physics oracle's expected-image MSE on the same test sequences and frames (eval
    /// lines; absent when the dataset's system has no oracle).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub oracle_mse: Option<f64>,
    /// Training throughput (train lines).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub steps_per_second: Option<f64>,
}

impl MetricsLine {
    /// The train line after `step` updates: the batch's loss and its parts.
    fn train(step: usize, loss: f64, parts: &LossParts, steps_per_second: f64) -> Self {
        Self {
            step,
            kind: "train".into(),
            loss: Some(loss),
            mse: scalar(parts.reconstruction.clone()),
            kl: Some(scalar(parts.kl.clone())),
            lambda: Some(scalar(parts.lambda.clone())),
            baseline_mse: None,
            oracle_mse: None,
            steps_per_second: Some(steps_per_second),
        }
    }

    /// The eval line after `step` updates: test MSE beside the mean frame's and the oracle's.
    fn eval(step: usize, mse: f64, baseline: f64, oracle: Option<f64>) -> Self {
        Self {
            step,
            kind: "eval".into(),
            loss: None,
            mse,
            kl: None,
            lambda: None,
            baseline_mse: Some(baseline),
            oracle_mse: oracle,
            steps_per_second: None,
        }
    }

    /// A train line's figures, as the progress bar shows them.
    fn status(&self) -> String {
        format!(
            "mse {:.2e}  kl {:.2e}  λ {:.3}  {:.2} steps/s",
            self.mse,
            self.kl.unwrap_or(0.0),
            self.lambda.unwrap_or(1.0),
            self.steps_per_second.unwrap_or(0.0)
        )
    }
}

/// The result of a training run.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// Steps completed in total.
    pub steps: usize,
    /// Test pixel MSE of the final model (posterior mean, one rollout per sequence).
    pub test_mse: f64,
    /// Test MSE of predicting the mean training frame everywhere.
    pub baseline_mse: f64,
    /// Wall-clock seconds of this invocation.
    pub seconds: f64,
}

/// Checkpoint bookkeeping saved beside the weights (`state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimisation steps completed.
    pub step: usize,
}

/// Trains (or resumes) a run: the configuration, the datasets, the model and optimiser (from
/// the checkpoint on resume), then the optimisation loop with its logs, evaluations and
/// checkpoints.
pub fn train(opts: &TrainOptions) -> Result<TrainSummary> {
    let run = RunDir::new(&opts.run);
    let config = run_config(opts, &run)?;
    let (train_set, test_set) = open_datasets(&opts.data, &config)?;
    let device = opts.device.device()?;
    device.seed(config.train.seed);
    let train_device = device.clone().autodiff();
    let (mut model, mut optim, start_step) = start_model(opts, &run, &config, &train_device)?;
    let checkpoint_dir = run.checkpoint_dir();
    crate::run::write_atomic(
        &run.config_file(),
        serde_json::to_string_pretty(&config)? + "\n",
    )?;
    let mut metrics = run.open_metrics()?;

    // 4. The loop.
    let total = config.train.steps;
    let bar = opts
        .reporter
        .task("training", "steps", total as u64, start_step as u64);
    let mean_frame = train_set.mean_frame(256)?;
    let oracle_mse = evaluation_oracle(&opts.data, &config)?;
    let started = Instant::now();
    let mut last_log = Instant::now();
    let mut last_eval = None;
    for step in start_step..total {
        let parts = step_loss(&model, &train_set, &config, step, &train_device)?;
        let total_loss = scalar(parts.total.clone());
        if !total_loss.is_finite() {
            bail!(
                "the loss became {total_loss} at step {step}; stopped. The last good checkpoint in {} is intact",
                checkpoint_dir.display()
            );
        }
        let grads = GradientsParams::from_grads(parts.total.backward(), &model);
        model = optim.step(config.train.lr_at(step), model, grads);
        let done = step + 1;
        bar.set_position(done as u64);

        if step % config.train.log_every == 0 || done == total {
            let elapsed = last_log.elapsed().as_secs_f64();
            last_log = Instant::now();
            let rate = if step == start_step {
                0.0
            } else {
                config.train.log_every as f64 / elapsed
            };
            let line = MetricsLine::train(done, total_loss, &parts, rate);
            bar.status(&line.status());
            writeln!(metrics, "{}", serde_json::to_string(&line)?)?;
        }
        if done % config.train.eval_every == 0 || done == total {
            let (mse, baseline) =
                evaluate(&model.valid(), &test_set, &config, &mean_frame, &device)?;
            let line = MetricsLine::eval(done, mse, baseline, oracle_mse);
            writeln!(metrics, "{}", serde_json::to_string(&line)?)?;
            let message = format!(
                "step {done}: test pixel MSE {mse:.3e} (mean-frame baseline {baseline:.3e})"
            );
            opts.reporter.line(&message);
            last_eval = Some((mse, baseline));
        }
        if done % config.train.checkpoint_every == 0 || done == total {
            metrics.flush()?;
            save_checkpoint(&opts.run, &model, &optim, &CheckpointState { step: done })?;
        }
    }
    drop(bar);
    let (test_mse, baseline_mse) = match last_eval {
        Some(v) => v,
        None => evaluate(&model.valid(), &test_set, &config, &mean_frame, &device)?,
    };
    Ok(TrainSummary {
        steps: total,
        test_mse,
        baseline_mse,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The loss of optimisation step `step` (reference D3's window under the run's protocol):
/// the step's batch and noise from its own stream, the state inferred from the window's
/// inference frames, rolled out over the curriculum's length, the drawn frames decoded.
fn step_loss(
    model: &Hgn,
    train_set: &SequenceDataset,
    config: &RunConfig,
    step: usize,
    device: &Device,
) -> Result<LossParts> {
    let m = &config.model;
    let (frames, noise, decode, direction) = draw_batch(train_set, config, step, device)?;
    let (inference, targets) = config.window().parts(frames, &decode, direction);
    let output = model.forward_decoding(
        inference,
        Some(noise),
        direction.signed(m.dt),
        config.train.rollout_at(step, m.rollout_steps),
        &decode,
    );
    Ok(loss(model, &output, targets, config.objective))
}

/// The configuration of this invocation: the saved one on resume (with `steps_override`), the
/// requested one for a new run, whose folder must not hold a run already.
fn run_config(opts: &TrainOptions, run: &RunDir) -> Result<RunConfig> {
    let config_path = run.config_file();
    let mut config = if opts.resume {
        ensure!(
            config_path.is_file(),
            "{} holds no run to resume (no config.json)",
            opts.run.display()
        );
        RunConfig::load(&config_path)?
    } else {
        if config_path.exists() {
            bail!(
                "{} already holds a run; pass --resume to continue it or choose another --run",
                opts.run.display()
            );
        }
        opts.config.clone()
    };
    if let Some(steps) = opts.steps_override {
        config.train.steps = steps;
    }
    if !opts.resume {
        config.data = Some(opts.data.clone());
    }
    config.validate()?;
    Ok(config)
}

/// The training and test splits of `data`, checked against the model's image size and window.
fn open_datasets(data: &Path, config: &RunConfig) -> Result<(SequenceDataset, SequenceDataset)> {
    let model_cfg = &config.model;
    let window = config.window();
    let train_set = SequenceDataset::open(data, Split::Train)?;
    let test_set = SequenceDataset::open(data, Split::Test)?;
    for set in [&train_set, &test_set] {
        ensure!(
            set.image_size == model_cfg.image_size,
            "the model expects {0}×{0} images but {1} has {2}×{2}",
            model_cfg.image_size,
            data.display(),
            set.image_size
        );
        ensure!(
            set.seq_len >= window.len(),
            "the model needs windows of {} frames ({} protocol, {} inference frames, {} steps) but {} has sequences of {} frames",
            window.len(),
            window.protocol,
            model_cfg.num_inference_frames,
            model_cfg.rollout_steps,
            data.display(),
            set.seq_len
        );
    }
    Ok((train_set, test_set))
}

/// A fresh model and optimiser in a new run folder, or, on resume, those of the newest complete
/// checkpoint (metric lines past it dropped), with the step to continue from.
fn start_model(
    opts: &TrainOptions,
    run: &RunDir,
    config: &RunConfig,
    train_device: &Device,
) -> Result<(Hgn, burn::optim::ModuleOptimizer, usize)> {
    let model = config.model.init(train_device);
    let optim = AdamConfig::new().with_epsilon(1e-8).init();
    if !opts.resume {
        std::fs::create_dir_all(&opts.run)
            .with_context(|| format!("cannot create {}", opts.run.display()))?;
        return Ok((model, optim, 0));
    }
    // After a kill during a checkpoint swap the newest complete one is put back first; a run
    // killed before its first checkpoint starts again from its seed, as it did then.
    let checkpoint_dir = run.checkpoint_dir();
    let Some(start_step) = run.resume_point()? else {
        opts.reporter
            .line("no checkpoint was written yet: training again from step 0");
        return Ok((model, optim, 0));
    };
    let state: CheckpointState = crate::run::read_state(&checkpoint_dir)?;
    ensure!(
        state.step == start_step,
        "{} is damaged (its step changed while reading it)",
        checkpoint_dir.display()
    );
    let model = load_weights(&checkpoint_dir, model)?;
    let optim = load_optimizer(&checkpoint_dir, optim)?;
    Ok((model, optim, start_step))
}

/// The batch, the posterior noise, the rollout frames to decode and the direction of time at
/// `step`, drawn from the step's own RNG stream.
fn draw_batch(
    set: &SequenceDataset,
    config: &RunConfig,
    step: usize,
    device: &Device,
) -> Result<(Tensor<5>, Tensor<4>, Vec<usize>, Direction)> {
    let m = &config.model;
    let window = config.window().len();
    let mut rng = stream_rng(config.train.seed, Stream::HgnStep, step as u64);
    let mut windows = Vec::with_capacity(config.train.batch_size);
    for _ in 0..config.train.batch_size {
        let index = rng.random_range(0..set.num_sequences);
        let start = rng.random_range(0..=set.seq_len - window);
        windows.push(set.read_window(index, start, window)?);
    }
    let frames = batch_tensor(windows, window, set.image_size, device);
    let (z_channels, z_size) = m.z_shape();
    let shape = [config.train.batch_size, z_channels, z_size, z_size];
    let noise: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| standard_normal(&mut rng) as f32)
        .collect();
    let states = config.train.rollout_at(step, m.rollout_steps) + 1;
    let decode = match config.train.decoded_frames {
        Some(n) if n < states => {
            let mut chosen = crate::physics::sampling::distinct_indices(&mut rng, states, n);
            chosen.sort_unstable();
            chosen
        }
        _ => (0..states).collect(),
    };
    // Drawn last, so runs without it keep the random streams they always had.
    let backward = config.train.bidirectional && rng.random_bool(0.5);
    Ok((
        frames,
        Tensor::from_data(TensorData::new(noise, shape), device),
        decode,
        config.window().direction(backward),
    ))
}

/// Test pixel MSE of the model (posterior mean, one rollout per sequence of the first window of
/// the sequence, under the run's protocol) and of the mean-frame baseline on the same target
/// frames, on the first `eval_sequences` test sequences.
pub fn evaluate(
    model: &Hgn,
    test: &SequenceDataset,
    config: &RunConfig,
    mean_frame: &[f32],
    device: &Device,
) -> Result<(f64, f64)> {
    let m = &config.model;
    let spec = config.window();
    let window = spec.len();
    let direction = spec.direction(false);
    let all_states: Vec<usize> = (0..=m.rollout_steps).collect();
    let n = test.num_sequences.min(config.train.eval_sequences);
    let (mut model_sum, mut baseline_sum, mut count) = (0.0, 0.0, 0usize);
    let mean = Tensor::<1>::from_data(
        TensorData::new(mean_frame.to_vec(), [mean_frame.len()]),
        device,
    );
    for chunk_start in (0..n).step_by(16) {
        let windows = test.read_windows(chunk_start..(chunk_start + 16).min(n), window)?;
        let frames = batch_tensor(windows, window, test.image_size, device);
        let [b, _, c, h, wd] = frames.dims();
        let (inference, targets) = spec.parts(frames, &all_states, direction);
        let output = model.forward(inference, None, direction.signed(m.dt), m.rollout_steps);
        model_sum += scalar((output.reconstruction - targets.clone()).square().sum());
        let baseline =
            mean.clone()
                .reshape([1, 1, c, h, wd])
                .expand([b, all_states.len(), c, h, wd]);
        baseline_sum += scalar((baseline - targets).square().sum());
        count += b * all_states.len() * c * h * wd;
    }
    Ok((model_sum / count as f64, baseline_sum / count as f64))
}

/// The expected-image oracle's per-pixel MSE on the frames and sequences [`evaluate`] scores (the
/// line a learning curve is measured against), or `None` for a dataset whose system the oracle
/// does not know.
fn evaluation_oracle(data: &Path, config: &RunConfig) -> Result<Option<f64>> {
    use crate::oracle::{OracleData, OracleFrames, OracleOptions};
    let Ok(oracle) = OracleData::open(data, Split::Test) else {
        return Ok(None);
    };
    let window = config.window();
    let frames = match window.protocol {
        Protocol::Forecast => OracleFrames::of(
            Protocol::Forecast,
            window.inference_frames,
            window.rollout_steps + 1,
        ),
        Protocol::Reconstruct => OracleFrames::of(Protocol::Reconstruct, window.len(), 0),
    };
    let n = oracle.num_sequences().min(config.train.eval_sequences);
    // The line is a guide: where the physics cannot answer it is left out, never fatal.
    let Ok(scores) = oracle.sequences(n, &frames, &OracleOptions::default(), &|_| ()) else {
        return Ok(None);
    };
    let answered: Vec<f64> = scores.iter().flatten().map(|s| s.expected).collect();
    Ok(
        (!answered.is_empty())
            .then(|| answered.iter().sum::<f64>() / (1e4 * answered.len() as f64)),
    )
}

/// The first value of a tensor as f64 (NaN if it cannot be read). Shared with the flows.
pub(crate) fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .map(|v| v[0])
        .unwrap_or(f64::NAN)
}

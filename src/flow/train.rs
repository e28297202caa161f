//! Training a density flow (`hgn flow train`); [`super::load`] loads a trained one.
//!
//! A flow run folder holds `config.json` (written before step 0), `metrics.jsonl`, `test.npy`
//! (the held-out points, float64 `[N, d]`) and `checkpoint/` (model, Adam state, step,
//! training seconds, learning-rate factor and early stopping's state, swapped in atomically),
//! like an HGN run.
//!
//! Data path: points ([`super::points`]) → batch → flow → loss (NHF: −ELBO or the
//! importance-weighted bound; RealNVP: −log p) → Adam → checkpoint.
//!
//! Every random draw of step `s` comes from the stream `(seed, 3, s)`, so a resumed run repeats
//! an uninterrupted one exactly.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::config::{FlowRunConfig, MIN_IMPROVEMENT, validate};
use super::eval::log_likelihoods;
use super::load::newest_checkpoint;
use super::net::FlowNet;
use super::points::{FlowPoints, flow_batch, flow_points, write_points};
use crate::device::DeviceChoice;
use crate::physics::sampling::standard_normal;
use crate::rng::{Stream, stream_rng};
use crate::run::{RunDir, save_checkpoint, write_atomic};
use crate::train::scalar;

/// What `hgn flow train` is asked to do.
#[derive(Debug, Clone)]
pub struct FlowTrainOptions {
    /// The run folder.
    pub run: PathBuf,
    /// The configuration of a new run (ignored on resume except for `train.steps`).
    pub config: FlowRunConfig,
    /// Continue the run in `run`.
    pub resume: bool,
    /// With `resume`: train up to this many steps.
    pub steps_override: Option<usize>,
    /// The device.
    pub device: DeviceChoice,
    /// Where the progress of the steps and a rewind's line go.
    pub reporter: crate::progress::Reporter,
}

/// One line of a flow's `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowMetricsLine {
    /// Step after the update.
    pub step: usize,
    /// `train` or `eval`.
    pub kind: String,
    /// Train lines: the batch's negative objective in nats (−ELBO or NLL, original
    /// coordinates). Eval lines: held-out NLL in nats.
    pub nll: f64,
    /// Training throughput (train lines).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub steps_per_second: Option<f64>,
    /// Batches skipped so far because their loss was not finite (train lines).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skipped: Option<usize>,
    /// Eval lines: validation NLL in nats (runs with early stopping).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub valid_nll: Option<f64>,
    /// Eval lines: seconds of training so far.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seconds: Option<f64>,
}

/// Non-finite batches in a row after which a flow's training rewinds (or stops).
const MAX_CONSECUTIVE_SKIPS: usize = 20;

/// Rewinds to the last checkpoint (each halving the learning rate) before a run gives up.
const MAX_REWINDS: usize = 3;

/// A flow checkpoint's bookkeeping; the default is a fresh run's, at step 0.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct FlowCheckpointState {
    pub(super) step: usize,
    /// Wall-clock seconds of training so far.
    pub(super) seconds: f64,
    /// Factor on the learning rate after rewinds from instabilities (absent: 1).
    #[serde(default)]
    lr_scale: Option<f64>,
    /// Early stopping's bookkeeping (absent without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) early_stop: Option<EarlyStop>,
}

/// Where early stopping stands after an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlyStop {
    /// The best validation NLL so far.
    pub best: f64,
    /// Its step.
    pub best_step: usize,
    /// Evaluations since it (or since the last halving of the learning rate).
    pub since_best: usize,
    /// Plateaus met so far whose answer was to halve the learning rate.
    #[serde(default)]
    pub halvings: usize,
    /// Whether training has stopped for want of progress.
    pub converged: bool,
}

impl EarlyStop {
    /// The state after an evaluation at `step` gave `nll`, and whether the learning rate is to
    /// be halved now: `patience` evaluations without a new best (by more than
    /// [`MIN_IMPROVEMENT`]) make a plateau; the first `halvings` plateaus halve the learning
    /// rate, the next one stops training.
    pub fn after(
        previous: Option<EarlyStop>,
        nll: f64,
        step: usize,
        patience: usize,
        halvings: usize,
    ) -> (Self, bool) {
        // A NaN is no improvement.
        let improved = previous.is_none_or(|p| nll < p.best - MIN_IMPROVEMENT);
        let mut next = match previous {
            Some(p) if !improved => EarlyStop {
                since_best: p.since_best + 1,
                ..p
            },
            Some(p) => EarlyStop {
                best: nll,
                best_step: step,
                since_best: 0,
                ..p
            },
            None => EarlyStop {
                best: nll,
                best_step: step,
                since_best: 0,
                halvings: 0,
                converged: false,
            },
        };
        if next.since_best < patience {
            return (next, false);
        }
        if next.halvings < halvings {
            next.halvings += 1;
            next.since_best = 0;
            return (next, true);
        }
        next.converged = true;
        (next, false)
    }
}

/// What a training call did.
#[derive(Debug, Clone)]
pub struct FlowTrainSummary {
    /// Steps completed.
    pub steps: usize,
    /// Held-out NLL after the last step (nats), from a quick estimate (8 importance samples for
    /// the NHF, at most 2,000 points); `hgn flow eval` gives the full figure.
    pub test_nll: f64,
    /// Wall-clock seconds of training in total.
    pub seconds: f64,
    /// Early stopping's state at the end (runs with a patience).
    pub early_stop: Option<EarlyStop>,
}

/// A fresh flow and optimiser in a new run folder (with its held-out points written), or, on
/// resume, those of the newest complete checkpoint (metric lines past it dropped), with the
/// checkpoint's bookkeeping (all zero for a new run).
fn start_flow(
    opts: &FlowTrainOptions,
    config: &FlowRunConfig,
    test_points: &[f64],
    train_device: &Device,
) -> Result<(FlowNet, burn::optim::ModuleOptimizer, FlowCheckpointState)> {
    let model = FlowNet::init(config, train_device);
    let optim = AdamConfig::new()
        .with_grad_clipping(Some(GradientClippingConfig::Norm(
            config.train.clip_norm as f32,
        )))
        .init();
    if !opts.resume {
        std::fs::create_dir_all(&opts.run)
            .with_context(|| format!("cannot create {}", opts.run.display()))?;
        write_points(&opts.run.join("test.npy"), test_points, config.dim())?;
        return Ok((model, optim, FlowCheckpointState::default()));
    }
    // After a kill during a checkpoint swap the newest complete one is put back first; a run
    // killed before its first checkpoint starts again from its seed, as it did then.
    if RunDir::new(&opts.run).resume_point()?.is_none() {
        opts.reporter
            .line("no checkpoint was written yet: training again from step 0");
        return Ok((model, optim, FlowCheckpointState::default()));
    }
    restore(&opts.run, model, optim)
}

/// The NLL of held-out points during training: 8 importance samples on at most 2,000 of them
/// (the same points and noise at every evaluation).
fn quick_nll(model: &FlowNet, config: &FlowRunConfig, points: &[f64], device: &Device) -> f64 {
    let d = config.dim();
    let n = (points.len() / d).min(2000);
    let (lls, _) = log_likelihoods(model, config, &points[..n * d], 8, device);
    -crate::metrics::mean(&lls)
}

/// The loss of step `step`: minus the mean training objective of its batch, with the batch and
/// the posterior noise drawn from the step's own stream.
fn step_loss(
    model: &FlowNet,
    config: &FlowRunConfig,
    train_points: Option<&[f64]>,
    step: usize,
    device: &Device,
) -> Result<Tensor<1>> {
    let (b, d) = (config.train.batch_size, config.dim());
    let mut rng = stream_rng(config.train.seed, Stream::FlowStep, step as u64);
    let points = flow_batch(config, train_points, &mut rng)?;
    let x = Tensor::<2>::from_data(TensorData::new(config.standardise(&points), [b, d]), device);
    let draws = config.train.objective_samples.max(1);
    let noise: Vec<f32> = (0..draws * b * d)
        .map(|_| standard_normal(&mut rng) as f32)
        .collect();
    let eps = Tensor::<2>::from_data(TensorData::new(noise, [draws * b, d]), device);
    Ok(model.training_objective(x, eps, draws).mean().neg())
}

/// The run's configuration: the saved one on resume (a new run refuses a folder that holds
/// one), with the step override applied, checked.
fn run_config(opts: &FlowTrainOptions) -> Result<FlowRunConfig> {
    let mut config = if opts.resume {
        FlowRunConfig::load(&opts.run)?
    } else {
        ensure!(
            !opts.run.join("config.json").exists(),
            "{} already holds a run; pass --resume to continue it or choose another --run",
            opts.run.display()
        );
        opts.config.clone()
    };
    if let Some(steps) = opts.steps_override {
        config.train.steps = steps;
    }
    validate(&config)?;
    Ok(config)
}

/// Trains (or resumes) a flow: one loop over the steps; `FlowLoop` holds what its
/// evaluations, checkpoints and rewinds share.
pub fn train_flow(opts: &FlowTrainOptions) -> Result<FlowTrainSummary> {
    let run_dir = RunDir::new(&opts.run);
    let config = run_config(opts)?;
    let points = flow_points(&config)?;
    let device = opts.device.device()?;
    device.seed(config.train.seed);
    let train_device = device.clone().autodiff();
    let (mut model, mut optim, resumed) = start_flow(opts, &config, &points.test, &train_device)?;
    write_atomic(
        &run_dir.config_file(),
        &(serde_json::to_string_pretty(&config)? + "\n"),
    )?;
    let start = resumed.step;
    let mut run = FlowLoop {
        opts,
        config: &config,
        metrics: run_dir.open_metrics()?,
        seconds_before: resumed.seconds,
        started: Instant::now(),
        last_log: Instant::now(),
        lr_scale: resumed.lr_scale.unwrap_or(1.0),
        early_stop: resumed.early_stop,
        test_nll: f64::NAN,
        skipped: 0,
        consecutive_skips: 0,
        rewinds: 0,
    };

    let total = config.train.steps;
    let bar = opts
        .reporter
        .task("training", "steps", total as u64, start as u64);
    let log_scale = config.log_scale_sum();
    let mut step = start;
    while step < total && !run.early_stop.is_some_and(|e| e.converged) {
        let loss = step_loss(
            &model,
            &config,
            points.train.as_deref(),
            step,
            &train_device,
        )?;
        let value = scalar(loss.clone()) + log_scale;
        if value.is_finite() {
            run.consecutive_skips = 0;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(config.train.learning_rate * run.lr_scale, model, grads);
        } else if run.skip(step, value)? {
            let back;
            (model, optim, back) = run.rewind(model, optim, step, value)?;
            step = back;
            bar.set_position(step as u64);
            continue;
        }
        let done = step + 1;
        bar.set_position(done as u64);
        if value.is_finite() && (step % config.train.log_every == 0 || done == total) {
            let rate = run.log_train(done, value, step == start)?;
            bar.status(&format!("nll {value:.3}  {rate:.1} steps/s"));
        }
        if done % config.train.eval_every == 0 || done == total {
            run.evaluate_and_save(&model, &optim, &points, &device, done)?;
        }
        step += 1;
    }
    drop(bar);
    Ok(FlowTrainSummary {
        steps: step,
        test_nll: run.test_nll,
        seconds: run.seconds(),
        early_stop: run.early_stop,
    })
}

/// What the training loop's evaluations, checkpoints and rewinds share: the run, its metrics
/// file, the clock, the learning-rate factor and early stopping's state.
struct FlowLoop<'a> {
    opts: &'a FlowTrainOptions,
    config: &'a FlowRunConfig,
    metrics: std::fs::File,
    /// Seconds of training before this call (from the checkpoint it resumed).
    seconds_before: f64,
    started: Instant,
    /// When the last training line was written (the rate is measured from it).
    last_log: Instant,
    /// Factor on the learning rate (halved by rewinds and by plateaus).
    lr_scale: f64,
    early_stop: Option<EarlyStop>,
    /// The held-out NLL of the last evaluation.
    test_nll: f64,
    /// Batches skipped for a non-finite loss in this process, in a row now, and rewinds made.
    skipped: usize,
    consecutive_skips: usize,
    rewinds: usize,
}

impl FlowLoop<'_> {
    /// Seconds of training in total so far.
    fn seconds(&self) -> f64 {
        self.seconds_before + self.started.elapsed().as_secs_f64()
    }

    fn write_line(&mut self, line: &FlowMetricsLine) -> Result<()> {
        writeln!(self.metrics, "{}", serde_json::to_string(line)?)?;
        Ok(())
    }

    /// A training line: the NLL after `done` steps, the rate since the last line (0 on the
    /// first line of a process), and the batches skipped so far. Returns the rate.
    fn log_train(&mut self, done: usize, nll: f64, first: bool) -> Result<f64> {
        let elapsed = self.last_log.elapsed().as_secs_f64();
        self.last_log = Instant::now();
        let rate = if first {
            0.0
        } else {
            self.config.train.log_every as f64 / elapsed
        };
        self.write_line(&FlowMetricsLine {
            step: done,
            kind: "train".into(),
            nll,
            steps_per_second: Some(rate),
            skipped: Some(self.skipped),
            valid_nll: None,
            seconds: None,
        })?;
        Ok(rate)
    }

    /// After `done` steps: the held-out NLL, the validation NLL and early stopping's verdict on
    /// it (a plateau halves the learning rate), an eval line, then a checkpoint of it all.
    fn evaluate_and_save(
        &mut self,
        model: &FlowNet,
        optim: &burn::optim::ModuleOptimizer,
        points: &FlowPoints,
        device: &Device,
        done: usize,
    ) -> Result<()> {
        let config = self.config;
        let seconds = self.seconds();
        let evaluated = model.valid();
        self.test_nll = quick_nll(&evaluated, config, &points.test, device);
        let valid_nll = points
            .valid
            .as_deref()
            .map(|v| quick_nll(&evaluated, config, v, device));
        if let (Some(nll), Some(patience)) = (valid_nll, config.train.patience) {
            let (state, halve) = EarlyStop::after(
                self.early_stop,
                nll,
                done,
                patience,
                config.train.plateau_halvings,
            );
            self.early_stop = Some(state);
            if halve {
                self.lr_scale *= 0.5;
                self.opts.reporter.line(&format!(
                    "step {done}: the validation NLL has not improved on {:.4} in {patience} evaluations; learning rate ×{}",
                    state.best, self.lr_scale
                ));
            }
            if state.converged {
                self.opts.reporter.line(&format!(
                    "step {done}: the validation NLL has not improved on {:.4} (step {}) in {} evaluations; stopped",
                    state.best, state.best_step, state.since_best
                ));
            }
        }
        self.write_line(&FlowMetricsLine {
            step: done,
            kind: "eval".into(),
            nll: self.test_nll,
            steps_per_second: None,
            skipped: None,
            valid_nll,
            seconds: Some(seconds),
        })?;
        self.metrics.flush()?;
        let state = FlowCheckpointState {
            step: done,
            seconds,
            lr_scale: (self.lr_scale != 1.0).then_some(self.lr_scale),
            early_stop: self.early_stop,
        };
        save_checkpoint(&self.opts.run, model, optim, &state)
    }

    /// Counts a skipped batch, whose loss `value` at `step` was not finite (a batch that drives
    /// the leapfrog unstable). Returns whether to rewind: after `MAX_CONSECUTIVE_SKIPS` in a
    /// row the weights themselves have become unstable; after `MAX_REWINDS` rewinds, or with
    /// no checkpoint to go back to, it gives up with an error.
    fn skip(&mut self, step: usize, value: f64) -> Result<bool> {
        self.skipped += 1;
        self.consecutive_skips += 1;
        if self.consecutive_skips < MAX_CONSECUTIVE_SKIPS {
            return Ok(false);
        }
        let run = &self.opts.run;
        ensure!(
            self.rewinds < MAX_REWINDS && crate::run::find_checkpoint(run).is_some(),
            "the loss was {value} for {MAX_CONSECUTIVE_SKIPS} batches in a row, the last at step {step}; stopped. The last good checkpoint in {} is intact",
            RunDir::new(run).checkpoint_dir().display()
        );
        self.rewinds += 1;
        self.consecutive_skips = 0;
        Ok(true)
    }

    /// Goes back to the newest checkpoint with half the learning rate, after the loss stayed
    /// `value` for too many batches up to `step`; metric lines past the checkpoint are dropped.
    /// Returns the restored model and optimiser and the checkpoint's step.
    fn rewind(
        &mut self,
        model: FlowNet,
        optim: burn::optim::ModuleOptimizer,
        step: usize,
        value: f64,
    ) -> Result<(FlowNet, burn::optim::ModuleOptimizer, usize)> {
        let run = &self.opts.run;
        let (model, optim, state) = restore(run, model, optim)?;
        self.lr_scale *= 0.5;
        self.early_stop = state.early_stop;
        self.opts.reporter.line(&format!(
            "step {step}: the loss stayed {value} for {MAX_CONSECUTIVE_SKIPS} batches; rewinding to step {} with learning rate ×{}",
            state.step, self.lr_scale
        ));
        self.metrics.flush()?;
        RunDir::new(run).truncate_metrics(state.step)?;
        self.metrics = RunDir::new(run).open_metrics()?;
        Ok((model, optim, state.step))
    }
}

/// The newest complete checkpoint's weights, optimiser state and bookkeeping, loaded into
/// `model` and `optim`.
fn restore(
    run: &Path,
    model: FlowNet,
    optim: burn::optim::ModuleOptimizer,
) -> Result<(FlowNet, burn::optim::ModuleOptimizer, FlowCheckpointState)> {
    let (dir, _) = newest_checkpoint(run)?;
    let state = crate::run::read_state(&dir)?;
    let model = crate::run::load_weights(&dir, model)?;
    let optim = crate::run::load_optimizer(&dir, optim)?;
    Ok((model, optim, state))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::config::{FlowData, FlowKind, new_config};

    #[test]
    fn plateaus_halve_the_learning_rate_then_stop_training() {
        let mut state = None;
        let mut verdicts = vec![];
        // Improves, then stalls (a gain of MIN_IMPROVEMENT / 2 does not count), improves once
        // more, and stalls for good.
        let nlls = [3.0, 2.5, 2.4995, 2.6, 2.2, 2.3, 2.3, 2.3, 2.3, 2.3];
        for (i, nll) in nlls.into_iter().enumerate() {
            let (next, halve) = EarlyStop::after(state, nll, 100 * (i + 1), 2, 1);
            verdicts.push((next.since_best, halve, next.converged));
            state = Some(next);
        }
        assert_eq!(
            verdicts,
            [
                (0, false, false),
                (0, false, false),
                (1, false, false),
                // A plateau: the learning rate is halved, the count starts again.
                (0, true, false),
                (0, false, false),
                (1, false, false),
                // The second plateau stops training.
                (2, false, true),
                (3, false, true),
                (4, false, true),
                (5, false, true),
            ]
        );
        let last = state.unwrap();
        assert_eq!((last.best, last.best_step, last.halvings), (2.2, 500, 1));
        // Without halvings the first plateau stops.
        let (s, _) = EarlyStop::after(None, 1.0, 10, 1, 0);
        let (s, halve) = EarlyStop::after(Some(s), 1.0, 20, 1, 0);
        assert!(s.converged && !halve);
    }

    #[test]
    fn configs_written_before_the_nhf_variants_and_early_stopping_load_as_they_ran() {
        let config = new_config(FlowKind::Nhf, FlowData::Target("rings".into()), 0).unwrap();
        let mut json: serde_json::Value = serde_json::to_value(&config).unwrap();
        for key in ["learned_kinetic", "learned_step", "activation"] {
            json["nhf"].as_object_mut().unwrap().remove(key);
        }
        for key in ["patience", "plateau_halvings", "objective_samples"] {
            json["train"].as_object_mut().unwrap().remove(key);
        }
        let old = FlowRunConfig::from_json(&json.to_string()).unwrap();
        assert!(old.nhf.quadratic_kinetic && old.nhf.learned_kinetic);
        assert!(!old.nhf.learned_step);
        assert_eq!(
            old.nhf.activation,
            crate::flow::mlp::EnergyActivation::Softplus
        );
        assert_eq!((old.train.patience, old.train.plateau_halvings), (None, 0));
        assert_eq!(old.train.objective_samples, 1);
        let state: FlowCheckpointState =
            serde_json::from_str(r#"{"step": 5, "seconds": 1.0}"#).unwrap();
        assert_eq!(state.early_stop, None);
    }
}

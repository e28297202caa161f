//! `hgn eval`: the paper's and DeepMind's metrics on a trained run (reference D5, D6, §10), under
//! the run's protocol (D3, [`crate::protocol`]).
//!
//! Every sequence of a split is predicted twice from the posterior mean (no sampling, so the
//! figures are deterministic): **forward**, inferring the state at frame `K − 1` from frames
//! `0..K` and integrating with `+dt` for `min(L − K, max(29, rollout_steps + 60))` steps
//! (sequences of `L` frames); **backward**, with `−dt`: under `forecast` from the state inferred
//! at the last frame from the last `K` frames, as many steps; under `reconstruct` the
//! reconstruction itself, from the state inferred at frame `W − 1` of the first window, `W − 1`
//! steps back to frame 0. From those rollouts:
//!
//! - **Table 1** (paper): per-element MSE averaged per sequence, then mean ± 95 % t confidence
//!   interval over sequences, ×1e4, over the first 30 predicted frames of the forward rollout
//!   (`forecast`) or over all `W` frames of the reconstruction (`reconstruct`); beside it the
//!   mean-frame baseline and the physics oracle ([`crate::oracle`]) on the same frames, and the
//!   model's ratio to the expected-image oracle;
//! - **window / extrapolation** (DeepMind): MSE and `l2_norm` over the frames of the training
//!   window (forecast: the first `rollout_steps + 1` predicted frames; reconstruct: the inferred
//!   frame forward, all `W` backward) and over up to 60 frames past it;
//! - **VPT**: per sequence the first predicted frame with MSE / mean(x²) > 0.025, median over
//!   sequences (`vpt_abs`, in steps) and divided by the frames predicted (`vpt_rel`);
//! - **energy**: the learned `H(q_t, p_t)` along the forward rollout: mean and max of
//!   `|H_i − H_j|` over time pairs, and its least-squares drift per step.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;

use crate::data::dataset::{SequenceDataset, batch_tensor};
use crate::data::format::Split;
use crate::metrics;
use crate::model::Hgn;
use crate::oracle::{OracleData, OracleOptions};
use crate::protocol::{Direction, Protocol};
use crate::run::{EVAL_FILE, RunDir, write_atomic};
use crate::train::RunConfig;

mod physics;
mod predict;
pub mod refine;
mod report;

pub use predict::{Prediction, predict, predict_from_state};
pub use refine::{RefineOptions, RefineReport};
pub use report::{
    DirectionReport, EnergyReport, EvalReport, Interval, OracleReport, PerSequence, SplitReport,
};

/// Frames of the paper's Table 1 rollouts.
pub const TABLE1_FRAMES: usize = 30;
/// Extrapolation steps past the training window (DeepMind's `num_extrapolation_steps`).
pub const EXTRAPOLATION_STEPS: usize = 60;
/// Sequences per forward pass.
const CHUNK: usize = 32;

/// What `hgn eval` is asked to do.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// The run folder.
    pub run: PathBuf,
    /// Dataset [default: the run's].
    pub data: Option<PathBuf>,
    /// Splits to evaluate.
    pub splits: Vec<Split>,
    /// At most this many sequences per split (the first ones).
    pub max_sequences: usize,
    /// Where the progress over each split's sequences goes.
    pub reporter: crate::progress::Reporter,
    /// Device the rollouts run on.
    pub device: crate::device::DeviceChoice,
    /// Compute the physics oracle with these settings (`None`: skip it).
    pub oracle: Option<OracleOptions>,
    /// Keep each sequence's Table 1 figures in the report ([`SplitReport::per_sequence`]).
    pub per_sequence: bool,
    /// Also refine each inferred state with the weights fixed ([`refine`]; `None`: skip it).
    pub refine: Option<RefineOptions>,
}

/// The dataset a run was trained on, or `data`.
pub fn dataset_of(run: &Path, config: &RunConfig, data: Option<&Path>) -> Result<PathBuf> {
    match data {
        Some(d) => Ok(d.to_path_buf()),
        None => config
            .data
            .clone()
            .with_context(|| format!("{} records no dataset; pass --data", run.display())),
    }
}

/// Opens `split` of `data` and checks it fits `config`'s model.
pub fn open_split(data: &Path, split: Split, config: &RunConfig) -> Result<SequenceDataset> {
    let set = SequenceDataset::open(data, split)?;
    let m = &config.model;
    ensure!(
        set.image_size == m.image_size,
        "{}: frames are {}×{} but the model was trained on {}×{}",
        data.display(),
        set.image_size,
        set.image_size,
        m.image_size,
        m.image_size
    );
    ensure!(
        set.seq_len > m.num_inference_frames,
        "{}: {} sequences have {} frames, fewer than the model's {} inference frames plus one",
        data.display(),
        split.name(),
        set.seq_len,
        m.num_inference_frames
    );
    Ok(set)
}

/// Runs the evaluation, writes `RUN/eval.json` and returns the report.
pub fn evaluate_run(opts: &EvalOptions) -> Result<EvalReport> {
    let report = evaluate_run_in_memory(opts)?;
    write_atomic(
        &opts.run.join(EVAL_FILE),
        serde_json::to_string_pretty(&report)? + "\n",
    )?;
    Ok(report)
}

/// As [`evaluate_run`], without writing anything.
pub fn evaluate_run_in_memory(opts: &EvalOptions) -> Result<EvalReport> {
    ensure!(opts.max_sequences >= 1, "--sequences must be at least 1");
    ensure!(!opts.splits.is_empty(), "no split to evaluate");
    if let Some(refine) = &opts.refine {
        refine.validate()?;
    }
    let device = opts.device.device()?;
    let run = RunDir::new(&opts.run);
    let (config, model) = run.load(&device)?;
    let data = dataset_of(&opts.run, &config, opts.data.as_deref())?;
    let step = run.checkpoint_step()?;
    // The baseline is the mean frame of the training split, as during training.
    let train = open_split(&data, Split::Train, &config)?;
    let mean_frame = train.mean_frame(1000)?;
    // Refinement differentiates through the model: a second copy on the autodiff device.
    let refiner = match opts.refine {
        Some(_) => {
            let autodiff = device.clone().autodiff();
            Some((run.load(&autodiff)?.1, autodiff))
        }
        None => None,
    };
    let mut splits = Vec::new();
    for &split in &opts.splits {
        let set = open_split(&data, split, &config)?;
        let (mut report, latents) = evaluate_split(
            &model,
            &config,
            &set,
            split,
            &mean_frame,
            opts.max_sequences,
            &opts.reporter,
            &device,
        )?;
        if let Some(oracle) = &opts.oracle {
            let physics = OracleData::open(&data, split)?;
            physics::add_oracle_and_probe(
                &mut report,
                split,
                &physics,
                &latents,
                &config,
                oracle,
                &opts.reporter,
            )?;
        }
        if let (Some(refine), Some((model, autodiff))) = (opts.refine, &refiner) {
            report.refined = Some(refine::refine_split(
                model,
                &config,
                &set,
                opts.max_sequences,
                refine,
                &opts.reporter,
                autodiff,
            )?);
        }
        if !opts.per_sequence {
            report.per_sequence = None;
        }
        splits.push(report);
    }
    let m = &config.model;
    Ok(EvalReport {
        run: opts.run.clone(),
        data,
        checkpoint_step: step,
        preset: config.preset.clone(),
        protocol: config.protocol,
        integrator: m.integrator.name().to_string(),
        dt: m.dt,
        inference_frames: m.num_inference_frames,
        rollout_steps: m.rollout_steps,
        splits,
    })
}

/// Per-direction accumulators over sequences.
#[derive(Default)]
struct DirectionSums {
    mse_per_step: Vec<f64>,
    window_mse: Vec<f64>,
    window_l2: Vec<f64>,
    extra_mse: Vec<f64>,
    extra_l2: Vec<f64>,
    vpt: Vec<f64>,
}

impl DirectionSums {
    fn add(&mut self, errors: &metrics::FrameErrors, window: usize) {
        if self.mse_per_step.is_empty() {
            self.mse_per_step = vec![0.0; errors.mse.len()];
        }
        for (acc, v) in self.mse_per_step.iter_mut().zip(&errors.mse) {
            *acc += v;
        }
        let w = window.min(errors.mse.len());
        self.window_mse.push(metrics::mean(&errors.mse[..w]));
        self.window_l2.push(metrics::mean(&errors.l2_norm[..w]));
        let end = (w + EXTRAPOLATION_STEPS).min(errors.mse.len());
        if end > w {
            self.extra_mse.push(metrics::mean(&errors.mse[w..end]));
            self.extra_l2.push(metrics::mean(&errors.l2_norm[w..end]));
        }
        self.vpt
            .push(metrics::valid_prediction_time(&errors.l2_norm) as f64);
    }

    fn report(self, window: usize, frames: usize) -> DirectionReport {
        let n = self.vpt.len() as f64;
        let vpt_abs = metrics::median(&self.vpt);
        let extrapolation_frames = frames.saturating_sub(window).min(EXTRAPOLATION_STEPS);
        DirectionReport {
            window_mse: metrics::mean(&self.window_mse),
            window_l2_norm: metrics::mean(&self.window_l2),
            extrapolation_frames,
            extrapolation_mse: (!self.extra_mse.is_empty()).then(|| metrics::mean(&self.extra_mse)),
            extrapolation_l2_norm: (!self.extra_l2.is_empty())
                .then(|| metrics::mean(&self.extra_l2)),
            vpt_abs,
            vpt_rel: vpt_abs / frames as f64,
            mse_per_step: self.mse_per_step.into_iter().map(|s| s / n).collect(),
        }
    }
}

/// Steps of the forward evaluation rollouts for sequences of `seq_len` frames.
pub fn eval_steps(config: &RunConfig, seq_len: usize) -> usize {
    let m = &config.model;
    let wanted = (TABLE1_FRAMES - 1).max(m.rollout_steps + EXTRAPOLATION_STEPS);
    (seq_len - m.num_inference_frames).min(wanted)
}

#[allow(clippy::too_many_arguments)]
fn evaluate_split(
    model: &Hgn,
    config: &RunConfig,
    set: &SequenceDataset,
    split: Split,
    mean_frame: &[f32],
    max_sequences: usize,
    reporter: &crate::progress::Reporter,
    device: &Device,
) -> Result<(SplitReport, Vec<Vec<f64>>)> {
    let spec = config.window();
    let plan = FramePlan::new(config, set.seq_len);
    let n = set.num_sequences.min(max_sequences);
    let bar = reporter.task(
        &format!("eval {:5}", split.name()),
        "sequences",
        n as u64,
        0,
    );
    let mut sums = SplitSums::new(mean_frame, &plan);
    for start in (0..n).step_by(CHUNK) {
        let ids = start..(start + CHUNK).min(n);
        let sequences = set.read_windows(ids.clone(), plan.len)?;
        let tensor = batch_tensor(sequences.clone(), plan.len, set.image_size, device);
        let [b, _, c, h, w] = tensor.dims();
        let dt = config.model.dt;
        let fwd = predict(
            model,
            &spec,
            tensor.clone(),
            dt,
            plan.steps,
            Direction::Forward,
        );
        let bwd_frames = tensor.slice([0..b, 0..plan.bwd_len, 0..c, 0..h, 0..w]);
        let bwd = predict(
            model,
            &spec,
            bwd_frames,
            dt,
            plan.bwd_steps,
            Direction::Backward,
        );
        for (i, seq) in sequences.iter().enumerate() {
            sums.add(&plan, seq, &fwd, &bwd, i)
                .with_context(|| format!("{} sequence {}", split.name(), start + i))?;
        }
        bar.inc(ids.len() as u64);
    }
    drop(bar);
    Ok(sums.report(&plan, split, n))
}

/// Which frames an evaluation rolls out and scores, for a run's protocol and a sequence length.
struct FramePlan {
    /// Frames read from each sequence.
    len: usize,
    /// Inference frames `K`.
    k: usize,
    /// Steps of the forward rollout.
    steps: usize,
    /// Frames of the training window in each direction (the rest is extrapolation).
    window_fwd: usize,
    window_bwd: usize,
    /// The backward rollout runs over the first `bwd_len` frames, `bwd_steps` steps.
    bwd_len: usize,
    bwd_steps: usize,
    /// Frames the Table 1 metric averages.
    table1_frames: usize,
    /// Whether Table 1 scores the backward reconstruction (`reconstruct`) or the forecast.
    reconstruct: bool,
}

impl FramePlan {
    fn new(config: &RunConfig, len: usize) -> Self {
        let m = &config.model;
        let window = config.window().len();
        let steps = eval_steps(config, len);
        let reconstruct = config.protocol == Protocol::Reconstruct;
        // The training window's frames in each direction, and the backward rollout's sequence.
        let (window_fwd, window_bwd) = if reconstruct {
            (1, window)
        } else {
            (m.rollout_steps + 1, m.rollout_steps + 1)
        };
        let (bwd_len, bwd_steps) = if reconstruct {
            (window, window - 1)
        } else {
            (len, steps)
        };
        let table1_frames = if reconstruct {
            window
        } else {
            TABLE1_FRAMES.min(steps + 1)
        };
        Self {
            len,
            k: m.num_inference_frames,
            steps,
            window_fwd,
            window_bwd,
            bwd_len,
            bwd_steps,
            table1_frames,
            reconstruct,
        }
    }
}

/// What [`evaluate_split`] gathers sequence by sequence.
struct SplitSums {
    /// Values per frame.
    frame_len: usize,
    /// The mean frame repeated over the Table 1 frames: the baseline's prediction.
    mean_frames: Vec<f32>,
    forward: DirectionSums,
    backward: DirectionSums,
    table1: Vec<f64>,
    baseline: Vec<f64>,
    mean_h: Vec<f64>,
    deficits: Vec<f64>,
    maxima: Vec<f64>,
    drifts: Vec<f64>,
    latents: Vec<Vec<f64>>,
}

impl SplitSums {
    fn new(mean_frame: &[f32], plan: &FramePlan) -> Self {
        Self {
            frame_len: mean_frame.len(),
            mean_frames: mean_frame.repeat(plan.table1_frames),
            forward: DirectionSums::default(),
            backward: DirectionSums::default(),
            table1: vec![],
            baseline: vec![],
            mean_h: vec![],
            deficits: vec![],
            maxima: vec![],
            drifts: vec![],
            latents: vec![],
        }
    }

    /// Scores sequence `seq` (its recorded frames, flat) against item `i` of both predictions.
    fn add(
        &mut self,
        plan: &FramePlan,
        seq: &[f32],
        fwd: &Prediction,
        bwd: &Prediction,
        i: usize,
    ) -> Result<()> {
        let frame_len = self.frame_len;
        let (k, steps) = (plan.k, plan.steps);
        // Forward: predicted frame t is recorded frame K − 1 + t.
        let truth_fwd = &seq[(k - 1) * frame_len..(k + steps) * frame_len];
        let e_fwd = metrics::frame_errors(&fwd.frames[i], truth_fwd, frame_len);
        // Backward: predicted frame t is recorded frame L' − 1 − t of the first L' frames.
        let truth_bwd: Vec<f32> = (0..=plan.bwd_steps)
            .flat_map(|t| {
                let f = plan.bwd_len - 1 - t;
                seq[f * frame_len..(f + 1) * frame_len].iter().copied()
            })
            .collect();
        let e_bwd = metrics::frame_errors(&bwd.frames[i], &truth_bwd, frame_len);
        // Table 1: the forecast's first frames, or the whole reconstruction.
        let (scored, truth) = if plan.reconstruct {
            (&e_bwd, &truth_bwd[..])
        } else {
            (&e_fwd, truth_fwd)
        };
        let n = plan.table1_frames;
        self.table1.push(1e4 * metrics::mean(&scored.mse[..n]));
        let base = metrics::frame_errors(&self.mean_frames, &truth[..n * frame_len], frame_len);
        self.baseline.push(1e4 * metrics::mean(&base.mse));
        self.forward.add(&e_fwd, plan.window_fwd);
        self.backward.add(&e_bwd, plan.window_bwd);
        self.latents
            .push([&fwd.q[i][0][..], &fwd.p[i][0][..]].concat());
        let h = &fwd.energy[i];
        ensure!(
            h.iter().all(|v| v.is_finite()),
            "the learned energy is not finite along the rollout"
        );
        self.mean_h.push(metrics::mean(h));
        let (avg, max) = metrics::energy_deficit(h);
        self.deficits.push(avg);
        self.maxima.push(max);
        self.drifts.push(metrics::energy_drift_per_step(h));
        Ok(())
    }

    /// The split's report (without oracle and probe) and the inferred states.
    fn report(self, plan: &FramePlan, split: Split, n: usize) -> (SplitReport, Vec<Vec<f64>>) {
        let drifts = &self.drifts;
        let report = SplitReport {
            split: split.name().to_string(),
            sequences: n,
            seq_len: plan.len,
            steps: plan.steps,
            table1_frames: plan.table1_frames,
            table1_mse_x1e4: Interval::of(&self.table1),
            baseline_mse_x1e4: metrics::mean(&self.baseline),
            oracle: None,
            per_sequence: Some(PerSequence {
                model: self.table1,
                baseline: self.baseline,
                oracle_expected: vec![],
                oracle_point: vec![],
            }),
            forward: self.forward.report(plan.window_fwd, plan.steps + 1),
            backward: self.backward.report(plan.window_bwd, plan.bwd_steps + 1),
            energy: EnergyReport {
                mean_energy: metrics::mean(&self.mean_h),
                avg_deficit: metrics::mean(&self.deficits),
                max_deficit: metrics::mean(&self.maxima),
                drift_per_step: metrics::mean(drifts),
                abs_drift_per_step: drifts.iter().map(|d| d.abs()).sum::<f64>()
                    / drifts.len() as f64,
            },
            probe: None,
            refined: None,
        };
        (report, self.latents)
    }
}

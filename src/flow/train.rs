//! Training, evaluating and sampling density flows (`hgn flow train|eval|sample`).
//!
//! A flow run folder holds `config.json` (written before step 0), `metrics.jsonl`, `test.npy`
//! (the held-out points, float64 `[N, d]`) and `checkpoint/` (model, Adam state, step and
//! training seconds, swapped in atomically), like an HGN run.
//!
//! Data path: points → standardised `(x − mean) / std` (recorded in the config) → batch →
//! flow → loss (NHF: −ELBO; RealNVP: −log p) → Adam → checkpoint. Likelihoods are reported in
//! the original coordinates: `log p(x) = log p̃(x̃) − Σ_j log std_j`.
//!
//! Every random draw of step `s` comes from the stream `(seed, 3, s)`; held-out target points
//! from `(seed, 4, 0)`, the split of a user file from `(seed, 5, 0)`, so a resumed run repeats an
//! uninterrupted one exactly.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use burn::config::Config;
use burn::module::Module;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::nhf::{LN_2PI, Nhf, NhfConfig};
use super::realnvp::{RealNvp, RealNvpConfig};
use super::targets;
use crate::data::npy::{Dtype, NpyWriter, read_f64};
use crate::device::DeviceChoice;
use crate::physics::sampling::standard_normal;
use crate::rng::{Stream, stream_rng};
use crate::run::{RunDir, restore_checkpoint, save_checkpoint, write_atomic};
use crate::train::scalar;

/// Which flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowKind {
    /// Neural Hamiltonian Flow.
    Nhf,
    /// RealNVP affine coupling flow.
    Realnvp,
}

impl FlowKind {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            FlowKind::Nhf => "nhf",
            FlowKind::Realnvp => "realnvp",
        }
    }
}

/// Where training points come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlowData {
    /// A built-in target (fresh draws every step; 10,000 held-out draws).
    Target(String),
    /// A user's `.npy` array `[N, d]` (float64; 10 % held out, at least one point).
    File(PathBuf),
}

/// Optimisation settings of a flow.
#[derive(Config, Debug, PartialEq)]
pub struct FlowTrainConfig {
    /// Optimisation steps.
    #[config(default = 3000)]
    pub steps: usize,
    /// Points per batch.
    #[config(default = 256)]
    pub batch_size: usize,
    /// Adam learning rate.
    #[config(default = 5e-3)]
    pub learning_rate: f64,
    /// Gradients are clipped to this norm per parameter tensor (leapfrog through a sharp
    /// potential can produce rare huge gradients).
    #[config(default = 5.0)]
    pub clip_norm: f64,
    /// Seed of the weights, data and noise.
    #[config(default = 0)]
    pub seed: u64,
    /// Steps between metric lines.
    #[config(default = 20)]
    pub log_every: usize,
    /// Steps between held-out evaluations (and checkpoints).
    #[config(default = 500)]
    pub eval_every: usize,
    /// Held-out draws of a built-in target.
    #[config(default = 10000)]
    pub test_size: usize,
    /// Posterior samples of the NHF's importance-weighted likelihood estimate.
    #[config(default = 16)]
    pub iw_samples: usize,
    /// Posterior draws per point of the NHF's training objective: 1 trains on the ELBO, more
    /// on the importance-weighted bound (see [`FlowNet::training_objective`]).
    #[config(default = 1)]
    pub objective_samples: usize,
    /// Early stopping: `Some(n)` stops training once `n` evaluations in a row have not lowered
    /// the best validation NLL by more than [`MIN_IMPROVEMENT`] (`steps` stays the cap). The
    /// validation points are fresh draws of a built-in target, or a tenth of a file's training
    /// points, set aside; never the test points. `None`: train all `steps`.
    #[config(default = "None")]
    pub patience: Option<usize>,
    /// With a patience: on each of the first `plateau_halvings` plateaus the learning rate is
    /// halved and training goes on; the next plateau stops it.
    #[config(default = 0)]
    pub plateau_halvings: usize,
}

/// The smallest drop of the validation NLL (nats) that counts as progress for early stopping.
/// Every evaluation uses the same points and the same posterior noise, so successive values
/// differ by the change of the model, not by sampling.
pub const MIN_IMPROVEMENT: f64 = 1e-3;

/// Everything that defines a flow run (`RUN/config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRunConfig {
    /// The flow.
    pub kind: FlowKind,
    /// NHF settings (for `kind = nhf`).
    pub nhf: NhfConfig,
    /// RealNVP settings (for `kind = realnvp`).
    pub realnvp: RealNvpConfig,
    /// Optimisation.
    pub train: FlowTrainConfig,
    /// Training data.
    pub data: FlowData,
    /// Per-coordinate mean subtracted before the flow.
    pub shift: Vec<f64>,
    /// Per-coordinate standard deviation divided out before the flow.
    pub scale: Vec<f64>,
}

impl FlowRunConfig {
    /// Data dimension.
    pub fn dim(&self) -> usize {
        self.shift.len()
    }

    /// `Σ_j log std_j`, the change of log-density from standardised to original coordinates.
    pub fn log_scale_sum(&self) -> f64 {
        self.scale.iter().map(|s| s.ln()).sum()
    }

    /// Standardises row-major points `[n × d]`.
    pub fn standardise(&self, points: &[f64]) -> Vec<f32> {
        let d = self.dim();
        points
            .iter()
            .enumerate()
            .map(|(i, v)| ((v - self.shift[i % d]) / self.scale[i % d]) as f32)
            .collect()
    }

    /// Maps standardised points back.
    pub fn unstandardise(&self, points: &[f32]) -> Vec<f64> {
        let d = self.dim();
        points
            .iter()
            .enumerate()
            .map(|(i, v)| *v as f64 * self.scale[i % d] + self.shift[i % d])
            .collect()
    }

    /// Reads `RUN/config.json`.
    pub fn load(run: &Path) -> Result<Self> {
        let path = run.join("config.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{} is not a flow run", run.display()))?;
        Self::from_json(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a flow run config: {e}", path.display()))
    }

    /// Parses a `config.json`. Fields added since the first release are filled in when absent
    /// with the values that reproduce how such a run trained (burn's `Config` serialisation
    /// has no field defaults of its own).
    pub fn from_json(text: &str) -> serde_json::Result<Self> {
        use serde_json::{Value, json};
        let mut value: Value = serde_json::from_str(text)?;
        let added: [(&str, &str, Value); 5] = [
            ("nhf", "learned_kinetic", json!(true)),
            ("nhf", "learned_step", json!(false)),
            ("nhf", "activation", json!("softplus")),
            ("train", "plateau_halvings", json!(0)),
            ("train", "objective_samples", json!(1)),
        ];
        for (section, key, default) in added {
            if let Some(fields) = value.get_mut(section).and_then(Value::as_object_mut) {
                fields.entry(key).or_insert(default);
            }
        }
        serde_json::from_value(value)
    }
}

/// A flow of either kind (exactly one field is present).
#[derive(Module, Debug)]
pub struct FlowNet {
    /// The NHF.
    pub nhf: Option<Nhf>,
    /// The RealNVP.
    pub realnvp: Option<RealNvp>,
}

impl FlowNet {
    /// A freshly initialised flow for `config`.
    pub fn init(config: &FlowRunConfig, device: &Device) -> Self {
        match config.kind {
            FlowKind::Nhf => FlowNet {
                nhf: Some(config.nhf.init(device)),
                realnvp: None,
            },
            FlowKind::Realnvp => FlowNet {
                nhf: None,
                realnvp: Some(config.realnvp.init(device)),
            },
        }
    }

    /// The training objective per point in standardised coordinates: the ELBO (NHF, one
    /// posterior draw `eps`) or the exact log-likelihood (RealNVP).
    pub fn objective(&self, x: Tensor<2>, eps: Tensor<2>) -> Tensor<1> {
        match (&self.nhf, &self.realnvp) {
            (Some(nhf), _) => nhf.elbo(x, eps),
            (None, Some(nvp)) => nvp.log_prob(x),
            _ => unreachable!("a flow is NHF or RealNVP"),
        }
    }

    /// The training objective with `samples` posterior draws per point (NHF): the
    /// importance-weighted bound `log (1/S) Σ_s exp(ELBO_s)` (Burda et al.'s IWAE), which is
    /// the ELBO for `S = 1` and tightens towards `log p(x)` as `S` grows; RealNVP ignores
    /// `samples`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d]`; `eps`: `[samples · batch, d]`, draw-major
    /// - returns: `[batch]`
    pub fn training_objective(&self, x: Tensor<2>, eps: Tensor<2>, samples: usize) -> Tensor<1> {
        if samples <= 1 || self.nhf.is_none() {
            return self.objective(x, eps);
        }
        let batch = x.dims()[0];
        let w = self
            .objective(x.repeat_dim(0, samples), eps)
            .reshape([samples, batch]);
        // log-mean-exp over the draws; the shift is a constant for the gradient.
        let shift = w.clone().max_dim(0).detach();
        ((w - shift.clone()).exp().mean_dim(0).log() + shift).reshape([batch])
    }

    /// Draws in standardised coordinates from base noise `[n, 2d]` (NHF) or `[n, d]` (RealNVP).
    pub fn sample(&self, noise: Tensor<2>, dim: usize) -> Tensor<2> {
        match (&self.nhf, &self.realnvp) {
            (Some(nhf), _) => {
                let mut parts = noise.split(dim, 1);
                let p = parts.pop().expect("two halves");
                let q = parts.pop().expect("two halves");
                nhf.sample(q, p)
            }
            (None, Some(nvp)) => nvp.sample(noise),
            _ => unreachable!("a flow is NHF or RealNVP"),
        }
    }

    /// Base dimensions per sample: `2d` for the NHF (position and momentum), `d` for RealNVP.
    pub fn base_dim(&self, dim: usize) -> usize {
        if self.nhf.is_some() { 2 * dim } else { dim }
    }
}

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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FlowCheckpointState {
    step: usize,
    /// Wall-clock seconds of training so far.
    seconds: f64,
    /// Factor on the learning rate after rewinds from instabilities (absent: 1).
    #[serde(default)]
    lr_scale: Option<f64>,
    /// Early stopping's bookkeeping (absent without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    early_stop: Option<EarlyStop>,
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

/// Builds a run configuration for `data` with the default sizes, measuring the
/// standardisation from the training points.
pub fn new_config(kind: FlowKind, data: FlowData, seed: u64) -> Result<FlowRunConfig> {
    let train = FlowTrainConfig::new().with_seed(seed);
    let (points, dim) = match &data {
        FlowData::Target(name) => {
            let mut rng = stream_rng(seed, Stream::FlowTargetFile, 0);
            let p = targets::sample(name, 10_000, &mut rng).with_context(|| {
                format!(
                    "unknown target '{name}' (known: {})",
                    targets::TARGETS.join(", ")
                )
            })?;
            (p, 2)
        }
        FlowData::File(path) => {
            let (all, d) = read_points(path)?;
            let (train_points, _) = split_file(&all, d, seed, Stream::FlowFileSplit);
            (train_points, d)
        }
    };
    let n = points.len() / dim;
    let mut shift = vec![0.0; dim];
    let mut scale = vec![0.0; dim];
    for row in points.chunks_exact(dim) {
        for j in 0..dim {
            shift[j] += row[j] / n as f64;
        }
    }
    for row in points.chunks_exact(dim) {
        for j in 0..dim {
            scale[j] += (row[j] - shift[j]).powi(2) / n as f64;
        }
    }
    for s in &mut scale {
        *s = s.sqrt();
        if s.is_nan() || *s <= 1e-12 {
            *s = 1.0;
        }
    }
    Ok(FlowRunConfig {
        kind,
        nhf: recommended_nhf(dim),
        realnvp: RealNvpConfig::new(dim),
        train,
        data,
        shift,
        scale,
    })
}

/// The NHF of a new run: 4 stages of 2 leapfrog steps each, every stage learning its step size
/// (from 0.3), `K_k(p) = ½|p|² + k_θ(p)`, tanh energy networks 56 wide (31 k parameters with
/// the posterior, below RealNVP's 37 k). Chosen by measurement against other sizes and
/// variants at convergence: docs/flow-compare.md.
pub fn recommended_nhf(dim: usize) -> NhfConfig {
    NhfConfig::new(dim)
        .with_stages(4)
        .with_leapfrog_steps(2)
        .with_dt(0.3)
        .with_hidden(56)
        .with_learned_step(true)
        .with_activation(crate::flow::mlp::EnergyActivation::Tanh)
}

/// Reads a user's points: a float64 `.npy` of shape `[N, d]` with finite values.
pub fn read_points(path: &Path) -> Result<(Vec<f64>, usize)> {
    let (shape, values) = read_f64(path)
        .with_context(|| format!("{} is not a float64 .npy array", path.display()))?;
    ensure!(
        shape.len() == 2 && shape[0] >= 2 && shape[1] >= 1,
        "{} has shape {:?}; expected [N, d] with N ≥ 2",
        path.display(),
        shape
    );
    ensure!(
        values.iter().all(|v| v.is_finite()),
        "{} holds NaN or infinite values",
        path.display()
    );
    Ok((values, shape[1]))
}

/// Splits points into a kept part and a held-out tenth (at least one point) after a shuffle
/// seeded by `(seed, stream)`.
fn split_file(points: &[f64], d: usize, seed: u64, stream: Stream) -> (Vec<f64>, Vec<f64>) {
    let n = points.len() / d;
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = stream_rng(seed, stream, 0);
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    let test_n = (n / 10).max(1);
    let rows = |ids: &[usize]| -> Vec<f64> {
        ids.iter()
            .flat_map(|&i| points[i * d..(i + 1) * d].iter().copied())
            .collect()
    };
    (rows(&order[test_n..]), rows(&order[..test_n]))
}

/// Writes `[n × d]` points as a float64 `.npy` through a temporary file.
pub fn write_points(path: &Path, points: &[f64], d: usize) -> Result<()> {
    let tmp = crate::run::fs::temporary_path(path);
    let mut writer = NpyWriter::create(&tmp, Dtype::F64, &[points.len() / d, d])?;
    let result = writer
        .write_f64(points)
        .and_then(|_| writer.finish().map(|_| ()));
    crate::run::fs::finish(result, &tmp, path)
}

/// The points of a flow run.
struct FlowPoints {
    /// The training points of a file run (`None` for a built-in target, which is sampled
    /// afresh every step).
    train: Option<Vec<f64>>,
    /// The held-out points the run keeps in `RUN/test.npy`.
    test: Vec<f64>,
    /// Early stopping's validation points (runs with a patience).
    valid: Option<Vec<f64>>,
}

/// The data of a flow run (see [`FlowPoints`]).
fn flow_points(config: &FlowRunConfig) -> Result<FlowPoints> {
    let d = config.dim();
    let early = config.train.patience.is_some();
    match &config.data {
        FlowData::Target(name) => {
            let mut rng = stream_rng(config.train.seed, Stream::FlowTestPoints, 0);
            let test = targets::sample(name, config.train.test_size, &mut rng)
                .context("unknown target")?;
            let valid = early.then(|| {
                let mut rng = stream_rng(config.train.seed, Stream::FlowValidation, 0);
                targets::sample(name, VALIDATION_DRAWS, &mut rng).expect("a known target")
            });
            Ok(FlowPoints {
                train: None,
                test,
                valid,
            })
        }
        FlowData::File(path) => {
            let (all, file_d) = read_points(path)?;
            ensure!(
                file_d == d,
                "{} has {file_d} columns but the run has {d}",
                path.display()
            );
            let (train, test) = split_file(&all, d, config.train.seed, Stream::FlowFileSplit);
            if !early {
                return Ok(FlowPoints {
                    train: Some(train),
                    test,
                    valid: None,
                });
            }
            ensure!(
                train.len() / d >= 2,
                "{} has too few points to set a validation part aside",
                path.display()
            );
            let (train, valid) = split_file(&train, d, config.train.seed, Stream::FlowValidation);
            Ok(FlowPoints {
                train: Some(train),
                test,
                valid: Some(valid),
            })
        }
    }
}

/// Validation draws of a built-in target for early stopping.
const VALIDATION_DRAWS: usize = 2000;

/// One training batch `[batch_size × d]`: drawn from the target, or rows of the training
/// points drawn with replacement.
fn flow_batch(
    config: &FlowRunConfig,
    train_points: Option<&[f64]>,
    rng: &mut impl Rng,
) -> Result<Vec<f64>> {
    let (b, d) = (config.train.batch_size, config.dim());
    Ok(match (&config.data, train_points) {
        (FlowData::Target(name), _) => targets::sample(name, b, rng).context("unknown target")?,
        (_, Some(train)) => {
            let n = train.len() / d;
            (0..b)
                .flat_map(|_| {
                    let i = rng.random_range(0..n);
                    train[i * d..(i + 1) * d].iter().copied()
                })
                .collect()
        }
        _ => unreachable!("file runs hold their training points"),
    })
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
        let fresh = FlowCheckpointState {
            step: 0,
            seconds: 0.0,
            lr_scale: None,
            early_stop: None,
        };
        return Ok((model, optim, fresh));
    }
    // After a kill during a checkpoint swap the newest complete one is put back first.
    restore_checkpoint(&opts.run)?;
    let (model, optim, state) = restore(&opts.run, model, optim)?;
    RunDir::new(&opts.run).truncate_metrics(state.step)?;
    Ok((model, optim, state))
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

/// Trains (or resumes) a flow: one loop over the steps; [`FlowLoop`] holds what its
/// evaluations, checkpoints and rewinds share.
pub fn train_flow(opts: &FlowTrainOptions) -> Result<FlowTrainSummary> {
    let config_path = opts.run.join("config.json");
    let mut config = if opts.resume {
        FlowRunConfig::load(&opts.run)?
    } else {
        ensure!(
            !config_path.exists(),
            "{} already holds a run; pass --resume to continue it or choose another --run",
            opts.run.display()
        );
        opts.config.clone()
    };
    if let Some(steps) = opts.steps_override {
        config.train.steps = steps;
    }
    validate(&config)?;
    let points = flow_points(&config)?;
    let device = opts.device.device()?;
    device.seed(config.train.seed);
    let train_device = device.clone().autodiff();
    let (mut model, mut optim, resumed) = start_flow(opts, &config, &points.test, &train_device)?;
    write_atomic(
        &config_path,
        &(serde_json::to_string_pretty(&config)? + "\n"),
    )?;
    let start = resumed.step;
    let mut run = FlowLoop {
        opts,
        config: &config,
        metrics: RunDir::new(&opts.run).open_metrics()?,
        seconds_before: resumed.seconds,
        started: Instant::now(),
        lr_scale: resumed.lr_scale.unwrap_or(1.0),
        early_stop: resumed.early_stop,
        test_nll: f64::NAN,
    };

    let total = config.train.steps;
    let bar = opts
        .reporter
        .task("training", "steps", total as u64, start as u64);
    let log_scale = config.log_scale_sum();
    let mut last_log = Instant::now();
    let (mut skipped, mut consecutive_skips) = (0usize, 0usize);
    let mut rewinds = 0;
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
            consecutive_skips = 0;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(config.train.learning_rate * run.lr_scale, model, grads);
        } else {
            // A batch that drives the leapfrog unstable is skipped. Many in a row mean the
            // weights themselves have become unstable: rewind to the last checkpoint with half
            // the learning rate (at most MAX_REWINDS times), then give up.
            skipped += 1;
            consecutive_skips += 1;
            if consecutive_skips >= MAX_CONSECUTIVE_SKIPS {
                ensure!(
                    rewinds < MAX_REWINDS && crate::run::find_checkpoint(&opts.run).is_some(),
                    "the loss was {value} for {MAX_CONSECUTIVE_SKIPS} batches in a row, the last at step {step}; stopped. The last good checkpoint in {} is intact",
                    opts.run.join("checkpoint").display()
                );
                rewinds += 1;
                let back;
                (model, optim, back) = run.rewind(model, optim, step, value)?;
                step = back;
                consecutive_skips = 0;
                bar.set_position(step as u64);
                continue;
            }
        }
        let done = step + 1;
        bar.set_position(done as u64);
        if value.is_finite() && (step % config.train.log_every == 0 || done == total) {
            let elapsed = last_log.elapsed().as_secs_f64();
            last_log = Instant::now();
            let rate = if step == start {
                0.0
            } else {
                config.train.log_every as f64 / elapsed
            };
            bar.status(&format!("nll {value:.3}  {rate:.1} steps/s"));
            run.write_line(&FlowMetricsLine {
                step: done,
                kind: "train".into(),
                nll: value,
                steps_per_second: Some(rate),
                skipped: Some(skipped),
                valid_nll: None,
                seconds: None,
            })?;
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
    /// Factor on the learning rate (halved by rewinds and by plateaus).
    lr_scale: f64,
    early_stop: Option<EarlyStop>,
    /// The held-out NLL of the last evaluation.
    test_nll: f64,
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

fn validate(config: &FlowRunConfig) -> Result<()> {
    let t = &config.train;
    ensure!(t.steps >= 1, "train.steps must be at least 1");
    ensure!(t.batch_size >= 1, "train.batch_size must be at least 1");
    ensure!(
        t.learning_rate.is_finite() && t.learning_rate > 0.0,
        "train.learning_rate must be positive"
    );
    ensure!(
        t.log_every >= 1 && t.eval_every >= 1,
        "train.log_every and train.eval_every must be at least 1"
    );
    ensure!(t.test_size >= 1, "train.test_size must be at least 1");
    ensure!(t.iw_samples >= 1, "train.iw_samples must be at least 1");
    ensure!(
        t.objective_samples >= 1,
        "train.objective_samples must be at least 1"
    );
    ensure!(
        t.patience != Some(0),
        "train.patience must be at least 1 (or absent)"
    );
    ensure!(
        t.clip_norm.is_finite() && t.clip_norm > 0.0,
        "train.clip_norm must be positive"
    );
    let d = config.dim();
    ensure!(
        d >= 1 && config.scale.len() == d,
        "the run's shift and scale disagree"
    );
    match config.kind {
        FlowKind::Nhf => {
            let n = &config.nhf;
            ensure!(n.dim == d, "nhf.dim must equal the data dimension {d}");
            ensure!(
                n.stages >= 1 && n.leapfrog_steps >= 1,
                "nhf.stages and nhf.leapfrog_steps must be at least 1"
            );
            ensure!(
                n.dt.is_finite() && n.dt > 0.0,
                "nhf.dt must be a positive number"
            );
            ensure!(
                n.hidden >= 1 && n.depth >= 1,
                "nhf widths must be at least 1"
            );
            ensure!(
                n.quadratic_kinetic || n.learned_kinetic,
                "nhf needs a kinetic energy: quadratic_kinetic, learned_kinetic or both"
            );
        }
        FlowKind::Realnvp => {
            let r = &config.realnvp;
            ensure!(r.dim == d, "realnvp.dim must equal the data dimension {d}");
            ensure!(
                d >= 2,
                "RealNVP needs at least 2 dimensions (the data has {d})"
            );
            ensure!(
                r.couplings >= 1 && r.hidden >= 1 && r.depth >= 1,
                "realnvp sizes must be at least 1"
            );
        }
    }
    Ok(())
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

/// The newest complete checkpoint folder of a flow run and its step.
fn newest_checkpoint(run: &Path) -> Result<(PathBuf, usize)> {
    crate::run::find_checkpoint(run)
        .with_context(|| format!("{} has no checkpoint yet", run.display()))
}

/// A tensor's values as f64.
pub(crate) fn to_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("float tensor data")
}

/// A trained flow with its configuration and training bookkeeping.
pub struct LoadedFlow {
    /// The configuration.
    pub config: FlowRunConfig,
    /// The network.
    pub model: FlowNet,
    /// Steps trained.
    pub step: usize,
    /// Seconds of training.
    pub seconds: f64,
    /// Early stopping's state (runs with a patience).
    pub early_stop: Option<EarlyStop>,
}

/// Early stopping's state in a flow run's newest complete checkpoint (`None` without a
/// patience).
pub fn early_stop_of(run: &Path) -> Result<Option<EarlyStop>> {
    let (dir, _) = newest_checkpoint(run)?;
    let state: FlowCheckpointState = crate::run::read_state(&dir)?;
    Ok(state.early_stop)
}

/// Loads a flow run onto `device`.
pub fn load_flow(run: &Path, device: &Device) -> Result<LoadedFlow> {
    let config = FlowRunConfig::load(run)?;
    validate(&config)?;
    let (dir, _) = newest_checkpoint(run)?;
    let model = crate::run::load_weights(&dir, FlowNet::init(&config, device))?;
    let state: FlowCheckpointState = crate::run::read_state(&dir)?;
    Ok(LoadedFlow {
        config,
        model,
        step: state.step,
        seconds: state.seconds,
        early_stop: state.early_stop,
    })
}

/// Log-likelihoods (nats, original coordinates) of row-major `points`, and for the NHF the
/// one-sample ELBOs (for RealNVP the same exact values). The NHF's likelihood is the
/// importance-weighted estimate with `samples` posterior draws (seeded: [`Stream::FlowEvalNoise`], index = chunk).
pub fn log_likelihoods(
    model: &FlowNet,
    config: &FlowRunConfig,
    points: &[f64],
    samples: usize,
    device: &Device,
) -> (Vec<f64>, Vec<f64>) {
    let d = config.dim();
    let n = points.len() / d;
    let log_scale = config.log_scale_sum();
    let (mut ll, mut elbo) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let s = if model.nhf.is_some() {
        samples.max(1)
    } else {
        1
    };
    let chunk = (8192 / s).max(1);
    for (c, start) in (0..n).step_by(chunk).enumerate() {
        let m = chunk.min(n - start);
        let rows = config.standardise(&points[start * d..(start + m) * d]);
        // Repeat the chunk s times: [s·m, d], sample-major.
        let tiled: Vec<f32> = (0..s).flat_map(|_| rows.iter().copied()).collect();
        let x = Tensor::<2>::from_data(TensorData::new(tiled, [s * m, d]), device);
        let mut rng = stream_rng(0, Stream::FlowEvalNoise, c as u64);
        let noise: Vec<f32> = (0..s * m * d)
            .map(|_| standard_normal(&mut rng) as f32)
            .collect();
        let eps = Tensor::<2>::from_data(TensorData::new(noise, [s * m, d]), device);
        let w = to_f64(model.objective(x, eps));
        for i in 0..m {
            let ws: Vec<f64> = (0..s).map(|k| w[k * m + i]).collect();
            let max = ws.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = if max.is_finite() {
                max + (ws.iter().map(|v| (v - max).exp()).sum::<f64>() / s as f64).ln()
            } else {
                max
            };
            ll.push(lse - log_scale);
            elbo.push(crate::metrics::mean(&ws) - log_scale);
        }
    }
    (ll, elbo)
}

/// `count` samples in original coordinates (row-major `[count × d]`), seeded.
pub fn draw_samples(
    model: &FlowNet,
    config: &FlowRunConfig,
    count: usize,
    seed: u64,
    device: &Device,
) -> Vec<f64> {
    let d = config.dim();
    let base = model.base_dim(d);
    let mut out = Vec::with_capacity(count * d);
    let mut rng = stream_rng(seed, Stream::FlowSamples, 0);
    for start in (0..count).step_by(8192) {
        let m = 8192.min(count - start);
        let noise: Vec<f32> = (0..m * base)
            .map(|_| standard_normal(&mut rng) as f32)
            .collect();
        let z = Tensor::<2>::from_data(TensorData::new(noise, [m, base]), device);
        let x = model.sample(z, d);
        let values: Vec<f32> = to_f64(x).into_iter().map(|v| v as f32).collect();
        out.extend(config.unstandardise(&values));
    }
    out
}

/// What `hgn flow eval` reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlowEvalReport {
    /// The run.
    pub run: PathBuf,
    /// `nhf` or `realnvp`.
    pub model: String,
    /// The data trained on.
    pub data: FlowData,
    /// The points evaluated (the run's held-out split unless a file was given).
    pub eval_data: PathBuf,
    /// Points evaluated.
    pub points: usize,
    /// Test negative log-likelihood, nats per point (NHF: importance-weighted estimate).
    pub test_nll: f64,
    /// Half-width of its 95 % t interval over points.
    pub test_nll_ci95: Option<f64>,
    /// Negative ELBO (NHF; a bound above the NLL), equal to the NLL for RealNVP.
    pub test_nll_bound: f64,
    /// NLL of the Gaussian with the training data's mean and per-coordinate std (the flow at
    /// identity).
    pub gaussian_baseline_nll: f64,
    /// Importance samples per point (1 for RealNVP).
    pub iw_samples: usize,
    /// Trainable parameters.
    pub parameters: usize,
    /// Steps trained.
    pub steps: usize,
    /// Seconds of training.
    pub train_seconds: f64,
    /// Samples drawn per second (100,000 draws).
    pub samples_per_second: f64,
    /// NLL of the target's own density (the `gaussian` target only).
    pub true_nll: Option<f64>,
    /// Early stopping's state at the end of training (runs with a patience).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStop>,
}

/// Evaluates a flow run on its held-out points or on `data`.
pub fn evaluate_flow(
    run: &Path,
    data: Option<&Path>,
    samples: Option<usize>,
) -> Result<FlowEvalReport> {
    let device = DeviceChoice::Cpu.device()?;
    let flow = load_flow(run, &device)?;
    let config = &flow.config;
    let d = config.dim();
    let eval_path = data
        .map(Path::to_path_buf)
        .unwrap_or_else(|| run.join("test.npy"));
    let (points, file_d) = read_points(&eval_path)?;
    ensure!(
        file_d == d,
        "{} has {file_d} columns but the flow models {d}",
        eval_path.display()
    );
    let s = samples.unwrap_or(config.train.iw_samples);
    ensure!(s >= 1, "--samples must be at least 1");
    let (ll, elbo) = log_likelihoods(&flow.model, config, &points, s, &device);
    let nll: Vec<f64> = ll.iter().map(|v| -v).collect();
    let (test_nll, ci) = crate::metrics::mean_with_ci95(&nll);
    let baseline: Vec<f64> = points
        .chunks_exact(d)
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(j, v)| {
                    let z = (v - config.shift[j]) / config.scale[j];
                    0.5 * z * z + 0.5 * LN_2PI + config.scale[j].ln()
                })
                .sum()
        })
        .collect();
    let started = Instant::now();
    let drawn = draw_samples(&flow.model, config, 100_000, 0, &device);
    let seconds = started.elapsed().as_secs_f64();
    let true_nll = match &config.data {
        FlowData::Target(name) if name == "gaussian" && d == 2 => Some(-crate::metrics::mean(
            &points
                .chunks_exact(2)
                .map(|p| targets::gaussian_log_density([p[0], p[1]]))
                .collect::<Vec<_>>(),
        )),
        _ => None,
    };
    Ok(FlowEvalReport {
        run: run.to_path_buf(),
        model: config.kind.name().into(),
        data: config.data.clone(),
        eval_data: eval_path,
        points: nll.len(),
        test_nll,
        test_nll_ci95: ci.is_finite().then_some(ci),
        test_nll_bound: -crate::metrics::mean(&elbo),
        gaussian_baseline_nll: crate::metrics::mean(&baseline),
        iw_samples: if config.kind == FlowKind::Nhf { s } else { 1 },
        parameters: flow.model.num_params(),
        steps: flow.step,
        train_seconds: flow.seconds,
        samples_per_second: (drawn.len() / d) as f64 / seconds.max(1e-9),
        true_nll,
        early_stop: flow.early_stop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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

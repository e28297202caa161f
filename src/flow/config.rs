//! A flow run's configuration (`RUN/config.json`): which flow, which points, how it trains, and
//! the settings a new run starts from.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::config::Config;
use serde::{Deserialize, Serialize};

use super::nhf::NhfConfig;
use super::points::{read_points, split_file};
use super::realnvp::RealNvpConfig;
use super::targets;
use crate::check;
use crate::rng::{Stream, stream_rng};

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
    /// on the importance-weighted bound (see [`crate::flow::net::FlowNet::training_objective`]).
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
        let added: [(&str, &str, Value); 7] = [
            ("nhf", "learned_kinetic", json!(true)),
            ("nhf", "learned_step", json!(false)),
            ("nhf", "activation", json!("softplus")),
            ("nhf", "posterior_couplings", json!(0)),
            ("nhf", "posterior_coupling_hidden", json!(32)),
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
/// (from 0.3), `K_k(p) = ½|p|² + k_θ(p)`, tanh energy networks 56 wide, and a momentum posterior
/// of a diagonal Gaussian followed by 2 affine couplings conditioned on `q` (34 k parameters,
/// below RealNVP's 37 k). Chosen by measurement against other sizes and variants at
/// convergence: docs/flow-compare.md.
pub fn recommended_nhf(dim: usize) -> NhfConfig {
    NhfConfig::new(dim)
        .with_stages(4)
        .with_leapfrog_steps(2)
        .with_dt(0.3)
        .with_hidden(56)
        .with_learned_step(true)
        .with_activation(crate::flow::mlp::EnergyActivation::Tanh)
        .with_posterior_couplings(2)
}

pub(crate) fn validate(config: &FlowRunConfig) -> Result<()> {
    let t = &config.train;
    check::at_least_one(&[
        ("train.steps", t.steps),
        ("train.batch_size", t.batch_size),
        ("train.log_every", t.log_every),
        ("train.eval_every", t.eval_every),
        ("train.test_size", t.test_size),
        ("train.iw_samples", t.iw_samples),
        ("train.objective_samples", t.objective_samples),
    ])?;
    check::positive("train.learning_rate", t.learning_rate)?;
    check::positive("train.clip_norm", t.clip_norm)?;
    ensure!(
        t.patience != Some(0),
        "train.patience must be at least 1 (or absent)"
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
            check::at_least_one(&[
                ("nhf.stages", n.stages),
                ("nhf.leapfrog_steps", n.leapfrog_steps),
                ("nhf.hidden", n.hidden),
                ("nhf.depth", n.depth),
            ])?;
            check::positive("nhf.dt", n.dt)?;
            ensure!(
                n.posterior_couplings == 0 || n.posterior_coupling_hidden >= 1,
                "nhf.posterior_coupling_hidden must be at least 1"
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
            check::at_least_one(&[
                ("realnvp.couplings", r.couplings),
                ("realnvp.hidden", r.hidden),
                ("realnvp.depth", r.depth),
            ])?;
        }
    }
    Ok(())
}

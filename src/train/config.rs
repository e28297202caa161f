//! A run's configuration: the optimisation settings ([`TrainConfig`]), the learning-rate
//! schedule, and [`RunConfig`] (model, objective, optimisation, data and protocol), with the
//! named presets and their validation. Saved as `RUN/config.json` before step 0.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::check;
use crate::model::{HgnConfig, Objective};
use crate::protocol::{Protocol, Window};
/// Optimisation settings.
#[derive(Config, Debug, PartialEq)]
pub struct TrainConfig {
    /// Adam learning rate (paper, DeepMind and CampusAI: 1.5e-4).
    #[config(default = 1.5e-4)]
    pub learning_rate: f64,
    /// Sequences per batch (paper/CampusAI: 16).
    #[config(default = 16)]
    pub batch_size: usize,
    /// Total optimisation steps.
    #[config(default = 2000)]
    pub steps: usize,
    /// Steps between metric lines.
    #[config(default = 10)]
    pub log_every: usize,
    /// Steps between test-set evaluations.
    #[config(default = 200)]
    pub eval_every: usize,
    /// Test sequences used by each evaluation.
    #[config(default = 64)]
    pub eval_sequences: usize,
    /// Steps between checkpoints.
    #[config(default = 200)]
    pub checkpoint_every: usize,
    /// Seed of the initial weights and of every batch and noise draw.
    #[config(default = 0)]
    pub seed: u64,
    /// Decode and score only this many randomly chosen frames of each training rollout
    /// (an unbiased estimate of the full reconstruction loss at a fraction of the decoder's
    /// cost); `None` decodes every frame. Evaluation always decodes every frame.
    #[config(default = "None")]
    pub decoded_frames: Option<usize>,
    /// Rollout curriculum: the rollout trained on grows linearly from 1 step to the model's
    /// `rollout_steps` over this many optimisation steps (`None`: full length from step 0).
    /// Short early rollouts let encoder and decoder learn the frames before the dynamics.
    #[config(default = "None")]
    pub curriculum_steps: Option<usize>,
    /// Train both directions of time: each step, with probability ½ drawn from the step's
    /// stream, the state is inferred at the window's last frame from the `K` frames ending there
    /// and rolled out with `−dt` onto the frames before it (what `hgn eval` and
    /// `hgn rollout --backward` ask of the model); otherwise forward as usual.
    #[config(default = false)]
    pub bidirectional: bool,
    /// Learning-rate schedule over the run's `steps`; `None` (or absent, as in configs written
    /// before it existed) is constant.
    #[config(default = "None")]
    pub lr_schedule: Option<LrSchedule>,
}

/// How the learning rate moves over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// `learning_rate` throughout (the paper, DeepMind and CampusAI).
    #[default]
    Constant,
    /// Half a cosine from `learning_rate` at step 0 down to 1 % of it at the last step.
    /// `--resume --steps N` follows the curve of the new total `N` from the resumed step on
    /// (so the rate rises to that curve's value there when `N` is larger).
    Cosine,
    /// `learning_rate` until the last fifth of the steps, then a tenth of it: a constant
    /// rate's fast progress, then the precision Adam's step noise at that rate withholds.
    /// The drop's step is a fraction of `steps`, so `--resume --steps N` moves it.
    Drop,
}

impl LrSchedule {
    /// The names in `config.json` and `--lr-schedule`.
    pub const NAMES: [&str; 3] = ["constant", "cosine", "drop"];

    /// [`LrSchedule::Drop`]: the fraction of the steps, at the end, trained at the lower rate.
    pub const DROP_FRACTION: f64 = 0.2;
    /// [`LrSchedule::Drop`]: the lower rate as a fraction of `learning_rate`.
    pub const DROP_FACTOR: f64 = 0.1;
}

impl std::str::FromStr for LrSchedule {
    type Err = anyhow::Error;

    /// A schedule by the name it has in `config.json` (any case).
    fn from_str(name: &str) -> Result<Self> {
        serde_json::from_value(serde_json::Value::String(name.to_ascii_lowercase())).map_err(|_| {
            anyhow::anyhow!(
                "unknown learning-rate schedule '{name}' (known: {})",
                Self::NAMES.join(", ")
            )
        })
    }
}

impl TrainConfig {
    /// The learning rate of optimisation step `step`.
    pub fn lr_at(&self, step: usize) -> f64 {
        match self.lr_schedule.unwrap_or_default() {
            LrSchedule::Constant => self.learning_rate,
            LrSchedule::Cosine => {
                let progress = step as f64 / self.steps.saturating_sub(1).max(1) as f64;
                let floor = 0.01;
                let shape = 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos());
                self.learning_rate * (floor + (1.0 - floor) * shape)
            }
            LrSchedule::Drop => {
                let from = self.steps as f64 * (1.0 - LrSchedule::DROP_FRACTION);
                if step as f64 >= from.round() {
                    self.learning_rate * LrSchedule::DROP_FACTOR
                } else {
                    self.learning_rate
                }
            }
        }
    }

    /// Rollout steps trained on at optimisation step `step` for a model of `full` steps.
    pub fn rollout_at(&self, step: usize, full: usize) -> usize {
        match self.curriculum_steps {
            Some(c) if c > 0 && step < c && full > 1 => (1 + (full - 1) * step / c).clamp(1, full),
            _ => full,
        }
    }
}

/// Everything that defines a run; saved as `RUN/config.json` before step 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The preset the run started from (informational).
    pub preset: String,
    /// The model.
    pub model: HgnConfig,
    /// The objective.
    pub objective: Objective,
    /// The optimisation.
    pub train: TrainConfig,
    /// The dataset the run was trained on (recorded by `hgn train`).
    #[serde(default)]
    pub data: Option<PathBuf>,
    /// The window protocol (reference D3); absent in configs written before it existed, which
    /// were all `forecast`.
    #[serde(default)]
    pub protocol: Protocol,
}

/// The names [`RunConfig::preset`] knows.
pub const PRESETS: [&str; 4] = ["vector", "tiny", "paper", "campusai"];

impl RunConfig {
    /// A named preset: `vector` (the quick start: see [`HgnConfig::vector`]; Adam 1e-3, 6,000
    /// steps, the last 1,200 at 1e-4 ([`LrSchedule::Drop`]), the rollout grown from 1 to 29
    /// steps over the first 2,500, 4 decoded frames per rollout, both directions of time),
    /// `tiny` (4×4 latent maps, see [`HgnConfig::tiny`], 10-frame rollouts from the start, 2,400
    /// steps at a constant 1e-3, otherwise as `vector`; the networks `hgn table1` trains at its
    /// CPU scales), `paper` (DeepMind's `hgn_paper_config` architecture, GECO κ = 1e-3, Adam
    /// 1.5e-4, batch 16, and DeepMind's `reconstruct` protocol on 31-frame windows) or
    /// `campusai` (the CampusAI/ReScience layout, same objective and optimiser). All but `paper`
    /// use the `forecast` protocol.
    pub fn preset(name: &str) -> Result<Self> {
        let mut protocol = Protocol::Forecast;
        let (model, train) = match name {
            "paper" => {
                protocol = Protocol::Reconstruct;
                (
                    HgnConfig::paper()
                        .with_num_inference_frames(31)
                        .with_rollout_steps(30),
                    TrainConfig::new(),
                )
            }
            "campusai" => (HgnConfig::campusai(), TrainConfig::new()),
            // About 8 minutes on 2 cores (≈ 5 steps/s). Decoding 4 of the 10 rollout frames
            // (an unbiased estimate of the loss) doubles the steps that fit; both directions of
            // time make backward rollouts work at no cost to the forward error.
            "tiny" => (
                HgnConfig::tiny(),
                TrainConfig::new()
                    .with_learning_rate(1e-3)
                    .with_steps(2400)
                    .with_decoded_frames(Some(4))
                    .with_bidirectional(true),
            ),
            // The quick start: `tiny` with a vector state (see [`HgnConfig::vector`]), sized to
            // train in under 10 minutes on 2 cores; the curriculum lets encoder and decoder
            // learn the frames before the dynamics carry them 29 steps, and the last fifth at a
            // tenth of the rate removes Adam's step noise.
            "vector" => (
                HgnConfig::vector(),
                TrainConfig::new()
                    .with_learning_rate(1e-3)
                    .with_lr_schedule(Some(LrSchedule::Drop))
                    .with_steps(6000)
                    .with_curriculum_steps(Some(2500))
                    .with_decoded_frames(Some(4))
                    .with_bidirectional(true),
            ),
            other => bail!("unknown preset '{other}' (known: {})", PRESETS.join(", ")),
        };
        Ok(Self {
            preset: name.to_string(),
            model,
            objective: Objective::default(),
            train,
            data: None,
            protocol,
        })
    }

    /// The training window of this run's model under its protocol.
    pub fn window(&self) -> Window {
        Window {
            protocol: self.protocol,
            inference_frames: self.model.num_inference_frames,
            rollout_steps: self.model.rollout_steps,
        }
    }

    /// The preset `hgn train` uses when none is named, for a dataset whose states have
    /// `coordinates` phase-space coordinates (`q` and `p` together): `vector` for a system with
    /// one degree of freedom (the pendulum, the mass-spring), whose 2-vector state measured best
    /// on the pendulum; `tiny` otherwise (its 4×4 latent maps hold several bodies; a 4-vector
    /// state on the pendulum left the region its decoder had learned within 60 steps).
    pub fn default_preset(coordinates: usize) -> &'static str {
        if coordinates <= 2 { "vector" } else { "tiny" }
    }

    /// Reads a config file written by `hgn train` (or by hand in the same format).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is not a valid run config: {e}", path.display()))
    }

    /// Checks every setting.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        self.window().validate()?;
        let t = &self.train;
        ensure!(
            !(t.bidirectional && self.protocol == Protocol::Reconstruct),
            "train.bidirectional needs the forecast protocol (reconstruct always rolls backward)"
        );
        check::at_least_one(&[
            ("train.batch_size", t.batch_size),
            ("train.steps", t.steps),
            ("train.log_every", t.log_every),
            ("train.eval_every", t.eval_every),
            ("train.checkpoint_every", t.checkpoint_every),
            ("train.eval_sequences", t.eval_sequences),
        ])?;
        check::positive("train.learning_rate", t.learning_rate)?;
        ensure!(
            t.decoded_frames != Some(0),
            "train.decoded_frames must be at least 1 (or null for all)"
        );
        match self.objective {
            Objective::Geco { kappa } => ensure!(
                kappa.is_finite() && kappa >= 0.0,
                "objective.kappa must be a non-negative number (got {kappa})"
            ),
            Objective::Elbo { beta } => ensure!(
                beta.is_finite() && beta >= 0.0,
                "objective.beta must be a non-negative number (got {beta})"
            ),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;

    use super::*;

    #[test]
    fn every_listed_preset_and_schedule_name_is_known() {
        for name in PRESETS {
            assert_eq!(RunConfig::preset(name).unwrap().preset, name);
        }
        for name in LrSchedule::NAMES {
            let schedule: LrSchedule = name.parse().unwrap();
            assert_eq!(serde_json::to_value(schedule).unwrap(), name);
        }
    }

    #[test]
    fn one_degree_of_freedom_defaults_to_the_vector_preset() {
        assert_eq!(RunConfig::default_preset(2), "vector");
        assert_eq!(RunConfig::default_preset(8), "tiny");
        assert_eq!(
            RunConfig::preset("vector").unwrap().model.latent_dim,
            Some(2)
        );
        assert_eq!(RunConfig::preset("tiny").unwrap().model.latent_dim, None);
    }

    #[test]
    fn cosine_schedule_falls_from_the_learning_rate_to_one_percent() {
        let constant = TrainConfig::new().with_learning_rate(1e-3).with_steps(101);
        assert_eq!(constant.lr_at(0), 1e-3);
        assert_eq!(constant.lr_at(100), 1e-3);
        let cosine = constant.with_lr_schedule(Some(LrSchedule::Cosine));
        assert!((cosine.lr_at(0) - 1e-3).abs() < 1e-15);
        // Halfway: the mean of the start and the 1 % floor.
        assert!((cosine.lr_at(50) - 0.5 * (1e-3 + 1e-5)).abs() < 1e-12);
        assert!((cosine.lr_at(100) - 1e-5).abs() < 1e-15);
        assert!((1..=100).all(|s| cosine.lr_at(s) < cosine.lr_at(s - 1)));
        assert!(
            (cosine.lr_at(150) - 1e-5).abs() < 1e-15,
            "past the end: the floor"
        );
        let json = serde_json::to_string(&cosine).unwrap();
        assert!(json.contains(r#""lr_schedule":"cosine""#), "{json}");
        // A config written before the schedule existed loads as constant.
        let old = json.replace(r#","lr_schedule":"cosine""#, "");
        let loaded: TrainConfig = serde_json::from_str(&old).unwrap();
        assert_eq!(loaded.lr_schedule, None);
        assert_eq!("Cosine".parse::<LrSchedule>().unwrap(), LrSchedule::Cosine);
        assert!("step".parse::<LrSchedule>().is_err());
    }

    #[test]
    fn drop_schedule_keeps_the_rate_then_a_tenth_for_the_last_fifth() {
        let drop = TrainConfig::new()
            .with_learning_rate(1e-3)
            .with_steps(3000)
            .with_lr_schedule(Some(LrSchedule::Drop));
        assert_eq!(drop.lr_at(0), 1e-3);
        assert_eq!(drop.lr_at(2399), 1e-3);
        assert!((drop.lr_at(2400) - 1e-4).abs() < 1e-18);
        assert!((drop.lr_at(2999) - 1e-4).abs() < 1e-18);
        assert_eq!("Drop".parse::<LrSchedule>().unwrap(), LrSchedule::Drop);
        let json = serde_json::to_string(&drop).unwrap();
        assert!(json.contains(r#""lr_schedule":"drop""#), "{json}");
    }

    #[test]
    fn encoder_choices_round_trip_and_older_configs_load_with_deepminds_encoder() {
        let mut config = RunConfig::preset("tiny").unwrap();
        config.model.encoder_input = Some(crate::model::EncoderInput::PerFrame);
        config.model.encoder_hidden = Some(64);
        let json = serde_json::to_string(&config).unwrap();
        assert!(json.contains(r#""encoder_input":"per-frame""#), "{json}");
        let back: RunConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
        let old = json
            .replace(r#""encoder_input":"per-frame","#, "")
            .replace(r#""encoder_hidden":64,"#, "");
        assert_ne!(old, json);
        let loaded: RunConfig = serde_json::from_str(&old).unwrap();
        assert_eq!(loaded.model.encoder_input, None);
        assert_eq!(loaded.model.encoder_hidden, None);
        assert_eq!(loaded.model.init(&Device::flex()).encoder.per_frame, None);
        assert!(
            config
                .model
                .init(&Device::flex())
                .encoder
                .per_frame
                .is_some()
        );
        // Every choice by its name, in configs and on the command line; the coordinates variant
        // is a per-frame encoder with two more input channels per frame.
        for input in crate::model::EncoderInput::ALL {
            let json = serde_json::to_string(&input).unwrap();
            assert_eq!(json, format!("\"{}\"", input.name()));
            assert_eq!(
                input
                    .name()
                    .to_uppercase()
                    .parse::<crate::model::EncoderInput>()
                    .unwrap(),
                input
            );
            let mut with = config.clone();
            with.model.encoder_input = Some(input);
            let encoder = with.model.init(&Device::flex()).encoder;
            assert_eq!(encoder.per_frame.is_some(), input.per_frame(), "{json}");
            let coords = input == crate::model::EncoderInput::PerFrameCoords;
            assert_eq!(encoder.coordinates, coords, "{json}");
            let channels_in = match input {
                crate::model::EncoderInput::Stacked => 3 * with.model.num_inference_frames,
                crate::model::EncoderInput::PerFrame => 3,
                crate::model::EncoderInput::PerFrameCoords => 5,
            };
            assert_eq!(encoder.layers[0].weight.dims()[1], channels_in, "{json}");
        }
        let err = "per-frame-xy"
            .parse::<crate::model::EncoderInput>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("known: stacked, per-frame, per-frame-coords"),
            "{err}"
        );
        // CampusAI's stride-1 encoder has no per-frame form.
        let mut campusai = RunConfig::preset("campusai").unwrap().model;
        campusai.encoder_input = Some(crate::model::EncoderInput::PerFrame);
        let err = campusai.validate().unwrap_err().to_string();
        assert!(err.contains("per-frame needs the paper layout"), "{err}");
        campusai.encoder_input = Some(crate::model::EncoderInput::PerFrameCoords);
        let err = campusai.validate().unwrap_err().to_string();
        assert!(
            err.contains("per-frame-coords needs the paper layout"),
            "{err}"
        );
        campusai.encoder_hidden = Some(1);
        campusai.encoder_input = None;
        assert!(campusai.validate().is_err(), "an encoder 1 channel wide");
    }
}

//! `hgn train`: its flags, and how they make or continue a run's config.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use super::*;
use hgn::data::{GenerateOptions, generate};
use hgn::physics::find_system;

/// Flags of `hgn train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Dataset folder [default: data/pendulum, generated if missing; with --resume, the run's].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run folder for config.json, metrics.jsonl and the checkpoint [default: runs/DATA-PRESET,
    /// or runs/DATA-PRESET-N if that exists].
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Model preset: vector (small networks, a 2-vector state), tiny (the same networks with
    /// 4×4 latent maps), paper (DeepMind's hgn_paper_config) or campusai (the CampusAI/ReScience
    /// layout) [default: vector for a system with one degree of freedom, such as the pendulum;
    /// tiny otherwise].
    #[arg(long, value_parser = super::preset_choices())]
    pub preset: Option<String>,
    /// A run config file (JSON, as written to RUN/config.json) instead of a preset.
    #[arg(long, conflicts_with = "preset")]
    pub config: Option<PathBuf>,
    /// Optimisation steps [default: the preset's].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Sequences per batch [default: 16].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed of the weights, batches and noise [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Adam learning rate [default: the preset's; 1.5e-4 for paper].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule: constant, cosine (from --lr down to 1 % of it at the last
    /// step), or drop (--lr, then a tenth of it for the last fifth of the steps) [default:
    /// the preset's (drop for vector, constant for the others), or a --config file's
    /// `train.lr_schedule`].
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(hgn::train::LrSchedule::NAMES))]
    pub lr_schedule: Option<String>,
    /// Latent integrator.
    #[arg(long, value_parser = super::integrator_choices())]
    pub integrator: Option<String>,
    /// Rollout curriculum: grow the trained rollout from 1 step to the full length over this
    /// many steps [default: the preset's; 0 turns it off].
    #[arg(long)]
    pub curriculum: Option<usize>,
    /// Rollout steps after the inferred state [default: the preset's; under reconstruct,
    /// --inference-frames − 1].
    #[arg(long)]
    pub rollout_steps: Option<usize>,
    /// Window protocol: forecast (K frames in, roll forward) or reconstruct (the whole window in,
    /// state at its last frame, roll backward over it; the paper's Table 1) [default: the
    /// preset's: reconstruct for paper, forecast for the others].
    #[arg(long, value_parser = super::protocol_choices())]
    pub protocol: Option<String>,
    /// Frames the encoder sees (K; under reconstruct the whole window) [default: the preset's].
    #[arg(long)]
    pub inference_frames: Option<usize>,
    /// Train both directions of time: half the steps infer the state at a window's last frame
    /// and integrate backward [default: the preset's: on for vector and tiny; off elsewhere, and a
    /// --config file's `train.bidirectional` turns it off].
    #[arg(long)]
    pub bidirectional: bool,
    /// Make q and p vectors of this many dimensions, with MLP energies, instead of latent maps
    /// [default: the preset's: 2 for vector, latent maps for the others].
    #[arg(long)]
    pub latent_dim: Option<usize>,
    /// How the encoder takes the inference frames: stacked (all frames into its first
    /// convolution, DeepMind's encoder), per-frame (each frame through the same convolutions,
    /// combined by the last) or per-frame-coords (as per-frame, each frame with two channels of
    /// pixel coordinates) [default: stacked].
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(hgn::model::EncoderInput::ALL.map(|e| e.name())))]
    pub encoder_input: Option<String>,
    /// Hidden channels of the encoder alone [default: the preset's width, as the other networks].
    #[arg(long)]
    pub encoder_hidden: Option<usize>,
    /// The paper's "deterministic" ablation: z = encoder mean, no KL.
    #[arg(long, conflicts_with = "variational")]
    pub deterministic: bool,
    /// Sample z from the encoder's posterior and pay a KL (the paper's HGN) [default: the
    /// preset's: on for paper and campusai, off for vector and tiny].
    #[arg(long)]
    pub variational: bool,
    /// Weigh the KL by this fixed β (loss = MSE + β·KL) instead of balancing it with GECO
    /// (ReScience trained its Table 1 with β = 0.01) [default: GECO, κ = 1e-3].
    #[arg(long)]
    pub beta: Option<f64>,
    /// The paper's "no f_ψ" ablation: the encoder output is split into q and p directly.
    #[arg(long)]
    pub no_f_psi: bool,
    /// Device: cpu, wgpu or vulkan (wgpu:N, vulkan:N: device N) (GPU devices need --features gpu).
    #[arg(long, default_value = "cpu")]
    pub device: hgn::device::DeviceChoice,
    /// Continue the run in --run from its checkpoint (with --steps: up to that many steps).
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run_train(args: TrainArgs) -> Result<()> {
    use hgn::train::{TrainOptions, train};
    let default_data = PathBuf::from(DEFAULT_DATA);
    let (data, config) = if args.resume {
        resumed_config(&args)?
    } else {
        let data = args.data.clone().unwrap_or_else(|| default_data.clone());
        let config = new_config(&args, &data)?;
        (data, config)
    };
    if !data.join(hgn::data::format::META_FILE).exists() && !args.resume {
        anyhow::ensure!(
            data == default_data,
            "{} is not a dataset (no meta.json); create one with hgn generate --out {}",
            data.display(),
            data.display()
        );
        eprintln!(
            "no dataset at {}: generating the default pendulum dataset first",
            data.display()
        );
        let mut opts =
            GenerateOptions::new(find_system("pendulum").expect("built in"), data.clone());
        opts.reporter = stderr_reporter(args.quiet);
        generate(&opts)?;
    }
    let run = match &args.run {
        Some(run) => run.clone(),
        None => default_run_folder(&data, &config.preset),
    };
    let opts = TrainOptions {
        data,
        run: run.clone(),
        config,
        device: args.device,
        resume: args.resume,
        steps_override: if args.resume { args.steps } else { None },
        reporter: stderr_reporter(args.quiet),
    };
    let summary = train(&opts)?;
    let ratio = summary.baseline_mse / summary.test_mse;
    let comparison = if ratio >= 1.0 {
        format!("{ratio:.1}× lower")
    } else {
        format!("{:.1}× higher: train longer", 1.0 / ratio)
    };
    println!(
        "trained {} steps in {:.0} s; test pixel MSE {:.3e} vs mean-frame baseline {:.3e} ({comparison}); run: {}",
        summary.steps,
        summary.seconds,
        summary.test_mse,
        summary.baseline_mse,
        run.display()
    );
    if !args.quiet {
        let r = run.display();
        eprintln!(
            "next: hgn eval --run {r}; hgn rollout --run {r} --out rollout.gif; hgn plot --run {r}"
        );
    }
    Ok(())
}

/// The dataset `hgn train` uses (and generates) when `--data` is not given.
const DEFAULT_DATA: &str = "data/pendulum";

/// `--resume`: the run's dataset and saved config, after checking that the flags only repeat
/// its settings (a real change, `--preset` and `--data` included, is refused, named).
fn resumed_config(args: &TrainArgs) -> Result<(PathBuf, hgn::train::RunConfig)> {
    use hgn::train::RunConfig;
    let run = args
        .run
        .as_ref()
        .context("--resume needs --run (the run folder to continue)")?;
    let saved_path = run.join("config.json");
    anyhow::ensure!(
        saved_path.is_file(),
        "{} holds no run to resume (no config.json)",
        run.display()
    );
    let saved = RunConfig::load(&saved_path)?;
    let data = match (&args.data, &saved.data) {
        (Some(data), _) => data.clone(),
        (None, Some(data)) => data.clone(),
        (None, None) => anyhow::bail!("{} records no dataset; pass --data", run.display()),
    };
    let mut wanted = match (&args.config, &args.preset) {
        (Some(path), _) => RunConfig::load(path)?,
        (None, Some(name)) if *name != saved.preset => RunConfig::preset(name)?,
        _ => saved.clone(),
    };
    wanted.data = Some(data.clone());
    apply_train_flags(&mut wanted, args)?;
    wanted.train.steps = saved.train.steps;
    let mut changes = vec![];
    if wanted.preset != saved.preset {
        changes.push(format!("preset {} → {}", saved.preset, wanted.preset));
    }
    config_changes(
        "",
        &serde_json::to_value(&saved)?,
        &serde_json::to_value(&wanted)?,
        &mut changes,
    );
    changes.retain(|c| !c.starts_with("preset:"));
    anyhow::ensure!(
        changes.is_empty(),
        "--resume continues {} with its saved config.json (only --steps may change); the \
         flags change {}",
        run.display(),
        changes.join(", ")
    );
    Ok((data, saved))
}

/// A new run's config: `--config`, or `--preset` (by default the one for `data`'s system; for
/// a missing default dataset, the pendulum's, generated later), with the flags applied.
fn new_config(args: &TrainArgs, data: &Path) -> Result<hgn::train::RunConfig> {
    use hgn::train::RunConfig;
    let mut config = match &args.config {
        Some(path) => RunConfig::load(path)?,
        None => {
            let preset = match &args.preset {
                Some(name) => name.clone(),
                None => {
                    let coordinates = match hgn::data::format::DatasetMeta::load(data) {
                        Ok(meta) => meta.state_names.len(),
                        Err(_) => find_system("pendulum")
                            .expect("built in")
                            .state_names()
                            .len(),
                    };
                    RunConfig::default_preset(coordinates).to_string()
                }
            };
            RunConfig::preset(&preset)?
        }
    };
    apply_train_flags(&mut config, args)?;
    set(&mut config.train.steps, args.steps);
    Ok(config)
}

/// `runs/DATA-PRESET`, or the first free `runs/DATA-PRESET-N`, so the default command can be
/// repeated without touching earlier runs.
fn default_run_folder(data: &Path, preset: &str) -> PathBuf {
    let data_name = data
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into());
    let base = PathBuf::from("runs").join(format!("{data_name}-{preset}"));
    (1..)
        .map(|n| {
            if n == 1 {
                base.clone()
            } else {
                PathBuf::from(format!("{}-{n}", base.display()))
            }
        })
        .find(|p| !p.exists())
        .expect("an unused name exists")
}

/// Applies `hgn train`'s setting flags (all but `--steps`, `--data`, `--run`) to `config`.
fn apply_train_flags(config: &mut hgn::train::RunConfig, args: &TrainArgs) -> Result<()> {
    use hgn::model::IntegratorKind;
    use hgn::protocol::Protocol;
    use hgn::train::LrSchedule;
    set(&mut config.train.batch_size, args.batch_size);
    set(&mut config.train.seed, args.seed);
    set(&mut config.train.learning_rate, args.lr);
    if let Some(name) = &args.lr_schedule {
        config.train.lr_schedule = Some(name.parse::<LrSchedule>()?);
    }
    if let Some(name) = &args.integrator {
        config.model.integrator = IntegratorKind::ALL
            .into_iter()
            .find(|k| k.name() == name.to_ascii_lowercase())
            .with_context(|| {
                format!("unknown integrator '{name}' (known: leapfrog, euler, rk4, yoshida4)")
            })?;
    }
    if args.deterministic {
        config.model.variational = false;
    }
    if args.variational {
        config.model.variational = true;
    }
    if let Some(beta) = args.beta {
        anyhow::ensure!(
            config.model.variational,
            "--beta weighs the KL of a variational model, and this one is deterministic; add \
             --variational"
        );
        config.objective = hgn::model::Objective::Elbo { beta };
    }
    if let Some(c) = args.curriculum {
        config.train.curriculum_steps = (c > 0).then_some(c);
    }
    if let Some(name) = &args.protocol {
        let protocol = name.parse::<Protocol>()?;
        if protocol != config.protocol && protocol == Protocol::Reconstruct {
            // Reconstruct always rolls backward over the window it saw.
            config.train.bidirectional = false;
        }
        config.protocol = protocol;
    }
    set(
        &mut config.model.num_inference_frames,
        args.inference_frames,
    );
    if config.protocol == Protocol::Reconstruct
        && (args.protocol.is_some() || args.inference_frames.is_some())
    {
        config.model.rollout_steps = config.model.num_inference_frames.saturating_sub(1);
    }
    set(&mut config.model.rollout_steps, args.rollout_steps);
    if args.no_f_psi {
        config.model.latent_transform = false;
    }
    if args.bidirectional {
        config.train.bidirectional = true;
    }
    if let Some(d) = args.latent_dim {
        config.model.latent_dim = Some(d);
    }
    if let Some(name) = &args.encoder_input {
        config.model.encoder_input = Some(name.parse()?);
    }
    if let Some(h) = args.encoder_hidden {
        config.model.encoder_hidden = Some(h);
    }
    Ok(())
}

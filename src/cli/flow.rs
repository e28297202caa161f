//! `hgn flow`: train, evaluate, sample, plot and compare flows.

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};

use super::*;

/// `hgn flow` subcommands.
#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Train a flow on a built-in 2-D target or on a .npy array of points.
    Train(Box<FlowTrainArgs>),
    /// Test NLL (nats), its bound, parameters, training time and sampling speed.
    Eval {
        /// The flow run folder.
        #[arg(long)]
        run: PathBuf,
        /// Points to evaluate (float64 .npy [N, d]) [default: the run's held-out split].
        #[arg(long)]
        data: Option<PathBuf>,
        /// NHF importance samples per point [default: the run's, 16].
        #[arg(long)]
        samples: Option<usize>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Draw samples from a trained flow into a .npy array or a PNG picture (2-D).
    Sample {
        /// The flow run folder.
        #[arg(long)]
        run: PathBuf,
        /// Number of samples.
        #[arg(long, default_value = "10000")]
        count: usize,
        /// Output: FILE.npy (float64 [N, d]) or FILE.png (scatter plot).
        #[arg(long)]
        out: PathBuf,
        /// Seed of the draws.
        #[arg(long, default_value = "0")]
        seed: u64,
    },
    /// Heat maps: target vs learned density, samples, and the NHF's learned potentials V(q).
    Plot {
        /// The flow run folder.
        #[arg(long)]
        run: PathBuf,
        /// Output folder [default: RUN/plots].
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Train and evaluate NHF and RealNVP on each built-in target, side by side.
    Compare(FlowCompareArgs),
}

/// Flags of `hgn flow compare`.
#[derive(Debug, Args)]
pub struct FlowCompareArgs {
    /// Targets, comma-separated [default: the six benchmark targets].
    #[arg(long, value_delimiter = ',')]
    pub targets: Option<Vec<String>>,
    /// The cap on every run's training steps.
    #[arg(long, default_value = "40000")]
    pub steps: usize,
    /// Evaluations without a gain in validation NLL that make a plateau.
    #[arg(long, default_value = "4")]
    pub patience: usize,
    /// Plateaus answered by halving the learning rate before the next stops a run.
    #[arg(long, default_value = "2")]
    pub plateau_halvings: usize,
    /// Steps between evaluations.
    #[arg(long, default_value = "250")]
    pub eval_every: usize,
    /// Seed of every run.
    #[arg(long, default_value = "0")]
    pub seed: u64,
    /// Posterior samples of the NHF's importance-weighted test NLL (more: a tighter
    /// estimate of the same model's likelihood).
    #[arg(long, default_value = "128")]
    pub iw_samples: usize,
    /// Working and output folder.
    #[arg(long, default_value = "flow-compare")]
    pub out: PathBuf,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Flags of `hgn flow train`.
#[derive(Debug, Args)]
pub struct FlowTrainArgs {
    /// Built-in target: eight-gaussians, two-moons, rings, checkerboard, pinwheel, two-spirals,
    /// gaussian.
    #[arg(long, conflicts_with = "data")]
    pub target: Option<String>,
    /// Training points: a float64 .npy array [N, d] (10 % is held out).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// nhf or realnvp [default: nhf].
    #[arg(long, value_enum)]
    pub model: Option<FlowKindArg>,
    #[command(flatten)]
    pub training: FlowTrainingFlags,
    #[command(flatten)]
    pub nhf: NhfFlags,
    #[command(flatten)]
    pub networks: FlowNetworkFlags,
    /// Continue the run in --run (with --steps: up to that many steps); the other flags may
    /// only repeat its saved settings.
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `hgn flow train`'s optimisation flags.
#[derive(Debug, Args)]
#[command(next_help_heading = "Training")]
pub struct FlowTrainingFlags {
    /// Optimisation steps [default: 3000].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Points per batch [default: 256].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 5e-3].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of weights, data and noise [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Steps between held-out evaluations and checkpoints [default: 500].
    #[arg(long)]
    pub eval_every: Option<usize>,
    /// Stop once N evaluations in a row have not improved the NLL of validation points set
    /// aside for it (--steps stays the cap) [default: train all steps].
    #[arg(long)]
    pub patience: Option<usize>,
    /// With --patience: plateaus answered by halving the learning rate before the next one
    /// stops training [default: 0].
    #[arg(long)]
    pub plateau_halvings: Option<usize>,
}

/// `hgn flow train`'s flags of the Neural Hamiltonian Flow.
#[derive(Debug, Args)]
#[command(next_help_heading = "NHF")]
pub struct NhfFlags {
    /// Hamiltonian stages [default: 4].
    #[arg(long)]
    pub stages: Option<usize>,
    /// Leapfrog steps per stage [default: 2].
    #[arg(long)]
    pub leapfrog_steps: Option<usize>,
    /// Leapfrog step size (with --step-size learned: its starting value) [default: 0.3].
    #[arg(long)]
    pub dt: Option<f64>,
    /// Each stage's step size fixed at --dt, or learned from it [default: learned].
    #[arg(long, value_enum)]
    pub step_size: Option<StepSizeArg>,
    /// Kinetic energy of every stage: ½|p|² plus a network (both), the network alone
    /// (learned), or ½|p|² alone (fixed; only the potentials are learned) [default: both].
    #[arg(long, value_enum)]
    pub kinetic: Option<KineticArg>,
    /// Activation of the energy networks, softplus or tanh [default: tanh].
    #[arg(long)]
    pub activation: Option<hgn::flow::mlp::EnergyActivation>,
    /// Affine couplings conditioned on the position after the momentum posterior's Gaussian
    /// draw (0: a diagonal Gaussian posterior) [default: 2].
    #[arg(long)]
    pub posterior_couplings: Option<usize>,
    /// Posterior draws per point of the training objective; more than 1 trains on the
    /// importance-weighted bound instead of the ELBO [default: 1].
    #[arg(long)]
    pub objective_samples: Option<usize>,
}

/// `hgn flow train`'s network sizes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Networks")]
pub struct FlowNetworkFlags {
    /// Width of every hidden layer [default: NHF 56, RealNVP 64].
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Hidden layers of every network [default: 2].
    #[arg(long)]
    pub depth: Option<usize>,
    /// RealNVP: coupling layers [default: 8].
    #[arg(long)]
    pub couplings: Option<usize>,
}

/// `hgn flow train --step-size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StepSizeArg {
    /// Every stage steps with --dt.
    Fixed,
    /// Each stage learns its own step, starting at --dt.
    Learned,
}

/// `hgn flow train --kinetic`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KineticArg {
    /// ½|p|² plus a learned network.
    Both,
    /// A learned network alone.
    Learned,
    /// ½|p|² alone.
    Fixed,
}

/// `hgn flow train --model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlowKindArg {
    /// Neural Hamiltonian Flow.
    Nhf,
    /// RealNVP.
    Realnvp,
}

impl From<FlowKindArg> for hgn::flow::config::FlowKind {
    fn from(arg: FlowKindArg) -> Self {
        match arg {
            FlowKindArg::Nhf => Self::Nhf,
            FlowKindArg::Realnvp => Self::Realnvp,
        }
    }
}

pub fn run_flow(command: FlowCommand) -> Result<()> {
    match command {
        FlowCommand::Train(args) => flow_train(*args),
        FlowCommand::Eval {
            run,
            data,
            samples,
            json,
        } => flow_eval(&run, data.as_deref(), samples, json),
        FlowCommand::Sample {
            run,
            count,
            out,
            seed,
        } => flow_sample(&run, count, &out, seed),
        FlowCommand::Plot { run, out } => {
            for path in hgn::flow::plot::write_flow_plots(&run, out.as_deref())? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        FlowCommand::Compare(args) => flow_compare(args),
    }
}

/// The data the flags name, if any.
fn data_from_flags(args: &FlowTrainArgs) -> Option<hgn::flow::config::FlowData> {
    use hgn::flow::config::FlowData;
    match (&args.target, &args.data) {
        (Some(t), _) => Some(FlowData::Target(t.clone())),
        (None, Some(d)) => Some(FlowData::File(d.clone())),
        (None, None) => None,
    }
}

/// Applies every model and training flag given to `c` (not the data, model kind or seed).
fn apply_flags(c: &mut hgn::flow::config::FlowRunConfig, args: &FlowTrainArgs) {
    let (t, n, w) = (&args.training, &args.nhf, &args.networks);
    set(&mut c.train.steps, t.steps);
    set(&mut c.train.batch_size, t.batch_size);
    set(&mut c.train.learning_rate, t.lr);
    set(&mut c.train.eval_every, t.eval_every);
    if t.patience.is_some() {
        c.train.patience = t.patience;
    }
    set(&mut c.train.plateau_halvings, t.plateau_halvings);
    set(&mut c.nhf.stages, n.stages);
    set(&mut c.nhf.leapfrog_steps, n.leapfrog_steps);
    set(&mut c.nhf.dt, n.dt);
    if let Some(v) = n.step_size {
        c.nhf.learned_step = v == StepSizeArg::Learned;
    }
    if let Some(v) = n.kinetic {
        (c.nhf.quadratic_kinetic, c.nhf.learned_kinetic) = match v {
            KineticArg::Both => (true, true),
            KineticArg::Learned => (false, true),
            KineticArg::Fixed => (true, false),
        };
    }
    set(&mut c.nhf.activation, n.activation);
    set(&mut c.nhf.posterior_couplings, n.posterior_couplings);
    set(&mut c.train.objective_samples, n.objective_samples);
    set(&mut c.realnvp.couplings, w.couplings);
    if let Some(v) = w.hidden {
        c.nhf.hidden = v;
        c.realnvp.hidden = v;
    }
    if let Some(v) = w.depth {
        c.nhf.depth = v;
        c.realnvp.depth = v;
    }
}

/// A new flow run's config: the model's defaults with every flag given applied.
fn config_from_flags(args: &FlowTrainArgs) -> Result<hgn::flow::config::FlowRunConfig> {
    let data = data_from_flags(args)
        .ok_or_else(|| anyhow::anyhow!("name the data: --target NAME or --data FILE.npy"))?;
    let kind = args.model.unwrap_or(FlowKindArg::Nhf).into();
    let mut c = hgn::flow::config::new_config(kind, data, args.training.seed.unwrap_or(0))?;
    apply_flags(&mut c, args);
    Ok(c)
}

/// `--resume`: the run's saved config, after checking that the flags only repeat its settings
/// (a real change, of the data, model or seed included, is refused, named).
fn resumed_config(args: &FlowTrainArgs) -> Result<hgn::flow::config::FlowRunConfig> {
    let saved = hgn::flow::config::FlowRunConfig::load(&args.run)?;
    let mut wanted = saved.clone();
    if let Some(data) = data_from_flags(args) {
        wanted.data = data;
    }
    if let Some(model) = args.model {
        wanted.kind = model.into();
    }
    set(&mut wanted.train.seed, args.training.seed);
    apply_flags(&mut wanted, args);
    wanted.train.steps = saved.train.steps;
    let mut changes = vec![];
    config_changes(
        "",
        &serde_json::to_value(&saved)?,
        &serde_json::to_value(&wanted)?,
        &mut changes,
    );
    anyhow::ensure!(
        changes.is_empty(),
        "--resume continues {} with its saved config.json (only --steps may change); the \
         flags change {}",
        args.run.display(),
        changes.join(", ")
    );
    Ok(saved)
}

/// `hgn flow train`: a new run from the flags, or the saved one with `--resume`.
fn flow_train(args: FlowTrainArgs) -> Result<()> {
    use hgn::flow::config::FlowKind;
    let config = if args.resume {
        resumed_config(&args)?
    } else {
        config_from_flags(&args)?
    };
    let kind = config.kind;
    let summary = hgn::flow::train::train_flow(&hgn::flow::train::FlowTrainOptions {
        run: args.run.clone(),
        config,
        resume: args.resume,
        steps_override: if args.resume {
            args.training.steps
        } else {
            None
        },
        device: hgn::device::DeviceChoice::Cpu,
        reporter: stderr_reporter(args.quiet),
    })?;
    println!(
        "trained {} {} steps in {:.0} s; held-out NLL ≈ {:.3} nats (hgn flow eval --run {} for the full figure)",
        match kind {
            FlowKind::Nhf => "NHF",
            FlowKind::Realnvp => "RealNVP",
        },
        summary.steps,
        summary.seconds,
        summary.test_nll,
        args.run.display()
    );
    Ok(())
}

/// `hgn flow eval`: the held-out NLL and the run's figures, as text or JSON.
fn flow_eval(run: &Path, data: Option<&Path>, samples: Option<usize>, json: bool) -> Result<()> {
    let report = hgn::flow::eval::evaluate_flow(run, data, samples)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let ci = report
            .test_nll_ci95
            .map(|h| format!(" ± {h:.3}"))
            .unwrap_or_default();
        println!(
            "hgn flow eval: {} ({}, {} steps) on {} ({} points)",
            run.display(),
            report.model,
            report.steps,
            report.eval_data.display(),
            report.points
        );
        println!("test NLL            {:.4}{ci} nats", report.test_nll);
        if report.model == "nhf" {
            println!(
                "  −ELBO bound       {:.4} nats ({} importance samples for the NLL)",
                report.test_nll_bound, report.iw_samples
            );
        }
        println!(
            "Gaussian baseline   {:.4} nats",
            report.gaussian_baseline_nll
        );
        if let Some(t) = report.true_nll {
            println!("true density        {t:.4} nats");
        }
        println!("parameters          {}", report.parameters);
        println!("training time       {:.1} s", report.train_seconds);
        println!(
            "sampling            {:.0} samples/s",
            report.samples_per_second
        );
    }
    Ok(())
}

/// `hgn flow sample`: `count` samples as `.npy`, or as a scatter plot `.png` of 2-D data.
fn flow_sample(run: &Path, count: usize, out: &Path, seed: u64) -> Result<()> {
    anyhow::ensure!(count >= 1, "--count must be at least 1");
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    anyhow::ensure!(
        ext == "npy" || ext == "png",
        "{}: the output must end in .npy or .png",
        out.display()
    );
    let device = hgn::device::DeviceChoice::Cpu.device()?;
    let flow = hgn::flow::load::load_flow(run, &device)?;
    let d = flow.config.dim();
    let points = hgn::flow::eval::draw_samples(&flow.model, &flow.config, count, seed, &device);
    if ext == "npy" {
        hgn::flow::points::write_points(out, &points, d)?;
    } else {
        anyhow::ensure!(
            d == 2,
            "a PNG of samples needs 2-D data (this flow has {d})"
        );
        let mut chart = hgn::viz::Chart::new(&format!("{count} samples"), "x1", "x2");
        chart.series.push(hgn::viz::Series::dots(
            "",
            points.chunks_exact(2).map(|p| (p[0], p[1])).collect(),
            0,
        ));
        chart.render(600, 600).save_png(out)?;
    }
    println!("wrote {count} samples to {}", out.display());
    Ok(())
}

/// `hgn flow compare`: trains both flows on every target and prints the table.
fn flow_compare(args: FlowCompareArgs) -> Result<()> {
    let targets = args.targets.unwrap_or_else(|| {
        hgn::flow::targets::BENCHMARK_TARGETS
            .iter()
            .map(|s| s.to_string())
            .collect()
    });
    let (_, markdown) = hgn::flow::compare::run_compare(&hgn::flow::compare::CompareOptions {
        targets,
        steps: args.steps,
        patience: args.patience,
        plateau_halvings: args.plateau_halvings,
        eval_every: args.eval_every,
        seed: args.seed,
        iw_samples: args.iw_samples,
        out: args.out.clone(),
        reporter: stderr_reporter(args.quiet),
    })?;
    print!("{markdown}");
    println!("wrote {}", args.out.join("compare.md").display());
    Ok(())
}

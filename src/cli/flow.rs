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
        #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
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
        #[arg(long, default_value = "10000", allow_negative_numbers = true, value_parser = parse_count)]
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
    Compare {
        /// Targets, comma-separated [default: the six benchmark targets].
        #[arg(long, value_delimiter = ',')]
        targets: Option<Vec<String>>,
        /// The cap on every run's training steps.
        #[arg(long, default_value = "40000", allow_negative_numbers = true, value_parser = parse_count)]
        steps: usize,
        /// Evaluations without a gain in validation NLL that make a plateau.
        #[arg(long, default_value = "4", allow_negative_numbers = true, value_parser = parse_count)]
        patience: usize,
        /// Plateaus answered by halving the learning rate before the next stops a run.
        #[arg(long, default_value = "2", allow_negative_numbers = true, value_parser = parse_count)]
        plateau_halvings: usize,
        /// Steps between evaluations.
        #[arg(long, default_value = "250", allow_negative_numbers = true, value_parser = parse_count)]
        eval_every: usize,
        /// Seed of every run.
        #[arg(long, default_value = "0")]
        seed: u64,
        /// Posterior samples of the NHF's importance-weighted test NLL (more: a tighter
        /// estimate of the same model's likelihood).
        #[arg(long, default_value = "128", allow_negative_numbers = true, value_parser = parse_count)]
        iw_samples: usize,
        /// Working and output folder.
        #[arg(long, default_value = "flow-compare")]
        out: PathBuf,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
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
    /// nhf or realnvp.
    #[arg(long, value_enum, default_value = "nhf")]
    pub model: FlowKindArg,
    /// Optimisation steps [default: 3000].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub steps: Option<usize>,
    /// Points per batch [default: 256].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 5e-3].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of weights, data and noise [default: 0].
    #[arg(long, default_value = "0")]
    pub seed: u64,
    /// NHF: Hamiltonian stages [default: 4].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub stages: Option<usize>,
    /// NHF: leapfrog steps per stage [default: 2].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub leapfrog_steps: Option<usize>,
    /// NHF: leapfrog step size (with --step-size learned: its starting value) [default: 0.3].
    #[arg(long, allow_negative_numbers = true)]
    pub dt: Option<f64>,
    /// NHF: each stage's step size fixed at --dt, or learned from it [default: learned].
    #[arg(long, value_enum)]
    pub step_size: Option<StepSizeArg>,
    /// NHF: kinetic energy of every stage: ½|p|² plus a network (both), the network alone
    /// (learned), or ½|p|² alone (fixed; only the potentials are learned) [default: both].
    #[arg(long, value_enum)]
    pub kinetic: Option<KineticArg>,
    /// NHF: activation of the energy networks, softplus or tanh [default: tanh].
    #[arg(long)]
    pub activation: Option<hgn::flow::mlp::EnergyActivation>,
    /// NHF: affine couplings conditioned on the position after the momentum posterior's
    /// Gaussian draw (0: a diagonal Gaussian posterior) [default: 2].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub posterior_couplings: Option<usize>,
    /// RealNVP: coupling layers [default: 8].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub couplings: Option<usize>,
    /// Width of every hidden layer [default: NHF 56, RealNVP 64].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub hidden: Option<usize>,
    /// Hidden layers of every network [default: 2].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub depth: Option<usize>,
    /// Stop once N evaluations in a row have not improved the NLL of validation points set
    /// aside for it (--steps stays the cap) [default: train all steps].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub patience: Option<usize>,
    /// NHF: posterior draws per point of the training objective; more than 1 trains on the
    /// importance-weighted bound instead of the ELBO [default: 1].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub objective_samples: Option<usize>,
    /// With --patience: plateaus answered by halving the learning rate before the next one
    /// stops training [default: 0].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub plateau_halvings: Option<usize>,
    /// Steps between held-out evaluations and checkpoints [default: 500].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub eval_every: Option<usize>,
    /// Continue the run in --run (with --steps: up to that many steps).
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
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
        FlowCommand::Compare {
            targets,
            steps,
            patience,
            plateau_halvings,
            eval_every,
            seed,
            iw_samples,
            out,
            quiet,
        } => {
            let targets = targets.unwrap_or_else(|| {
                hgn::flow::targets::BENCHMARK_TARGETS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            });
            let (_, markdown) =
                hgn::flow::compare::run_compare(&hgn::flow::compare::CompareOptions {
                    targets,
                    steps,
                    patience,
                    plateau_halvings,
                    eval_every,
                    seed,
                    iw_samples,
                    out: out.clone(),
                    reporter: stderr_reporter(quiet),
                })?;
            print!("{markdown}");
            println!("wrote {}", out.join("compare.md").display());
            Ok(())
        }
    }
}

/// A new flow run's config: the model's defaults with every flag given applied.
fn config_from_flags(args: &FlowTrainArgs) -> Result<hgn::flow::config::FlowRunConfig> {
    use hgn::flow::config::FlowData;
    let data = match (&args.target, &args.data) {
        (Some(t), None) => FlowData::Target(t.clone()),
        (None, Some(d)) => FlowData::File(d.clone()),
        _ => anyhow::bail!("name the data: --target NAME or --data FILE.npy"),
    };
    let mut c = hgn::flow::config::new_config(args.model.into(), data, args.seed)?;
    set(&mut c.train.steps, args.steps);
    set(&mut c.train.batch_size, args.batch_size);
    set(&mut c.train.learning_rate, args.lr);
    set(&mut c.nhf.stages, args.stages);
    set(&mut c.nhf.leapfrog_steps, args.leapfrog_steps);
    set(&mut c.nhf.dt, args.dt);
    set(&mut c.realnvp.couplings, args.couplings);
    set(&mut c.nhf.posterior_couplings, args.posterior_couplings);
    if let Some(v) = args.step_size {
        c.nhf.learned_step = v == StepSizeArg::Learned;
    }
    if let Some(v) = args.kinetic {
        (c.nhf.quadratic_kinetic, c.nhf.learned_kinetic) = match v {
            KineticArg::Both => (true, true),
            KineticArg::Learned => (false, true),
            KineticArg::Fixed => (true, false),
        };
    }
    set(&mut c.nhf.activation, args.activation);
    if let Some(v) = args.hidden {
        c.nhf.hidden = v;
        c.realnvp.hidden = v;
    }
    if let Some(v) = args.depth {
        c.nhf.depth = v;
        c.realnvp.depth = v;
    }
    if args.patience.is_some() {
        c.train.patience = args.patience;
    }
    set(&mut c.train.objective_samples, args.objective_samples);
    set(&mut c.train.plateau_halvings, args.plateau_halvings);
    set(&mut c.train.eval_every, args.eval_every);
    Ok(c)
}

/// `hgn flow train`: a new run from the flags, or the saved one with `--resume`.
fn flow_train(args: FlowTrainArgs) -> Result<()> {
    use hgn::flow::config::FlowKind;
    let config = if args.resume {
        anyhow::ensure!(
            args.target.is_none()
                && args.data.is_none()
                && args.batch_size.is_none()
                && args.lr.is_none()
                && args.stages.is_none()
                && args.leapfrog_steps.is_none()
                && args.dt.is_none()
                && args.step_size.is_none()
                && args.kinetic.is_none()
                && args.activation.is_none()
                && args.couplings.is_none()
                && args.posterior_couplings.is_none()
                && args.hidden.is_none()
                && args.depth.is_none()
                && args.patience.is_none()
                && args.objective_samples.is_none()
                && args.plateau_halvings.is_none()
                && args.eval_every.is_none(),
            "--resume continues a run with its saved config.json; only --steps may change"
        );
        hgn::flow::config::FlowRunConfig::load(&args.run)?
    } else {
        config_from_flags(&args)?
    };
    let kind = config.kind;
    let summary = hgn::flow::train::train_flow(&hgn::flow::train::FlowTrainOptions {
        run: args.run.clone(),
        config,
        resume: args.resume,
        steps_override: if args.resume { args.steps } else { None },
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
    let flow = hgn::flow::train::load_flow(run, &device)?;
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

//! The `hgn` command line: argument parsing and one small function per subcommand.
//!
//! This is the only module that prints or decides the exit code. Every error reaches the user as
//! one line, `error: …`, with exit code 1 (2 for malformed arguments); nothing panics on bad input.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::data::{GenerateOptions, generate, inspect};
use crate::physics::{SYSTEMS, find_system, system_names};

/// Hamiltonian Generative Networks: physics datasets, models and evaluation.
#[derive(Debug, Parser)]
#[command(name = "hgn", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a physical system and write a dataset of rendered sequences.
    Generate(GenerateArgs),
    /// Verify a dataset's files against its meta.json and summarise it.
    Inspect {
        /// The dataset folder.
        dir: PathBuf,
    },
    /// List the systems `generate` knows, with their Hamiltonians and parameters.
    Systems,
    /// Train an HGN on a dataset (generating the default pendulum dataset if it is missing).
    Train(TrainArgs),
    /// Time full training steps (rollout, backward, Adam) of a preset on synthetic frames.
    Bench {
        /// Model preset: paper, campusai, tiny or vector (a 2-vector state).
        #[arg(long, default_value = "paper")]
        preset: String,
        /// Sequences per step.
        #[arg(long, default_value = "16", value_parser = parse_count)]
        batch_size: usize,
        /// Timed steps (after 2 untimed warm-up steps).
        #[arg(long, default_value = "5", value_parser = parse_count)]
        steps: usize,
        /// Device: cpu, wgpu or vulkan (wgpu:N, vulkan:N: device N).
        #[arg(long, default_value = "cpu")]
        device: crate::device::DeviceArg,
    },
    /// Evaluate a run: the paper's Table 1 MSE, extrapolation, VPT and learned energy
    /// (writes RUN/eval.json).
    Eval(EvalArgs),
    /// The physics oracle of a dataset: the exact system fitted to the frames a model's encoder
    /// sees, scored with the Table 1 metric, beside the noise floor and the mean-frame baseline.
    Oracle(OracleArgs),
    /// Draw a run's predictions (truth, prediction, difference) as an animated GIF or PNG strip:
    /// forward, backward, faster or slower, or sampled from the prior.
    Rollout(RolloutArgs),
    /// Write PNG plots of a run: training curves, MSE per rollout step, learned energy, latent
    /// phase portrait.
    Plot {
        /// The run folder.
        #[arg(long)]
        run: PathBuf,
        /// Output folder [default: RUN/plots].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Test sequences in the energy and phase plots (1 to 32).
        #[arg(long, default_value = "8", allow_negative_numbers = true, value_parser = parse_count)]
        sequences: usize,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Reproduce the paper's Table 1: generate the four datasets, train the HGN variants,
    /// evaluate, and write a Markdown table beside the published numbers.
    Table1 {
        /// tiny (minutes on a CPU, a smoke test), small (hours on a CPU) or paper (the paper's
        /// data size; for a GPU).
        #[arg(long, value_enum, default_value = "tiny")]
        scale: crate::table1::Scale,
        /// Systems (columns), comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "mass-spring,pendulum,two-body,three-body"
        )]
        systems: Vec<String>,
        /// Variants (rows), comma-separated: leapfrog, euler, deterministic, no-f-psi.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "leapfrog,euler,deterministic,no-f-psi"
        )]
        variants: Vec<String>,
        /// Window protocol of every run: reconstruct (the paper's Table 1: all 31 frames seen,
        /// state at the last, rolled back over them) or forecast (5 frames in, 30 forward).
        #[arg(long, default_value = "reconstruct")]
        protocol: String,
        /// Working and output folder (datasets, runs, table1.md) [default: table1-SCALE].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Training device: cpu, wgpu or vulkan (wgpu:N, vulkan:N: device N).
        #[arg(long, default_value = "cpu")]
        device: crate::device::DeviceArg,
        /// No progress bars.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Neural Hamiltonian Flows (and a RealNVP baseline) for density modelling.
    Flow {
        /// What to do.
        #[command(subcommand)]
        command: FlowCommand,
    },
    /// Write a run's weights as SafeTensors, with stable tensor names (see ARCHITECTURE.md).
    Export {
        /// The run folder.
        #[arg(long)]
        run: PathBuf,
        /// Output file (.safetensors).
        #[arg(long)]
        out: PathBuf,
    },
}

/// `hgn flow` subcommands.
#[derive(Debug, Subcommand)]
pub enum FlowCommand {
    /// Train a flow on a built-in 2-D target or on a .npy array of points.
    Train(FlowTrainArgs),
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
        /// Training steps of every run.
        #[arg(long, default_value = "2000", allow_negative_numbers = true, value_parser = parse_count)]
        steps: usize,
        /// Seed of every run.
        #[arg(long, default_value = "0")]
        seed: u64,
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
    pub model: crate::flow::train::FlowKind,
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
    /// NHF: leapfrog steps per stage [default: 8].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub leapfrog_steps: Option<usize>,
    /// NHF: leapfrog step size [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    pub dt: Option<f64>,
    /// RealNVP: coupling layers [default: 8].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub couplings: Option<usize>,
    /// Width of every hidden layer [default: 64].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub hidden: Option<usize>,
    /// Continue the run in --run (with --steps: up to that many steps).
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Which splits `hgn eval` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SplitArg {
    /// The training split.
    Train,
    /// The test split.
    Test,
    /// Both.
    Both,
}

/// Flags of `hgn eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// Dataset [default: the one the run was trained on].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Splits to evaluate.
    #[arg(long, value_enum, default_value = "both")]
    pub split: SplitArg,
    /// At most this many sequences per split (the first ones).
    #[arg(long, default_value = "1000", allow_negative_numbers = true, value_parser = parse_count)]
    pub sequences: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Device for the rollouts: cpu, wgpu or vulkan (wgpu:N, vulkan:N: device N).
    #[arg(long, default_value = "cpu")]
    pub device: crate::device::DeviceArg,
    /// Skip the physics oracle (the exact system fitted to the same frames).
    #[arg(long)]
    pub no_oracle: bool,
    /// Posterior draws per sequence for the oracle's expected image.
    #[arg(long, default_value = "64", allow_negative_numbers = true, value_parser = parse_count)]
    pub oracle_draws: usize,
    /// Keep each sequence's Table 1 figures (model, baseline, oracles) in the report.
    #[arg(long)]
    pub per_sequence: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Flags of `hgn oracle`.
#[derive(Debug, Args)]
pub struct OracleArgs {
    /// The dataset folder.
    #[arg(long, default_value = "data/pendulum")]
    pub data: PathBuf,
    /// The split scored.
    #[arg(long, value_enum, default_value = "test")]
    pub split: SplitArg,
    /// At most this many sequences (the first ones).
    #[arg(long, default_value = "200", allow_negative_numbers = true, value_parser = parse_count)]
    pub sequences: usize,
    /// forecast (fit frames 0..K, score the 30 from K − 1) or reconstruct (fit and score the
    /// first K frames).
    #[arg(long, default_value = "forecast")]
    pub protocol: String,
    /// K: frames fitted [default: 5 for forecast, 31 for reconstruct].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub inference_frames: Option<usize>,
    /// Posterior draws per sequence for the expected image.
    #[arg(long, default_value = "64", allow_negative_numbers = true, value_parser = parse_count)]
    pub draws: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Flags of `hgn rollout`.
#[derive(Debug, Args)]
pub struct RolloutArgs {
    /// The run folder.
    #[arg(long)]
    pub run: PathBuf,
    /// Output file: .gif (animation) or .png (strip).
    #[arg(long)]
    pub out: PathBuf,
    /// Dataset [default: the one the run was trained on].
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Test sequence to show.
    #[arg(long, default_value = "0", allow_negative_numbers = true, value_parser = parse_count)]
    pub index: usize,
    /// Integration steps [default: as far as the recorded sequence goes; 60 with --prior].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub steps: Option<usize>,
    /// Multiply the model's dt: 2 runs the dynamics twice as fast, 0.5 in slow motion.
    #[arg(long, default_value = "1", allow_negative_numbers = true)]
    pub dt_scale: f64,
    /// Infer the state at the last frame and integrate backward in time.
    #[arg(long)]
    pub backward: bool,
    /// Draw new trajectories from the prior instead of showing a test sequence.
    #[arg(long)]
    pub prior: bool,
    /// Trajectories drawn with --prior (1 to 64).
    #[arg(long, default_value = "4", allow_negative_numbers = true, value_parser = parse_count)]
    pub count: usize,
    /// Seed of the prior draws.
    #[arg(long, default_value = "0")]
    pub seed: u64,
    /// Upscaling of each 32×32 frame (1 to 16).
    #[arg(long, default_value = "4", allow_negative_numbers = true, value_parser = parse_count)]
    pub scale: usize,
    /// Hundredths of a second per GIF frame.
    #[arg(long, default_value = "10")]
    pub delay: u16,
}

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
    #[arg(long)]
    pub preset: Option<String>,
    /// A run config file (JSON, as written to RUN/config.json) instead of a preset.
    #[arg(long, conflicts_with = "preset")]
    pub config: Option<PathBuf>,
    /// Optimisation steps [default: the preset's].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub steps: Option<usize>,
    /// Sequences per batch [default: 16].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub batch_size: Option<usize>,
    /// Seed of the weights, batches and noise [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Adam learning rate [default: the preset's; 1.5e-4 for paper].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning-rate schedule: constant, or cosine (from --lr down to 1 % of it at the last
    /// step) [default: constant, or a --config file's `train.lr_schedule`].
    #[arg(long)]
    pub lr_schedule: Option<String>,
    /// Latent integrator: leapfrog, euler, rk4 or yoshida4.
    #[arg(long)]
    pub integrator: Option<String>,
    /// Rollout curriculum: grow the trained rollout from 1 step to the full length over this
    /// many steps [default: the preset's; 0 turns it off].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub curriculum: Option<usize>,
    /// Rollout steps after the inferred state [default: the preset's; under reconstruct,
    /// --inference-frames − 1].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub rollout_steps: Option<usize>,
    /// Window protocol: forecast (K frames in, roll forward) or reconstruct (the whole window in,
    /// state at its last frame, roll backward over it; the paper's Table 1) [default: the
    /// preset's: reconstruct for paper, forecast for the others].
    #[arg(long)]
    pub protocol: Option<String>,
    /// Frames the encoder sees (K; under reconstruct the whole window) [default: the preset's].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub inference_frames: Option<usize>,
    /// Train both directions of time: half the steps infer the state at a window's last frame
    /// and integrate backward [default: the preset's: on for vector and tiny; off elsewhere, and a
    /// --config file's `train.bidirectional` turns it off].
    #[arg(long)]
    pub bidirectional: bool,
    /// Make q and p vectors of this many dimensions, with MLP energies, instead of latent maps
    /// [default: the preset's: 2 for vector, latent maps for the others].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub latent_dim: Option<usize>,
    /// The paper's "deterministic" ablation: z = encoder mean, no KL.
    #[arg(long)]
    pub deterministic: bool,
    /// The paper's "no f_ψ" ablation: the encoder output is split into q and p directly.
    #[arg(long)]
    pub no_f_psi: bool,
    /// Device: cpu, wgpu or vulkan (wgpu:N, vulkan:N: device N) (GPU devices need --features gpu).
    #[arg(long, default_value = "cpu")]
    pub device: crate::device::DeviceArg,
    /// Continue the run in --run from its checkpoint (with --steps: up to that many steps).
    #[arg(long)]
    pub resume: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Flags of `hgn generate`. Defaults follow the paper, except the number of sequences.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// System to simulate (see `hgn systems`).
    #[arg(long, default_value = "pendulum")]
    pub system: String,
    /// Output folder [default: data/SYSTEM].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Training sequences (the paper uses 50000).
    #[arg(long, default_value = "5000", allow_negative_numbers = true, value_parser = parse_count)]
    pub train: usize,
    /// Test sequences (the paper uses 10000).
    #[arg(long, default_value = "1000", allow_negative_numbers = true, value_parser = parse_count)]
    pub test: usize,
    /// Frames per training sequence (the authors: 5 inference + 30 target frames, overlapping by one).
    #[arg(long, default_value = "34", allow_negative_numbers = true, value_parser = parse_count)]
    pub seq_len: usize,
    /// Frames per test sequence [default: seq-len + 60, room for 60-step extrapolation].
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub test_seq_len: Option<usize>,
    /// Time between frames [default: the system's, 0.125 for the paper's systems].
    #[arg(long, allow_negative_numbers = true)]
    pub dt: Option<f64>,
    /// Seed of every random draw; recorded in meta.json.
    #[arg(long, default_value = "0")]
    pub seed: u64,
    /// Image height and width in pixels.
    #[arg(long, default_value = "32", allow_negative_numbers = true, value_parser = parse_count)]
    pub image_size: usize,
    /// Observation noise σ on every state coordinate [default: the system's, e.g. 0.1 for pendulum].
    #[arg(long, allow_negative_numbers = true)]
    pub noise: Option<f64>,
    /// Replace an existing dataset in the output folder.
    #[arg(long)]
    pub overwrite: bool,
    /// Worker threads [default: all cores]; the output does not depend on it.
    #[arg(long, allow_negative_numbers = true, value_parser = parse_count)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Parses a count; negative or non-numeric values get a plain message.
fn parse_count(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(v) if v < 0 => Err(format!("must not be negative (got {v})")),
        Ok(v) => usize::try_from(v).map_err(|_| format!("{v} is too large")),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = err.print();
                return if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // clap's message, reduced to its first line.
            let text = err.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments").trim();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            eprintln!("error: {first} (see hgn --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let message = format!("{err:#}").replace('\n', " ");
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Executes a parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Generate(args) => run_generate(args),
        Command::Inspect { dir } => {
            let report = inspect(&dir)?;
            print!("{report}");
            Ok(())
        }
        Command::Systems => {
            print_systems();
            Ok(())
        }
        Command::Train(args) => run_train(args),
        Command::Bench {
            preset,
            batch_size,
            steps,
            device,
        } => {
            let mut config = crate::train::RunConfig::preset(&preset)?;
            config.train.batch_size = batch_size;
            anyhow::ensure!(
                batch_size >= 1 && steps >= 1,
                "--batch-size and --steps must be at least 1"
            );
            let report = crate::bench::bench(&config, device, 2, steps)?;
            let threads = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            println!(
                "hgn bench: preset {}, batch {}, {} rollout steps, device {device}, {threads} threads",
                report.preset, report.batch_size, report.rollout_steps
            );
            println!(
                "median {:.1} ms/step, {:.2} sequences/s, peak memory {}",
                report.median_ms,
                report.batch_size as f64 * 1e3 / report.median_ms,
                report
                    .peak_mib
                    .map(|m| format!("{m:.0} MiB"))
                    .unwrap_or_else(|| "unknown".into())
            );
            Ok(())
        }
        Command::Eval(args) => run_eval(args),
        Command::Oracle(args) => run_oracle(args),
        Command::Flow { command } => run_flow(command),
        Command::Table1 {
            scale,
            systems,
            variants,
            protocol,
            out,
            device,
            quiet,
        } => {
            let protocol: crate::protocol::Protocol = protocol.parse()?;
            let opts = crate::table1::Table1Options {
                scale,
                systems,
                variants,
                protocol,
                out: out.unwrap_or_else(|| {
                    PathBuf::from(format!("table1-{}-{protocol}", scale.name()))
                }),
                device,
                progress: !quiet && std::io::stderr().is_terminal(),
            };
            let table = crate::table1::run_table1(&opts)?;
            print!("{}", table.markdown);
            println!("wrote {}", opts.out.join("table1.md").display());
            Ok(())
        }
        Command::Rollout(args) => {
            let opts = crate::rollout::RolloutOptions {
                run: args.run,
                data: args.data,
                out: args.out.clone(),
                index: args.index,
                steps: args.steps,
                dt_scale: args.dt_scale,
                backward: args.backward,
                prior: args.prior,
                count: args.count,
                seed: args.seed,
                scale: args.scale,
                delay_cs: args.delay,
            };
            let summary = crate::rollout::write_rollout(&opts)?;
            if let Some(source) = summary.prior_source {
                println!("sampled {} trajectories from {source}", args.count);
            }
            println!(
                "wrote {} ({} frames, {}×{} px)",
                args.out.display(),
                summary.frames,
                summary.width,
                summary.height
            );
            Ok(())
        }
        Command::Plot {
            run,
            out,
            sequences,
            quiet,
        } => {
            let opts = crate::plot::PlotOptions {
                run,
                out,
                sequences,
                progress: !quiet && std::io::stderr().is_terminal(),
            };
            for path in crate::plot::write_plots(&opts)? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        Command::Export { run, out } => {
            let count = crate::export::export(&run, &out)?;
            println!("wrote {count} tensors to {}", out.display());
            Ok(())
        }
    }
}

fn run_train(args: TrainArgs) -> Result<()> {
    use crate::train::{RunConfig, TrainOptions, train};
    let default_data = PathBuf::from("data/pendulum");
    let (data, config) = if args.resume {
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
        // Flags may repeat the run's settings; a real change is refused, named.
        let mut wanted = match (&args.config, &args.preset) {
            (Some(path), _) => RunConfig::load(path)?,
            (None, Some(name)) if *name != saved.preset => RunConfig::preset(name)?,
            _ => saved.clone(),
        };
        wanted.data = Some(data.clone());
        apply_train_flags(&mut wanted, &args)?;
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
        (data, saved)
    } else {
        let data = args.data.clone().unwrap_or_else(|| default_data.clone());
        let mut config = match &args.config {
            Some(path) => RunConfig::load(path)?,
            None => {
                let preset = match &args.preset {
                    Some(name) => name.clone(),
                    None => {
                        // A missing default dataset is generated below: the pendulum.
                        let coordinates = match crate::data::format::DatasetMeta::load(&data) {
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
        apply_train_flags(&mut config, &args)?;
        if let Some(steps) = args.steps {
            config.train.steps = steps;
        }
        (data, config)
    };
    let progress = !args.quiet && std::io::stderr().is_terminal();
    if !data.join(crate::data::format::META_FILE).exists() && !args.resume {
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
        opts.progress = progress;
        generate(&opts)?;
    }
    let run = match &args.run {
        Some(run) => run.clone(),
        None => {
            // runs/DATA-PRESET, or the first free runs/DATA-PRESET-N, so the default command can
            // be repeated without touching earlier runs.
            let data_name = data
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "data".into());
            let base = PathBuf::from("runs").join(format!("{data_name}-{}", config.preset));
            anyhow::ensure!(
                !args.resume,
                "--resume needs --run (the run folder to continue)"
            );
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
    };
    let opts = TrainOptions {
        data,
        run: run.clone(),
        config,
        device: args.device,
        resume: args.resume,
        steps_override: if args.resume { args.steps } else { None },
        progress,
        report_evals: !args.quiet,
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

fn run_flow(command: FlowCommand) -> Result<()> {
    use crate::flow::train::{FlowData, FlowKind};
    match command {
        FlowCommand::Train(args) => {
            let config = if args.resume {
                anyhow::ensure!(
                    args.target.is_none()
                        && args.data.is_none()
                        && args.batch_size.is_none()
                        && args.lr.is_none()
                        && args.stages.is_none()
                        && args.leapfrog_steps.is_none()
                        && args.dt.is_none()
                        && args.couplings.is_none()
                        && args.hidden.is_none(),
                    "--resume continues a run with its saved config.json; only --steps may change"
                );
                crate::flow::train::FlowRunConfig::load(&args.run)?
            } else {
                let data = match (&args.target, &args.data) {
                    (Some(t), None) => FlowData::Target(t.clone()),
                    (None, Some(d)) => FlowData::File(d.clone()),
                    _ => anyhow::bail!("name the data: --target NAME or --data FILE.npy"),
                };
                let mut c = crate::flow::train::new_config(args.model, data, args.seed)?;
                if let Some(v) = args.steps {
                    c.train.steps = v;
                }
                if let Some(v) = args.batch_size {
                    c.train.batch_size = v;
                }
                if let Some(v) = args.lr {
                    c.train.learning_rate = v;
                }
                if let Some(v) = args.stages {
                    c.nhf.stages = v;
                }
                if let Some(v) = args.leapfrog_steps {
                    c.nhf.leapfrog_steps = v;
                }
                if let Some(v) = args.dt {
                    c.nhf.dt = v;
                }
                if let Some(v) = args.couplings {
                    c.realnvp.couplings = v;
                }
                if let Some(v) = args.hidden {
                    c.nhf.hidden = v;
                    c.realnvp.hidden = v;
                }
                c
            };
            let kind = config.kind;
            let summary = crate::flow::train::train_flow(&crate::flow::train::FlowTrainOptions {
                run: args.run.clone(),
                config,
                resume: args.resume,
                steps_override: if args.resume { args.steps } else { None },
                device: crate::device::DeviceArg::Cpu,
                progress: !args.quiet && std::io::stderr().is_terminal(),
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
        FlowCommand::Eval {
            run,
            data,
            samples,
            json,
        } => {
            let report = crate::flow::train::evaluate_flow(&run, data.as_deref(), samples)?;
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
        FlowCommand::Sample {
            run,
            count,
            out,
            seed,
        } => {
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
            let device = crate::device::DeviceArg::Cpu.device()?;
            let flow = crate::flow::train::load_flow(&run, &device)?;
            let d = flow.config.dim();
            let points =
                crate::flow::train::draw_samples(&flow.model, &flow.config, count, seed, &device);
            if ext == "npy" {
                crate::flow::train::write_points(&out, &points, d)?;
            } else {
                anyhow::ensure!(
                    d == 2,
                    "a PNG of samples needs 2-D data (this flow has {d})"
                );
                let mut chart = crate::viz::Chart::new(&format!("{count} samples"), "x1", "x2");
                chart.series.push(crate::viz::Series::dots(
                    "",
                    points.chunks_exact(2).map(|p| (p[0], p[1])).collect(),
                    0,
                ));
                chart.render(600, 600).save_png(&out)?;
            }
            println!("wrote {count} samples to {}", out.display());
            Ok(())
        }
        FlowCommand::Plot { run, out } => {
            for path in crate::flow::plot::write_flow_plots(&run, out.as_deref())? {
                println!("wrote {}", path.display());
            }
            Ok(())
        }
        FlowCommand::Compare {
            targets,
            steps,
            seed,
            out,
            quiet,
        } => {
            let targets = targets.unwrap_or_else(|| {
                crate::flow::targets::BENCHMARK_TARGETS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            });
            let (_, markdown) =
                crate::flow::compare::run_compare(&crate::flow::compare::CompareOptions {
                    targets,
                    steps,
                    seed,
                    out: out.clone(),
                    progress: !quiet && std::io::stderr().is_terminal(),
                })?;
            print!("{markdown}");
            println!("wrote {}", out.join("compare.md").display());
            Ok(())
        }
    }
}

fn run_eval(args: EvalArgs) -> Result<()> {
    use crate::data::format::Split;
    let splits = match args.split {
        SplitArg::Train => vec![Split::Train],
        SplitArg::Test => vec![Split::Test],
        SplitArg::Both => vec![Split::Train, Split::Test],
    };
    let opts = crate::eval::EvalOptions {
        run: args.run.clone(),
        data: args.data,
        splits,
        max_sequences: args.sequences,
        progress: !args.quiet && std::io::stderr().is_terminal(),
        device: args.device,
        oracle: (!args.no_oracle).then(|| crate::oracle::OracleOptions {
            draws: args.oracle_draws.max(2),
            seed: 0,
        }),
        per_sequence: args.per_sequence,
    };
    let report = crate::eval::evaluate_run(&opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
        println!("wrote {}", args.run.join(crate::run::EVAL_FILE).display());
    }
    Ok(())
}

/// Applies `hgn train`'s setting flags (all but `--steps`, `--data`, `--run`) to `config`.
fn apply_train_flags(config: &mut crate::train::RunConfig, args: &TrainArgs) -> Result<()> {
    use crate::model::IntegratorKind;
    use crate::protocol::Protocol;
    use crate::train::LrSchedule;
    if let Some(b) = args.batch_size {
        config.train.batch_size = b;
    }
    if let Some(seed) = args.seed {
        config.train.seed = seed;
    }
    if let Some(lr) = args.lr {
        config.train.learning_rate = lr;
    }
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
    if let Some(k) = args.inference_frames {
        config.model.num_inference_frames = k;
    }
    if config.protocol == Protocol::Reconstruct
        && (args.protocol.is_some() || args.inference_frames.is_some())
    {
        config.model.rollout_steps = config.model.num_inference_frames.saturating_sub(1);
    }
    if let Some(r) = args.rollout_steps {
        config.model.rollout_steps = r;
    }
    if args.no_f_psi {
        config.model.latent_transform = false;
    }
    if args.bidirectional {
        config.train.bidirectional = true;
    }
    if let Some(d) = args.latent_dim {
        config.model.latent_dim = Some(d);
    }
    Ok(())
}

/// The settings that differ between two JSON configs, as `path: old → new`.
fn config_changes(
    path: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<String>,
) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                config_changes(
                    &child,
                    a.get(key).unwrap_or(&Value::Null),
                    b.get(key).unwrap_or(&Value::Null),
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(format!("{path}: {a} → {b}")),
        _ => {}
    }
}

fn run_oracle(args: OracleArgs) -> Result<()> {
    use crate::data::format::Split;
    use crate::protocol::Protocol;
    let split = match args.split {
        SplitArg::Train => Split::Train,
        SplitArg::Test => Split::Test,
        SplitArg::Both => anyhow::bail!("--split takes train or test"),
    };
    let protocol: Protocol = args.protocol.parse()?;
    let k = args.inference_frames.unwrap_or(match protocol {
        Protocol::Forecast => 5,
        Protocol::Reconstruct => 31,
    });
    let opts = crate::oracle::DatasetOracleOptions {
        data: args.data.clone(),
        split,
        max_sequences: args.sequences,
        protocol,
        inference_frames: k,
        scored_frames: crate::eval::TABLE1_FRAMES,
        oracle: crate::oracle::OracleOptions {
            draws: args.draws.max(2),
            seed: 0,
        },
    };
    let bar = crate::progress::bar(
        args.sequences as u64,
        !args.quiet && std::io::stderr().is_terminal(),
        "oracle {bar:25.cyan/blue} {pos}/{len} sequences  eta {eta}",
    );
    let report = crate::oracle::dataset_oracle(&opts, &|done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let f = &report.frames;
        println!(
            "hgn oracle: {} {} split, {} sequences, {} protocol (fit frames {}..{}, score frames {}..{}), {} draws",
            report.data.display(),
            report.split,
            report.sequences,
            report.protocol,
            f.fitted[0],
            f.fitted[f.fitted.len() - 1] + 1,
            f.scored[0],
            f.scored[f.scored.len() - 1] + 1,
            report.draws
        );
        println!("{:<40}{:>10}", "per-pixel MSE ×1e4", "");
        for (name, v) in [
            ("expected-image oracle", report.expected_x1e4),
            ("point oracle", report.point_x1e4),
            ("noise floor", report.noise_floor_x1e4),
            ("mean-frame baseline", report.baseline_x1e4),
        ] {
            println!("  {name:<38}{v:>10.2}");
        }
    }
    Ok(())
}

fn run_generate(args: GenerateArgs) -> Result<()> {
    let system = find_system(&args.system).with_context(|| {
        format!(
            "unknown system '{}' (known: {})",
            args.system,
            system_names().join(", ")
        )
    })?;
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from("data").join(system.name));
    let mut opts = GenerateOptions::new(system, out);
    opts.num_train = args.train;
    opts.num_test = args.test;
    opts.seq_len = args.seq_len;
    opts.test_seq_len = args.test_seq_len.unwrap_or(args.seq_len.saturating_add(60));
    opts.dt = args.dt.unwrap_or(system.default_dt);
    opts.seed = args.seed;
    opts.image_size = args.image_size;
    opts.noise_std = args.noise.unwrap_or(system.noise_std);
    opts.overwrite = args.overwrite;
    opts.threads = args.threads;
    opts.progress = !args.quiet && std::io::stderr().is_terminal();
    let summary = generate(&opts)?;
    let m = &summary.meta;
    println!(
        "wrote {} train × {} frames and {} test × {} frames of {} ({}×{} px, dt {}, noise σ {}, seed {}) to {}",
        opts.num_train,
        opts.seq_len,
        opts.num_test,
        opts.test_seq_len,
        m.system,
        m.image_size,
        m.image_size,
        m.dt,
        m.noise_std,
        m.seed,
        summary.out.display()
    );
    println!(
        "{:.1} s, {:.0} sequences/s; preview: {}",
        summary.seconds,
        summary.sequences_per_second,
        summary
            .out
            .join(crate::data::format::PREVIEW_FILE)
            .display()
    );
    Ok(())
}

fn print_systems() {
    for spec in SYSTEMS {
        println!("{}  —  {}", spec.name, spec.summary);
        println!("    {}", spec.hamiltonian);
        let params: Vec<String> = spec
            .params
            .iter()
            .map(|p| crate::physics::catalog::format_range(p.name, p.low, p.high))
            .collect();
        let mut extras = vec![
            format!(
                "r ∈ [{}, {}]{}",
                spec.radius.0,
                spec.radius.1,
                if spec.uniform_annulus {
                    " (uniform in area)"
                } else {
                    ""
                }
            ),
            format!("noise σ = {}", spec.noise_std),
            format!("dt = {}", spec.default_dt),
        ];
        if spec.friction > 0.0 {
            extras.push(format!("friction γ = {}", spec.friction));
        }
        if spec.num_colors > 0 {
            extras.push(format!(
                "{} random colours, random canvas offset",
                spec.num_colors
            ));
        }
        println!("    {}; {}", params.join(", "), extras.join(", "));
        println!("    source: {}", spec.origin);
    }
}

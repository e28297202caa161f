//! The `hgn` command line: argument parsing and one small function per subcommand.
//!
//! This is the only module that prints or decides the exit code. Every error reaches the user as
//! one line, `error: …`, with exit code 1 (2 for malformed arguments); nothing panics on bad input.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use hgn::data::inspect;
use hgn::physics::SYSTEMS;

mod data;
mod eval;
mod flow;
mod report;
mod rollout;
mod train;

use data::{GenerateArgs, print_systems, run_generate};
use eval::{EvalArgs, OracleArgs, run_eval, run_oracle};
use flow::{FlowCommand, run_flow};
use report::stderr_reporter;
use rollout::{RolloutArgs, run_rollout};
use train::{TrainArgs, run_train};

/// The choices of `--preset`, listed by `--help` and checked by the parser.
fn preset_choices() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(hgn::train::PRESETS)
}

/// The choices of `--integrator`.
fn integrator_choices() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(hgn::model::IntegratorKind::ALL.map(|k| k.name()))
}

/// The choices of `--protocol` (reference D3).
fn protocol_choices() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(hgn::protocol::Protocol::ALL.map(|p| p.name()))
}

/// The choices of `--system`.
fn system_choices() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(hgn::physics::system_names())
}

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
    Train(Box<TrainArgs>),
    /// Time full training steps (rollout, backward, Adam) of a preset on synthetic frames.
    Bench {
        /// Model preset (vector: a 2-vector state).
        #[arg(long, default_value = "paper", value_parser = preset_choices())]
        preset: String,
        /// A run config file (JSON, as written to RUN/config.json) instead of a preset.
        #[arg(long, conflicts_with = "preset")]
        config: Option<PathBuf>,
        /// Sequences per step [default: the preset's or the config file's].
        #[arg(long)]
        batch_size: Option<usize>,
        /// Timed steps (after 2 untimed warm-up steps).
        #[arg(long, default_value = "5")]
        steps: usize,
        /// Device: cpu, wgpu or vulkan (wgpu:N, vulkan:N: device N).
        #[arg(long, default_value = "cpu")]
        device: hgn::device::DeviceChoice,
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
        #[arg(long, default_value = "8")]
        sequences: usize,
        /// Device of the rollouts (and of an evaluation, if the run has none): cpu, wgpu or
        /// vulkan (wgpu:N, vulkan:N: device N) (GPU devices need --features gpu).
        #[arg(long, default_value = "cpu")]
        device: hgn::device::DeviceChoice,
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
        scale: ScaleArg,
        /// Systems (columns), comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "mass-spring,pendulum,two-body,three-body"
        )]
        systems: Vec<String>,
        /// Variants (rows), comma-separated: hnn (the paper's HNN baseline: a 2-D latent with
        /// a learned H), leapfrog, euler, deterministic, no-f-psi.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "hnn,leapfrog,euler,deterministic,no-f-psi"
        )]
        variants: Vec<String>,
        /// Window protocol of every run: reconstruct (the paper's Table 1: all 31 frames seen,
        /// state at the last, rolled back over them) or forecast (5 frames in, 30 forward).
        #[arg(long, default_value = "reconstruct", value_parser = protocol_choices())]
        protocol: String,
        /// Working and output folder (datasets, runs, table1.md) [default: table1-SCALE].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Training device: cpu, wgpu or vulkan (wgpu:N, vulkan:N: device N).
        #[arg(long, default_value = "cpu")]
        device: hgn::device::DeviceChoice,
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

/// `hgn table1 --scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaleArg {
    /// Minutes on a CPU: a smoke test.
    Tiny,
    /// Hours on a CPU.
    Small,
    /// The paper's data size: for a GPU.
    Paper,
}

impl From<ScaleArg> for hgn::table1::Scale {
    fn from(arg: ScaleArg) -> Self {
        match arg {
            ScaleArg::Tiny => Self::Tiny,
            ScaleArg::Small => Self::Small,
            ScaleArg::Paper => Self::Paper,
        }
    }
}

/// Parses a count; negative or non-numeric values get a plain message.
fn parse_count(s: &str) -> std::result::Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(v) if v < 0 => Err(format!("must not be negative (got {v})")),
        Ok(v) => usize::try_from(v).map_err(|_| format!("{v} is too large")),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// The whole command tree, with two settings made once for every argument: an option that
/// takes a value reads a value that looks like a negative number as its value (`--dt -0.1`
/// parses) instead of as an unknown flag, and every whole-number argument is read by
/// [`parse_count`] (so `--steps -3` gets its message).
fn command() -> clap::Command {
    fn prepare(cmd: clap::Command) -> clap::Command {
        cmd.mut_args(|arg| {
            let takes_value = arg.get_action().takes_values();
            let whole_number = arg.get_value_parser().type_id() == std::any::TypeId::of::<usize>();
            let arg = arg.allow_negative_numbers(takes_value);
            if whole_number {
                arg.value_parser(parse_count)
            } else {
                arg
            }
        })
        .mut_subcommands(prepare)
    }
    prepare(Cli::command())
}

/// Parses the process's arguments.
fn parse() -> clap::error::Result<Cli> {
    Cli::from_arg_matches(&command().try_get_matches()?)
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = match parse() {
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
            // clap's message, reduced to one line: the first, and the choices where it lists them.
            let text = err.render().to_string();
            let first = text.lines().next().unwrap_or("invalid arguments").trim();
            let first = first.strip_prefix("error: ").unwrap_or(first);
            let choices = text
                .lines()
                .map(str::trim)
                .find_map(|l| l.strip_prefix("[possible values: "))
                .and_then(|l| l.strip_suffix(']'))
                .map(|l| format!("; possible values: {l}"))
                .unwrap_or_default();
            eprintln!("error: {first}{choices} (see hgn --help)");
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

/// Overwrites `slot` with a flag's value when the flag was given.
fn set<T>(slot: &mut T, flag: Option<T>) {
    if let Some(value) = flag {
        *slot = value;
    }
}

/// The settings that differ between two JSON configs, as `path: old → new`.
pub(crate) fn config_changes(
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
        Command::Train(args) => run_train(*args),
        Command::Bench {
            preset,
            config,
            batch_size,
            steps,
            device,
        } => run_bench(&preset, config, batch_size, steps, device),
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
        } => run_table1(scale, systems, variants, &protocol, out, device, quiet),
        Command::Rollout(args) => run_rollout(args),
        Command::Plot {
            run,
            out,
            sequences,
            device,
            quiet,
        } => run_plot(run, out, sequences, device, quiet),
        Command::Export { run, out } => {
            let count = hgn::export::export(&run, &out)?;
            println!("wrote {count} tensors to {}", out.display());
            Ok(())
        }
    }
}

/// `hgn plot`: writes a run's pictures into `out` and lists them.
fn run_plot(
    run: PathBuf,
    out: Option<PathBuf>,
    sequences: usize,
    device: hgn::device::DeviceChoice,
    quiet: bool,
) -> Result<()> {
    let opts = hgn::plot::PlotOptions {
        run,
        out,
        sequences,
        device,
        reporter: stderr_reporter(quiet),
    };
    for path in hgn::plot::write_plots(&opts)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `hgn bench`: times `steps` training steps of a preset or a config file and prints the median.
fn run_bench(
    preset: &str,
    config: Option<PathBuf>,
    batch_size: Option<usize>,
    steps: usize,
    device: hgn::device::DeviceChoice,
) -> Result<()> {
    let mut config = match config {
        Some(path) => hgn::train::RunConfig::load(&path)?,
        None => hgn::train::RunConfig::preset(preset)?,
    };
    if let Some(b) = batch_size {
        config.train.batch_size = b;
    }
    anyhow::ensure!(
        config.train.batch_size >= 1 && steps >= 1,
        "--batch-size and --steps must be at least 1"
    );
    let report = hgn::bench::bench(&config, device, 2, steps)?;
    let threads = rayon::current_num_threads();
    println!(
        "hgn bench: preset {}, {} parameters, batch {}, {} rollout steps, device {device}, {threads} CPU threads",
        report.preset, report.parameters, report.batch_size, report.rollout_steps
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
    let f = &report.flops;
    let total = f.total();
    println!(
        "{:.2} GFLOP/step (forward: decoder {:.1} %, encoder {:.1} %, dynamics {:.1} %, f_psi {:.1} %; \
         backward counted as twice the forward)",
        f.training_step() / 1e9,
        100.0 * f.decoder / total,
        100.0 * f.encoder / total,
        100.0 * f.dynamics / total,
        100.0 * f.transform / total,
    );
    let rate = report.step_gflops();
    let peak = match report.fma_peak_gflops {
        Some(peak) => format!(
            "; {:.1} % of the CPU's f32 FMA peak on these threads ({peak:.1} GFLOP/s)",
            100.0 * rate / peak
        ),
        None => String::new(),
    };
    println!(
        "{rate:.1} GFLOP/s = {:.1} % of this device's f32 matrix-product rate ({:.1} GFLOP/s at \
         {n}×{n}){peak}",
        100.0 * rate / report.matmul_gflops,
        report.matmul_gflops,
        n = report.matmul_size,
    );
    Ok(())
}

/// `hgn table1`: runs (or resumes) the table and prints it.
fn run_table1(
    scale: ScaleArg,
    systems: Vec<String>,
    variants: Vec<String>,
    protocol: &str,
    out: Option<PathBuf>,
    device: hgn::device::DeviceChoice,
    quiet: bool,
) -> Result<()> {
    let protocol: hgn::protocol::Protocol = protocol.parse()?;
    let scale = hgn::table1::Scale::from(scale);
    let opts = hgn::table1::Table1Options {
        scale,
        systems,
        variants,
        protocol,
        out: out.unwrap_or_else(|| PathBuf::from(format!("table1-{}-{protocol}", scale.name()))),
        device,
        reporter: stderr_reporter(quiet),
    };
    let table = hgn::table1::run_table1(&opts)?;
    print!("{}", table.markdown);
    println!("wrote {}", opts.out.join("table1.md").display());
    Ok(())
}

//! `hgn eval` and `hgn oracle`.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

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
    #[arg(long, default_value = "1000")]
    pub sequences: usize,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Device for the rollouts: cpu, wgpu or vulkan (wgpu:N, vulkan:N: device N).
    #[arg(long, default_value = "cpu")]
    pub device: hgn::device::DeviceChoice,
    /// Skip the physics oracle (the exact system fitted to the same frames).
    #[arg(long)]
    pub no_oracle: bool,
    /// Posterior draws per sequence for the oracle's expected image.
    #[arg(long, default_value = "64")]
    pub oracle_draws: usize,
    /// Keep each sequence's Table 1 figures (model, baseline, oracles) in the report.
    #[arg(long)]
    pub per_sequence: bool,
    /// Also refine each inferred state by N Adam steps on the Table 1 error, every weight
    /// fixed: how much of the error is the encoder's (slow: a backward pass per step).
    #[arg(long, value_name = "N")]
    pub refine: Option<usize>,
    /// Adam's learning rate for --refine, in latent units.
    #[arg(long, default_value = "0.01")]
    pub refine_lr: f64,
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
    #[arg(long, default_value = "200")]
    pub sequences: usize,
    /// forecast (fit frames 0..K, score the 30 from K − 1) or reconstruct (fit and score the
    /// first K frames).
    #[arg(long, default_value = "forecast", value_parser = super::protocol_choices())]
    pub protocol: String,
    /// K: frames fitted [default: 5 for forecast, 31 for reconstruct].
    #[arg(long)]
    pub inference_frames: Option<usize>,
    /// Posterior draws per sequence for the expected image.
    #[arg(long, default_value = "64")]
    pub draws: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run_eval(args: EvalArgs) -> Result<()> {
    use hgn::data::format::Split;
    let splits = match args.split {
        SplitArg::Train => vec![Split::Train],
        SplitArg::Test => vec![Split::Test],
        SplitArg::Both => vec![Split::Train, Split::Test],
    };
    let opts = hgn::eval::EvalOptions {
        run: args.run.clone(),
        data: args.data,
        splits,
        max_sequences: args.sequences,
        reporter: super::stderr_reporter(args.quiet),
        device: args.device,
        oracle: (!args.no_oracle).then(|| hgn::oracle::OracleOptions {
            draws: args.oracle_draws.max(2),
            seed: 0,
        }),
        per_sequence: args.per_sequence,
        refine: args.refine.map(|iterations| hgn::eval::RefineOptions {
            iterations,
            learning_rate: args.refine_lr,
        }),
    };
    let report = hgn::eval::evaluate_run(&opts)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
        println!("wrote {}", args.run.join(hgn::run::EVAL_FILE).display());
    }
    Ok(())
}

pub fn run_oracle(args: OracleArgs) -> Result<()> {
    use hgn::data::format::Split;
    use hgn::protocol::Protocol;
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
    let opts = hgn::oracle::DatasetOracleOptions {
        data: args.data.clone(),
        split,
        max_sequences: args.sequences,
        protocol,
        inference_frames: k,
        scored_frames: hgn::eval::TABLE1_FRAMES,
        oracle: hgn::oracle::OracleOptions {
            draws: args.draws.max(2),
            seed: 0,
        },
    };
    let bar = super::report::bar(
        args.sequences as u64,
        !args.quiet && std::io::stderr().is_terminal(),
        "oracle {bar:25.cyan/blue} {pos}/{len} sequences  eta {eta}",
    );
    let report = hgn::oracle::dataset_oracle(&opts, &|done| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        // Frame indices as the half-open range they cover.
        let span = |frames: &[usize]| match (frames.first(), frames.last()) {
            (Some(a), Some(b)) => format!("{a}..{}", b + 1),
            _ => "none".into(),
        };
        println!(
            "hgn oracle: {} {} split, {} sequences, {} protocol (fit frames {}, score frames {}), {} draws",
            report.data.display(),
            report.split,
            report.sequences,
            report.protocol,
            span(&report.frames.fitted),
            span(&report.frames.scored),
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

//! `hgn generate` and `hgn systems`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

use super::*;
use hgn::data::{GenerateOptions, generate};
use hgn::physics::{find_system, system_names};

/// Flags of `hgn generate`. Defaults follow the paper, except the number of sequences.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// System to simulate (see `hgn systems`).
    #[arg(long, default_value = "pendulum", value_parser = super::system_choices())]
    pub system: String,
    /// Output folder [default: data/SYSTEM].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Training sequences (the paper uses 50000).
    #[arg(long, default_value = "5000")]
    pub train: usize,
    /// Test sequences (the paper uses 10000).
    #[arg(long, default_value = "1000")]
    pub test: usize,
    /// Frames per training sequence (the authors: 5 inference + 30 target frames, overlapping by one).
    #[arg(long, default_value = "34")]
    pub seq_len: usize,
    /// Frames per test sequence [default: seq-len + 60, room for 60-step extrapolation].
    #[arg(long)]
    pub test_seq_len: Option<usize>,
    /// Time between frames [default: the system's, 0.125 for the paper's systems].
    #[arg(long)]
    pub dt: Option<f64>,
    /// Seed of every random draw; recorded in meta.json.
    #[arg(long, default_value = "0")]
    pub seed: u64,
    /// Image height and width in pixels.
    #[arg(long, default_value = "32")]
    pub image_size: usize,
    /// Observation noise σ on every state coordinate [default: the system's, e.g. 0.1 for pendulum].
    #[arg(long)]
    pub noise: Option<f64>,
    /// Replace an existing dataset in the output folder.
    #[arg(long)]
    pub overwrite: bool,
    /// Worker threads [default: all cores]; the output does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn run_generate(args: GenerateArgs) -> Result<()> {
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
    opts.reporter = super::stderr_reporter(args.quiet);
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
        summary.out.join(hgn::data::format::PREVIEW_FILE).display()
    );
    Ok(())
}

pub fn print_systems() {
    for spec in SYSTEMS {
        println!("{}  —  {}", spec.name, spec.summary);
        println!("    {}", spec.hamiltonian);
        let params: Vec<String> = spec
            .params
            .iter()
            .map(|p| hgn::physics::catalog::format_range(p.name, p.low, p.high))
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

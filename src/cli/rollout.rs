//! `hgn rollout`: its flags, and the lines saying what it wrote (the work is `hgn::rollout`).

use std::path::PathBuf;

use clap::Args;

use super::*;

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
    #[arg(long, default_value = "0")]
    pub index: usize,
    /// Integration steps [default: as far as the recorded sequence goes; 60 with --prior].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Multiply the model's dt: 2 runs the dynamics twice as fast, 0.5 in slow motion.
    #[arg(long, default_value = "1")]
    pub dt_scale: f64,
    /// Infer the state at the last frame and integrate backward in time.
    #[arg(long)]
    pub backward: bool,
    /// Draw new trajectories from the prior instead of showing a test sequence.
    #[arg(long)]
    pub prior: bool,
    /// Trajectories drawn with --prior (1 to 64).
    #[arg(long, default_value = "4")]
    pub count: usize,
    /// Seed of the prior draws.
    #[arg(long, default_value = "0")]
    pub seed: u64,
    /// Upscaling of each 32×32 frame (1 to 16).
    #[arg(long, default_value = "4")]
    pub scale: usize,
    /// Hundredths of a second per GIF frame.
    #[arg(long, default_value = "10")]
    pub delay: u16,
    /// Device: cpu, wgpu or vulkan (wgpu:N, vulkan:N: device N) (GPU devices need --features gpu).
    #[arg(long, default_value = "cpu")]
    pub device: hgn::device::DeviceChoice,
}

/// `hgn rollout`: writes the animation or strip and says what it wrote.
pub fn run_rollout(args: RolloutArgs) -> Result<()> {
    let opts = hgn::rollout::RolloutOptions {
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
        device: args.device,
    };
    let summary = hgn::rollout::write_rollout(&opts)?;
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

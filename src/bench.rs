//! `hgn bench`: time full training steps (rollout, backward, Adam) of a preset on synthetic
//! frames, and report the median milliseconds per step, sequences per second and peak memory.
//!
//! The step is the same code `hgn train` runs (model forward, loss, one backward, Adam update,
//! decoding the preset's `decoded_frames` of the rollout); only the batch comes from a fixed
//! random tensor instead of a dataset, so no data is needed.

use std::time::Instant;

use anyhow::Result;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Distribution, Tensor};

use crate::device::DeviceChoice;
use crate::model::loss;
use crate::train::RunConfig;

/// What `hgn bench` measured.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Preset name.
    pub preset: String,
    /// Sequences per step.
    pub batch_size: usize,
    /// Integration steps per sequence.
    pub rollout_steps: usize,
    /// Milliseconds of each timed step.
    pub step_ms: Vec<f64>,
    /// Median milliseconds per step.
    pub median_ms: f64,
    /// Peak resident memory of the process, MiB (Linux `VmHWM`), if known.
    pub peak_mib: Option<f64>,
}

/// Times `steps` training steps after `warmup` untimed ones.
pub fn bench(
    config: &RunConfig,
    device: DeviceChoice,
    warmup: usize,
    steps: usize,
) -> Result<BenchReport> {
    config.validate()?;
    let m = &config.model;
    let base = device.device()?;
    base.seed(config.train.seed);
    let dev = base.autodiff();
    let mut model = m.init(&dev);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let b = config.train.batch_size;
    let s = m.image_size;
    let window = config.window();
    let direction = window.direction(false);
    let frames = Tensor::<5>::random([b, window.len(), 3, s, s], Distribution::Default, &dev);
    let (z_channels, z_size) = m.z_shape();
    let noise = Tensor::<4>::random(
        [b, z_channels, z_size, z_size],
        Distribution::Normal(0.0, 1.0),
        &dev,
    );
    // The states a training step decodes: all, or `decoded_frames` of them spread evenly
    // (training draws them at random; the cost is the same).
    let states = m.rollout_steps + 1;
    let decoded: Vec<usize> = match config.train.decoded_frames {
        Some(n) if n < states => (0..n).map(|i| i * (states - 1) / (n - 1).max(1)).collect(),
        _ => (0..states).collect(),
    };
    let mut step_ms = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        let start = Instant::now();
        let (inference, targets) = window.parts(frames.clone(), &decoded, direction);
        let output = model.forward_decoding(
            inference,
            Some(noise.clone()),
            direction.signed(m.dt),
            m.rollout_steps,
            &decoded,
        );
        let parts = loss(&model, &output, targets, config.objective);
        let grads = GradientsParams::from_grads(parts.total.backward(), &model);
        model = optim.step(config.train.learning_rate, model, grads);
        // Wait for the update to finish (a sync point on asynchronous backends).
        let _ = model.geco_lambda.val().into_data();
        if i >= warmup {
            step_ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    let mut sorted = step_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let median_ms = sorted[sorted.len() / 2];
    Ok(BenchReport {
        preset: config.preset.clone(),
        batch_size: b,
        rollout_steps: m.rollout_steps,
        step_ms,
        median_ms,
        peak_mib: peak_memory_mib(),
    })
}

/// Peak resident set size of this process in MiB, from `/proc/self/status`.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

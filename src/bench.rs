//! `hgn bench`: time full training steps (rollout, backward, Adam) of a preset on synthetic
//! frames, and report the median milliseconds per step, sequences per second, peak memory, and
//! the step's floating-point rate beside the device's own f32 matrix-product rate.
//!
//! The step is the same code `hgn train` runs (model forward, loss, one backward, Adam update,
//! decoding the preset's `decoded_frames` of the rollout); only the batch comes from a fixed
//! random tensor instead of a dataset, so no data is needed.

use std::time::Instant;

use anyhow::Result;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Distribution, Tensor};

use crate::device::DeviceChoice;
use crate::model::{ForwardFlops, loss};
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
    /// Trainable parameters of the model.
    pub parameters: usize,
    /// Milliseconds of each timed step.
    pub step_ms: Vec<f64>,
    /// Median milliseconds per step.
    pub median_ms: f64,
    /// Peak resident memory of the process, MiB (Linux `VmHWM`), if known.
    pub peak_mib: Option<f64>,
    /// Floating-point operations of one step's forward pass, by network
    /// ([`ForwardFlops::training_step`] gives the step's).
    pub flops: ForwardFlops,
    /// The device's f32 matrix-product rate, GFLOP/s ([`matmul_gflops`]), measured after the
    /// steps in the same process: the rate a step's is set against.
    pub matmul_gflops: f64,
    /// Rows (and columns) of the matrices of [`Self::matmul_gflops`].
    pub matmul_size: usize,
    /// On the CPU: its f32 FMA rate on the step's threads, GFLOP/s ([`fma_peak_gflops`]), the
    /// machine's peak.
    pub fma_peak_gflops: Option<f64>,
}

impl BenchReport {
    /// The step's rate: its floating-point operations over the median step time, GFLOP/s.
    pub fn step_gflops(&self) -> f64 {
        self.flops.training_step() / (self.median_ms * 1e6)
    }
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
    let dev = base.clone().autodiff();
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
    let flops = model.forward_flops(b, s, m.rollout_steps, decoded.len());
    // Large enough for the CPU's kernel to reach its rate; on a GPU, twice as large in each
    // dimension (a rate from a larger product would be higher still).
    let matmul_size = if device == DeviceChoice::Cpu {
        1024
    } else {
        2048
    };
    Ok(BenchReport {
        flops,
        matmul_size,
        matmul_gflops: matmul_gflops(&base, matmul_size, 10),
        fma_peak_gflops: (device == DeviceChoice::Cpu)
            .then(|| fma_peak_gflops(rayon::current_num_threads(), 0.5))
            .flatten(),
        preset: config.preset.clone(),
        batch_size: b,
        rollout_steps: m.rollout_steps,
        parameters: model.num_params(),
        step_ms,
        median_ms,
        peak_mib: peak_memory_mib(),
    })
}

/// The best rate, GFLOP/s (`2n³` operations per product), of `repeats` f32 products of two
/// `n × n` matrices on `device`, after one untimed: what the backend's matrix kernel reaches on
/// this machine, the ceiling a step made of convolutions (matrix products underneath) can
/// approach.
pub fn matmul_gflops(device: &Device, n: usize, repeats: usize) -> f64 {
    let a = Tensor::<2>::random([n, n], Distribution::Default, device);
    let b = Tensor::<2>::random([n, n], Distribution::Default, device);
    let mut best = f64::INFINITY;
    for i in 0..=repeats {
        let start = Instant::now();
        let c = a.clone().matmul(b.clone());
        // One element read back waits for the product on asynchronous backends.
        let _ = c.slice([0..1, 0..1]).into_data();
        if i > 0 {
            best = best.min(start.elapsed().as_secs_f64());
        }
    }
    2.0 * (n as f64).powi(3) / best / 1e9
}

/// The CPU's f32 fused multiply–add rate, GFLOP/s, on `threads` threads: each runs 12
/// independent chains of vector FMAs (AVX-512, or AVX2 with FMA; 2 operations per lane) for
/// about `seconds`, so nothing but the FMA units limits it. `None` where neither is available.
pub fn fma_peak_gflops(threads: usize, seconds: f64) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    {
        let lanes = if is_x86_feature_detected!("avx512f") {
            16
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            8
        } else {
            return None;
        };
        // FMAs per pass of one thread: 12 chains × `lanes`.
        let chains = |passes: usize| {
            if lanes == 16 {
                // SAFETY: AVX-512F was detected at run time.
                unsafe { x86::fma_chains_avx512(passes) }
            } else {
                // SAFETY: AVX2 and FMA were detected at run time.
                unsafe { x86::fma_chains_avx2(passes) }
            }
        };
        let calibrate = 1_000_000;
        let start = Instant::now();
        std::hint::black_box(chains(calibrate));
        let passes = (seconds / start.elapsed().as_secs_f64() * calibrate as f64).max(1.0) as usize;
        let start = Instant::now();
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|_| scope.spawn(move || std::hint::black_box(chains(passes))))
                .collect();
            workers.into_iter().for_each(|w| {
                let _ = w.join();
            });
        });
        let flops = 2.0 * (threads * passes * 12 * lanes) as f64;
        Some(flops / start.elapsed().as_secs_f64() / 1e9)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (threads, seconds);
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// Defines `$name(passes) -> f32`: `passes` rounds of 12 independent `$lanes`-lane FMA chains
    /// with the given intrinsics; returns the sum of every lane.
    macro_rules! fma_chains {
        ($name:ident, $features:literal, $lanes:literal, $set1:ident, $zero:ident, $fmadd:ident, $store:ident) => {
            #[doc = concat!("`passes` rounds of 12 independent ", stringify!($lanes), "-lane FMA chains; returns their sum.")]
            #[target_feature(enable = $features)]
            pub(super) fn $name(passes: usize) -> f32 {
                let (a, b) = ($set1(0.999), $set1(1e-3));
                let mut acc = [$zero(); 12];
                for _ in 0..passes {
                    for x in acc.iter_mut() {
                        *x = $fmadd(*x, a, b);
                    }
                }
                let mut lanes = [0f32; $lanes];
                acc.iter()
                    .map(|&x| {
                        // SAFETY: `lanes` holds `$lanes` f32, the width of the store.
                        unsafe { $store(lanes.as_mut_ptr(), x) };
                        lanes.iter().sum::<f32>()
                    })
                    .sum()
            }
        };
    }

    fma_chains!(
        fma_chains_avx512,
        "avx512f",
        16,
        _mm512_set1_ps,
        _mm512_setzero_ps,
        _mm512_fmadd_ps,
        _mm512_storeu_ps
    );
    fma_chains!(
        fma_chains_avx2,
        "avx2,fma",
        8,
        _mm256_set1_ps,
        _mm256_setzero_ps,
        _mm256_fmadd_ps,
        _mm256_storeu_ps
    );
}

/// Peak resident set size of this process in MiB, from `/proc/self/status`.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::layers::{Padding, conv, conv_flops};
    use crate::model::{IntegratorKind, gradient_evaluations};

    #[test]
    fn a_convolution_counts_two_operations_per_multiply_add() {
        let device = Device::flex();
        // 3 → 8 channels, 3×3, SAME on 10×10: 100 outputs of 8 channels, 27 multiply–adds each.
        let same = conv(3, 8, 3, 1, Padding::Same, 10, &device);
        assert_eq!(
            conv_flops(&same, [10, 10]),
            (2.0 * 8.0 * 27.0 * 100.0, [10, 10])
        );
        // 2×2, stride 2, VALID on 32×32: a 16×16 output of 32 channels, 64 multiply–adds each.
        let valid = conv(16, 32, 2, 2, Padding::Valid, 32, &device);
        assert_eq!(
            conv_flops(&valid, [32, 32]),
            (2.0 * 32.0 * 64.0 * 256.0, [16, 16])
        );
        // An even kernel under SAME (padding 1 before, 2 after) keeps the size.
        let even = conv(4, 4, 4, 1, Padding::Same, 8, &device);
        assert_eq!(conv_flops(&even, [8, 8]).1, [8, 8]);
        for (layer, channels, size) in [(&same, 3, 10), (&valid, 16, 32), (&even, 4, 8)] {
            let out = layer.forward(Tensor::<4>::zeros([1, channels, size, size], &device));
            let [_, _, h, w] = out.dims();
            assert_eq!(conv_flops(layer, [size, size]).1, [h, w]);
        }
    }

    #[test]
    fn integrators_are_counted_as_they_evaluate_the_gradients() {
        use IntegratorKind::*;
        // (∂H/∂q, ∂H/∂p) over 30 steps. A separable leapfrog carries its end force into the
        // next step; a joint H cannot, so each step evaluates ∂H/∂q twice.
        for (kind, separable, calls) in [
            (Leapfrog, true, (31, 30)),
            (Leapfrog, false, (60, 30)),
            (Euler, true, (30, 30)),
            (Rk4, true, (120, 120)),
            (Yoshida4, true, (91, 90)),
        ] {
            assert_eq!(
                gradient_evaluations(kind, separable, 30),
                calls,
                "{kind:?}, separable {separable}"
            );
        }
    }

    #[test]
    fn the_paper_step_is_299_gflop_nearly_all_in_the_decoder() {
        // The figure the project's speed work is measured against: a `paper` step at batch
        // 16, 31 frames decoded, is 299 GFLOP, 98.6 % of it in the decoder.
        let config = RunConfig::preset("paper").unwrap();
        let m = &config.model;
        let model = m.init(&Device::flex());
        let f = model.forward_flops(16, m.image_size, m.rollout_steps, m.rollout_steps + 1);
        let step = f.training_step();
        assert!((step / 299e9 - 1.0).abs() < 0.01, "{step:e}");
        assert!((f.decoder / f.total() - 0.986).abs() < 0.002, "{f:?}");
        // Linear in the batch.
        let half = model.forward_flops(8, m.image_size, m.rollout_steps, m.rollout_steps + 1);
        assert!((2.0 * half.total() / f.total() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_count_follows_each_preset_through_its_networks() {
        // The encoder's and f_ψ's counts walk the layers as `forward` does: the sizes they
        // reach are the sizes the networks produce.
        let device = Device::flex();
        for preset in ["tiny", "vector", "paper", "campusai"] {
            let config = RunConfig::preset(preset).unwrap();
            let m = &config.model;
            let model = m.init(&device);
            let k = m.num_inference_frames;
            let s = m.image_size;
            let frames = Tensor::<5>::zeros([1, k, 3, s, s], &device);
            let (q, _, mean, _) = model.infer(frames, None);
            let (encoder, z_size) = model.encoder.flops(1, s);
            assert!(encoder > 0.0, "{preset}");
            assert_eq!(z_size, mean.dims()[2], "{preset}: z");
            let q_size = match &model.transform {
                Some(t) => t.flops(1, z_size).1,
                None => z_size,
            };
            assert_eq!(q_size, q.dims()[2], "{preset}: q");
            let f = model.forward_flops(1, s, 3, 4);
            assert!(f.decoder > 0.0 && f.dynamics > 0.0, "{preset}: {f:?}");
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_fma_kernels_run_every_chain_they_count() {
        // Each lane of each of the 12 chains steps x ← 0.999·x + 0.001 from 0 once per pass.
        let passes = 1000;
        let mut x = 0f32;
        for _ in 0..passes {
            x = x.mul_add(0.999, 1e-3);
        }
        let check = |lanes: f32, sum: f32| {
            let want = 12.0 * lanes * x;
            assert!((sum - want).abs() <= 1e-4 * want, "{sum} vs {want}");
        };
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: detected above.
            check(16.0, unsafe { x86::fma_chains_avx512(passes) });
        }
        if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            // SAFETY: detected above.
            check(8.0, unsafe { x86::fma_chains_avx2(passes) });
        }
        if let Some(rate) = fma_peak_gflops(1, 0.01) {
            assert!(rate.is_finite() && rate > 0.0, "{rate}");
        }
    }
}

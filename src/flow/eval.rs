//! Held-out likelihoods, samples and the evaluation report of a trained flow (`hgn flow eval`,
//! `hgn flow sample`). Likelihoods are reported in the original coordinates:
//! `log p(x) = log p̃(x̃) − Σ_j log std_j`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, ensure};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::config::{FlowData, FlowKind, FlowRunConfig};
use super::load::load_flow;
use super::net::FlowNet;
use super::nhf::LN_2PI;
use super::points::read_points;
use super::targets;
use super::train::EarlyStop;
use crate::device::DeviceChoice;
use crate::physics::sampling::standard_normal;
use crate::rng::{Stream, stream_rng};

/// A tensor's values as f64.
pub(crate) fn to_f64<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .expect("float tensor data")
}

/// Log-likelihoods (nats, original coordinates) of row-major `points`, and for the NHF the
/// one-sample ELBOs (for RealNVP the same exact values). The NHF's likelihood is the
/// importance-weighted estimate with `samples` posterior draws (seeded: [`Stream::FlowEvalNoise`], index = chunk).
pub fn log_likelihoods(
    model: &FlowNet,
    config: &FlowRunConfig,
    points: &[f64],
    samples: usize,
    device: &Device,
) -> (Vec<f64>, Vec<f64>) {
    let d = config.dim();
    let n = points.len() / d;
    let log_scale = config.log_scale_sum();
    let (mut ll, mut elbo) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let s = if model.nhf.is_some() {
        samples.max(1)
    } else {
        1
    };
    let chunk = (8192 / s).max(1);
    for (c, start) in (0..n).step_by(chunk).enumerate() {
        let m = chunk.min(n - start);
        let rows = config.standardise(&points[start * d..(start + m) * d]);
        // Repeat the chunk s times: [s·m, d], sample-major.
        let tiled: Vec<f32> = (0..s).flat_map(|_| rows.iter().copied()).collect();
        let x = Tensor::<2>::from_data(TensorData::new(tiled, [s * m, d]), device);
        let mut rng = stream_rng(0, Stream::FlowEvalNoise, c as u64);
        let noise: Vec<f32> = (0..s * m * d)
            .map(|_| standard_normal(&mut rng) as f32)
            .collect();
        let eps = Tensor::<2>::from_data(TensorData::new(noise, [s * m, d]), device);
        let w = to_f64(model.objective(x, eps));
        for i in 0..m {
            let ws: Vec<f64> = (0..s).map(|k| w[k * m + i]).collect();
            let max = ws.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = if max.is_finite() {
                max + (ws.iter().map(|v| (v - max).exp()).sum::<f64>() / s as f64).ln()
            } else {
                max
            };
            ll.push(lse - log_scale);
            elbo.push(crate::metrics::mean(&ws) - log_scale);
        }
    }
    (ll, elbo)
}

/// `count` samples in original coordinates (row-major `[count × d]`), seeded.
pub fn draw_samples(
    model: &FlowNet,
    config: &FlowRunConfig,
    count: usize,
    seed: u64,
    device: &Device,
) -> Vec<f64> {
    let d = config.dim();
    let base = model.base_dim(d);
    let mut out = Vec::with_capacity(count * d);
    let mut rng = stream_rng(seed, Stream::FlowSamples, 0);
    for start in (0..count).step_by(8192) {
        let m = 8192.min(count - start);
        let noise: Vec<f32> = (0..m * base)
            .map(|_| standard_normal(&mut rng) as f32)
            .collect();
        let z = Tensor::<2>::from_data(TensorData::new(noise, [m, base]), device);
        let x = model.sample(z, d);
        let values: Vec<f32> = to_f64(x).into_iter().map(|v| v as f32).collect();
        out.extend(config.unstandardise(&values));
    }
    out
}

/// What `hgn flow eval` reports.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlowEvalReport {
    /// The run.
    pub run: PathBuf,
    /// `nhf` or `realnvp`.
    pub model: String,
    /// The data trained on.
    pub data: FlowData,
    /// The points evaluated (the run's held-out split unless a file was given).
    pub eval_data: PathBuf,
    /// Points evaluated.
    pub points: usize,
    /// Test negative log-likelihood, nats per point (NHF: importance-weighted estimate).
    pub test_nll: f64,
    /// Half-width of its 95 % t interval over points.
    pub test_nll_ci95: Option<f64>,
    /// Negative ELBO (NHF; a bound above the NLL), equal to the NLL for RealNVP.
    pub test_nll_bound: f64,
    /// NLL of the Gaussian with the training data's mean and per-coordinate std (the flow at
    /// identity).
    pub gaussian_baseline_nll: f64,
    /// Importance samples per point (1 for RealNVP).
    pub iw_samples: usize,
    /// Trainable parameters.
    pub parameters: usize,
    /// Steps trained.
    pub steps: usize,
    /// Seconds of training.
    pub train_seconds: f64,
    /// Samples drawn per second (100,000 draws).
    pub samples_per_second: f64,
    /// NLL of the target's own density (the `gaussian` target only).
    pub true_nll: Option<f64>,
    /// Early stopping's state at the end of training (runs with a patience).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStop>,
}

/// Evaluates a flow run on its held-out points or on `data`.
pub fn evaluate_flow(
    run: &Path,
    data: Option<&Path>,
    samples: Option<usize>,
) -> Result<FlowEvalReport> {
    let device = DeviceChoice::Cpu.device()?;
    let flow = load_flow(run, &device)?;
    let config = &flow.config;
    let d = config.dim();
    let eval_path = data
        .map(Path::to_path_buf)
        .unwrap_or_else(|| run.join("test.npy"));
    let (points, file_d) = read_points(&eval_path)?;
    ensure!(
        file_d == d,
        "{} has {file_d} columns but the flow models {d}",
        eval_path.display()
    );
    let s = samples.unwrap_or(config.train.iw_samples);
    ensure!(s >= 1, "--samples must be at least 1");
    let (ll, elbo) = log_likelihoods(&flow.model, config, &points, s, &device);
    let nll: Vec<f64> = ll.iter().map(|v| -v).collect();
    let (test_nll, ci) = crate::metrics::mean_with_ci95(&nll);
    let baseline: Vec<f64> = points
        .chunks_exact(d)
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(j, v)| {
                    let z = (v - config.shift[j]) / config.scale[j];
                    0.5 * z * z + 0.5 * LN_2PI + config.scale[j].ln()
                })
                .sum()
        })
        .collect();
    let started = Instant::now();
    let drawn = draw_samples(&flow.model, config, 100_000, 0, &device);
    let seconds = started.elapsed().as_secs_f64();
    let true_nll = match &config.data {
        FlowData::Target(name) if name == "gaussian" && d == 2 => Some(-crate::metrics::mean(
            &points
                .chunks_exact(2)
                .map(|p| targets::gaussian_log_density([p[0], p[1]]))
                .collect::<Vec<_>>(),
        )),
        _ => None,
    };
    Ok(FlowEvalReport {
        run: run.to_path_buf(),
        model: config.kind.name().into(),
        data: config.data.clone(),
        eval_data: eval_path,
        points: nll.len(),
        test_nll,
        test_nll_ci95: ci.is_finite().then_some(ci),
        test_nll_bound: -crate::metrics::mean(&elbo),
        gaussian_baseline_nll: crate::metrics::mean(&baseline),
        iw_samples: if config.kind == FlowKind::Nhf { s } else { 1 },
        parameters: flow.model.num_params(),
        steps: flow.step,
        train_seconds: flow.seconds,
        samples_per_second: (drawn.len() / d) as f64 / seconds.max(1e-9),
        true_nll,
        early_stop: flow.early_stop,
    })
}

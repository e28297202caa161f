//! The physics oracle (reference D6): the best a model can score from the frames it sees.
//!
//! For each sequence, the true system's state is fitted to the observed (noisy) positions of the
//! frames the model's encoder sees ([`crate::physics::fit`]), integrated exactly, rendered with
//! the dataset's renderer and scored with the Table 1 metric against the same target frames as
//! the model:
//!
//! - **point oracle**: the fitted state's trajectory, rendered sharp;
//! - **expected-image oracle**: the average of the renders of draws from the predictive
//!   distribution of the target frames: a state from the fit's Laplace posterior, integrated
//!   exactly, each frame's state observed with the dataset's noise `σ` as the targets were. This is
//!   the MSE-optimal prediction given the frames (the bound that counts). Its score is the
//!   unbiased estimate `mean_px (x̄ − y)² − mean_px s²/M` of the error of the exact expectation
//!   from `M` draws (`s²`: the per-pixel sample variance), so it does not depend on `M` on average;
//! - **noise floor**: the clean states rendered, against the noisy targets.
//!
//! Which frames are fitted and which are scored is the protocol's ([`OracleFrames::of`]).

use std::path::Path;

use anyhow::{Context, Result, ensure};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::dataset::SequenceDataset;
use crate::data::format::{DatasetMeta, Split};
use crate::data::npy::read_f64;
use crate::physics::fit::{StateFit, cholesky, fit_state, trajectory};
use crate::physics::integrate::Tolerance;
use crate::physics::sampling::standard_normal;
use crate::physics::trajectory::RenderSettings;
use crate::physics::{HamiltonianSystem, SystemSpec, find_system};
use crate::protocol::Protocol;
use crate::rng::{Stream, stream_rng};

/// The frames an oracle fits and the frames it is scored on, as indices into a sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleFrames {
    /// Frames whose observed positions are fitted (the encoder's frames).
    pub fitted: Vec<usize>,
    /// Frames scored (the model's Table 1 frames).
    pub scored: Vec<usize>,
}

impl OracleFrames {
    /// The frames of the Table 1 metric under `protocol` with `k` inference frames and `scored`
    /// frames scored: forecast fits `0..k` and scores `k − 1 .. k − 1 + scored`; reconstruct fits
    /// and scores `0..k`.
    pub fn of(protocol: Protocol, k: usize, scored: usize) -> Self {
        match protocol {
            Protocol::Forecast => Self {
                fitted: (0..k).collect(),
                scored: (k - 1..k - 1 + scored).collect(),
            },
            Protocol::Reconstruct => Self {
                fitted: (0..k).collect(),
                scored: (0..k).collect(),
            },
        }
    }
}

/// Settings of an oracle computation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OracleOptions {
    /// Posterior draws per sequence for the expected image.
    pub draws: usize,
    /// Seed of the draws (stream [`Stream::OracleDraws`], index = sequence).
    pub seed: u64,
}

impl Default for OracleOptions {
    fn default() -> Self {
        Self { draws: 64, seed: 0 }
    }
}

/// The oracle's scores on one sequence, ×1e4 per-pixel MSE averaged over the scored frames.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceOracle {
    /// The fitted state rendered sharp.
    pub point: f64,
    /// The posterior-averaged image (unbiased estimate).
    pub expected: f64,
    /// The clean state rendered.
    pub noise_floor: f64,
    /// `expected` for each scored frame, in [`OracleFrames::scored`] order (its mean is
    /// `expected`).
    pub expected_per_frame: Vec<f64>,
}

/// A dataset split opened for the oracle: the system, the observations and the target frames.
pub struct OracleData {
    spec: SystemSpec,
    meta: DatasetMeta,
    frames: SequenceDataset,
    observed: Vec<f64>,
    clean: Vec<f64>,
    params: Vec<f64>,
    seq_len: usize,
    dim: usize,
    num_params: usize,
}

impl OracleData {
    /// Reads `observed_states.npy`, `states.npy` and `params.npy` of `split` and opens its frames.
    pub fn open(dir: &Path, split: Split) -> Result<Self> {
        let meta = DatasetMeta::load(dir)?;
        let base = find_system(&meta.system).with_context(|| {
            format!(
                "{}: the physics oracle does not know the system '{}'",
                dir.display(),
                meta.system
            )
        })?;
        let mut spec = base.clone();
        spec.friction = meta.friction;
        ensure!(
            (spec.canvas().half_size - meta.canvas_half_size).abs() < 1e-9,
            "{}: the canvas of meta.json differs from the system's; the oracle cannot re-render it",
            dir.display()
        );
        let frames = SequenceDataset::open(dir, split)?;
        let folder = dir.join(split.name());
        let read = |name: &str| -> Result<(Vec<usize>, Vec<f64>)> {
            read_f64(&folder.join(format!("{name}.npy")))
        };
        let (obs_shape, observed) = read("observed_states")?;
        let (clean_shape, clean) = read("states")?;
        let (param_shape, params) = read("params")?;
        let dim = 2 * spec.dof();
        let (n, t) = (frames.num_sequences, frames.seq_len);
        ensure!(
            obs_shape == [n, t, dim] && clean_shape == [n, t, dim],
            "{}: the state arrays have shapes {obs_shape:?} and {clean_shape:?}, not [{n}, {t}, {dim}]",
            folder.display()
        );
        ensure!(
            param_shape.len() == 2 && param_shape[0] == n,
            "{}: params.npy has shape {param_shape:?}, not [{n}, P]",
            folder.display()
        );
        let num_params = param_shape[1];
        ensure!(
            spec.split_params(&params[..num_params]).is_some(),
            "{}: params.npy has {num_params} columns, not those of {}",
            folder.display(),
            spec.name
        );
        Ok(Self {
            spec,
            meta,
            frames,
            observed,
            clean,
            params,
            seq_len: t,
            dim,
            num_params,
        })
    }

    /// Sequences in the split.
    pub fn num_sequences(&self) -> usize {
        self.frames.num_sequences
    }

    /// Frames per sequence.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    fn settings(&self) -> RenderSettings {
        RenderSettings {
            seq_len: self.seq_len,
            dt: self.meta.dt,
            noise_std: self.meta.noise_std,
            image_size: self.meta.image_size,
            tolerance: Tolerance {
                rtol: self.meta.rtol,
                atol: self.meta.atol,
            },
        }
    }

    /// Renders states `[T × dim]` of sequence `index` as channels-first frames in [0, 1]
    /// (`[T × 3·S·S]`, the layout of [`SequenceDataset::read_window`]).
    fn render(&self, index: usize, states: &[f64]) -> Vec<f32> {
        let row = &self.params[index * self.num_params..(index + 1) * self.num_params];
        let (physical, hues, offset) = self.spec.split_params(row).expect("checked at open");
        let system = self.spec.system_from_params(physical);
        let s = self.meta.image_size;
        let hwc = self.spec.render(system.as_ref(), states, hues, offset, s);
        let plane = s * s;
        let mut out = vec![0f32; hwc.len()];
        for (frame, dst) in hwc
            .chunks_exact(3 * plane)
            .zip(out.chunks_exact_mut(3 * plane))
        {
            for (pixel, rgb) in frame.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    dst[c * plane + pixel] = rgb[c] as f32 / 255.0;
                }
            }
        }
        out
    }

    /// The true observables of sequence `index` at `frame` for [`crate::probe`]: every body's
    /// position `(x, y)` from the clean state, then the momenta; with their names and the count of
    /// position entries.
    pub fn observables(&self, index: usize, frame: usize) -> (Vec<String>, Vec<f64>, usize) {
        let len = self.seq_len * self.dim;
        let state =
            &self.clean[index * len + frame * self.dim..index * len + (frame + 1) * self.dim];
        let row = &self.params[index * self.num_params..(index + 1) * self.num_params];
        let (physical, _, _) = self.spec.split_params(row).expect("checked at open");
        let system = self.spec.system_from_params(physical);
        let dof = self.dim / 2;
        let mut positions = vec![[0.0; 2]; system.num_bodies()];
        system.body_positions(&state[..dof], &mut positions);
        let mut names = vec![];
        let mut values = vec![];
        for (b, [x, y]) in positions.iter().enumerate() {
            names.push(format!("x{}", b + 1));
            names.push(format!("y{}", b + 1));
            values.push(*x);
            values.push(*y);
        }
        let count = values.len();
        for (j, name) in self.meta.state_names[dof..].iter().enumerate() {
            names.push(name.clone());
            values.push(state[dof + j]);
        }
        (names, values, count)
    }

    /// The states of `frames` picked from a trajectory `[T × dim]`.
    fn pick(&self, trajectory: &[f64], frames: &[usize]) -> Vec<f64> {
        frames
            .iter()
            .flat_map(|&t| trajectory[t * self.dim..(t + 1) * self.dim].iter().copied())
            .collect()
    }

    /// The oracle's scores on sequence `index`; `None` when the physics gives no answer (the fit
    /// fails, or the fitted bodies or every posterior draw collide); an error when the files
    /// cannot be read or the sequence is too short.
    pub fn sequence(
        &self,
        index: usize,
        frames: &OracleFrames,
        opts: &OracleOptions,
    ) -> Result<Option<SequenceOracle>> {
        let last = *frames
            .scored
            .iter()
            .chain(&frames.fitted)
            .max()
            .unwrap_or(&0);
        ensure!(
            last < self.seq_len,
            "the oracle needs {} frames but the sequences have {}",
            last + 1,
            self.seq_len
        );
        let len = self.seq_len * self.dim;
        let observed = &self.observed[index * len..(index + 1) * len];
        let clean = &self.clean[index * len..(index + 1) * len];
        let row = &self.params[index * self.num_params..(index + 1) * self.num_params];
        let (physical, _, _) = self.spec.split_params(row).expect("checked at open");
        let system = self.spec.system_from_params(physical);
        let settings = self.settings();
        // A noise-free dataset is fitted exactly; its posterior is a point.
        let sigma = if self.meta.noise_std > 0.0 {
            self.meta.noise_std
        } else {
            1.0
        };
        let Some(fit) = fit_state(
            &self.spec,
            system.as_ref(),
            observed,
            &frames.fitted,
            sigma,
            &settings,
        ) else {
            return Ok(None);
        };
        let truth = self.frames.read_window(index, 0, last + 1)?;
        let frame_len = 3 * self.meta.image_size * self.meta.image_size;
        let targets: Vec<f32> = frames
            .scored
            .iter()
            .flat_map(|&t| truth[t * frame_len..(t + 1) * frame_len].iter().copied())
            .collect();
        let Some(path) = trajectory(&self.spec, system.as_ref(), &fit.state, last + 1, &settings)
        else {
            return Ok(None);
        };
        let point_image = self.render(index, &self.pick(&path, &frames.scored));
        let clean_image = self.render(index, &self.pick(clean, &frames.scored));
        let point = per_frame_mse(&point_image, &targets, frame_len);
        let expected_per_frame = if self.meta.noise_std > 0.0 && opts.draws >= 2 {
            let draws = self.posterior_images(index, system.as_ref(), &fit, frames, last, opts);
            let Some(moments) = draws else {
                return Ok(None);
            };
            moments.expected_mse(&targets, frame_len)
        } else {
            point.clone()
        };
        Ok(Some(SequenceOracle {
            point: crate::metrics::mean(&point),
            expected: crate::metrics::mean(&expected_per_frame),
            noise_floor: crate::metrics::mean(&per_frame_mse(&clean_image, &targets, frame_len)),
            expected_per_frame,
        }))
    }

    /// Renders of `opts.draws` states drawn from the fit's Laplace posterior (integrated to frame
    /// `last`), observed as the targets were (with the dataset's noise), summed pixel by pixel;
    /// `None` when the covariance is not positive definite or fewer than two draws give an image.
    fn posterior_images(
        &self,
        index: usize,
        system: &dyn HamiltonianSystem,
        fit: &StateFit,
        frames: &OracleFrames,
        last: usize,
        opts: &OracleOptions,
    ) -> Option<ImageMoments> {
        let settings = self.settings();
        let n = fit.state.len();
        let chol = cholesky(&fit.covariance, n)?;
        let mut rng = stream_rng(opts.seed, Stream::OracleDraws, index as u64);
        let mut moments: Option<ImageMoments> = None;
        for _ in 0..opts.draws {
            let eps: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
            let x: Vec<f64> = (0..n)
                .map(|i| fit.state[i] + (0..=i).map(|k| chol[i * n + k] * eps[k]).sum::<f64>())
                .collect();
            // A draw whose bodies collide has no image; it is left out of the average.
            let Some(path) = trajectory(&self.spec, system, &x, last + 1, &settings) else {
                continue;
            };
            // Observed as the targets were: with the dataset's noise on every coordinate.
            let mut states = self.pick(&path, &frames.scored);
            for v in states.iter_mut() {
                *v += self.meta.noise_std * standard_normal(&mut rng);
            }
            let image = self.render(index, &states);
            moments
                .get_or_insert_with(|| ImageMoments::new(image.len()))
                .add(&image);
        }
        moments.filter(|m| m.count >= 2)
    }

    /// The oracle on the first `count` sequences, in parallel, in index order (`None` where the
    /// physics gives no answer, see [`Self::sequence`]). `progress` is called with the number of
    /// sequences finished.
    pub fn sequences(
        &self,
        count: usize,
        frames: &OracleFrames,
        opts: &OracleOptions,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<Option<SequenceOracle>>> {
        let done = std::sync::atomic::AtomicUsize::new(0);
        (0..count.min(self.num_sequences()))
            .into_par_iter()
            .map(|i| {
                let r = self.sequence(i, frames, opts);
                progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
                r
            })
            .collect()
    }
}

/// ×1e4 per-pixel MSE of each frame of `image` against `targets` (both flat, `frame_len` values
/// a frame).
fn per_frame_mse(image: &[f32], targets: &[f32], frame_len: usize) -> Vec<f64> {
    image
        .chunks(frame_len)
        .zip(targets.chunks(frame_len))
        .map(|(a, b)| {
            1e4 * a
                .iter()
                .zip(b)
                .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
                .sum::<f64>()
                / frame_len as f64
        })
        .collect()
}

/// Pixel-wise sums and sums of squares of a set of images.
struct ImageMoments {
    sum: Vec<f64>,
    sum_sq: Vec<f64>,
    count: usize,
}

impl ImageMoments {
    fn new(len: usize) -> Self {
        Self {
            sum: vec![0.0; len],
            sum_sq: vec![0.0; len],
            count: 0,
        }
    }

    fn add(&mut self, image: &[f32]) {
        for ((s, q), v) in self.sum.iter_mut().zip(self.sum_sq.iter_mut()).zip(image) {
            let v = *v as f64;
            *s += v;
            *q += v * v;
        }
        self.count += 1;
    }

    /// ×1e4 MSE of the mean image against `targets`, frame by frame, less the mean's own
    /// sampling variance (`var / m`): an unbiased estimate of the expected image's error.
    fn expected_mse(&self, targets: &[f32], frame_len: usize) -> Vec<f64> {
        let m = self.count as f64;
        targets
            .chunks(frame_len)
            .enumerate()
            .map(|(f, frame)| {
                let mut err = 0.0;
                for (p, y) in frame.iter().enumerate() {
                    let i = f * frame_len + p;
                    let mean = self.sum[i] / m;
                    let var = ((self.sum_sq[i] - m * mean * mean) / (m - 1.0)).max(0.0);
                    err += (mean - *y as f64).powi(2) - var / m;
                }
                1e4 * err / frame_len as f64
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_the_protocol() {
        let f = OracleFrames::of(Protocol::Forecast, 5, 30);
        assert_eq!(f.fitted, [0, 1, 2, 3, 4]);
        assert_eq!(f.scored.first(), Some(&4));
        assert_eq!(f.scored.last(), Some(&33));
        let r = OracleFrames::of(Protocol::Reconstruct, 31, 31);
        assert_eq!(r.fitted, (0..31).collect::<Vec<_>>());
        assert_eq!(r.scored, r.fitted);
    }
}

/// What [`dataset_oracle`] is asked to compute.
#[derive(Debug, Clone)]
pub struct DatasetOracleOptions {
    /// The dataset folder.
    pub data: std::path::PathBuf,
    /// The split scored.
    pub split: Split,
    /// At most this many sequences (the first ones).
    pub max_sequences: usize,
    /// The protocol whose Table 1 frames are fitted and scored.
    pub protocol: Protocol,
    /// Inference frames `K` (under reconstruct, the window `W`).
    pub inference_frames: usize,
    /// Frames scored under forecast (30 for Table 1).
    pub scored_frames: usize,
    /// Posterior draws and seed.
    pub oracle: OracleOptions,
}

/// The oracle of a dataset, with the anchors measured the same way (`hgn oracle`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetOracle {
    /// The dataset.
    pub data: std::path::PathBuf,
    /// The split.
    pub split: String,
    /// The protocol.
    pub protocol: Protocol,
    /// Sequences scored.
    pub sequences: usize,
    /// The frames fitted and scored.
    pub frames: OracleFrames,
    /// Posterior draws per sequence.
    pub draws: usize,
    /// Sequences the physics gave no answer for (left out of every figure).
    pub failed: usize,
    /// Point oracle, ×1e4, mean over sequences.
    pub point_x1e4: f64,
    /// Expected-image oracle, ×1e4.
    pub expected_x1e4: f64,
    /// Noise floor, ×1e4.
    pub noise_floor_x1e4: f64,
    /// The mean training frame (over up to 1,000 training sequences) as the prediction, ×1e4.
    pub baseline_x1e4: f64,
}

/// The physics oracle of a dataset split under a protocol, beside the noise floor and the
/// mean-frame baseline on the same frames. `progress` is called with the sequences finished.
pub fn dataset_oracle(
    opts: &DatasetOracleOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<DatasetOracle> {
    ensure!(opts.max_sequences >= 1, "--sequences must be at least 1");
    ensure!(
        opts.inference_frames >= 1 && opts.scored_frames >= 1,
        "the oracle needs at least one inference frame and one scored frame"
    );
    let data = OracleData::open(&opts.data, opts.split)?;
    let frames = OracleFrames::of(opts.protocol, opts.inference_frames, opts.scored_frames);
    let n = data.num_sequences().min(opts.max_sequences);
    let all = data.sequences(n, &frames, &opts.oracle, progress)?;
    let answered: Vec<usize> = (0..n).filter(|&i| all[i].is_some()).collect();
    ensure!(
        !answered.is_empty(),
        "the oracle's fit failed on every sequence"
    );
    let scores: Vec<SequenceOracle> = all.iter().flatten().cloned().collect();
    let mean_frame = SequenceDataset::open(&opts.data, Split::Train)?.mean_frame(1000)?;
    let frame_len = mean_frame.len();
    let mut baseline = 0.0;
    for &i in &answered {
        let last = *frames.scored.iter().max().expect("at least one frame");
        let truth = data.frames.read_window(i, 0, last + 1)?;
        let mut err = 0.0;
        for &t in &frames.scored {
            for (a, b) in truth[t * frame_len..(t + 1) * frame_len]
                .iter()
                .zip(&mean_frame)
            {
                err += (*a as f64 - *b as f64).powi(2);
            }
        }
        baseline += 1e4 * err / (frames.scored.len() * frame_len) as f64;
    }
    let m = answered.len() as f64;
    let mean = |f: fn(&SequenceOracle) -> f64| scores.iter().map(f).sum::<f64>() / m;
    Ok(DatasetOracle {
        data: opts.data.clone(),
        split: opts.split.name().to_string(),
        protocol: opts.protocol,
        sequences: n,
        draws: opts.oracle.draws,
        failed: n - answered.len(),
        point_x1e4: mean(|s| s.point),
        expected_x1e4: mean(|s| s.expected),
        noise_floor_x1e4: mean(|s| s.noise_floor),
        baseline_x1e4: baseline / m,
        frames,
    })
}

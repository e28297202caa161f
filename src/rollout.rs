//! `hgn rollout`: pictures of what a trained model predicts, as an animated GIF or a PNG strip.
//!
//! - **Ground truth mode** (default): a test sequence's recorded frames beside the model's
//!   prediction and their absolute difference. Forward: the state is inferred at frame `K − 1`
//!   from frames `0..K` and integrated with `dt·S` (`S` = `--dt-scale`: 2 is double speed, 0.5
//!   slow motion, reference §8). `--backward`: inferred at the last frame from the last `K`
//!   frames and integrated with `−dt·S`. Predicted frame `t` is compared with the recorded frame
//!   at time `(K − 1) + t·S` (backward `L − 1 − t·S`); where that falls between two recorded
//!   frames (slow motion), the nearest one is shown and the difference panel is left grey.
//! - **Prior mode** (`--prior --count N`): `N` new trajectories from `z` drawn with `--seed`:
//!   from the prior N(0, I) for a variational model; for a deterministic one, which has no prior,
//!   from a full-covariance Gaussian fitted to the posterior means of the first 256 training
//!   sequences.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail, ensure};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;

use crate::data::dataset::batch_tensor;
use crate::data::format::Split;
use crate::eval::{Prediction, dataset_of, open_split, predict, predict_from_state};
use crate::model::Hgn;
use crate::physics::sampling::standard_normal;
use crate::protocol::Direction;
use crate::train::RunConfig;
use crate::viz::canvas::{BLACK, GREY, WHITE};
use crate::viz::{Canvas, write_gif};

/// What `hgn rollout` is asked to draw.
#[derive(Debug, Clone)]
pub struct RolloutOptions {
    /// The run folder.
    pub run: PathBuf,
    /// Dataset [default: the run's].
    pub data: Option<PathBuf>,
    /// Output file, `.gif` or `.png`.
    pub out: PathBuf,
    /// Test sequence to show.
    pub index: usize,
    /// Integration steps [default: as many as the recorded sequence covers; 60 from the prior].
    pub steps: Option<usize>,
    /// Multiplier of the model's dt.
    pub dt_scale: f64,
    /// Integrate backward in time.
    pub backward: bool,
    /// Sample from the prior instead of a test sequence.
    pub prior: bool,
    /// Trajectories drawn from the prior.
    pub count: usize,
    /// Seed of the prior draws.
    pub seed: u64,
    /// Upscaling of each frame.
    pub scale: usize,
    /// Hundredths of a second per GIF frame.
    pub delay_cs: u16,
    /// Device the rollouts run on.
    pub device: crate::device::DeviceChoice,
}

/// What `hgn rollout` wrote.
#[derive(Debug, Clone)]
pub struct RolloutSummary {
    /// Frames of the rollout (states, including the inferred one).
    pub frames: usize,
    /// Picture width.
    pub width: usize,
    /// Picture height.
    pub height: usize,
    /// Where the prior draws came from, in prior mode.
    pub prior_source: Option<&'static str>,
}

enum Format {
    Gif,
    Png,
}

fn format_of(path: &Path) -> Result<Format> {
    match path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .as_deref()
    {
        Some("gif") => Ok(Format::Gif),
        Some("png") => Ok(Format::Png),
        _ => bail!(
            "{}: the output must end in .gif (animation) or .png (strip)",
            path.display()
        ),
    }
}

/// One column of the picture at one step: a labelled frame, or an empty (grey) panel.
type Panel = Option<Vec<f32>>;

/// Draws the rollout and writes it to `opts.out`.
pub fn write_rollout(opts: &RolloutOptions) -> Result<RolloutSummary> {
    let format = format_of(&opts.out)?;
    check_options(opts)?;
    let device = opts.device.device()?;
    let (config, model) = crate::run::RunDir::new(&opts.run).load(&device)?;
    let data = dataset_of(&opts.run, &config, opts.data.as_deref())?;
    let loaded = Loaded {
        opts,
        model: &model,
        config: &config,
        data: &data,
        device: &device,
    };
    let speed = if opts.dt_scale == 1.0 {
        String::new()
    } else {
        format!(", dt x{}", opts.dt_scale)
    };
    let direction = if opts.backward { "backward" } else { "forward" };
    let (picture, caption) = if opts.prior {
        let caption = format!("{direction}{speed}, seed {}", opts.seed);
        (prior_rows(&loaded)?, caption)
    } else {
        let caption = format!("test #{}, {direction}{speed}", opts.index);
        (test_rows(&loaded)?, caption)
    };
    let size = config.model.image_size;
    let frames = picture.rows[0].len();
    let step_time = config.model.dt * opts.dt_scale;
    let (rows, labels, caption) = (&picture.rows, &picture.labels, &caption);
    let (width, height) = match format {
        Format::Gif => {
            let pictures: Vec<Canvas> = (0..frames)
                .map(|t| {
                    let column: Vec<&Panel> = rows.iter().map(|r| &r[t]).collect();
                    gif_frame(&column, labels, size, opts.scale, caption, t, step_time)
                })
                .collect();
            write_gif(&opts.out, &pictures, opts.delay_cs)?;
            (pictures[0].width, pictures[0].height)
        }
        Format::Png => {
            let strip = png_strip(rows, labels, size, opts.scale, caption);
            strip.save_png(&opts.out)?;
            (strip.width, strip.height)
        }
    };
    Ok(RolloutSummary {
        frames,
        width,
        height,
        prior_source: picture.prior_source,
    })
}

/// One-line errors for options out of range, before anything is loaded.
fn check_options(opts: &RolloutOptions) -> Result<()> {
    ensure!(
        opts.dt_scale.is_finite() && opts.dt_scale > 0.0,
        "--dt-scale must be a positive number (got {}); use --backward to go back in time",
        opts.dt_scale
    );
    ensure!((1..=16).contains(&opts.scale), "--scale must be 1 to 16");
    ensure!(
        !opts.prior || (1..=64).contains(&opts.count),
        "--count must be 1 to 64"
    );
    if let Some(parent) = opts.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure!(
            parent.is_dir(),
            "{} does not exist (create the folder first)",
            parent.display()
        );
    }
    Ok(())
}

/// The rows of panels a picture shows, one label each.
struct Picture {
    rows: Vec<Vec<Panel>>,
    labels: Vec<String>,
    /// Where prior samples came from (`--prior` only).
    prior_source: Option<&'static str>,
}

/// What a picture's rows are drawn from: the options, the run's model and config, its dataset
/// and the device.
struct Loaded<'a> {
    opts: &'a RolloutOptions,
    model: &'a Hgn,
    config: &'a RunConfig,
    data: &'a Path,
    device: &'a Device,
}

impl<'a> Loaded<'a> {
    /// Options, model, config, dataset folder and device.
    fn parts(
        &self,
    ) -> (
        &'a RolloutOptions,
        &'a Hgn,
        &'a RunConfig,
        &'a Path,
        &'a Device,
    ) {
        (self.opts, self.model, self.config, self.data, self.device)
    }
}

/// The signed step of the rollout: `dt · dt_scale`, negative with `--backward`.
fn signed_dt(opts: &RolloutOptions, config: &RunConfig) -> f64 {
    config.model.dt * opts.dt_scale * if opts.backward { -1.0 } else { 1.0 }
}

/// `--prior`: one row per trajectory sampled from the prior.
fn prior_rows(loaded: &Loaded) -> Result<Picture> {
    let (opts, model, config, data, device) = loaded.parts();
    let steps = opts.steps.unwrap_or(60);
    let (z, source) = draw_prior(model, config, data, opts.count, opts.seed, device)?;
    let (q, p) = model.initial_state(z);
    let pred = predict_from_state(model, q, p, signed_dt(opts, config), steps);
    Ok(Picture {
        rows: (0..opts.count)
            .map(|i| {
                split_frames(&pred, i, steps + 1)
                    .into_iter()
                    .map(Some)
                    .collect()
            })
            .collect(),
        labels: (0..opts.count)
            .map(|i| format!("sample {}", i + 1))
            .collect(),
        prior_source: Some(source),
    })
}

/// A test sequence: the recorded frames (at the nearest recorded time), the prediction, and
/// their difference where a recorded frame falls exactly on the predicted time.
fn test_rows(loaded: &Loaded) -> Result<Picture> {
    let (opts, model, config, data, device) = loaded.parts();
    let m = &config.model;
    let size = m.image_size;
    let set = open_split(data, Split::Test, config)?;
    ensure!(
        opts.index < set.num_sequences,
        "--index {} is out of range: the test split has {} sequences",
        opts.index,
        set.num_sequences
    );
    let k = m.num_inference_frames;
    let len = set.seq_len;
    // Recorded time (in frames) of predicted frame t.
    let start = if opts.backward { len - 1 } else { k - 1 } as f64;
    let sign = if opts.backward { -1.0 } else { 1.0 };
    let time_of = |t: usize| start + sign * t as f64 * opts.dt_scale;
    let available = ((len - k) as f64 / opts.dt_scale).floor() as usize;
    let steps = opts.steps.unwrap_or(available.max(1));
    let seq = set.read_window(opts.index, 0, len)?;
    let frames = batch_tensor(vec![seq.clone()], len, size, device);
    let window = config.window();
    let time = if opts.backward {
        Direction::Backward
    } else {
        Direction::Forward
    };
    let pred = if opts.dt_scale == 1.0 {
        predict(model, &window, frames, m.dt, steps, time)
    } else {
        let (q, p, _, _) = model.infer(window.inference(frames, time), None);
        predict_from_state(model, q, p, signed_dt(opts, config), steps)
    };
    let predicted = split_frames(&pred, 0, steps + 1);
    let fl = 3 * size * size;
    let (mut truth, mut diff) = (vec![], vec![]);
    for (t, x_hat) in predicted.iter().enumerate() {
        let time = time_of(t);
        let nearest = time.round();
        if nearest < 0.0 || nearest > (len - 1) as f64 {
            truth.push(None);
            diff.push(None);
            continue;
        }
        let f = nearest as usize;
        let x = seq[f * fl..(f + 1) * fl].to_vec();
        if (time - nearest).abs() < 1e-9 {
            diff.push(Some(
                x_hat
                    .iter()
                    .zip(&x)
                    .map(|(a, b)| ((a - b).abs() * 3.0).min(1.0))
                    .collect(),
            ));
        } else {
            diff.push(None);
        }
        truth.push(Some(x));
    }
    Ok(Picture {
        rows: vec![truth, predicted.into_iter().map(Some).collect(), diff],
        labels: vec![
            "truth".to_string(),
            "prediction".to_string(),
            "|diff| x3".to_string(),
        ],
        prior_source: None,
    })
}

/// Frames `0..n` of rollout `i` of a prediction.
fn split_frames(pred: &Prediction, i: usize, n: usize) -> Vec<Vec<f32>> {
    let fl = pred.frames[i].len() / n;
    pred.frames[i]
        .chunks_exact(fl)
        .map(|c| c.to_vec())
        .collect()
}

/// `z` for prior samples: N(0, I) for a variational model; for a deterministic model a
/// Gaussian with the mean and full covariance of the posterior means of (up to) 256 training
/// sequences. A diagonal fit would ignore how the latent coordinates move together and decode to
/// mixtures; the full covariance keeps those correlations. Sampling needs no factorisation:
/// with the centred posteriors `x_i − μ`, `z = μ + Σ_i ε_i (x_i − μ) / √(n − 1)`, `ε ~ N(0, I)`,
/// has exactly the sample covariance.
fn draw_prior(
    model: &Hgn,
    config: &RunConfig,
    data: &Path,
    count: usize,
    seed: u64,
    device: &Device,
) -> Result<(Tensor<4>, &'static str)> {
    let (zc, zs) = config.model.z_shape();
    let per = zc * zs * zs;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let (z, source): (Vec<f32>, _) = if model.variational {
        let z = (0..count * per)
            .map(|_| standard_normal(&mut rng) as f32)
            .collect();
        (z, "the prior N(0, I)")
    } else {
        let set = open_split(data, Split::Train, config)?;
        let k = config.model.num_inference_frames;
        let n = set.num_sequences.min(256);
        let mut rows: Vec<Vec<f64>> = Vec::with_capacity(n);
        for start in (0..n).step_by(32) {
            let windows = set.read_windows(start..(start + 32).min(n), k)?;
            let frames = batch_tensor(windows, k, set.image_size, device);
            let [b, kk, c, h, w] = frames.dims();
            let (mean, _) = model.encoder.forward(frames.reshape([b, kk * c, h, w]));
            let values = mean
                .into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .unwrap_or_default();
            rows.extend(values.chunks_exact(per).map(<[f64]>::to_vec));
        }
        anyhow::ensure!(
            rows.len() >= 2,
            "fitting a Gaussian to the training posteriors needs at least 2 training sequences"
        );
        let z = gaussian_like(&rows, count, &mut rng)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        (
            z,
            "a Gaussian fitted to the training posteriors (deterministic model: no prior)",
        )
    };
    Ok((
        Tensor::from_data(TensorData::new(z, [count, zc, zs, zs]), device),
        source,
    ))
}

/// `count` draws from the Gaussian with the sample mean and covariance of `rows` (at least two,
/// of equal length): `μ + Σ_i ε_i (x_i − μ) / √(n − 1)` with `ε ~ N(0, I)`, concatenated.
fn gaussian_like(rows: &[Vec<f64>], count: usize, rng: &mut impl rand::Rng) -> Vec<f64> {
    let per = rows[0].len();
    let nf = rows.len() as f64;
    let mu: Vec<f64> = (0..per)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f64>() / nf)
        .collect();
    let scale = 1.0 / (nf - 1.0).sqrt();
    let mut z = Vec::with_capacity(count * per);
    for _ in 0..count {
        let mut sample = mu.clone();
        for row in rows {
            let e = standard_normal(rng) * scale;
            for (s, (x, m)) in sample.iter_mut().zip(row.iter().zip(&mu)) {
                *s += e * (x - m);
            }
        }
        z.extend(sample);
    }
    z
}

const GAP: usize = 6;
const LABEL_H: usize = 14;

/// One GIF frame: the panels of step `t` side by side (wrapping after 8), labels above, a
/// caption with the step and time below.
fn gif_frame(
    column: &[&Panel],
    labels: &[String],
    size: usize,
    scale: usize,
    caption: &str,
    t: usize,
    step_time: f64,
) -> Canvas {
    let cell = size * scale;
    let per_row = column.len().min(8);
    let grid_rows = column.len().div_ceil(per_row);
    let width =
        (per_row * (cell + GAP) + GAP).max(crate::viz::canvas::text_width(caption, 1) + 2 * GAP);
    let height = grid_rows * (cell + LABEL_H + GAP) + GAP + 2 * LABEL_H;
    let mut c = Canvas::new(width, height, WHITE);
    for (i, panel) in column.iter().enumerate() {
        let x = (GAP + (i % per_row) * (cell + GAP)) as i64;
        let y = (GAP + (i / per_row) * (cell + LABEL_H + GAP)) as i64;
        c.text(x, y, &labels[i], BLACK, 1);
        draw_panel(&mut c, x, y + LABEL_H as i64, panel, size, scale);
    }
    let y = (height - 2 * LABEL_H) as i64;
    c.text(
        GAP as i64,
        y,
        &format!("step {t}, t = {:+.3}", t as f64 * step_time),
        BLACK,
        1,
    );
    c.text(GAP as i64, y + LABEL_H as i64, caption, GREY, 1);
    c
}

fn draw_panel(c: &mut Canvas, x: i64, y: i64, panel: &Panel, size: usize, scale: usize) {
    match panel {
        Some(frame) => c.frame(x, y, frame, size, scale),
        None => c.fill_rect(x, y, size * scale, size * scale, [200, 200, 200]),
    }
}

/// A PNG strip: one row per series (truth / prediction / difference, or one per sample),
/// one column per step, wrapped every 16 steps.
fn png_strip(
    rows: &[Vec<Panel>],
    labels: &[String],
    size: usize,
    scale: usize,
    caption: &str,
) -> Canvas {
    let cell = size * scale;
    let steps = rows[0].len();
    let per_line = steps.min(16);
    let blocks = steps.div_ceil(per_line);
    let label_w = labels
        .iter()
        .map(|l| crate::viz::canvas::text_width(l, 1))
        .max()
        .unwrap_or(0)
        + 2 * GAP;
    let block_h = LABEL_H + rows.len() * (cell + 2) + GAP;
    let width = label_w + per_line * (cell + 2) + GAP;
    let height = blocks * block_h + LABEL_H + GAP;
    let mut c = Canvas::new(width, height, WHITE);
    c.text(GAP as i64, 4, caption, GREY, 1);
    for b in 0..blocks {
        let y0 = LABEL_H + GAP + b * block_h;
        for (j, t) in (b * per_line..((b + 1) * per_line).min(steps)).enumerate() {
            let x = label_w + j * (cell + 2);
            c.text(x as i64, y0 as i64, &t.to_string(), GREY, 1);
            for (r, row) in rows.iter().enumerate() {
                let y = y0 + LABEL_H + r * (cell + 2);
                draw_panel(&mut c, x as i64, y as i64, &row[t], size, scale);
            }
        }
        for (r, label) in labels.iter().enumerate() {
            let y = y0 + LABEL_H + r * (cell + 2) + cell / 2 - 4;
            c.text(GAP as i64, y as i64, label, BLACK, 1);
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_like_draws_with_the_rows_mean_and_full_covariance() {
        // Rows on the line y = 2x + 1 (x = 0..4): a diagonal fit would scatter off the line.
        let rows: Vec<Vec<f64>> = (0..5)
            .map(|i| vec![i as f64, 2.0 * i as f64 + 1.0])
            .collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let z = gaussian_like(&rows, 20_000, &mut rng);
        let pairs: Vec<(f64, f64)> = z.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        for &(x, y) in &pairs {
            assert!(
                (y - (2.0 * x + 1.0)).abs() < 1e-9,
                "({x}, {y}) left the line"
            );
        }
        let n = pairs.len() as f64;
        let mean_x = pairs.iter().map(|p| p.0).sum::<f64>() / n;
        let var_x = pairs.iter().map(|p| (p.0 - mean_x).powi(2)).sum::<f64>() / n;
        // Sample mean 2 and variance 2.5 of 0..4.
        assert!((mean_x - 2.0).abs() < 0.05, "mean {mean_x}");
        assert!((var_x - 2.5).abs() < 0.1, "variance {var_x}");
    }
}

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
//!   from a diagonal Gaussian fitted to the posterior means of the first 256 training sequences.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail, ensure};
use burn::tensor::{Tensor, TensorData};
use rand::SeedableRng;

use crate::data::dataset::batch_tensor;
use crate::data::format::Split;
use crate::eval::{Prediction, dataset_of, open_split, predict, predict_from_state};
use crate::export::load_run;
use crate::model::Hgn;
use crate::physics::sampling::standard_normal;
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
    let (config, model) = load_run(&opts.run)?;
    let m = &config.model;
    let device = crate::device::DeviceArg::Cpu.device()?;
    let data = dataset_of(&opts.run, &config, opts.data.as_deref())?;
    let size = m.image_size;
    let dt = m.dt * opts.dt_scale * if opts.backward { -1.0 } else { 1.0 };
    let speed = if opts.dt_scale == 1.0 {
        String::new()
    } else {
        format!(", dt x{}", opts.dt_scale)
    };
    let direction = if opts.backward { "backward" } else { "forward" };

    let (rows, labels, caption, prior_source): (Vec<Vec<Panel>>, Vec<String>, String, _) = if opts
        .prior
    {
        let steps = opts.steps.unwrap_or(60);
        let (z, source) = draw_prior(&model, &config, &data, opts.count, opts.seed, &device)?;
        let (q, p) = model.initial_state(z);
        let pred = predict_from_state(&model, q, p, dt, steps);
        let rows = (0..opts.count)
            .map(|i| {
                split_frames(&pred, i, steps + 1)
                    .into_iter()
                    .map(Some)
                    .collect()
            })
            .collect();
        let labels = (0..opts.count)
            .map(|i| format!("sample {}", i + 1))
            .collect();
        let caption = format!("{direction}{speed}, seed {}", opts.seed);
        (rows, labels, caption, Some(source))
    } else {
        let set = open_split(&data, Split::Test, &config)?;
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
        let frames = batch_tensor(vec![seq.clone()], len, size, &device);
        let [_, _, c, h, w] = frames.dims();
        let pred = if opts.dt_scale == 1.0 {
            predict(&model, frames, k, m.dt, steps, opts.backward)
        } else {
            let window = if opts.backward { len - k..len } else { 0..k };
            let (q, p, _, _) = model.infer(frames.slice([0..1, window, 0..c, 0..h, 0..w]), None);
            predict_from_state(&model, q, p, dt, steps)
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
        let rows = vec![truth, predicted.into_iter().map(Some).collect(), diff];
        let labels = vec![
            "truth".to_string(),
            "prediction".to_string(),
            "|diff| x3".to_string(),
        ];
        let caption = format!("test #{}, {direction}{speed}", opts.index);
        (rows, labels, caption, None)
    };

    let frames = rows[0].len();
    let step_time = m.dt * opts.dt_scale;
    let (width, height) = match format {
        Format::Gif => {
            let pictures: Vec<Canvas> = (0..frames)
                .map(|t| {
                    let column: Vec<&Panel> = rows.iter().map(|r| &r[t]).collect();
                    gif_frame(&column, &labels, size, opts.scale, &caption, t, step_time)
                })
                .collect();
            write_gif(&opts.out, &pictures, opts.delay_cs)?;
            (pictures[0].width, pictures[0].height)
        }
        Format::Png => {
            let strip = png_strip(&rows, &labels, size, opts.scale, &caption);
            strip.save_png(&opts.out)?;
            (strip.width, strip.height)
        }
    };
    Ok(RolloutSummary {
        frames,
        width,
        height,
        prior_source,
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

/// `z` for prior samples: N(0, I) for a variational model; for a deterministic model a diagonal
/// Gaussian fitted to the posterior means of (up to) 256 training sequences.
fn draw_prior(
    model: &Hgn,
    config: &crate::train::RunConfig,
    data: &Path,
    count: usize,
    seed: u64,
    device: &burn::tensor::Device,
) -> Result<(Tensor<4>, &'static str)> {
    let (zc, zs) = config.model.z_shape();
    let per = zc * zs * zs;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let noise: Vec<f64> = (0..count * per)
        .map(|_| standard_normal(&mut rng))
        .collect();
    let (mu, sigma, source) = if model.variational {
        (vec![0.0; per], vec![1.0; per], "the prior N(0, I)")
    } else {
        let set = open_split(data, Split::Train, config)?;
        let k = config.model.num_inference_frames;
        let n = set.num_sequences.min(256);
        let (mut sum, mut sq) = (vec![0.0f64; per], vec![0.0f64; per]);
        for start in (0..n).step_by(32) {
            let ids: Vec<usize> = (start..(start + 32).min(n)).collect();
            let windows = ids
                .iter()
                .map(|&i| set.read_window(i, 0, k))
                .collect::<Result<Vec<_>>>()?;
            let frames = batch_tensor(windows, k, set.image_size, device);
            let [b, kk, c, h, w] = frames.dims();
            let (mean, _) = model.encoder.forward(frames.reshape([b, kk * c, h, w]));
            let values = mean
                .into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .unwrap_or_default();
            for row in values.chunks_exact(per) {
                for (j, v) in row.iter().enumerate() {
                    sum[j] += v;
                    sq[j] += v * v;
                }
            }
        }
        let nf = n as f64;
        let mu: Vec<f64> = sum.iter().map(|s| s / nf).collect();
        let sigma = sq
            .iter()
            .zip(&mu)
            .map(|(s, m)| (s / nf - m * m).max(0.0).sqrt())
            .collect();
        (
            mu,
            sigma,
            "a Gaussian fitted to the training posteriors (deterministic model: no prior)",
        )
    };
    let z: Vec<f32> = noise
        .chunks_exact(per)
        .flat_map(|row| {
            row.iter()
                .enumerate()
                .map(|(j, e)| (mu[j] + sigma[j] * e) as f32)
                .collect::<Vec<_>>()
        })
        .collect();
    Ok((
        Tensor::from_data(TensorData::new(z, [count, zc, zs, zs]), device),
        source,
    ))
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

//! `hgn plot`: the pictures a researcher would otherwise make by hand from a run.
//!
//! Writes into `RUN/plots/` (or `--out`):
//! - `training.png`: loss, reconstruction MSE, KL and GECO λ against the step (from
//!   `metrics.jsonl`), and the periodic test MSE beside the mean-frame baseline;
//! - `mse_per_step.png`: MSE of each predicted frame, forward and backward, across the training
//!   window and the extrapolation (from `eval.json`; evaluated on 64 test sequences if the run
//!   has none), with the mean-frame baseline and, where `eval.json` has it, the expected-image
//!   oracle of each Table 1 frame;
//! - `energy.png`: the learned `H(q_t, p_t)` along forward rollouts of several test sequences,
//!   and the same minus its initial value;
//! - `phase.png`: the latent phase portrait: the leading principal component of `q` against that
//!   of `p` along the same rollouts (closed curves for a conservative oscillator), beside the
//!   recorded phase-space trajectories where the dataset has one position and one momentum.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;

use crate::data::dataset::batch_tensor;
use crate::data::format::Split;
use crate::eval::{EvalOptions, EvalReport, dataset_of, eval_steps, open_split, predict};
use crate::metrics::first_principal_component;
use crate::model::{Hgn, Objective};
use crate::protocol::Protocol;
use crate::run::EVAL_FILE;
use crate::train::{MetricsLine, RunConfig};
use crate::viz::chart::grid;
use crate::viz::{Chart, Series};

/// What `hgn plot` is asked to draw.
#[derive(Debug, Clone)]
pub struct PlotOptions {
    /// The run folder.
    pub run: PathBuf,
    /// Output folder [default: RUN/plots].
    pub out: Option<PathBuf>,
    /// Test sequences in the energy and phase plots.
    pub sequences: usize,
    /// Where the progress of an evaluation goes, if one is needed.
    pub reporter: crate::progress::Reporter,
    /// Device of the rollouts (and of an evaluation, if the run has none).
    pub device: crate::device::DeviceChoice,
}

const W: usize = 480;
const H: usize = 320;

/// Writes the plots and returns their paths.
pub fn write_plots(opts: &PlotOptions) -> Result<Vec<PathBuf>> {
    ensure!(
        (1..=32).contains(&opts.sequences),
        "--sequences must be 1 to 32"
    );
    let device = opts.device.device()?;
    let (config, model) = crate::run::RunDir::new(&opts.run).load(&device)?;
    let out = opts.out.clone().unwrap_or_else(|| opts.run.join("plots"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let data = dataset_of(&opts.run, &config, None)?;
    let names = [
        "training.png",
        "mse_per_step.png",
        "energy.png",
        "phase.png",
    ];
    let paths: Vec<PathBuf> = names.iter().map(|n| out.join(n)).collect();
    training_curves(&opts.run, &config, &paths[0])?;
    mse_per_step(&opts.run, &opts.reporter, opts.device, &paths[1])?;
    energy_and_phase(
        &config,
        &model,
        &data,
        opts.sequences,
        &device,
        [&paths[2], &paths[3]],
    )?;
    Ok(paths)
}

/// `training.png`: the objective, the train and test MSE beside the mean frame and the oracle,
/// and the KL and GECO λ (a deterministic model: the MSE and the training speed).
fn training_curves(run: &Path, config: &RunConfig, path: &Path) -> Result<()> {
    let metrics = read_metrics(&run.join("metrics.jsonl"))?;
    let train: Vec<&MetricsLine> = metrics.iter().filter(|m| m.kind == "train").collect();
    let evals: Vec<&MetricsLine> = metrics.iter().filter(|m| m.kind == "eval").collect();
    let xy = |f: &dyn Fn(&MetricsLine) -> Option<f64>, lines: &[&MetricsLine]| -> Vec<(f64, f64)> {
        lines
            .iter()
            .filter_map(|m| f(m).map(|v| (m.step as f64, v)))
            .collect()
    };
    let mut loss = Chart::new("training objective", "step", "loss");
    loss.series
        .push(Series::line("", xy(&|m| m.loss, &train), 0));
    let mut mse = Chart::new("reconstruction MSE", "step", "MSE");
    mse.log_y = true;
    mse.series
        .push(Series::line("train batch", xy(&|m| Some(m.mse), &train), 0));
    mse.series
        .push(Series::line("test", xy(&|m| Some(m.mse), &evals), 1));
    mse.series.push(Series::line(
        "mean-frame baseline",
        xy(&|m| m.baseline_mse, &evals),
        7,
    ));
    // The oracle does not change during a run (lines from before it was logged lack it).
    if let Some(level) = evals.iter().find_map(|m| m.oracle_mse) {
        let line = evals.iter().map(|m| (m.step as f64, level)).collect();
        mse.series
            .push(Series::line("physics oracle (test)", line, 4));
    }
    let mut kl = Chart::new("KL / (T C H W)", "step", "KL");
    kl.series.push(Series::line("", xy(&|m| m.kl, &train), 2));
    let mut lambda = Chart::new("GECO lambda", "step", "lambda");
    lambda
        .series
        .push(Series::line("", xy(&|m| m.lambda, &train), 3));
    let mut speed = Chart::new("training speed", "step", "steps / s");
    speed.series.push(Series::line(
        "",
        xy(&|m| m.steps_per_second.filter(|v| *v > 0.0), &train),
        2,
    ));
    // A deterministic model's objective is the MSE and it has no KL or λ, and a fixed KL
    // weight has no λ: the training speed takes their place.
    let charts = match (config.model.variational, config.objective) {
        (true, Objective::Geco { .. }) => vec![loss, mse, kl, lambda],
        (true, Objective::Elbo { .. }) => vec![loss, mse, kl, speed],
        (false, _) => vec![mse, speed],
    };
    grid(&charts, 2, W, H).save_png(path)
}

/// The run's `eval.json`, or an evaluation of 64 test sequences when it has none.
fn saved_or_quick_eval(
    run: &Path,
    reporter: &crate::progress::Reporter,
    device: crate::device::DeviceChoice,
) -> Result<EvalReport> {
    let eval_path = run.join(EVAL_FILE);
    if eval_path.is_file() {
        let text = std::fs::read_to_string(&eval_path)?;
        return serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is damaged; run hgn eval --run {} again",
                eval_path.display(),
                run.display()
            )
        });
    }
    crate::eval::evaluate_run_in_memory(&EvalOptions {
        run: run.to_path_buf(),
        data: None,
        splits: vec![Split::Test],
        max_sequences: 64,
        reporter: reporter.clone(),
        device,
        oracle: None,
        per_sequence: false,
        refine: None,
    })
}

/// `mse_per_step.png`: the MSE of each predicted frame, forward and backward, from `eval.json`
/// (or a 64-sequence evaluation when the run has none).
fn mse_per_step(
    run: &Path,
    reporter: &crate::progress::Reporter,
    device: crate::device::DeviceChoice,
    path: &Path,
) -> Result<()> {
    let report = saved_or_quick_eval(run, reporter, device)?;
    let split = report
        .splits
        .iter()
        .find(|s| s.split == "test")
        .or(report.splits.first())
        .context("eval.json holds no split")?;
    let mut per_step = Chart::new(
        &format!(
            "MSE per predicted frame ({} {} sequences)",
            split.sequences, split.split
        ),
        "steps from the inferred state",
        "MSE",
    );
    per_step.log_y = true;
    per_step.series.push(Series::line(
        "forward",
        curve(&split.forward.mse_per_step),
        0,
    ));
    per_step.series.push(Series::line(
        "backward",
        curve(&split.backward.mse_per_step),
        1,
    ));
    if let Some(oracle) = split
        .oracle
        .as_ref()
        .filter(|o| !o.expected_per_step_x1e4.is_empty())
    {
        let direction = match report.protocol {
            Protocol::Forecast => "forward",
            Protocol::Reconstruct => "backward",
        };
        let level: Vec<f64> = oracle
            .expected_per_step_x1e4
            .iter()
            .map(|v| v * 1e-4)
            .collect();
        per_step.series.push(Series::line(
            format!("oracle, expected image ({direction})"),
            curve(&level),
            2,
        ));
    }
    let n = split.forward.mse_per_step.len() as f64;
    let base = split.baseline_mse_x1e4 * 1e-4;
    per_step.series.push(Series::line(
        "mean-frame baseline",
        vec![(0.0, base), (n - 1.0, base)],
        7,
    ));
    let w = report.rollout_steps as f64;
    let (lo, hi) = split
        .forward
        .mse_per_step
        .iter()
        .chain(&split.backward.mse_per_step)
        .filter(|v| **v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    per_step.series.push(Series::line(
        "end of training window",
        vec![(w, lo.min(base)), (w, hi.max(base))],
        4,
    ));
    per_step.render(2 * W, H).save_png(path)
}

/// `energy.png` and `phase.png`: the learned energy along forward rollouts of the first
/// `sequences` test sequences, and their latent phase portrait beside the recorded one.
fn energy_and_phase(
    config: &RunConfig,
    model: &Hgn,
    data: &Path,
    sequences: usize,
    device: &Device,
    [energy_path, phase_path]: [&Path; 2],
) -> Result<()> {
    let set = open_split(data, Split::Test, config)?;
    let count = sequences.min(set.num_sequences);
    let len = set.seq_len;
    let steps = eval_steps(config, len);
    let windows = set.read_windows(0..count, len)?;
    let frames = batch_tensor(windows, len, set.image_size, device);
    let m = &config.model;
    let pred = predict(
        model,
        &config.window(),
        frames,
        m.dt,
        steps,
        crate::protocol::Direction::Forward,
    );
    let mut energy = Chart::new("learned energy H along rollouts", "step", "H");
    let mut shifted = Chart::new("H(t) - H(0)", "step", "dH");
    for (i, h) in pred.energy.iter().enumerate() {
        energy.series.push(Series::line("", curve(h), i));
        let h0 = h[0];
        let d: Vec<f64> = h.iter().map(|v| v - h0).collect();
        shifted.series.push(Series::line("", curve(&d), i));
    }
    grid(&[energy, shifted], 2, W, H).save_png(energy_path)?;

    let dim = pred.q[0][0].len();
    let all_q: Vec<f64> = pred.q.iter().flatten().flatten().copied().collect();
    let all_p: Vec<f64> = pred.p.iter().flatten().flatten().copied().collect();
    let pc_q = first_principal_component(&all_q, dim);
    let pc_p = first_principal_component(&all_p, dim);
    let mut phase = Chart::new(
        "latent phase portrait",
        "q: first principal component",
        "p: first principal component",
    );
    let per = steps + 1;
    for i in 0..count {
        let pts = (0..per)
            .map(|t| (pc_q[i * per + t], pc_p[i * per + t]))
            .collect();
        phase.series.push(Series::line("", pts, i));
    }
    let mut charts = vec![phase];
    if let Some(truth) = recorded_phase(data, count, len)? {
        let mut chart = Chart::new("recorded phase space", "q", "p");
        for (i, pts) in truth.into_iter().enumerate() {
            chart.series.push(Series::dots("", pts, i));
        }
        charts.push(chart);
    }
    grid(&charts, 2, W, H).save_png(phase_path)
}

/// `(step, value)` points of a per-step curve.
fn curve(v: &[f64]) -> Vec<(f64, f64)> {
    v.iter().enumerate().map(|(t, &y)| (t as f64, y)).collect()
}

/// The recorded `(q, p)` of the first `count` test sequences, where the system has one degree of
/// freedom (mass-spring, pendulum); `None` otherwise.
/// Points of one curve in a chart.
type Curve = Vec<(f64, f64)>;

fn recorded_phase(data: &Path, count: usize, len: usize) -> Result<Option<Vec<Curve>>> {
    let path = data.join("test").join("states.npy");
    if !path.is_file() {
        return Ok(None);
    }
    let (shape, values) = crate::data::npy::read_f64(&path)?;
    if shape.len() != 3 || shape[2] != 2 || shape[1] != len {
        return Ok(None);
    }
    let n = count.min(shape[0]);
    // A pendulum's angle is shown modulo 2π, the classic portrait with its separatrix.
    let angle = crate::data::format::DatasetMeta::load(data)?
        .system
        .starts_with("pendulum");
    let wrap = |q: f64| {
        if angle {
            let t = std::f64::consts::TAU;
            q - t * ((q + t / 2.0) / t).floor()
        } else {
            q
        }
    };
    Ok(Some(
        (0..n)
            .map(|i| {
                (0..len)
                    .map(|t| {
                        let j = (i * len + t) * 2;
                        (wrap(values[j]), values[j + 1])
                    })
                    .collect()
            })
            .collect(),
    ))
}

fn read_metrics(path: &Path) -> Result<Vec<MetricsLine>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line)
                .with_context(|| format!("{} line {} is damaged", path.display(), i + 1))
        })
        .collect()
}

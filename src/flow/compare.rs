//! `hgn flow compare`: the NHF against RealNVP on the built-in 2-D targets, side by side in
//! one run, each trained until its validation NLL stops improving (early stopping with
//! learning-rate halvings on plateaus, under a cap on the steps): test NLL at convergence,
//! parameters, steps taken, training steps/s and sampling speed as a Markdown table
//! (`OUT/compare.md`, `OUT/compare.json`), the densities in one picture (`OUT/densities.png`:
//! target | NHF | RealNVP per row) and the learning curves (`OUT/curves.png`: validation NLL
//! against steps and against seconds, per target).
//!
//! Runs live in `OUT/runs/TARGET-MODEL` and are reused: a finished run is not trained again, an
//! interrupted one is resumed, and a run made with other settings is refused.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use super::config::{FlowData, FlowKind, FlowRunConfig, new_config};
use super::eval::{FlowEvalReport, evaluate_flow};
use super::plot::flow_pictures;
use super::targets::TARGETS;
use super::train::{FlowMetricsLine, FlowTrainOptions, train_flow};
use crate::check;
use crate::device::DeviceChoice;
use crate::viz::canvas::WHITE;
use crate::viz::{Canvas, Chart, Series};

/// What `hgn flow compare` is asked to do.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Targets (rows).
    pub targets: Vec<String>,
    /// The cap on every run's training steps.
    pub steps: usize,
    /// Evaluations without progress that make a plateau.
    pub patience: usize,
    /// Plateaus answered by halving the learning rate before the next one stops a run.
    pub plateau_halvings: usize,
    /// Steps between evaluations.
    pub eval_every: usize,
    /// Seed of every run.
    pub seed: u64,
    /// Posterior samples of the NHF's importance-weighted test NLL.
    pub iw_samples: usize,
    /// Working and output folder.
    pub out: PathBuf,
    /// Where the lines naming each run and the progress of its steps go.
    pub reporter: crate::progress::Reporter,
}

/// The figures of one target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompareRow {
    /// The target.
    pub target: String,
    /// NHF evaluation.
    pub nhf: FlowEvalReport,
    /// RealNVP evaluation.
    pub realnvp: FlowEvalReport,
    /// Runs whose training stopped early (evaluated at their last checkpoint), with the reason.
    #[serde(default)]
    pub notes: Vec<String>,
    /// Median training steps per second of the NHF, from its metrics log.
    #[serde(default)]
    pub nhf_steps_per_second: f64,
    /// The same for RealNVP.
    #[serde(default)]
    pub realnvp_steps_per_second: f64,
}

/// One run's learning curve: `(step, seconds, validation NLL)` of every evaluation.
pub type Curve = Vec<(usize, f64, f64)>;

/// Trains (or reuses) both flows on every target, evaluates, and writes the table and pictures.
pub fn run_compare(opts: &CompareOptions) -> Result<(Vec<CompareRow>, String)> {
    check::known_names("--targets", "target", &opts.targets, &TARGETS)?;
    check::at_least_one(&[
        ("--steps", opts.steps),
        ("--patience", opts.patience),
        ("--eval-every", opts.eval_every),
        ("--iw-samples", opts.iw_samples),
    ])?;
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let mut rows = vec![];
    let mut picture_rows = vec![];
    let mut charts = vec![];
    for target in &opts.targets {
        let mut reports = vec![];
        let mut maps = vec![];
        let mut notes = vec![];
        let mut curves = vec![];
        let mut rates = vec![];
        for kind in [FlowKind::Nhf, FlowKind::Realnvp] {
            let run = opts
                .out
                .join("runs")
                .join(format!("{target}-{}", kind.name()));
            opts.reporter.line(&format!(
                "{target}, {}: {} steps → {}",
                kind.name(),
                opts.steps,
                run.display()
            ));
            notes.extend(train_or_note(&run, kind, target, opts)?);
            reports.push(evaluate_flow(&run, None, Some(opts.iw_samples))?);
            maps.push(flow_pictures(&run)?);
            let (curve, rate) = learning_curve(&run)?;
            curves.push(curve);
            rates.push(rate);
        }
        let realnvp = reports.pop().expect("two reports");
        let nhf = reports.pop().expect("two reports");
        charts.extend(curve_charts(target, &curves));
        rows.push(CompareRow {
            target: target.clone(),
            nhf,
            realnvp,
            notes,
            nhf_steps_per_second: rates[0],
            realnvp_steps_per_second: rates[1],
        });
        let realnvp_maps = maps.pop().expect("two");
        let nhf_maps = maps.pop().expect("two");
        let mut target_map = nhf_maps.target.clone();
        target_map.title = target.clone();
        picture_rows.push(super::plot::row(&[
            &target_map,
            &nhf_maps.learned,
            &realnvp_maps.learned,
        ]));
    }
    let markdown = markdown(&rows, opts);
    crate::run::write_atomic(&opts.out.join("compare.md"), &markdown)?;
    crate::run::write_atomic(
        &opts.out.join("compare.json"),
        &(serde_json::to_string_pretty(&rows)? + "\n"),
    )?;
    stack(&picture_rows).save_png(&opts.out.join("densities.png"))?;
    crate::viz::chart::grid(&charts, 2, 480, 300).save_png(&opts.out.join("curves.png"))?;
    Ok((rows, markdown))
}

/// Trains one run of the comparison (or continues it). A run that diverged is reported at its
/// last checkpoint, not dropped: the note that says so is returned; a run without a checkpoint
/// is an error.
fn train_or_note(
    run: &Path,
    kind: FlowKind,
    target: &str,
    opts: &CompareOptions,
) -> Result<Option<String>> {
    let config = planned_config(run, kind, target, opts)?;
    let Err(e) = train_to(run, config, opts) else {
        return Ok(None);
    };
    let reason = format!("{e:#}");
    let message = format!("{target}, {}: {reason}", kind.name());
    let Ok(step) = crate::run::RunDir::new(run).checkpoint_step() else {
        bail!("{message}");
    };
    opts.reporter.line(&message);
    Ok(Some(format!(
        "{} on {target} stopped early ({}); evaluated at its last checkpoint, step {step}",
        kind.name(),
        reason.split(';').next().unwrap_or(&reason)
    )))
}

/// Picture rows one under the other, as wide as the first.
fn stack(rows: &[Canvas]) -> Canvas {
    let width = rows[0].width;
    let height: usize = rows.iter().map(|c| c.height).sum();
    let mut all = Canvas::new(width, height, WHITE);
    let mut y = 0;
    for r in rows {
        all.blit(0, y as i64, r);
        y += r.height;
    }
    all
}

/// A run's learning curve from its metrics log, and the median of its training lines' steps
/// per second (evaluations and checkpoints excluded).
pub fn learning_curve(run: &Path) -> Result<(Curve, f64)> {
    let path = run.join(crate::run::METRICS_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut curve = vec![];
    let mut rates = vec![];
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let m: FlowMetricsLine = serde_json::from_str(line).with_context(|| {
            format!("{} holds a line that is not a flow metric", path.display())
        })?;
        match (m.kind.as_str(), m.valid_nll, m.seconds, m.steps_per_second) {
            ("eval", Some(nll), Some(seconds), _) => curve.push((m.step, seconds, nll)),
            ("train", _, _, Some(rate)) if rate > 0.0 => rates.push(rate),
            _ => {}
        }
    }
    rates.sort_by(f64::total_cmp);
    let median = if rates.is_empty() {
        f64::NAN
    } else {
        rates[rates.len() / 2]
    };
    Ok((curve, median))
}

/// The validation NLL of both runs of `target` against steps and against seconds.
fn curve_charts(target: &str, curves: &[Curve]) -> [Chart; 2] {
    let names = ["NHF", "RealNVP"];
    let mut by_step = Chart::new(target, "step", "validation NLL (nats)");
    let mut by_time = Chart::new(target, "training seconds", "validation NLL (nats)");
    for (i, (curve, name)) in curves.iter().zip(names).enumerate() {
        by_step.series.push(Series::line(
            name,
            curve.iter().map(|&(s, _, v)| (s as f64, v)).collect(),
            i,
        ));
        by_time.series.push(Series::line(
            name,
            curve.iter().map(|&(_, t, v)| (t, v)).collect(),
            i,
        ));
    }
    [by_step, by_time]
}

/// The configuration of `kind` on `target` under `opts`; an error if `run` already holds a
/// run made with other settings (apart from the step cap).
fn planned_config(
    run: &Path,
    kind: FlowKind,
    target: &str,
    opts: &CompareOptions,
) -> Result<FlowRunConfig> {
    let mut config = new_config(kind, FlowData::Target(target.into()), opts.seed)?;
    config.train.steps = opts.steps;
    config.train.eval_every = opts.eval_every;
    config.train.patience = Some(opts.patience);
    config.train.plateau_halvings = opts.plateau_halvings;
    if crate::run::RunDir::new(run).checkpoint_step().is_ok() {
        let saved = FlowRunConfig::load(run)?;
        let mut expected = config.clone();
        expected.train.steps = saved.train.steps;
        ensure!(
            saved == expected,
            "{} holds a run made with other settings; remove it or choose another --out",
            run.display()
        );
    }
    Ok(config)
}

/// Trains `config` in `run` until it converges or reaches its step cap, reusing what is there.
fn train_to(run: &Path, config: FlowRunConfig, opts: &CompareOptions) -> Result<()> {
    let done = crate::run::RunDir::new(run).checkpoint_step().ok();
    if done.is_some() {
        let converged = super::load::early_stop_of(run)?.is_some_and(|e| e.converged);
        if done == Some(opts.steps) || converged {
            return Ok(());
        }
    } else if run.exists() {
        std::fs::remove_dir_all(run).with_context(|| format!("cannot clear {}", run.display()))?;
    }
    train_flow(&FlowTrainOptions {
        run: run.to_path_buf(),
        config,
        resume: done.is_some(),
        steps_override: done.map(|_| opts.steps),
        device: DeviceChoice::Cpu,
        reporter: opts.reporter.clone(),
    })?;
    Ok(())
}

/// The comparison table.
pub fn markdown(rows: &[CompareRow], opts: &CompareOptions) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Test negative log-likelihood (nats per point, lower is better) on 10,000 held-out \
         draws, at batch 256 on the CPU, each run trained until its validation NLL (2,000 \
         other draws) stopped improving: {} evaluations {} steps apart without a gain of \
         {} nats halve the learning rate, {} times, then stop the run; at most {} steps. \
         NHF: importance-weighted estimate ({} posterior samples; its −ELBO bound in \
         brackets). Δ: NHF − RealNVP. Gaussian: the data's mean and per-axis spread, i.e. a \
         flow at identity. Steps: where training stopped (✓ converged, otherwise at the cap). \
         Steps/s: median of the training log, evaluations excluded; samples/s: 100,000 draws. \
         Ratios: NHF / RealNVP.\n",
        opts.patience,
        opts.eval_every,
        super::config::MIN_IMPROVEMENT,
        opts.plateau_halvings,
        opts.steps,
        rows.first().map_or(16, |r| r.nhf.iw_samples)
    );
    let _ = writeln!(
        out,
        "| target | NHF NLL | RealNVP NLL | Δ | Gaussian | params NHF / RealNVP | steps NHF / RealNVP | steps/s NHF / RealNVP (ratio) | samples/s NHF / RealNVP (ratio) |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    let steps = |r: &FlowEvalReport| {
        let converged = r.early_stop.is_some_and(|e| e.converged);
        format!("{}{}", r.steps, if converged { " ✓" } else { "" })
    };
    for r in rows {
        let _ = writeln!(
            out,
            "| {}{} | {:.3} ({:.3}) | {:.3} | {:+.3} | {:.3} | {} / {} | {} / {} | {:.1} / {:.0} ({:.2}) | {:.0} / {:.0} ({:.3}) |",
            r.target,
            if r.notes.is_empty() { "" } else { " *" },
            r.nhf.test_nll,
            r.nhf.test_nll_bound,
            r.realnvp.test_nll,
            r.nhf.test_nll - r.realnvp.test_nll,
            r.nhf.gaussian_baseline_nll,
            r.nhf.parameters,
            r.realnvp.parameters,
            steps(&r.nhf),
            steps(&r.realnvp),
            r.nhf_steps_per_second,
            r.realnvp_steps_per_second,
            r.nhf_steps_per_second / r.realnvp_steps_per_second,
            r.nhf.samples_per_second,
            r.realnvp.samples_per_second,
            r.nhf.samples_per_second / r.realnvp.samples_per_second
        );
    }
    for note in rows.iter().flat_map(|r| &r.notes) {
        let _ = writeln!(out, "\nNote: {note}.");
    }
    out
}

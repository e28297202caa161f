//! `hgn flow compare`: the NHF against RealNVP on the built-in 2-D targets, side by side in
//! one run: test NLL, parameters, training time and sampling speed as a Markdown table
//! (`OUT/compare.md`, `OUT/compare.json`), and the densities in one picture
//! (`OUT/densities.png`: target | NHF | RealNVP per row).
//!
//! Runs live in `OUT/runs/TARGET-MODEL` and are reused: a finished run is not trained again, an
//! interrupted one is resumed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};

use super::plot::flow_pictures;
use super::targets::TARGETS;
use super::train::{
    FlowData, FlowEvalReport, FlowKind, FlowTrainOptions, evaluate_flow, new_config, train_flow,
};
use crate::device::DeviceChoice;
use crate::viz::Canvas;
use crate::viz::canvas::WHITE;

/// What `hgn flow compare` is asked to do.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Targets (rows).
    pub targets: Vec<String>,
    /// Training steps of every run.
    pub steps: usize,
    /// Seed of every run.
    pub seed: u64,
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
}

/// Trains (or reuses) both flows on every target, evaluates, and writes the table and pictures.
pub fn run_compare(opts: &CompareOptions) -> Result<(Vec<CompareRow>, String)> {
    ensure!(!opts.targets.is_empty(), "--targets names no target");
    for t in &opts.targets {
        ensure!(
            TARGETS.contains(&t.as_str()),
            "unknown target '{t}' (known: {})",
            TARGETS.join(", ")
        );
    }
    ensure!(opts.steps >= 1, "--steps must be at least 1");
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let mut rows = vec![];
    let mut picture_rows = vec![];
    for target in &opts.targets {
        let mut reports = vec![];
        let mut maps = vec![];
        let mut notes = vec![];
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
            if let Err(e) = train_to(&run, kind, target, opts) {
                // A run that diverged is reported at its last checkpoint, not dropped.
                let reason = format!("{e:#}");
                ensure!(
                    run.join("checkpoint").is_dir(),
                    "{target}, {}: {reason}",
                    kind.name()
                );
                opts.reporter
                    .line(&format!("{target}, {}: {reason}", kind.name()));
                let step = crate::run::RunDir::new(&run).checkpoint_step()?;
                notes.push(format!(
                    "{} on {target} stopped early ({}); evaluated at its last checkpoint, step {step}",
                    kind.name(),
                    reason.split(';').next().unwrap_or(&reason)
                ));
            }
            reports.push(evaluate_flow(&run, None, None)?);
            maps.push(flow_pictures(&run)?);
        }
        let realnvp = reports.pop().expect("two reports");
        let nhf = reports.pop().expect("two reports");
        rows.push(CompareRow {
            target: target.clone(),
            nhf,
            realnvp,
            notes,
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
    let markdown = markdown(&rows, opts.steps);
    crate::run::write_atomic(&opts.out.join("compare.md"), &markdown)?;
    crate::run::write_atomic(
        &opts.out.join("compare.json"),
        &(serde_json::to_string_pretty(&rows)? + "\n"),
    )?;
    let width = picture_rows[0].width;
    let height: usize = picture_rows.iter().map(|c| c.height).sum();
    let mut all = Canvas::new(width, height, WHITE);
    let mut y = 0;
    for r in &picture_rows {
        all.blit(0, y as i64, r);
        y += r.height;
    }
    all.save_png(&opts.out.join("densities.png"))?;
    Ok((rows, markdown))
}

/// Trains `kind` on `target` in `run` up to `opts.steps`, reusing what is there.
fn train_to(run: &Path, kind: FlowKind, target: &str, opts: &CompareOptions) -> Result<()> {
    let done = crate::run::RunDir::new(run).checkpoint_step().ok();
    if done == Some(opts.steps) {
        return Ok(());
    }
    if done.is_none() && run.exists() {
        std::fs::remove_dir_all(run).with_context(|| format!("cannot clear {}", run.display()))?;
    }
    let mut config = new_config(kind, FlowData::Target(target.into()), opts.seed)?;
    config.train.steps = opts.steps;
    config.train.eval_every = opts.steps.div_ceil(4).max(1);
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
pub fn markdown(rows: &[CompareRow], steps: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Test negative log-likelihood (nats per point, lower is better) on 10,000 held-out \
         draws, after {steps} steps at batch 256 on the CPU. NHF: importance-weighted estimate \
         ({} posterior samples; its −ELBO bound in brackets). Gaussian: the data's mean and \
         per-axis spread, i.e. a flow at identity.\n",
        rows.first().map_or(64, |r| r.nhf.iw_samples)
    );
    let _ = writeln!(
        out,
        "| target | NHF NLL | RealNVP NLL | Gaussian | NHF params | RealNVP params | NHF train s | RealNVP train s | NHF samples/s | RealNVP samples/s |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let _ = writeln!(
            out,
            "| {}{} | {:.3} ({:.3}) | {:.3} | {:.3} | {} | {} | {:.0} | {:.0} | {:.0} | {:.0} |",
            r.target,
            if r.notes.is_empty() { "" } else { " *" },
            r.nhf.test_nll,
            r.nhf.test_nll_bound,
            r.realnvp.test_nll,
            r.nhf.gaussian_baseline_nll,
            r.nhf.parameters,
            r.realnvp.parameters,
            r.nhf.train_seconds,
            r.realnvp.train_seconds,
            r.nhf.samples_per_second,
            r.realnvp.samples_per_second
        );
    }
    for note in rows.iter().flat_map(|r| &r.notes) {
        let _ = writeln!(out, "\nNote: {note}.");
    }
    out
}

//! The physics beside a split's evaluation: the oracle on the same Table 1 frames (reference D6)
//! and the linear probe from the inferred state to the true one.

use anyhow::{Context, Result, ensure};

use super::{Interval, OracleReport, SplitReport};
use crate::data::format::Split;
use crate::metrics;
use crate::oracle::{OracleData, OracleFrames, OracleOptions, SequenceOracle};
use crate::protocol::Protocol;
use crate::train::RunConfig;

/// Adds to `report` (the evaluation of `split`, with its per-sequence figures) the physics
/// oracle on its Table 1 frames, each sequence's oracle scores, and, from eight sequences on
/// (half fit the probe, half score it), the probe of `latents` (each sequence's inferred state).
pub(super) fn add_oracle_and_probe(
    report: &mut SplitReport,
    split: Split,
    physics: &OracleData,
    latents: &[Vec<f64>],
    config: &RunConfig,
    opts: &OracleOptions,
    reporter: &crate::progress::Reporter,
) -> Result<()> {
    let (summary, scores) = oracle_report(physics, split, config, report, opts, reporter)?;
    report.oracle = Some(summary);
    if latents.len() >= 8 {
        report.probe = Some(encoder_probe(physics, config, latents)?);
    }
    if let Some(per) = report.per_sequence.as_mut() {
        per.oracle_expected = scores
            .iter()
            .map(|s| s.as_ref().map(|s| s.expected))
            .collect();
        per.oracle_point = scores.iter().map(|s| s.as_ref().map(|s| s.point)).collect();
    }
    Ok(())
}

/// The linear probe from the state the model inferred for each sequence (at frame `K − 1`) to
/// the true positions and momenta there.
fn encoder_probe(
    oracle: &OracleData,
    config: &RunConfig,
    latents: &[Vec<f64>],
) -> Result<crate::probe::ProbeReport> {
    let frame = config.model.num_inference_frames - 1;
    let mut names = vec![];
    let mut positions = 0;
    let truths: Vec<Vec<f64>> = (0..latents.len())
        .map(|i| {
            let (n, values, count) = oracle.observables(i, frame);
            (names, positions) = (n, count);
            values
        })
        .collect();
    crate::probe::linear_probe(latents, &truths, names, positions)
}

/// The physics oracle on the Table 1 frames of `report`'s sequences, and each sequence's scores.
fn oracle_report(
    oracle: &OracleData,
    split: Split,
    config: &RunConfig,
    report: &SplitReport,
    opts: &OracleOptions,
    reporter: &crate::progress::Reporter,
) -> Result<(OracleReport, Vec<Option<SequenceOracle>>)> {
    let frames = OracleFrames::of(
        config.protocol,
        config.model.num_inference_frames,
        report.table1_frames,
    );
    let n = report.sequences;
    let bar = reporter.task(
        &format!("oracle {:5}", split.name()),
        "sequences",
        n as u64,
        0,
    );
    let all = oracle.sequences(n, &frames, opts, &|done| bar.set_position(done as u64))?;
    drop(bar);
    // Ratios compare the model and the oracle on the sequences the physics answered.
    let answered: Vec<usize> = (0..all.len()).filter(|&i| all[i].is_some()).collect();
    ensure!(
        !answered.is_empty(),
        "the oracle's fit failed on every {} sequence",
        split.name()
    );
    let per = report
        .per_sequence
        .as_ref()
        .context("the split's per-sequence figures are missing")?;
    let on_answered =
        |v: &[f64]| metrics::mean(&answered.iter().map(|&i| v[i]).collect::<Vec<_>>());
    let pick =
        |f: fn(&SequenceOracle) -> f64| -> Vec<f64> { all.iter().flatten().map(f).collect() };
    let expected = Interval::of(&pick(|s| s.expected));
    let answers: Vec<&SequenceOracle> = all.iter().flatten().collect();
    let mut expected_per_step: Vec<f64> = (0..frames.scored.len())
        .map(|f| {
            answers.iter().map(|s| s.expected_per_frame[f]).sum::<f64>() / answers.len() as f64
        })
        .collect();
    // The scored frames run in recorded order; a reconstruction runs backward from the last.
    if config.protocol == Protocol::Reconstruct {
        expected_per_step.reverse();
    }
    let summary = OracleReport {
        frames,
        draws: opts.draws,
        failed: all.len() - answered.len(),
        point_x1e4: Interval::of(&pick(|s| s.point)),
        model_ratio: on_answered(&per.model) / expected.mean,
        baseline_ratio: on_answered(&per.baseline) / expected.mean,
        expected_x1e4: expected,
        noise_floor_x1e4: Interval::of(&pick(|s| s.noise_floor)),
        expected_per_step_x1e4: expected_per_step,
    };
    Ok((summary, all))
}

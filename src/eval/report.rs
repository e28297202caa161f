//! What `hgn eval` reports ([`EvalReport`], written as `RUN/eval.json`) and its text table.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::metrics;
use crate::oracle::OracleFrames;
use crate::protocol::Protocol;

/// A mean with its 95 % confidence half-width.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Interval {
    /// Mean over sequences.
    pub mean: f64,
    /// Half-width of the 95 % t interval (NaN for a single sequence, written as null).
    pub ci95: Option<f64>,
}

impl Interval {
    pub(crate) fn of(values: &[f64]) -> Self {
        let (mean, h) = metrics::mean_with_ci95(values);
        Interval {
            mean,
            ci95: h.is_finite().then_some(h),
        }
    }
}

/// DeepMind-style statistics of one direction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DirectionReport {
    /// MSE over the training window (the first `rollout_steps + 1` predicted frames).
    pub window_mse: f64,
    /// `l2_norm` over the training window.
    pub window_l2_norm: f64,
    /// Frames past the training window that were compared (at most 60).
    pub extrapolation_frames: usize,
    /// MSE over those frames (null when there are none).
    pub extrapolation_mse: Option<f64>,
    /// `l2_norm` over those frames.
    pub extrapolation_l2_norm: Option<f64>,
    /// Median valid prediction time, in steps.
    pub vpt_abs: f64,
    /// `vpt_abs` divided by the frames predicted.
    pub vpt_rel: f64,
    /// Mean MSE of each predicted frame over sequences (step 0 is the inferred state).
    pub mse_per_step: Vec<f64>,
}

/// The learned energy along forward rollouts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EnergyReport {
    /// Mean of `H` over all states (its scale).
    pub mean_energy: f64,
    /// Mean over sequences of mean |H_i − H_j| (DeepMind's `avg_energy_deficit`).
    pub avg_deficit: f64,
    /// Mean over sequences of max |H_i − H_j| (`max_energy_deficit`).
    pub max_deficit: f64,
    /// Mean over sequences of the least-squares slope of H per step.
    pub drift_per_step: f64,
    /// Mean over sequences of |slope|.
    pub abs_drift_per_step: f64,
}

/// The physics oracle on the Table 1 frames of the evaluated sequences (reference D6).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OracleReport {
    /// The frames fitted and scored.
    pub frames: OracleFrames,
    /// Posterior draws per sequence for the expected image.
    pub draws: usize,
    /// Sequences the physics gave no answer for (a failed fit, or colliding bodies), left out of
    /// the oracle's figures and of both ratios.
    #[serde(default)]
    pub failed: usize,
    /// The fitted state rendered sharp, ×1e4.
    pub point_x1e4: Interval,
    /// The posterior-averaged image (the MSE-optimal prediction), ×1e4.
    pub expected_x1e4: Interval,
    /// The clean states rendered, against the noisy targets, ×1e4.
    pub noise_floor_x1e4: Interval,
    /// The expected-image oracle of each step of the Table 1 rollout (forward under `forecast`,
    /// backward under `reconstruct`: step `i` beside the rollout's `mse_per_step[i]`), mean over
    /// the sequences it answered, ×1e4 (empty in reports written before it was recorded).
    #[serde(default)]
    pub expected_per_step_x1e4: Vec<f64>,
    /// The model's Table 1 mean divided by the expected-image oracle's (both over the sequences
    /// the oracle answered).
    pub model_ratio: f64,
    /// The mean-frame baseline divided by the expected-image oracle.
    pub baseline_ratio: f64,
}

/// Each evaluated sequence's Table 1 figures (×1e4), index `i` = sequence `i` of the split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PerSequence {
    /// The model.
    pub model: Vec<f64>,
    /// The mean-frame baseline.
    pub baseline: Vec<f64>,
    /// The expected-image oracle (empty without the oracle; null where it gave no answer).
    pub oracle_expected: Vec<Option<f64>>,
    /// The point oracle (as `oracle_expected`).
    pub oracle_point: Vec<Option<f64>>,
}

/// Every figure for one split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SplitReport {
    /// `train` or `test`.
    pub split: String,
    /// Sequences evaluated.
    pub sequences: usize,
    /// Frames per sequence in the dataset.
    pub seq_len: usize,
    /// Steps of the forward rollouts (and of the backward ones under `forecast`; under
    /// `reconstruct` those run `W − 1`).
    pub steps: usize,
    /// Frames in the Table 1 average (forecast: 30 unless the sequences are shorter;
    /// reconstruct: the window's `W`).
    pub table1_frames: usize,
    /// The paper's metric: MSE × 1e4 over the Table 1 frames, mean ± 95 % CI over sequences.
    pub table1_mse_x1e4: Interval,
    /// The mean training frame as a prediction, on the same frames, × 1e4.
    pub baseline_mse_x1e4: f64,
    /// The physics oracle on the same frames (absent when not computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oracle: Option<OracleReport>,
    /// Each sequence's Table 1 figures, in sequence order (only when asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_sequence: Option<PerSequence>,
    /// How much of the true state of the inferred frame the model's inferred state holds
    /// linearly (computed with the oracle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<crate::probe::ProbeReport>,
    /// The Table 1 error after refining the inferred state with the weights fixed (only when
    /// asked for; [`crate::eval::refine`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refined: Option<crate::eval::RefineReport>,
    /// Forward rollouts.
    pub forward: DirectionReport,
    /// Backward rollouts.
    pub backward: DirectionReport,
    /// Learned energy along the forward rollouts.
    pub energy: EnergyReport,
}

/// The report `hgn eval` prints and writes to `RUN/eval.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvalReport {
    /// The run folder.
    pub run: PathBuf,
    /// The dataset evaluated.
    pub data: PathBuf,
    /// Training step of the checkpoint.
    pub checkpoint_step: usize,
    /// Preset name of the run.
    pub preset: String,
    /// The window protocol every number follows (absent in reports written before it existed:
    /// forecast).
    #[serde(default)]
    pub protocol: Protocol,
    /// Integrator of the model.
    pub integrator: String,
    /// Model time step.
    pub dt: f64,
    /// Inference frames `K`.
    pub inference_frames: usize,
    /// Training rollout steps.
    pub rollout_steps: usize,
    /// One entry per split.
    pub splits: Vec<SplitReport>,
}

/// A row of [`EvalReport::table`]: its label and the cell of one split.
type Row<'a> = (String, Box<dyn Fn(&SplitReport) -> String + 'a>);

/// A row whose cell is `cell` of the split, or "-" where the split has no such figure.
fn row<'a>(
    label: impl Into<String>,
    cell: impl Fn(&SplitReport) -> Option<String> + 'a,
) -> Row<'a> {
    (
        label.into(),
        Box::new(move |s| cell(s).unwrap_or_else(|| "-".into())),
    )
}

/// A row of figures of one part `T` of a split's report: its label and its cell.
type Labelled<T> = (&'static str, fn(&T) -> String);

/// The oracle's rows.
const ORACLE_ROWS: [Labelled<OracleReport>; 5] = [
    ("oracle: expected image ×1e4", |o| {
        format!("{:.2}", o.expected_x1e4.mean)
    }),
    ("oracle: point ×1e4", |o| {
        format!("{:.2}", o.point_x1e4.mean)
    }),
    ("oracle: noise floor ×1e4", |o| {
        format!("{:.2}", o.noise_floor_x1e4.mean)
    }),
    ("model / expected-image oracle", |o| {
        format!("{:.3}", o.model_ratio)
    }),
    ("baseline / expected-image oracle", |o| {
        format!("{:.3}", o.baseline_ratio)
    }),
];

/// The rows of each direction of time, labelled after the direction's name.
const DIRECTION_ROWS: [Labelled<DirectionReport>; 5] = [
    ("window MSE", |d| format!("{:.3e}", d.window_mse)),
    ("window l2_norm", |d| format!("{:.3e}", d.window_l2_norm)),
    ("extrapolation MSE", |d| {
        format!(
            "{} ({} fr)",
            optional(d.extrapolation_mse),
            d.extrapolation_frames
        )
    }),
    ("extrapolation l2_norm", |d| {
        optional(d.extrapolation_l2_norm)
    }),
    ("VPT abs / rel", |d| {
        format!("{:.1} / {:.3}", d.vpt_abs, d.vpt_rel)
    }),
];

/// Picks a direction of time's part of a split's report.
type PickDirection = fn(&SplitReport) -> &DirectionReport;

/// The directions of time, each with its part of a split's report.
const DIRECTIONS: [(&str, PickDirection); 2] =
    [("forward", |s| &s.forward), ("backward", |s| &s.backward)];

/// The energy rows.
const ENERGY_ROWS: [Labelled<EnergyReport>; 4] = [
    ("energy: mean H", |e| format!("{:.4e}", e.mean_energy)),
    ("energy: avg |Hi − Hj|", |e| {
        format!("{:.3e}", e.avg_deficit)
    }),
    ("energy: max |Hi − Hj|", |e| {
        format!("{:.3e}", e.max_deficit)
    }),
    ("energy: drift / step", |e| {
        format!("{:+.2e}", e.drift_per_step)
    }),
];

/// `x` in the table's scientific format, or "-".
fn optional(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{x:.3e}"))
}

impl EvalReport {
    /// The report as an aligned text table: one row per figure, one column per split; the
    /// oracle, probe and refinement rows only where some split has them.
    pub fn table(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "hgn eval: {} (step {}, preset {}, {} protocol, {}, dt {}) on {}",
            self.run.display(),
            self.checkpoint_step,
            self.preset,
            self.protocol,
            self.integrator,
            self.dt,
            self.data.display()
        );
        let mut rows: Vec<Row> = vec![
            row("", |s| Some(s.split.clone())),
            row("sequences", |s| Some(s.sequences.to_string())),
            row("Table 1 MSE ×1e4 (95 % CI)", |s| {
                let m = &s.table1_mse_x1e4;
                Some(match m.ci95 {
                    Some(h) => format!("{:.2} ± {h:.2}", m.mean),
                    None => format!("{:.2}", m.mean),
                })
            }),
            row("  frames averaged", |s| Some(s.table1_frames.to_string())),
            row("mean-frame baseline ×1e4", |s| {
                Some(format!("{:.2}", s.baseline_mse_x1e4))
            }),
        ];
        if self.splits.iter().any(|s| s.oracle.is_some()) {
            rows.extend(self.oracle_rows());
        }
        rows.extend(self.state_rows());
        for (name, pick) in DIRECTIONS {
            for (label, cell) in DIRECTION_ROWS {
                rows.push(row(format!("{name}: {label}"), move |s| {
                    Some(cell(pick(s)))
                }));
            }
        }
        for (label, cell) in ENERGY_ROWS {
            rows.push(row(label, move |s| Some(cell(&s.energy))));
        }
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|(_, cell)| self.splits.iter().map(cell).collect())
            .collect();
        let label_width = rows
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0)
            + 2;
        let cell_width = cells
            .iter()
            .flatten()
            .map(|c| c.chars().count() + 2)
            .fold(24, usize::max);
        for ((label, _), cells) in rows.iter().zip(cells) {
            let _ = write!(out, "{label:<label_width$}");
            for cell in cells {
                let _ = write!(out, "{cell:>cell_width$}");
            }
            out.push('\n');
        }
        out
    }

    /// The inferred state's rows: the linear probe's R² and the refinement's error, where some
    /// split has them.
    fn state_rows(&self) -> Vec<Row<'_>> {
        let mut rows = vec![];
        if self.splits.iter().any(|s| s.probe.is_some()) {
            rows.push(row("inferred state: positions R²", |s| {
                s.probe.as_ref().map(|p| format!("{:.3}", p.positions_r2))
            }));
            rows.push(row("inferred state: momenta R²", |s| {
                s.probe.as_ref().map(|p| format!("{:.3}", p.momenta_r2))
            }));
        }
        if self.splits.iter().any(|s| s.refined.is_some()) {
            rows.push(row("refined state: Table 1 ×1e4", |s| {
                let r = s.refined.as_ref()?;
                let (refined, inferred) = (r.refined_mse_x1e4.mean, r.inferred_mse_x1e4.mean);
                Some(format!("{refined:.2} (from {inferred:.2})"))
            }));
            rows.push(row("  sequences / Adam steps", |s| {
                s.refined
                    .as_ref()
                    .map(|r| format!("{} / {}", r.sequences, r.iterations))
            }));
        }
        rows
    }

    /// The oracle's rows: its figures, the model's gap to it at the inferred frame, and how
    /// many sequences it could not answer (where any).
    fn oracle_rows(&self) -> Vec<Row<'_>> {
        let mut rows: Vec<Row> = ORACLE_ROWS
            .into_iter()
            .map(|(label, cell)| row(label, move |s| s.oracle.as_ref().map(cell)))
            .collect();
        // The gap at step 0 of the Table 1 rollout, the frame the state is inferred at.
        rows.push(row("model − oracle, step 0 ×1e4", |s| {
            let model = match self.protocol {
                Protocol::Forecast => s.forward.mse_per_step.first(),
                Protocol::Reconstruct => s.backward.mse_per_step.first(),
            }?;
            let oracle = s.oracle.as_ref()?.expected_per_step_x1e4.first()?;
            Some(format!("{:.2}", 1e4 * model - oracle))
        }));
        if self
            .splits
            .iter()
            .any(|s| s.oracle.as_ref().is_some_and(|o| o.failed > 0))
        {
            rows.push(row("oracle: no answer (left out)", |s| {
                s.oracle.as_ref().map(|o| o.failed.to_string())
            }));
        }
        rows
    }
}

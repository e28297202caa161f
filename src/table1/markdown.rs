//! The Markdown of `hgn table1`: the paper's and ReScience's published numbers (reference
//! §10.2, §10.3) and the table that sets this run's cells beside them and beside the oracle.

use std::fmt::Write as _;

use crate::eval::Interval;
use crate::model::{EncoderInput, Objective};
use crate::protocol::Protocol;
use crate::train::LrSchedule;

use super::{Cell, SYSTEMS, Scale};

/// The paper's Table 1 (reference §10.2), ×1e4: (variant, [(train, ±), (test, ±)] per system in
/// [`SYSTEMS`] order). HNN and the no-f_ψ row are not available in the sources.
const PAPER: [(&str, [(f64, f64); 8]); 3] = [
    (
        "leapfrog",
        [
            (3.84, 1.07),
            (6.23, 2.03),
            (4.90, 1.86),
            (11.72, 4.14),
            (6.36, 3.29),
            (16.47, 7.15),
            (7.88, 3.55),
            (9.80, 3.72),
        ],
    ),
    (
        "euler",
        [
            (3.67, 1.09),
            (6.20, 2.69),
            (5.43, 2.53),
            (10.93, 4.32),
            (6.62, 3.93),
            (15.06, 7.01),
            (7.51, 3.49),
            (9.40, 3.92),
        ],
    ),
    (
        "deterministic",
        [
            (0.23, 0.23),
            (3.07, 1.06),
            (0.79, 1.24),
            (10.68, 3.19),
            (2.34, 2.30),
            (14.47, 5.24),
            (4.10, 2.05),
            (5.17, 1.96),
        ],
    ),
];

/// Published rows: (variant, [(train, ±), (test, ±)] per system in [`SYSTEMS`] order), ×1e4.
type Published = [(&'static str, [(f64, f64); 8]); 3];

/// ReScience's autoencode rows (reference §10.3): the `reconstruct` protocol's anchor, ×1e4.
const RESCIENCE_AUTOENCODE: [(&str, [(f64, f64); 8]); 3] = [
    (
        "leapfrog",
        [
            (7.11, 0.01),
            (7.12, 0.03),
            (14.89, 0.05),
            (14.97, 0.10),
            (3.36, 0.01),
            (3.36, 0.02),
            (8.81, 0.01),
            (8.81, 0.01),
        ],
    ),
    (
        "euler",
        [
            (9.05, 0.02),
            (9.06, 0.05),
            (17.79, 0.06),
            (17.86, 0.13),
            (3.84, 0.01),
            (3.85, 0.02),
            (1.99, 0.01),
            (1.99, 0.01),
        ],
    ),
    (
        "deterministic",
        [
            (7.10, 0.01),
            (7.10, 0.03),
            (14.11, 0.05),
            (14.14, 0.12),
            (3.92, 0.02),
            (3.93, 0.02),
            (4.14, 0.01),
            (4.13, 0.02),
        ],
    ),
];

/// ReScience's 5-frame-inference rows (reference §10.3): the `forecast` protocol's anchor, ×1e4.
// 6.28 is a published MSE, not an approximation of τ.
#[allow(clippy::approx_constant)]
const RESCIENCE: [(&str, [(f64, f64); 8]); 3] = [
    (
        "leapfrog",
        [
            (12.15, 0.05),
            (12.21, 0.11),
            (44.29, 0.19),
            (44.12, 0.42),
            (6.28, 0.03),
            (6.33, 0.06),
            (3.35, 0.01),
            (3.35, 0.02),
        ],
    ),
    (
        "euler",
        [
            (42.09, 0.14),
            (41.98, 0.32),
            (47.06, 0.17),
            (47.03, 0.39),
            (6.46, 0.03),
            (6.52, 0.06),
            (8.18, 0.01),
            (8.17, 0.01),
        ],
    ),
    (
        "deterministic",
        [
            (13.00, 0.05),
            (13.04, 0.11),
            (45.06, 0.19),
            (44.89, 0.42),
            (10.95, 0.02),
            (10.97, 0.05),
            (3.72, 0.01),
            (3.72, 0.02),
        ],
    ),
];

fn variant_title(v: &str) -> &str {
    match v {
        "hnn" => "HNN (2-D latent)",
        "leapfrog" => "HGN (leapfrog)",
        "euler" => "HGN (Euler)",
        "deterministic" => "HGN (deterministic)",
        "no-f-psi" => "HGN (no f_ψ)",
        other => other,
    }
}

fn interval(i: &Interval) -> String {
    match i.ci95 {
        Some(h) => format!("{:.2} ± {:.2}", i.mean, h),
        None => format!("{:.2}", i.mean),
    }
}

/// The Markdown table: our rows, the physics oracle and our rows' ratio to it, the noise floor and
/// the mean-frame baseline, then the published rows measured under the same protocol (the
/// paper's Table 1 and ReScience's autoencode rows for `reconstruct`, ReScience's 5-frame rows
/// for `forecast`), for the systems that were run.
pub fn markdown(scale: Scale, protocol: Protocol, cells: &[Cell]) -> String {
    let mut systems: Vec<&str> = vec![];
    let mut variants: Vec<&str> = vec![];
    for c in cells {
        if !systems.contains(&c.system.as_str()) {
            systems.push(&c.system);
        }
        if !variants.contains(&c.variant.as_str()) {
            variants.push(&c.variant);
        }
    }
    let mut out = caption(scale, protocol);
    let mut header = "| Model |".to_string();
    let mut rule = "|---|".to_string();
    for s in &systems {
        let _ = write!(header, " {s} train | {s} test |");
        rule.push_str("---|---|");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    out.push_str(&our_rows(cells, &systems, &variants));
    out.push_str(&anchor_rows(cells, &systems));
    out.push_str(&published_rows(protocol, &systems, &variants));
    let _ = writeln!(
        out,
        "\nOracle: the exact system fitted to the observed positions of the frames the encoder \
         sees, on the same test sequences and frames (reference D6); a model's ratio to the \
         expected image is the number that carries across renderers. Paper: Toth et al. 2020, \
         Table 1 (± unexplained). ReScience: the CampusAI replication (± is a 95 % t interval). \
         n/a: not published."
    );
    if variants.contains(&"hnn") {
        let _ = writeln!(
            out,
            "\nHNN (2-D latent): the pixel HNN of Greydanus et al. as the paper's baseline, trained \
             by the same loop and on the same frames as the HGN rows: the encoder's output is the \
             state (one q, one p; no f_ψ, no sampling), evolved by one learned H(q, p) and \
             decoded from q. The paper's HNN rows are not published."
        );
    }
    out
}

/// The sentence above the table: metric, protocol, scale and objective.
fn caption(scale: Scale, protocol: Protocol) -> String {
    let spec = scale.spec();
    let window = match protocol {
        Protocol::Reconstruct => {
            "`reconstruct` protocol: all 31 frames of a window seen, state inferred at the last, \
             30 steps back, all 31 frames scored"
        }
        Protocol::Forecast => {
            "`forecast` protocol: state inferred from 5 frames, 30 frames scored from the last \
             of them"
        }
    };
    let encoder = match (protocol, spec.reconstruct_encoder, spec.forecast_rollout) {
        (Protocol::Reconstruct, EncoderInput::PerFrame, _) => {
            " with a per-frame encoder (each frame through the same convolutions, the frames \
             combined by the last)"
                .to_string()
        }
        (Protocol::Forecast, _, Some(rollout)) => format!(
            " trained on {}-frame rollouts (grown from 2 frames over the first {} % of the steps)",
            rollout.steps + 1,
            rollout.curriculum_fraction * 100.0
        ),
        _ => String::new(),
    };
    let schedule = match spec.lr_schedule {
        LrSchedule::Constant => String::new(),
        LrSchedule::Cosine => " (cosine learning rate)".into(),
        LrSchedule::Drop => format!(
            " (the learning rate cut to {} of itself for the last {} % of them)",
            LrSchedule::DROP_FACTOR,
            LrSchedule::DROP_FRACTION * 100.0
        ),
    };
    format!(
        "Average pixel MSE ×1e4 (mean ± 95 % t interval over sequences), {window}. hgn at scale \
         `{}`: preset `{}`{encoder}, {} train / {} test sequences per system, {} steps at batch \
         {}{schedule}; the variational variants trained with {}.\n\n",
        scale.name(),
        spec.preset,
        spec.train,
        spec.test,
        spec.steps,
        spec.batch_size,
        match spec.objective {
            Objective::Geco { kappa } => format!("GECO (κ = {kappa:e})"),
            Objective::Elbo { beta } => format!("a fixed KL weight β = {beta}"),
        }
    )
}

/// Each variant's train and test row, and its test ratio to the expected-image oracle.
fn our_rows(cells: &[Cell], systems: &[&str], variants: &[&str]) -> String {
    let mut out = String::new();
    let cell = |v: &str, s: &str| cells.iter().find(|c| c.variant == v && c.system == s);
    for v in variants {
        let mut row = format!("| **hgn {}** |", variant_title(v));
        let mut ratio = format!("| hgn {} / oracle |", variant_title(v));
        for s in systems {
            match cell(v, s) {
                Some(c) => {
                    let _ = write!(row, " {} | {} |", interval(&c.train), interval(&c.test));
                    match &c.test_oracle {
                        Some(o) => {
                            let _ = write!(ratio, " – | **{:.2}×** |", o.model_ratio);
                        }
                        None => ratio.push_str(" – | – |"),
                    }
                }
                None => {
                    row.push_str(" – | – |");
                    ratio.push_str(" – | – |");
                }
            }
        }
        let _ = writeln!(out, "{row}\n{ratio}");
    }
    out
}

/// The oracles, noise floor and mean-frame baseline of each system's test split.
fn anchor_rows(cells: &[Cell], systems: &[&str]) -> String {
    let mut out = String::new();
    let first = |s: &str| cells.iter().find(|c| c.system == s);
    type Pick = fn(&Cell) -> Option<f64>;
    let anchors: [(&str, Pick); 4] = [
        ("physics oracle, expected image", |c| {
            c.test_oracle.as_ref().map(|o| o.expected_x1e4.mean)
        }),
        ("physics oracle, point", |c| {
            c.test_oracle.as_ref().map(|o| o.point_x1e4.mean)
        }),
        ("noise floor", |c| {
            c.test_oracle.as_ref().map(|o| o.noise_floor_x1e4.mean)
        }),
        ("mean-frame baseline", |c| Some(c.test_baseline)),
    ];
    for (name, pick) in anchors {
        let mut row = format!("| {name} |");
        for s in systems {
            match first(s).and_then(pick) {
                Some(v) => {
                    let _ = write!(row, " – | {v:.2} |");
                }
                None => row.push_str(" – | – |"),
            }
        }
        let _ = writeln!(out, "{row}");
    }
    out
}

/// The published rows measured under `protocol`, for the variants and systems run.
fn published_rows(protocol: Protocol, systems: &[&str], variants: &[&str]) -> String {
    let mut out = String::new();
    let published: Vec<(&str, &Published)> = match protocol {
        Protocol::Reconstruct => vec![
            ("paper", &PAPER),
            ("ReScience, autoencode", &RESCIENCE_AUTOENCODE),
        ],
        Protocol::Forecast => vec![("ReScience, 5-frame", &RESCIENCE)],
    };
    for (source, rows) in published {
        for v in variants {
            let mut row = format!("| {} ({source}) |", variant_title(v));
            let published = rows.iter().find(|(name, _)| name == v);
            for s in systems {
                let col = SYSTEMS
                    .iter()
                    .position(|x| x == s)
                    .expect("a Table 1 system");
                match published {
                    Some((_, values)) => {
                        let (a, b) = (values[2 * col], values[2 * col + 1]);
                        let _ = write!(row, " {:.2} ± {:.2} | {:.2} ± {:.2} |", a.0, a.1, b.0, b.1);
                    }
                    None => row.push_str(" n/a | n/a |"),
                }
            }
            let _ = writeln!(out, "{row}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caption_names_the_window_each_protocol_trained_on() {
        let forecast = caption(Scale::Small, Protocol::Forecast);
        assert!(
            forecast.contains(
                "trained on 30-frame rollouts (grown from 2 frames over the first 40 % of the steps)"
            ),
            "{forecast}"
        );
        let reconstruct = caption(Scale::Small, Protocol::Reconstruct);
        assert!(
            reconstruct.contains("with a per-frame encoder"),
            "{reconstruct}"
        );
        assert!(!reconstruct.contains("rollouts (grown"), "{reconstruct}");
        let paper = caption(Scale::Paper, Protocol::Forecast);
        assert!(!paper.contains("rollouts (grown"), "{paper}");
    }
}

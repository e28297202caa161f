//! What the encoder's inferred state knows: a linear probe from the model's latent state to the
//! true physical state of the same frame.
//!
//! For each evaluated sequence, the state the model infers (`q` and `p`, flattened) is paired
//! with the true observables of the inferred frame: every body's position `(x, y)` (what the
//! frames show) and the momenta `p`. A ridge regression with intercept is fitted on the
//! even-numbered sequences and scored on the odd-numbered ones; the report is the held-out `R²`
//! of each observable (1: the latent holds it linearly; 0: no better than its mean).

use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use crate::physics::fit::{cholesky, cholesky_solve};

/// Held-out `R²` of a linear map from the model's latent state to the true state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Sequences the map was fitted on (the even-numbered ones).
    pub fitted: usize,
    /// Sequences it was scored on (the odd-numbered ones).
    pub scored: usize,
    /// Names of the observables, e.g. `x1`, `y1`, `p`.
    pub names: Vec<String>,
    /// Held-out `R²` of each observable; NaN (`null` in JSON) for one that does not vary, such
    /// as the mass-spring's `x1`.
    #[serde(deserialize_with = "nullable_f64s")]
    pub r2: Vec<f64>,
    /// Mean `R²` of the body positions.
    #[serde(deserialize_with = "nullable_f64")]
    pub positions_r2: f64,
    /// Mean `R²` of the momenta.
    #[serde(deserialize_with = "nullable_f64")]
    pub momenta_r2: f64,
}

/// Reads back a number that serde_json wrote as `null` because it was NaN.
fn nullable_f64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// [`nullable_f64`] for each element.
fn nullable_f64s<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    let values = Vec::<Option<f64>>::deserialize(d)?;
    Ok(values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Fits and scores the probe: `latents[i]` (length `D`) against `truths[i]` (the observables,
/// positions first, `positions` of them, then the momenta).
pub fn linear_probe(
    latents: &[Vec<f64>],
    truths: &[Vec<f64>],
    names: Vec<String>,
    positions: usize,
) -> Result<ProbeReport> {
    let n = latents.len();
    ensure!(
        n == truths.len() && n >= 8,
        "the probe needs at least 8 sequences"
    );
    let fit: Vec<usize> = (0..n).step_by(2).collect();
    let test: Vec<usize> = (1..n).step_by(2).collect();
    let features = Standardised::fit(latents, &fit);
    let weights = ridge(&features, latents, truths, &fit)?;
    let r2: Vec<f64> = (0..truths[0].len())
        .map(|c| {
            let y: Vec<f64> = test.iter().map(|&i| truths[i][c]).collect();
            let m = y.iter().sum::<f64>() / y.len() as f64;
            let total: f64 = y.iter().map(|v| (v - m).powi(2)).sum();
            let residual: f64 = test
                .iter()
                .zip(&y)
                .map(|(&i, v)| {
                    let x = features.row(&latents[i]);
                    let pred: f64 = x.iter().zip(&weights[c]).map(|(a, w)| a * w).sum();
                    (v - pred).powi(2)
                })
                .sum();
            if total > 0.0 {
                1.0 - residual / total
            } else {
                f64::NAN
            }
        })
        .collect();
    let mean_of = |v: &[f64]| {
        let finite: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        finite.iter().sum::<f64>() / finite.len().max(1) as f64
    };
    Ok(ProbeReport {
        fitted: fit.len(),
        scored: test.len(),
        positions_r2: mean_of(&r2[..positions]),
        momenta_r2: mean_of(&r2[positions..]),
        names,
        r2,
    })
}

/// An intercept and the latents standardised with the mean and spread of the fitting half, so
/// the ridge treats every coordinate alike.
struct Standardised {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl Standardised {
    fn fit(latents: &[Vec<f64>], fit: &[usize]) -> Self {
        let d = latents[0].len();
        let (mut mean, mut scale) = (vec![0.0; d], vec![1.0; d]);
        for j in 0..d {
            let v: Vec<f64> = fit.iter().map(|&i| latents[i][j]).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let s = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
            mean[j] = m;
            scale[j] = if s > 1e-12 { s } else { 1.0 };
        }
        Self { mean, scale }
    }

    /// `[1, (x − mean) / scale …]`.
    fn row(&self, x: &[f64]) -> Vec<f64> {
        std::iter::once(1.0)
            .chain(
                x.iter()
                    .zip(self.mean.iter().zip(&self.scale))
                    .map(|(v, (m, s))| (v - m) / s),
            )
            .collect()
    }
}

/// Ridge regression of each truth coordinate on the standardised features of the `fit`
/// sequences; one weight vector per coordinate, the intercept first.
fn ridge(
    features: &Standardised,
    latents: &[Vec<f64>],
    truths: &[Vec<f64>],
    fit: &[usize],
) -> Result<Vec<Vec<f64>>> {
    let d = latents[0].len() + 1;
    let k = truths[0].len();
    let mut xtx = vec![0.0; d * d];
    let mut xty = vec![0.0; d * k];
    for &i in fit {
        let x = features.row(&latents[i]);
        for a in 0..d {
            for b in 0..d {
                xtx[a * d + b] += x[a] * x[b];
            }
            for c in 0..k {
                xty[a * k + c] += x[a] * truths[i][c];
            }
        }
    }
    // A small ridge (not on the intercept) keeps the solve stable for collinear latents.
    for a in 1..d {
        xtx[a * d + a] += 1e-3 * fit.len() as f64;
    }
    let l = cholesky(&xtx, d).ok_or_else(|| anyhow::anyhow!("the probe's solve failed"))?;
    Ok((0..k)
        .map(|c| cholesky_solve(&l, &(0..d).map(|a| xty[a * k + c]).collect::<Vec<_>>(), d))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physics::sampling::{standard_normal, trajectory_rng};

    #[test]
    fn a_linear_latent_is_read_exactly_and_noise_is_not() {
        let mut rng = trajectory_rng(5, 0, 0);
        let n = 400;
        let truths: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..3).map(|_| standard_normal(&mut rng)).collect())
            .collect();
        // The latent mixes the first two observables linearly and knows nothing of the third.
        let latents: Vec<Vec<f64>> = truths
            .iter()
            .map(|t| {
                vec![
                    2.0 * t[0] - t[1] + 3.0,
                    t[0] + 0.5 * t[1],
                    standard_normal(&mut rng),
                ]
            })
            .collect();
        let names = vec!["x1".into(), "y1".into(), "p".into()];
        let report = linear_probe(&latents, &truths, names, 2).unwrap();
        assert!(
            report.r2[0] > 0.999 && report.r2[1] > 0.999,
            "{:?}",
            report.r2
        );
        assert!(report.r2[2].abs() < 0.05, "{:?}", report.r2);
        assert!(report.positions_r2 > 0.999 && report.momenta_r2 < 0.05);
        assert_eq!((report.fitted, report.scored), (200, 200));
    }

    #[test]
    fn an_observable_that_never_varies_has_no_r2_and_the_report_reads_back() {
        // The mass-spring's bob moves along y only: x1 is constant.
        let mut rng = trajectory_rng(6, 0, 0);
        let truths: Vec<Vec<f64>> = (0..40)
            .map(|_| vec![0.0, standard_normal(&mut rng), standard_normal(&mut rng)])
            .collect();
        let latents: Vec<Vec<f64>> = truths.iter().map(|t| vec![t[1], t[2]]).collect();
        let names = vec!["x1".into(), "y1".into(), "p".into()];
        let report = linear_probe(&latents, &truths, names, 2).unwrap();
        assert!(
            report.r2[0].is_nan() && report.r2[1] > 0.999,
            "{:?}",
            report.r2
        );
        let json = serde_json::to_string(&report).unwrap();
        assert!(json.contains("\"r2\":[null,"), "{json}");
        let back: ProbeReport = serde_json::from_str(&json).unwrap();
        assert!(back.r2[0].is_nan());
        assert!((back.r2[2] - report.r2[2]).abs() < 1e-12);
        assert!((back.positions_r2 - report.positions_r2).abs() < 1e-12);
    }
}

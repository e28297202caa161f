//! The evaluation metrics of the paper and of DeepMind's benchmark (reference D5, §10), as pure
//! functions on plain arrays, so each can be checked against hand-computed values.
//!
//! Frames are flat slices of pixel values in [0, 1]; a sequence of `T` frames of `P` values each
//! is one slice of `T·P` values, frame after frame.

/// DeepMind's VPT threshold on MSE(x̂_t, x_t) / mean(x_t²).
pub const VPT_THRESHOLD: f64 = 0.025;

/// Per-frame squared-error statistics of one predicted sequence against its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameErrors {
    /// Per-element MSE of each frame.
    pub mse: Vec<f64>,
    /// DeepMind's `l2_norm` of each frame: Σ(x̂ − x)² / Σx² (equal to MSE / mean(x²)).
    pub l2_norm: Vec<f64>,
}

/// Compares `predicted` with `truth` frame by frame (`frame_len` values per frame).
///
/// A frame whose truth is all zeros has `l2_norm` +∞ unless the prediction is exact (then 0).
pub fn frame_errors(predicted: &[f32], truth: &[f32], frame_len: usize) -> FrameErrors {
    assert_eq!(
        predicted.len(),
        truth.len(),
        "prediction and truth differ in size"
    );
    assert!(frame_len > 0 && truth.len().is_multiple_of(frame_len));
    let mut mse = Vec::with_capacity(truth.len() / frame_len);
    let mut l2_norm = Vec::with_capacity(truth.len() / frame_len);
    for (x_hat, x) in predicted
        .chunks_exact(frame_len)
        .zip(truth.chunks_exact(frame_len))
    {
        let (mut err, mut energy) = (0.0f64, 0.0f64);
        for (&a, &b) in x_hat.iter().zip(x) {
            let d = a as f64 - b as f64;
            err += d * d;
            energy += b as f64 * b as f64;
        }
        mse.push(err / frame_len as f64);
        l2_norm.push(if energy > 0.0 {
            err / energy
        } else if err == 0.0 {
            0.0
        } else {
            f64::INFINITY
        });
    }
    FrameErrors { mse, l2_norm }
}

/// Valid prediction time of one sequence: the index of the first frame whose `l2_norm`
/// (MSE / mean(x²)) exceeds [`VPT_THRESHOLD`], or the number of frames if none does.
pub fn valid_prediction_time(l2_norm: &[f64]) -> usize {
    l2_norm
        .iter()
        .position(|&e| e > VPT_THRESHOLD || e.is_nan())
        .unwrap_or(l2_norm.len())
}

/// The median of `values` (mean of the two middle values for an even count); NaN if empty.
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        0.5 * (sorted[n / 2 - 1] + sorted[n / 2])
    }
}

/// The mean of `values`; NaN if empty.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The energy deficit of one learned-energy trajectory `H_0 … H_T` (DeepMind's
/// `avg_energy_deficit` and `max_energy_deficit`): mean and max of |H_i − H_j| over all pairs
/// `i < j`. Both are 0 for fewer than two values.
pub fn energy_deficit(energy: &[f64]) -> (f64, f64) {
    let (mut sum, mut max, mut pairs) = (0.0f64, 0.0f64, 0usize);
    for i in 0..energy.len() {
        for j in i + 1..energy.len() {
            let d = (energy[i] - energy[j]).abs();
            sum += d;
            max = max.max(d);
            pairs += 1;
        }
    }
    if pairs == 0 {
        (0.0, 0.0)
    } else {
        (sum / pairs as f64, max)
    }
}

/// The least-squares slope of `H_t` against the step index `t`: the energy's drift per step.
/// 0 for fewer than two values.
pub fn energy_drift_per_step(energy: &[f64]) -> f64 {
    let n = energy.len();
    if n < 2 {
        return 0.0;
    }
    let t_mean = (n - 1) as f64 / 2.0;
    let h_mean = mean(energy);
    let (mut num, mut den) = (0.0, 0.0);
    for (t, &h) in energy.iter().enumerate() {
        let dt = t as f64 - t_mean;
        num += dt * (h - h_mean);
        den += dt * dt;
    }
    num / den
}

/// Mean of `values` and the half-width of its 95 % confidence interval from Student's t
/// distribution (the ± of CampusAI's / ReScience's tables, reference §10.3). The half-width
/// is NaN for fewer than two values.
pub fn mean_with_ci95(values: &[f64]) -> (f64, f64) {
    let n = values.len();
    let m = mean(values);
    if n < 2 {
        return (m, f64::NAN);
    }
    let var = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64;
    (m, student_t_975(n - 1) * (var / n as f64).sqrt())
}

/// The 97.5 % quantile of Student's t distribution with `df` degrees of freedom.
///
/// Exact table values for `df ≤ 5`, then the Cornish–Fisher expansion around the normal
/// quantile, within 2e-4 of the exact value at `df = 6` and 1e-5 from `df = 10` on.
pub fn student_t_975(df: usize) -> f64 {
    const TABLE: [f64; 5] = [
        12.706_204_736,
        4.302_652_730,
        3.182_446_305,
        2.776_445_105,
        2.570_581_836,
    ];
    match df {
        0 => f64::NAN,
        1..=5 => TABLE[df - 1],
        _ => {
            let z: f64 = 1.959_963_984_540_054;
            let v = df as f64;
            let (z3, z5, z7, z9) = (z.powi(3), z.powi(5), z.powi(7), z.powi(9));
            z + (z3 + z) / (4.0 * v)
                + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * v * v)
                + (3.0 * z7 + 19.0 * z5 + 17.0 * z3 - 15.0 * z) / (384.0 * v * v * v)
                + (79.0 * z9 + 776.0 * z7 + 1482.0 * z5 - 1920.0 * z3 - 945.0 * z)
                    / (92160.0 * v.powi(4))
        }
    }
}

/// Leading principal component scores of `points` (rows of `dim` values): each row projected
/// on the direction of largest variance after centring. Found by power iteration on the
/// covariance matrix (deterministic start), so the sign follows the data, not chance.
pub fn first_principal_component(points: &[f64], dim: usize) -> Vec<f64> {
    assert!(dim > 0 && points.len().is_multiple_of(dim));
    let n = points.len() / dim;
    if n == 0 {
        return Vec::new();
    }
    let mut centre = vec![0.0; dim];
    for row in points.chunks_exact(dim) {
        for (c, v) in centre.iter_mut().zip(row) {
            *c += v / n as f64;
        }
    }
    let mut cov = vec![0.0; dim * dim];
    for row in points.chunks_exact(dim) {
        for i in 0..dim {
            let di = row[i] - centre[i];
            for j in 0..dim {
                cov[i * dim + j] += di * (row[j] - centre[j]);
            }
        }
    }
    // Start from the column of largest variance, so a 1-D spread is found at once.
    let start = (0..dim)
        .max_by(|&a, &b| cov[a * dim + a].total_cmp(&cov[b * dim + b]))
        .unwrap_or(0);
    let mut v: Vec<f64> = (0..dim)
        .map(|i| if i == start { 1.0 } else { 0.0 })
        .collect();
    for _ in 0..200 {
        let mut next = vec![0.0; dim];
        for i in 0..dim {
            for j in 0..dim {
                next[i] += cov[i * dim + j] * v[j];
            }
        }
        let norm = next.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            break;
        }
        v = next.into_iter().map(|x| x / norm).collect();
    }
    points
        .chunks_exact(dim)
        .map(|row| {
            row.iter()
                .zip(&centre)
                .zip(&v)
                .map(|((x, c), w)| (x - c) * w)
                .sum()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_errors_by_hand() {
        // Two frames of two values each.
        let truth = [0.5f32, 0.5, 1.0, 0.0];
        let pred = [0.5f32, 0.25, 0.0, 0.0];
        let e = frame_errors(&pred, &truth, 2);
        // Frame 0: errors 0 and 0.25 → MSE 0.03125; Σx² = 0.5 → l2_norm 0.125.
        // Frame 1: errors 1 and 0 → MSE 0.5; Σx² = 1 → l2_norm 1.
        assert_eq!(e.mse, vec![0.03125, 0.5]);
        assert_eq!(e.l2_norm, vec![0.125, 1.0]);
        let zero = frame_errors(&[0.0, 0.1], &[0.0, 0.0], 1);
        assert_eq!(zero.l2_norm[0], 0.0);
        assert!(zero.l2_norm[1].is_infinite());
    }

    #[test]
    fn vpt_is_the_first_step_over_the_threshold() {
        assert_eq!(valid_prediction_time(&[0.0, 0.01, 0.025, 0.026, 0.0]), 3);
        assert_eq!(valid_prediction_time(&[0.03]), 0);
        assert_eq!(valid_prediction_time(&[0.0, 0.02]), 2);
        assert_eq!(valid_prediction_time(&[0.0, f64::NAN]), 1);
        assert_eq!(valid_prediction_time(&[]), 0);
    }

    #[test]
    fn vpt_of_sequences_diverging_at_a_known_step() {
        // A prediction equal to the truth until step k, then off by 0.3 on every pixel of a
        // frame whose mean square is 0.25: l2_norm 0.09 / 0.25 = 0.36 > 0.025.
        let p = 16;
        for k in [0usize, 1, 7, 19] {
            let truth = vec![0.5f32; 20 * p];
            let mut pred = truth.clone();
            for v in &mut pred[k * p..] {
                *v += 0.3;
            }
            let e = frame_errors(&pred, &truth, p);
            assert_eq!(valid_prediction_time(&e.l2_norm), k);
        }
    }

    #[test]
    fn median_and_mean() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
        assert_eq!(mean(&[1.0, 2.0, 6.0]), 3.0);
    }

    #[test]
    fn energy_deficit_by_hand() {
        // Pairs of [1, 3, 2]: |1−3| = 2, |1−2| = 1, |3−2| = 1 → mean 4/3, max 2.
        let (avg, max) = energy_deficit(&[1.0, 3.0, 2.0]);
        assert!((avg - 4.0 / 3.0).abs() < 1e-15);
        assert_eq!(max, 2.0);
        assert_eq!(energy_deficit(&[5.0]), (0.0, 0.0));
        assert_eq!(energy_deficit(&[2.0; 10]), (0.0, 0.0));
    }

    #[test]
    fn drift_is_the_slope() {
        let line: Vec<f64> = (0..11).map(|t| 3.0 - 0.5 * t as f64).collect();
        assert!((energy_drift_per_step(&line) + 0.5).abs() < 1e-14);
        assert_eq!(energy_drift_per_step(&[1.0, 2.0, 1.0]), 0.0);
        assert_eq!(energy_drift_per_step(&[7.0]), 0.0);
    }

    #[test]
    fn student_t_quantiles_match_tables() {
        // Standard tables: t_{0.975} for 1, 2, 5, 6, 10, 30, 120 degrees of freedom.
        for (df, t) in [
            (1, 12.706),
            (2, 4.303),
            (5, 2.571),
            (6, 2.447),
            (10, 2.228),
            (30, 2.042),
            (120, 1.980),
        ] {
            assert!(
                (student_t_975(df) - t).abs() < 6e-4,
                "df {df}: {}",
                student_t_975(df)
            );
        }
        assert!((student_t_975(1_000_000) - 1.95996).abs() < 1e-4);
    }

    #[test]
    fn confidence_interval_by_hand() {
        // Values 1..=4: mean 2.5, sample sd √(5/3), half-width t_{3}·sd/2.
        let (m, h) = mean_with_ci95(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(m, 2.5);
        let expected = 3.182_446_305 * (5.0f64 / 3.0).sqrt() / 2.0;
        assert!((h - expected).abs() < 1e-12);
        assert!(mean_with_ci95(&[1.0]).1.is_nan());
    }

    #[test]
    fn principal_component_of_a_line() {
        // Points along the direction (3, 4)/5 in 2-D, centred at (1, 1).
        let ts = [-2.0, -1.0, 0.0, 1.0, 2.0];
        let points: Vec<f64> = ts
            .iter()
            .flat_map(|t| [1.0 + 0.6 * t, 1.0 + 0.8 * t])
            .collect();
        let scores = first_principal_component(&points, 2);
        for (s, t) in scores.iter().zip(ts) {
            assert!((s.abs() - f64::abs(t)).abs() < 1e-12);
        }
        // The scores keep the order of the points along the line (one sign for all).
        assert!(scores.windows(2).all(|w| w[0] < w[1]) || scores.windows(2).all(|w| w[0] > w[1]));
    }
}

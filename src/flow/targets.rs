//! Built-in 2-D benchmark densities, seeded, as in the FFJORD / RealNVP toy experiments
//! (`toy_data.py` of FFJORD), plus a correlated Gaussian whose log-density is known exactly.
//!
//! Every sampler draws from an explicit `Rng`; the flows' training streams are
//! `(seed, stream, step)` ChaCha8 generators, so data, like everything else, is reproducible.

use std::f64::consts::{PI, TAU};

use rand::Rng;

use crate::physics::sampling::standard_normal;

/// The six standard benchmark targets (without the analytic Gaussian).
pub const BENCHMARK_TARGETS: [&str; 6] = [
    "eight-gaussians",
    "two-moons",
    "rings",
    "checkerboard",
    "pinwheel",
    "two-spirals",
];

/// The names of the built-in targets: the benchmark ones and `gaussian`.
pub const TARGETS: [&str; 7] = {
    let mut names = ["gaussian"; 7];
    let mut i = 0;
    while i < BENCHMARK_TARGETS.len() {
        names[i] = BENCHMARK_TARGETS[i];
        i += 1;
    }
    names
};

/// Mean of the `gaussian` target.
const GAUSS_MEAN: [f64; 2] = [1.0, -0.5];
/// Cholesky factor of the `gaussian` target's covariance [[1, 0.6], [0.6, 0.8]].
const GAUSS_CHOL: [[f64; 2]; 2] = [[1.0, 0.0], [0.6, 0.663_324_958_071_080]];

/// One draw of target `name`, or `None` for an unknown name.
pub fn sample_one<R: Rng>(name: &str, rng: &mut R) -> Option<[f64; 2]> {
    let n = |rng: &mut R| standard_normal(rng);
    let u = |rng: &mut R| rng.random::<f64>();
    Some(match name {
        "eight-gaussians" => {
            // Centres on a circle of radius 4 (scaled by 1/1.414), σ 0.5 before scaling.
            let k = (u(rng) * 8.0).floor();
            let a = k * TAU / 8.0;
            let (s, c) = a.sin_cos();
            [
                (4.0 * c + 0.5 * n(rng)) / 1.414,
                (4.0 * s + 0.5 * n(rng)) / 1.414,
            ]
        }
        "two-moons" => {
            // sklearn's make_moons (noise 0.1), then ×2 + (−1, −0.2) as in FFJORD.
            let t = PI * u(rng);
            let (x, y) = if u(rng) < 0.5 {
                (t.cos(), t.sin())
            } else {
                (1.0 - t.cos(), 0.5 - t.sin())
            };
            [
                2.0 * (x + 0.1 * n(rng)) - 1.0,
                2.0 * (y + 0.1 * n(rng)) - 0.2,
            ]
        }
        "rings" => {
            // Four concentric circles of radii 3, 2.25, 1.5, 0.75, noise 0.08.
            let r = [3.0, 2.25, 1.5, 0.75][(u(rng) * 4.0).floor() as usize % 4];
            let a = TAU * u(rng);
            [r * a.cos() + 0.08 * n(rng), r * a.sin() + 0.08 * n(rng)]
        }
        "checkerboard" => {
            let x1 = 4.0 * u(rng) - 2.0;
            let x2 = u(rng) - 2.0 * (u(rng) * 2.0).floor() + (x1.floor().rem_euclid(2.0));
            [2.0 * x1, 2.0 * x2]
        }
        "pinwheel" => {
            // 5 arms, radial σ 0.3, tangential σ 0.1, rate 0.25.
            let arm = (u(rng) * 5.0).floor();
            let (r, t) = (0.3 * n(rng) + 1.0, 0.1 * n(rng));
            let angle = arm * TAU / 5.0 + 0.25 * r.exp();
            let (s, c) = angle.sin_cos();
            [2.0 * (r * c - t * s), 2.0 * (r * s + t * c)]
        }
        "two-spirals" => {
            let m = (u(rng)).sqrt() * 540.0 * TAU / 360.0;
            let sign = if u(rng) < 0.5 { 1.0 } else { -1.0 };
            let x = sign * (-m.cos() * m + 0.5 * u(rng));
            let y = sign * (m.sin() * m + 0.5 * u(rng));
            [x / 3.0 + 0.1 * n(rng), y / 3.0 + 0.1 * n(rng)]
        }
        "gaussian" => {
            let (a, b) = (n(rng), n(rng));
            let l = GAUSS_CHOL;
            [
                GAUSS_MEAN[0] + l[0][0] * a,
                GAUSS_MEAN[1] + l[1][0] * a + l[1][1] * b,
            ]
        }
        _ => return None,
    })
}

/// `count` draws of target `name` as `[count × 2]` values (row-major), or `None` for an unknown
/// name.
pub fn sample(name: &str, count: usize, rng: &mut impl Rng) -> Option<Vec<f64>> {
    let mut out = Vec::with_capacity(2 * count);
    for _ in 0..count {
        out.extend(sample_one(name, rng)?);
    }
    Some(out)
}

/// The exact log-density of the `gaussian` target at `x`.
pub fn gaussian_log_density(x: [f64; 2]) -> f64 {
    let l = GAUSS_CHOL;
    // Solve L z = x − μ.
    let z0 = (x[0] - GAUSS_MEAN[0]) / l[0][0];
    let z1 = (x[1] - GAUSS_MEAN[1] - l[1][0] * z0) / l[1][1];
    -0.5 * (z0 * z0 + z1 * z1) - (l[0][0] * l[1][1]).ln() - super::nhf::LN_2PI
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// `count` draws of target `name` from a generator seeded with `seed`.
    fn draw(name: &str, count: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        sample(name, count, &mut rng).unwrap()
    }

    #[test]
    fn every_target_samples_reproducibly_and_finitely() {
        for name in TARGETS {
            let a = draw(name, 500, 1);
            let b = draw(name, 500, 1);
            assert_eq!(a, b);
            assert!(a.iter().all(|v| v.is_finite() && v.abs() < 20.0), "{name}");
        }
        assert!(sample("nope", 1, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1)).is_none());
    }

    #[test]
    fn the_gaussian_target_has_its_stated_moments_and_density() {
        let x = draw("gaussian", 200_000, 2);
        let n = x.len() as f64 / 2.0;
        let m0 = x.iter().step_by(2).sum::<f64>() / n;
        let m1 = x.iter().skip(1).step_by(2).sum::<f64>() / n;
        let cov = x
            .chunks_exact(2)
            .map(|p| (p[0] - m0) * (p[1] - m1))
            .sum::<f64>()
            / n;
        assert!((m0 - 1.0).abs() < 0.01 && (m1 + 0.5).abs() < 0.01);
        assert!((cov - 0.6).abs() < 0.01, "{cov}");
        // Density at the mean: 1 / (2π √det Σ), det Σ = 0.8 − 0.36 = 0.44.
        let expected = -(TAU * 0.44f64.sqrt()).ln();
        assert!((gaussian_log_density(GAUSS_MEAN) - expected).abs() < 1e-12);
    }

    #[test]
    fn rings_lie_on_their_radii() {
        let x = draw("rings", 2000, 3);
        for p in x.chunks_exact(2) {
            let r = (p[0] * p[0] + p[1] * p[1]).sqrt();
            let nearest = [3.0, 2.25, 1.5, 0.75]
                .iter()
                .map(|ring| (r - ring).abs())
                .fold(f64::INFINITY, f64::min);
            assert!(nearest < 0.5, "radius {r}");
        }
    }
}

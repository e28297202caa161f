//! Seeded random draws used by the simulators.
//!
//! Every draw goes through an explicit RNG. [`trajectory_rng`] gives each `(seed, split, index)`
//! its own ChaCha8 stream, so a trajectory's content depends on those three numbers alone, never on
//! which thread generated it or in what order. The transforms below (uniform, Box–Muller normal,
//! annulus) are written out here so that the byte stream of a dataset does not depend on the
//! implementation details of a distribution crate.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// The RNG of trajectory `index` in split `split` (0 = train, 1 = test, the ids of
/// [`crate::rng::Stream::DatasetTrain`] and [`crate::rng::Stream::DatasetTest`]) of a dataset
/// seeded `seed`.
pub fn trajectory_rng(seed: u64, split: u64, index: u64) -> ChaCha8Rng {
    crate::rng::rng_with_id(seed, split, index)
}

/// A draw from U(low, high); returns exactly `low` when `low == high`.
pub fn uniform(rng: &mut impl Rng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

/// A standard normal draw (Box–Muller, cosine branch).
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    // 1 − U lies in (0, 1], so the logarithm is finite.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A unit vector in the plane with a uniformly distributed angle.
pub fn unit_vector(rng: &mut impl Rng) -> [f64; 2] {
    let angle = 2.0 * std::f64::consts::PI * rng.random::<f64>();
    let (s, c) = angle.sin_cos();
    [c, s]
}

/// A point of the annulus `r_min ≤ ‖x‖ ≤ r_max` in the plane (DeepMind's `uniform_annulus`):
/// the radius is uniform in `[r_min, r_max]`, or uniform in area when `uniform_area` is set.
pub fn annulus(rng: &mut impl Rng, r_min: f64, r_max: f64, uniform_area: bool) -> [f64; 2] {
    let direction = unit_vector(rng);
    let radius = if uniform_area {
        uniform(rng, r_min * r_min, r_max * r_max).sqrt()
    } else {
        uniform(rng, r_min, r_max)
    };
    [radius * direction[0], radius * direction[1]]
}

/// `k` distinct integers from `0..n` in random order (partial Fisher–Yates).
pub fn distinct_indices(rng: &mut impl Rng, n: usize, k: usize) -> Vec<usize> {
    assert!(k <= n, "cannot draw {k} distinct values from {n}");
    let mut pool: Vec<usize> = (0..n).collect();
    for i in 0..k {
        let j = i + (rng.random::<u64>() % (n - i) as u64) as usize;
        pool.swap(i, j);
    }
    pool.truncate(k);
    pool
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_differ_per_split_and_index_and_repeat_exactly() {
        let a: f64 = trajectory_rng(7, 0, 3).random();
        let b: f64 = trajectory_rng(7, 0, 3).random();
        let c: f64 = trajectory_rng(7, 1, 3).random();
        let d: f64 = trajectory_rng(7, 0, 4).random();
        let e: f64 = trajectory_rng(8, 0, 3).random();
        assert_eq!(a, b);
        assert!(a != c && a != d && a != e);
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let mut rng = trajectory_rng(1, 0, 0);
        let n = 200_000;
        let draws: Vec<f64> = (0..n).map(|_| standard_normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f64>() / n as f64;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.01, "variance {var}");
    }

    #[test]
    fn annulus_points_respect_the_radii() {
        let mut rng = trajectory_rng(2, 0, 0);
        for uniform_area in [false, true] {
            for _ in 0..1000 {
                let [x, y] = annulus(&mut rng, 1.3, 2.3, uniform_area);
                let r = (x * x + y * y).sqrt();
                assert!((1.3 - 1e-12..=2.3 + 1e-12).contains(&r));
            }
        }
    }

    #[test]
    fn distinct_indices_are_distinct() {
        let mut rng = trajectory_rng(3, 0, 0);
        for _ in 0..100 {
            let mut v = distinct_indices(&mut rng, 6, 3);
            v.sort();
            v.dedup();
            assert_eq!(v.len(), 3);
            assert!(v.iter().all(|&i| i < 6));
        }
    }
}

//! The physics oracle's fit (reference D6): the state of a known system fitted to noisy observed
//! positions by nonlinear least squares through the exact simulator, with its Laplace posterior.
//!
//! The observations are the positions `q_t` (what an image shows) of frames `t ∈ S`, each
//! coordinate the clean one plus `N(0, σ²)` noise. The unknown is the phase-space state `x` at
//! frame 0; the model of the observations is `q_t(x)`, the exact flow of the system for `t·dt`. The
//! fit minimises the standardised residuals `r(x) = (q_t(x) − q_obs,t) / σ` by
//! Levenberg–Marquardt with central finite-difference sensitivities of the flow, from several
//! starting states on the first frames, keeping the best, then on ever longer prefixes of the
//! frames (continuation). With a flat prior the posterior of `x` is then
//! approximately `N(x̂, (JᵀJ)⁻¹)` (the Laplace approximation, `J = ∂r/∂x` at `x̂`).

use super::HamiltonianSystem;
use super::catalog::SystemSpec;
use super::trajectory::RenderSettings;

/// The result of [`fit_state`].
#[derive(Debug, Clone, PartialEq)]
pub struct StateFit {
    /// The fitted state at frame 0, `[q…, p…]`.
    pub state: Vec<f64>,
    /// `|r(x̂)|²`: the sum of squared standardised residuals.
    pub cost: f64,
    /// The Laplace posterior covariance `(JᵀJ)⁻¹` of the state, row-major `n × n`.
    pub covariance: Vec<f64>,
}

/// Integrates `x` (the state at frame 0) to frames `0..frames`, or `None` when the integration
/// fails (a collision of the n-body systems).
pub fn trajectory(
    spec: &SystemSpec,
    system: &dyn HamiltonianSystem,
    x: &[f64],
    frames: usize,
    settings: &RenderSettings,
) -> Option<Vec<f64>> {
    let settings = RenderSettings {
        seq_len: frames,
        ..*settings
    };
    let states = spec.simulate(system, x, &settings).ok()?;
    states.iter().all(|v| v.is_finite()).then_some(states)
}

/// One least-squares problem: the observed positions of `frames` (`observed` holds whole states
/// `[T × 2·dof]`; only the positions are used) with noise `sigma`, under the exact flow of
/// `system`.
#[derive(Clone, Copy)]
struct Problem<'a> {
    spec: &'a SystemSpec,
    system: &'a dyn HamiltonianSystem,
    observed: &'a [f64],
    frames: &'a [usize],
    sigma: f64,
    settings: &'a RenderSettings,
}

impl<'a> Problem<'a> {
    /// The same problem on the first `len` of its frames.
    fn prefix(self, len: usize) -> Self {
        Self {
            frames: &self.frames[..len],
            ..self
        }
    }

    /// The standardised residuals `r(x)` of state `x` at frame 0.
    fn residuals(&self, x: &[f64]) -> Option<Vec<f64>> {
        let dim = x.len();
        let dof = dim / 2;
        let last = self.frames.iter().copied().max().unwrap_or(0);
        let states = trajectory(self.spec, self.system, x, last + 1, self.settings)?;
        let mut r = Vec::with_capacity(self.frames.len() * dof);
        for &t in self.frames {
            for j in 0..dof {
                r.push((states[t * dim + j] - self.observed[t * dim + j]) / self.sigma);
            }
        }
        Some(r)
    }

    /// `J = ∂r/∂x` by central differences, row-major `[m × n]`.
    fn jacobian(&self, x: &[f64], m: usize) -> Option<Vec<f64>> {
        let n = x.len();
        let mut jac = vec![0.0; m * n];
        for i in 0..n {
            let h = 1e-6 * x[i].abs().max(1.0);
            let mut plus = x.to_vec();
            let mut minus = x.to_vec();
            plus[i] += h;
            minus[i] -= h;
            let rp = self.residuals(&plus)?;
            let rm = self.residuals(&minus)?;
            for k in 0..m {
                jac[k * n + i] = (rp[k] - rm[k]) / (2.0 * h);
            }
        }
        Some(jac)
    }
}

/// `JᵀJ` (`n × n`) and `Jᵀr` (`n`).
fn normal_equations(jac: &[f64], r: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let m = r.len();
    let mut jtj = vec![0.0; n * n];
    let mut jtr = vec![0.0; n];
    for k in 0..m {
        let row = &jac[k * n..(k + 1) * n];
        for a in 0..n {
            jtr[a] += row[a] * r[k];
            for b in 0..n {
                jtj[a * n + b] += row[a] * row[b];
            }
        }
    }
    (jtj, jtr)
}

/// The lower Cholesky factor of a symmetric positive-definite `n × n` matrix, or `None`.
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= l[i * n + k] * l[j * n + k];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Solves `L Lᵀ x = b` for a lower Cholesky factor `L` (`n × n`, from [`cholesky`]).
pub fn cholesky_solve(l: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut y = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * n + i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * n + i];
    }
    x
}

/// The inverse of a symmetric positive-definite matrix through its Cholesky factor.
fn spd_inverse(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let l = cholesky(a, n)?;
    let mut inv = vec![0.0; n * n];
    for j in 0..n {
        let mut e = vec![0.0; n];
        e[j] = 1.0;
        let col = cholesky_solve(&l, &e, n);
        for i in 0..n {
            inv[i * n + j] = col[i];
        }
    }
    Some(inv)
}

/// Levenberg–Marquardt from `start`; the local minimum's state and cost, or `None` when the start
/// cannot even be integrated.
fn levenberg_marquardt(problem: &Problem, start: &[f64]) -> Option<(Vec<f64>, f64)> {
    let n = start.len();
    let mut x = start.to_vec();
    let mut r = problem.residuals(&x)?;
    let mut cost: f64 = r.iter().map(|v| v * v).sum();
    let mut lambda = 1e-3;
    for _ in 0..200 {
        let jac = problem.jacobian(&x, r.len())?;
        let (jtj, jtr) = normal_equations(&jac, &r, n);
        let mut improved = false;
        while lambda < 1e12 {
            let mut a = jtj.clone();
            for i in 0..n {
                a[i * n + i] += lambda * jtj[i * n + i].max(1e-12);
            }
            let Some(l) = cholesky(&a, n) else {
                lambda *= 10.0;
                continue;
            };
            let neg: Vec<f64> = jtr.iter().map(|v| -v).collect();
            let delta = cholesky_solve(&l, &neg, n);
            let candidate: Vec<f64> = x.iter().zip(&delta).map(|(a, d)| a + d).collect();
            let trial = problem.residuals(&candidate);
            let trial_cost = trial
                .as_ref()
                .map_or(f64::INFINITY, |t| t.iter().map(|v| v * v).sum());
            if trial_cost < cost {
                let step: f64 = delta.iter().map(|d| d * d).sum::<f64>().sqrt();
                let scale: f64 = x.iter().map(|v| v * v).sum::<f64>().sqrt().max(1.0);
                let gain = cost - trial_cost;
                x = candidate;
                r = trial.expect("finite cost");
                cost = trial_cost;
                lambda = (lambda / 10.0).max(1e-12);
                improved = true;
                if step < 1e-13 * scale || gain < 1e-14 * cost.max(1e-300) {
                    return Some((x, cost));
                }
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    Some((x, cost))
}

/// Starting states for the fit of frame 0 from the observed positions of `frames`: positions
/// from a straight-line fit through the observations, momenta from its slope mapped through
/// `∂H/∂p` (linear in `p` for every system here), that momentum reversed, doubled and halved,
/// and zero momentum.
pub fn starting_states(
    system: &dyn HamiltonianSystem,
    observed: &[f64],
    frames: &[usize],
    dt: f64,
) -> Vec<Vec<f64>> {
    let dof = system.dof();
    let dim = 2 * dof;
    // Least-squares line q_j(t) = a_j + b_j t through the observed frames.
    let ts: Vec<f64> = frames.iter().map(|&t| t as f64 * dt).collect();
    let t_mean = ts.iter().sum::<f64>() / ts.len() as f64;
    let t_var: f64 = ts.iter().map(|t| (t - t_mean).powi(2)).sum();
    let mut q0 = vec![0.0; dof];
    let mut v = vec![0.0; dof];
    for j in 0..dof {
        let ys: Vec<f64> = frames.iter().map(|&t| observed[t * dim + j]).collect();
        let y_mean = ys.iter().sum::<f64>() / ys.len() as f64;
        let slope = if t_var > 0.0 {
            ts.iter()
                .zip(&ys)
                .map(|(t, y)| (t - t_mean) * (y - y_mean))
                .sum::<f64>()
                / t_var
        } else {
            0.0
        };
        v[j] = slope;
        q0[j] = y_mean - slope * t_mean;
    }
    // ∂H/∂p(q0, p) = A p + c; solve A p = v − c.
    let dh_dp = |p: &[f64]| {
        let mut y = q0.clone();
        y.extend_from_slice(p);
        let mut g = vec![0.0; dim];
        system.gradient(&y, &mut g);
        g[dof..].to_vec()
    };
    let c = dh_dp(&vec![0.0; dof]);
    let mut a = vec![0.0; dof * dof];
    for i in 0..dof {
        let mut e = vec![0.0; dof];
        e[i] = 1.0;
        let col = dh_dp(&e);
        for k in 0..dof {
            a[k * dof + i] = col[k] - c[k];
        }
    }
    // A is symmetric positive definite (an inverse mass matrix); fall back to p = v.
    let rhs: Vec<f64> = v.iter().zip(&c).map(|(v, c)| v - c).collect();
    let p = cholesky(&a, dof)
        .map(|l| cholesky_solve(&l, &rhs, dof))
        .unwrap_or(v);
    let with = |scale: f64| {
        let mut s = q0.clone();
        s.extend(p.iter().map(|v| scale * v));
        s
    };
    vec![with(1.0), with(-1.0), with(2.0), with(0.5), with(0.0)]
}

/// Frames of the first stage of [`fit_state`]'s continuation.
const CONTINUATION_FRAMES: usize = 5;

/// Fits the state at frame 0 to the observed positions of `frames` (increasing; σ: the
/// observation noise) from the [`starting_states`] of the first frames, and returns the best fit
/// with its Laplace covariance; `None` when no start could be integrated or the information
/// matrix is singular.
pub fn fit_state(
    spec: &SystemSpec,
    system: &dyn HamiltonianSystem,
    observed: &[f64],
    frames: &[usize],
    sigma: f64,
    settings: &RenderSettings,
) -> Option<StateFit> {
    assert!(sigma > 0.0, "the fit needs a positive observation noise");
    // Continuation: every start is fitted to the first few frames (where a straight-line start
    // is good), then the best fit is refined on twice as many frames at a time up to all of them.
    // Over a long window (reconstruct's 31 frames of an orbit) a start from the line through all
    // frames is far off, and LM from it costs hundreds of integrations.
    let problem = Problem {
        spec,
        system,
        observed,
        frames,
        sigma,
        settings,
    };
    let mut len = frames.len().min(CONTINUATION_FRAMES);
    let starts = starting_states(system, observed, &frames[..len], settings.dt);
    let (mut state, mut cost) = starts
        .iter()
        .filter_map(|s| levenberg_marquardt(&problem.prefix(len), s))
        .min_by(|a, b| a.1.total_cmp(&b.1))?;
    while len < frames.len() {
        len = (2 * len).min(frames.len());
        (state, cost) = levenberg_marquardt(&problem.prefix(len), &state)?;
    }
    let n = state.len();
    let r = problem.residuals(&state)?;
    let jac = problem.jacobian(&state, r.len())?;
    let (jtj, _) = normal_equations(&jac, &r, n);
    let covariance = spd_inverse(&jtj, n)?;
    Some(StateFit {
        state,
        cost,
        covariance,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::physics::find_system;
    use crate::physics::integrate::Tolerance;
    use crate::physics::sampling::{standard_normal, trajectory_rng};

    fn settings(seq_len: usize) -> RenderSettings {
        RenderSettings {
            seq_len,
            dt: 0.125,
            noise_std: 0.0,
            image_size: 32,
            tolerance: Tolerance::default(),
        }
    }

    /// A clean trajectory of `system` from the dataset sampler's stream `index`.
    fn clean(name: &str, index: u64, frames: usize) -> (Box<dyn HamiltonianSystem>, Vec<f64>) {
        let spec = find_system(name).unwrap();
        let mut rng = trajectory_rng(41, 1, index);
        let t = spec.sample_trajectory(&mut rng, &settings(frames)).unwrap();
        (spec.system_from_params(&t.params), t.states)
    }

    #[test]
    fn noise_free_observations_recover_the_true_state() {
        for (name, frames) in [
            ("mass-spring", 5),
            ("pendulum", 5),
            ("pendulum", 31),
            ("two-body", 5),
            ("two-body", 31),
            ("three-body", 5),
            ("three-body", 31),
        ] {
            let spec = find_system(name).unwrap();
            for index in 0..3 {
                let (system, states) = clean(name, index, frames);
                let s: Vec<usize> = (0..frames).collect();
                let fit =
                    fit_state(spec, system.as_ref(), &states, &s, 0.1, &settings(frames)).unwrap();
                let dim = 2 * system.dof();
                let error = fit
                    .state
                    .iter()
                    .zip(&states[..dim])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(error < 1e-8, "{name} #{index}: state error {error:e}");
            }
        }
    }

    /// From noisy observations the fit is at least as good as the true state: a local minimum
    /// that a poor start leads to would cost more (over 31 frames of an orbit it did, before
    /// the continuation).
    #[test]
    fn noisy_fits_cost_no_more_than_the_truth() {
        for (name, sigma, count) in [
            ("pendulum", 0.1, 8),
            ("two-body", 0.05, 24),
            ("three-body", 0.2, 8),
        ] {
            let spec = find_system(name).unwrap();
            for index in 0..count {
                let (system, states) = clean(name, 10 + index, 31);
                let mut rng = trajectory_rng(3, 10, index);
                let observed: Vec<f64> = states
                    .iter()
                    .map(|v| v + sigma * standard_normal(&mut rng))
                    .collect();
                let s: Vec<usize> = (0..31).collect();
                let fit =
                    fit_state(spec, system.as_ref(), &observed, &s, sigma, &settings(31)).unwrap();
                let dim = 2 * system.dof();
                let problem = Problem {
                    spec,
                    system: system.as_ref(),
                    observed: &observed,
                    frames: &s,
                    sigma,
                    settings: &settings(31),
                };
                let truth = problem.residuals(&states[..dim]).unwrap();
                let truth_cost: f64 = truth.iter().map(|v| v * v).sum();
                assert!(
                    fit.cost <= truth_cost * (1.0 + 1e-9),
                    "{name} #{index}: fit cost {} above the truth's {truth_cost}",
                    fit.cost
                );
            }
        }
    }

    /// The Laplace covariance matches the spread of the fits over re-drawn observation noise.
    #[test]
    fn the_posterior_covariance_matches_the_spread_of_refits() {
        let spec = find_system("pendulum").unwrap();
        let (system, states) = clean("pendulum", 5, 5);
        let s: Vec<usize> = (0..5).collect();
        let sigma = 0.05;
        let (n, dim) = (400, 2);
        let mut fits = Vec::with_capacity(n);
        let mut predicted = [0.0; 4];
        for draw in 0..n {
            let mut rng = trajectory_rng(7, 10, draw as u64);
            let observed: Vec<f64> = states
                .iter()
                .map(|v| v + sigma * standard_normal(&mut rng))
                .collect();
            let fit = fit_state(spec, system.as_ref(), &observed, &s, sigma, &settings(5)).unwrap();
            for (acc, c) in predicted.iter_mut().zip(&fit.covariance) {
                *acc += c / n as f64;
            }
            fits.push(fit.state);
        }
        let mean: Vec<f64> = (0..dim)
            .map(|i| fits.iter().map(|f| f[i]).sum::<f64>() / n as f64)
            .collect();
        for a in 0..dim {
            for b in 0..dim {
                let empirical = fits
                    .iter()
                    .map(|f| (f[a] - mean[a]) * (f[b] - mean[b]))
                    .sum::<f64>()
                    / (n - 1) as f64;
                let laplace = predicted[a * dim + b];
                let scale = (predicted[a * dim + a] * predicted[b * dim + b]).sqrt();
                // Sampling error of a covariance from 400 draws: about √(2/400) ≈ 7 % of the
                // scale; allow three of those.
                assert!(
                    (empirical - laplace).abs() < 0.21 * scale,
                    "cov[{a}][{b}]: spread {empirical:e}, Laplace {laplace:e}"
                );
            }
        }
        // And the fits are unbiased to within their standard error.
        for i in 0..dim {
            let se = (predicted[i * dim + i] / n as f64).sqrt();
            assert!((mean[i] - states[i]).abs() < 4.0 * se, "component {i}");
        }
    }
}

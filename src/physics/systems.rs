//! The Hamiltonians of the physical systems, with their exact gradients.
//!
//! Each system holds the physical parameters of one trajectory (masses, lengths, constants). The
//! state layout is `y = [q…, p…]` (see [`crate::physics`]). Every gradient here is written out by
//! hand and tested against central finite differences of [`HamiltonianSystem::hamiltonian`].

/// A time-independent Hamiltonian system with its parameters fixed.
pub trait HamiltonianSystem: Send + Sync {
    /// Number of generalised coordinates: `q` and `p` each have this length.
    fn dof(&self) -> usize;
    /// The energy `H(q, p)` of the state `y = [q, p]`.
    fn hamiltonian(&self, y: &[f64]) -> f64;
    /// Writes `[∂H/∂q, ∂H/∂p]` for the state `y` into `grad` (same length as `y`).
    fn gradient(&self, y: &[f64], grad: &mut [f64]);
    /// The exact state at time `t` from `y0` at time 0, where a closed form exists (friction-free).
    fn analytic(&self, _y0: &[f64], _t: f64) -> Option<Vec<f64>> {
        None
    }
    /// Number of rendered bodies.
    fn num_bodies(&self) -> usize;
    /// The mass of each body; the rendered disc radius is `√(m/π)` (DeepMind's renderer).
    fn body_masses(&self) -> Vec<f64>;
    /// World coordinates `(x, y)` of each body for positions `q`, with `y` pointing up.
    fn body_positions(&self, q: &[f64], out: &mut [[f64; 2]]);
}

/// Mass on a spring: `H = p²/(2m) + k·q²/2`. The ball moves vertically, `(0, q)`.
#[derive(Debug, Clone, PartialEq)]
pub struct MassSpring {
    /// Mass.
    pub m: f64,
    /// Spring constant.
    pub k: f64,
}

impl HamiltonianSystem for MassSpring {
    fn dof(&self) -> usize {
        1
    }
    fn hamiltonian(&self, y: &[f64]) -> f64 {
        y[1] * y[1] / (2.0 * self.m) + 0.5 * self.k * y[0] * y[0]
    }
    fn gradient(&self, y: &[f64], grad: &mut [f64]) {
        grad[0] = self.k * y[0];
        grad[1] = y[1] / self.m;
    }
    /// `q(t) = a·cos(ωt + b)`, `p(t) = −a·m·ω·sin(ωt + b)` with `ω = √(k/m)`.
    fn analytic(&self, y0: &[f64], t: f64) -> Option<Vec<f64>> {
        let w = (self.k / self.m).sqrt();
        let (q0, p0) = (y0[0], y0[1]);
        // Exact rotation in the scaled phase plane (q, p/(mω)); avoids atan2 round-off.
        let (s, c) = (w * t).sin_cos();
        let v0 = p0 / (self.m * w);
        let q = q0 * c + v0 * s;
        let v = -q0 * s + v0 * c;
        Some(vec![q, v * self.m * w])
    }
    fn num_bodies(&self) -> usize {
        1
    }
    fn body_masses(&self) -> Vec<f64> {
        vec![self.m]
    }
    fn body_positions(&self, q: &[f64], out: &mut [[f64; 2]]) {
        out[0] = [0.0, q[0]];
    }
}

/// Ideal pendulum: `H = p²/(2ml²) + m·g·l·(1 − cos q)`, `q = 0` hanging straight down.
#[derive(Debug, Clone, PartialEq)]
pub struct Pendulum {
    /// Bob mass.
    pub m: f64,
    /// Gravitational acceleration.
    pub g: f64,
    /// Rod length.
    pub l: f64,
}

impl HamiltonianSystem for Pendulum {
    fn dof(&self) -> usize {
        1
    }
    fn hamiltonian(&self, y: &[f64]) -> f64 {
        let (m, g, l) = (self.m, self.g, self.l);
        y[1] * y[1] / (2.0 * m * l * l) + m * g * l * (1.0 - y[0].cos())
    }
    fn gradient(&self, y: &[f64], grad: &mut [f64]) {
        let (m, g, l) = (self.m, self.g, self.l);
        grad[0] = m * g * l * y[0].sin();
        grad[1] = y[1] / (m * l * l);
    }
    fn num_bodies(&self) -> usize {
        1
    }
    fn body_masses(&self) -> Vec<f64> {
        vec![self.m]
    }
    fn body_positions(&self, q: &[f64], out: &mut [[f64; 2]]) {
        let (s, c) = q[0].sin_cos();
        out[0] = [self.l * s, -self.l * c];
    }
}

/// Ideal double pendulum (DeepMind suite `ideal_double_pendulum.py`):
///
/// `H = [m₂l₂²p₁² + (m₁+m₂)l₁²p₂² − 2m₂l₁l₂p₁p₂cos(q₁−q₂)] / [2m₂l₁²l₂²(m₁ + m₂sin²(q₁−q₂))]
///      − (m₁+m₂)·g·l₁·cos q₁ − m₂·g·l₂·cos q₂`.
#[derive(Debug, Clone, PartialEq)]
pub struct DoublePendulum {
    /// Mass of the first (inner) bob.
    pub m1: f64,
    /// Mass of the second (outer) bob.
    pub m2: f64,
    /// Length of the first rod.
    pub l1: f64,
    /// Length of the second rod.
    pub l2: f64,
    /// Gravitational acceleration.
    pub g: f64,
}

impl DoublePendulum {
    /// Returns `(N, D)`, the numerator and denominator of the kinetic term.
    fn kinetic_parts(&self, y: &[f64]) -> (f64, f64) {
        let Self { m1, m2, l1, l2, .. } = *self;
        let (p1, p2) = (y[2], y[3]);
        let delta = y[0] - y[1];
        let num = m2 * l2 * l2 * p1 * p1 + (m1 + m2) * l1 * l1 * p2 * p2
            - 2.0 * m2 * l1 * l2 * p1 * p2 * delta.cos();
        let den = 2.0 * m2 * l1 * l1 * l2 * l2 * (m1 + m2 * delta.sin().powi(2));
        (num, den)
    }
}

impl HamiltonianSystem for DoublePendulum {
    fn dof(&self) -> usize {
        2
    }
    fn hamiltonian(&self, y: &[f64]) -> f64 {
        let Self { m1, m2, l1, l2, g } = *self;
        let (num, den) = self.kinetic_parts(y);
        num / den - (m1 + m2) * g * l1 * y[0].cos() - m2 * g * l2 * y[1].cos()
    }
    fn gradient(&self, y: &[f64], grad: &mut [f64]) {
        let Self { m1, m2, l1, l2, g } = *self;
        let (q1, q2, p1, p2) = (y[0], y[1], y[2], y[3]);
        let (sin_d, cos_d) = (q1 - q2).sin_cos();
        let (num, den) = self.kinetic_parts(y);
        // d/dΔ of N and D, where Δ = q₁ − q₂.
        let dnum = 2.0 * m2 * l1 * l2 * p1 * p2 * sin_d;
        let dden = 2.0 * m2 * l1 * l1 * l2 * l2 * m2 * 2.0 * sin_d * cos_d;
        let dkin = (dnum * den - num * dden) / (den * den);
        grad[0] = dkin + (m1 + m2) * g * l1 * q1.sin();
        grad[1] = -dkin + m2 * g * l2 * q2.sin();
        grad[2] = (2.0 * m2 * l2 * l2 * p1 - 2.0 * m2 * l1 * l2 * p2 * cos_d) / den;
        grad[3] = (2.0 * (m1 + m2) * l1 * l1 * p2 - 2.0 * m2 * l1 * l2 * p1 * cos_d) / den;
    }
    fn num_bodies(&self) -> usize {
        2
    }
    fn body_masses(&self) -> Vec<f64> {
        vec![self.m1, self.m2]
    }
    fn body_positions(&self, q: &[f64], out: &mut [[f64; 2]]) {
        let (s1, c1) = q[0].sin_cos();
        let (s2, c2) = q[1].sin_cos();
        out[0] = [self.l1 * s1, -self.l1 * c1];
        out[1] = [out[0][0] + self.l2 * s2, out[0][1] - self.l2 * c2];
    }
}

/// Planar gravitational n-body system:
/// `H = Σᵢ ‖pᵢ‖²/(2mᵢ) − Σ_{i<j} g·mᵢ·mⱼ/‖qᵢ − qⱼ‖` (each pair counted once, decision D4).
#[derive(Debug, Clone, PartialEq)]
pub struct NBody {
    /// The mass of each body.
    pub masses: Vec<f64>,
    /// Gravitational constant.
    pub g: f64,
}

impl HamiltonianSystem for NBody {
    fn dof(&self) -> usize {
        2 * self.masses.len()
    }
    fn hamiltonian(&self, y: &[f64]) -> f64 {
        let n = self.masses.len();
        let (q, p) = y.split_at(2 * n);
        let mut energy = 0.0;
        for i in 0..n {
            let mi = self.masses[i];
            energy += (p[2 * i].powi(2) + p[2 * i + 1].powi(2)) / (2.0 * mi);
            for j in (i + 1)..n {
                let dx = q[2 * i] - q[2 * j];
                let dy = q[2 * i + 1] - q[2 * j + 1];
                energy -= self.g * mi * self.masses[j] / (dx * dx + dy * dy).sqrt();
            }
        }
        energy
    }
    fn gradient(&self, y: &[f64], grad: &mut [f64]) {
        let n = self.masses.len();
        let (q, p) = y.split_at(2 * n);
        let (dq, dp) = grad.split_at_mut(2 * n);
        dq.fill(0.0);
        for i in 0..n {
            dp[2 * i] = p[2 * i] / self.masses[i];
            dp[2 * i + 1] = p[2 * i + 1] / self.masses[i];
            for j in (i + 1)..n {
                let dx = q[2 * i] - q[2 * j];
                let dy = q[2 * i + 1] - q[2 * j + 1];
                let r2 = dx * dx + dy * dy;
                let s = self.g * self.masses[i] * self.masses[j] / (r2 * r2.sqrt());
                dq[2 * i] += s * dx;
                dq[2 * i + 1] += s * dy;
                dq[2 * j] -= s * dx;
                dq[2 * j + 1] -= s * dy;
            }
        }
    }
    fn num_bodies(&self) -> usize {
        self.masses.len()
    }
    fn body_masses(&self) -> Vec<f64> {
        self.masses.clone()
    }
    fn body_positions(&self, q: &[f64], out: &mut [[f64; 2]]) {
        for (i, pos) in out.iter_mut().enumerate().take(self.masses.len()) {
            *pos = [q[2 * i], q[2 * i + 1]];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn systems() -> Vec<(Box<dyn HamiltonianSystem>, Vec<f64>)> {
        vec![
            (Box::new(MassSpring { m: 0.7, k: 1.3 }), vec![0.4, -0.9]),
            (
                Box::new(Pendulum {
                    m: 0.5,
                    g: 3.0,
                    l: 0.8,
                }),
                vec![1.1, 0.7],
            ),
            (
                Box::new(DoublePendulum {
                    m1: 0.45,
                    m2: 0.6,
                    l1: 0.9,
                    l2: 0.8,
                    g: 3.1,
                }),
                vec![0.7, -1.2, 0.3, -0.5],
            ),
            (
                Box::new(NBody {
                    masses: vec![1.0, 0.8, 1.3],
                    g: 1.1,
                }),
                vec![
                    1.0, 0.1, -0.6, 0.9, -0.3, -1.1, 0.2, 0.5, -0.4, 0.1, 0.3, -0.2,
                ],
            ),
        ]
    }

    #[test]
    fn gradients_match_central_finite_differences() {
        for (system, y) in systems() {
            let mut grad = vec![0.0; y.len()];
            system.gradient(&y, &mut grad);
            for i in 0..y.len() {
                let eps = 1e-6;
                let mut plus = y.clone();
                let mut minus = y.clone();
                plus[i] += eps;
                minus[i] -= eps;
                let fd = (system.hamiltonian(&plus) - system.hamiltonian(&minus)) / (2.0 * eps);
                let err = (fd - grad[i]).abs() / grad[i].abs().max(1.0);
                assert!(
                    err < 1e-8,
                    "component {i}: analytic {} vs finite diff {fd}",
                    grad[i]
                );
            }
        }
    }

    #[test]
    fn double_pendulum_at_rest_has_minimum_potential() {
        let dp = DoublePendulum {
            m1: 0.5,
            m2: 0.5,
            l1: 1.0,
            l2: 1.0,
            g: 3.0,
        };
        let mut grad = [0.0; 4];
        dp.gradient(&[0.0; 4], &mut grad);
        assert!(grad.iter().all(|g| g.abs() < 1e-15));
        assert!((dp.hamiltonian(&[0.0; 4]) + (1.0 + 0.5) * 3.0).abs() < 1e-12);
    }

    #[test]
    fn double_pendulum_positions_chain_the_rods() {
        let dp = DoublePendulum {
            m1: 0.5,
            m2: 0.5,
            l1: 1.0,
            l2: 0.5,
            g: 3.0,
        };
        let mut pos = [[0.0; 2]; 2];
        dp.body_positions(&[0.0, std::f64::consts::FRAC_PI_2], &mut pos);
        assert!((pos[0][0]).abs() < 1e-12 && (pos[0][1] + 1.0).abs() < 1e-12);
        assert!((pos[1][0] - 0.5).abs() < 1e-12 && (pos[1][1] + 1.0).abs() < 1e-12);
    }
}

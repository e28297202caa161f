//! Differentiable integrators of the latent Hamiltonian dynamics (reference D2, §5).
//!
//! Hamilton's equations `dq/dt = ∂H/∂p`, `dp/dt = −∂H/∂q` are stepped with:
//!
//! - **leapfrog** (default), kick-drift-kick exactly as DeepMind implements it:
//!   `p½ = p − dt/2·∂H/∂q(q, p)`, `q' = q + dt·∂H/∂p(q, p½)`, `p' = p½ − dt/2·∂H/∂q(q', p½)`.
//!   The drift uses `∂H/∂p`, never `p` itself (the CampusAI bug, §5.5). With a separable `H` the
//!   force at the end of a step is the force at the start of the next and is reused, so a step
//!   costs one `∂U/∂q` and one `∂K/∂p`;
//! - **euler**, the paper's ablation: `q' = q + dt·∂H/∂p(q, p)`, `p' = p − dt·∂H/∂q(q, p)`;
//! - **rk4**, classical Runge–Kutta on `(q, p)` (4th stage at the full step);
//! - **yoshida4**, Yoshida's 4th-order symplectic composition of three leapfrog steps of sizes
//!   `w₁·dt, w₀·dt, w₁·dt`, `w₁ = 1/(2 − 2^{1/3})`, `w₀ = 1 − 2w₁`.
//!
//! A negative `dt` runs backward in time; any `dt` works at rollout time (speed-up/slow-down).

use std::cell::Cell;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::hamiltonian::LatentHamiltonian;

/// Which integrator steps the latent state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IntegratorKind {
    /// Kick-drift-kick leapfrog (symplectic, 2nd order).
    #[default]
    Leapfrog,
    /// Explicit Euler (1st order).
    Euler,
    /// Classical Runge–Kutta (4th order, not symplectic).
    Rk4,
    /// Yoshida's composition of leapfrog (symplectic, 4th order).
    Yoshida4,
}

impl IntegratorKind {
    /// Every integrator, for listings and tests.
    pub const ALL: [IntegratorKind; 4] = [
        IntegratorKind::Leapfrog,
        IntegratorKind::Euler,
        IntegratorKind::Rk4,
        IntegratorKind::Yoshida4,
    ];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            IntegratorKind::Leapfrog => "leapfrog",
            IntegratorKind::Euler => "euler",
            IntegratorKind::Rk4 => "rk4",
            IntegratorKind::Yoshida4 => "yoshida4",
        }
    }

    /// Order of accuracy.
    pub fn order(self) -> u32 {
        match self {
            IntegratorKind::Euler => 1,
            IntegratorKind::Leapfrog => 2,
            IntegratorKind::Rk4 | IntegratorKind::Yoshida4 => 4,
        }
    }
}

/// The latent trajectory: `q[t]`, `p[t]` for `t = 0..=steps` (index 0 is the initial state).
#[derive(Debug, Clone)]
pub struct Rollout<const D: usize = 4> {
    /// Positions.
    pub q: Vec<Tensor<D>>,
    /// Momenta.
    pub p: Vec<Tensor<D>>,
}

/// Integrates `steps` steps of size `dt` from `(q0, p0)`.
///
/// # Shapes
/// - `q0`, `p0`: `[batch, channels, size, size]` (HGN) or `[batch, d]` (flow)
/// - returns: `steps + 1` states of the same shape each
pub fn rollout<const D: usize>(
    h: &impl LatentHamiltonian<D>,
    kind: IntegratorKind,
    q0: Tensor<D>,
    p0: Tensor<D>,
    dt: f64,
    steps: usize,
) -> Rollout<D> {
    let mut qs = Vec::with_capacity(steps + 1);
    let mut ps = Vec::with_capacity(steps + 1);
    qs.push(q0.clone());
    ps.push(p0.clone());
    let (mut q, mut p) = (q0, p0);
    // The force ∂H/∂q at the current state, carried between leapfrog steps of a separable H.
    let mut force: Option<Tensor<D>> = None;
    for _ in 0..steps {
        (q, p) = match kind {
            IntegratorKind::Leapfrog => leapfrog(h, q, p, dt, &mut force),
            IntegratorKind::Euler => {
                let dq = h.dh_dp(q.clone(), p.clone());
                let dp = h.dh_dq(q.clone(), p.clone());
                (q + dq.mul_scalar(dt), p - dp.mul_scalar(dt))
            }
            IntegratorKind::Rk4 => rk4(h, q, p, dt),
            IntegratorKind::Yoshida4 => {
                let w1 = 1.0 / (2.0 - 2f64.powf(1.0 / 3.0));
                let w0 = 1.0 - 2.0 * w1;
                let (q, p) = leapfrog(h, q, p, w1 * dt, &mut force);
                let (q, p) = leapfrog(h, q, p, w0 * dt, &mut force);
                leapfrog(h, q, p, w1 * dt, &mut force)
            }
        };
        qs.push(q.clone());
        ps.push(p.clone());
    }
    Rollout { q: qs, p: ps }
}

/// How many times `steps` steps of `kind` evaluate `∂H/∂q` and `∂H/∂p` (in that order) for a
/// separable or a joint `H`: [`rollout`] itself, run on a Hamiltonian that only counts, so the
/// count follows the integrators as written (the leapfrog's carried force included).
pub fn gradient_evaluations(kind: IntegratorKind, separable: bool, steps: usize) -> (usize, usize) {
    struct Counter {
        separable: bool,
        dq: Cell<usize>,
        dp: Cell<usize>,
    }
    impl LatentHamiltonian<2> for Counter {
        fn energy(&self, q: Tensor<2>, _p: Tensor<2>) -> Tensor<1> {
            q.sum()
        }
        fn dh_dq(&self, q: Tensor<2>, _p: Tensor<2>) -> Tensor<2> {
            self.dq.set(self.dq.get() + 1);
            q
        }
        fn dh_dp(&self, _q: Tensor<2>, p: Tensor<2>) -> Tensor<2> {
            self.dp.set(self.dp.get() + 1);
            p
        }
        fn is_separable(&self) -> bool {
            self.separable
        }
    }
    let counter = Counter {
        separable,
        dq: Cell::new(0),
        dp: Cell::new(0),
    };
    let zero = Tensor::<2>::zeros([1, 1], &Device::flex());
    rollout(&counter, kind, zero.clone(), zero, 0.1, steps);
    (counter.dq.get(), counter.dp.get())
}

/// One kick-drift-kick step. For a separable `H`, `force` carries `∂H/∂q(q)` from the end of the
/// previous step, which is the force at the start of this one.
pub fn leapfrog<const D: usize>(
    h: &impl LatentHamiltonian<D>,
    q: Tensor<D>,
    p: Tensor<D>,
    dt: f64,
    force: &mut Option<Tensor<D>>,
) -> (Tensor<D>, Tensor<D>) {
    let start_force = match force.take() {
        Some(f) if h.is_separable() => f,
        _ => h.dh_dq(q.clone(), p.clone()),
    };
    let p_half = p - start_force.mul_scalar(0.5 * dt);
    let drift = h.dh_dp(q.clone(), p_half.clone());
    let q_next = q + drift.mul_scalar(dt);
    let end_force = h.dh_dq(q_next.clone(), p_half.clone());
    let p_next = p_half - end_force.clone().mul_scalar(0.5 * dt);
    *force = Some(end_force);
    (q_next, p_next)
}

/// One classical RK4 step on `(dq/dt, dp/dt) = (∂H/∂p, −∂H/∂q)`.
fn rk4<const D: usize>(
    h: &impl LatentHamiltonian<D>,
    q: Tensor<D>,
    p: Tensor<D>,
    dt: f64,
) -> (Tensor<D>, Tensor<D>) {
    let field = |q: Tensor<D>, p: Tensor<D>| (h.dh_dp(q.clone(), p.clone()), h.dh_dq(q, p).neg());
    let (k1q, k1p) = field(q.clone(), p.clone());
    let (k2q, k2p) = field(
        q.clone() + k1q.clone().mul_scalar(dt / 2.0),
        p.clone() + k1p.clone().mul_scalar(dt / 2.0),
    );
    let (k3q, k3p) = field(
        q.clone() + k2q.clone().mul_scalar(dt / 2.0),
        p.clone() + k2p.clone().mul_scalar(dt / 2.0),
    );
    let (k4q, k4p) = field(
        q.clone() + k3q.clone().mul_scalar(dt),
        p.clone() + k3p.clone().mul_scalar(dt),
    );
    let q_next = q + (k1q + k2q.mul_scalar(2.0) + k3q.mul_scalar(2.0) + k4q).mul_scalar(dt / 6.0);
    let p_next = p + (k1p + k2p.mul_scalar(2.0) + k3p.mul_scalar(2.0) + k4p).mul_scalar(dt / 6.0);
    (q_next, p_next)
}

//! Ground-truth physics: Hamiltonian systems, their integration and their rendering.
//!
//! This module owns everything needed to turn a seed into a trajectory of a physical system and a
//! sequence of images of it. Its invariants (see `ARCHITECTURE.md`):
//!
//! - **f64 everywhere, no burn, no file I/O.** The model side never reaches in here, and nothing here
//!   touches tensors or disk.
//! - **Every random draw takes an explicit [`rand::Rng`].** The dataset writer derives one RNG per
//!   trajectory from `(seed, split, index)`, so output never depends on thread count or order.
//! - **State layout.** A phase-space state is one flat `[f64]` of length `2 * dof`: all positions
//!   `q` first, then all momenta `p`. For the n-body systems `q = [x_1, y_1, x_2, y_2, …]`.
//! - **Dynamics.** Hamilton's equations, with the DeepMind suite's friction term:
//!   `dq/dt = ∂H/∂p`, `dp/dt = −∂H/∂q − γ·∂H/∂p`, so `dH/dt = −γ‖∂H/∂p‖² ≤ 0`.
//!
//! Submodules: [`systems`] (the Hamiltonians), [`integrate`] (Dormand–Prince RK45 with tight
//! tolerances), [`render`] (DeepMind's soft-disc renderer), [`catalog`] (the named datasets with the
//! paper's and the suite's parameters), [`trajectory`] (sampling and rendering one trajectory).

pub mod catalog;
pub mod fit;
pub mod integrate;
pub mod render;
pub mod sampling;
pub mod systems;
pub mod trajectory;

pub use catalog::{SYSTEMS, SystemSpec, find_system, system_names};
pub use systems::HamiltonianSystem;
pub use trajectory::Trajectory;

/// The right-hand side of the equations of motion with linear friction on the momenta:
/// `dq/dt = ∂H/∂p`, `dp/dt = −∂H/∂q − γ·∂H/∂p` (DeepMind suite, `hamiltonian.py`).
///
/// `grad` is scratch space of length `2 * dof`; `dy` receives the time derivative.
pub fn vector_field(
    system: &dyn HamiltonianSystem,
    friction: f64,
    y: &[f64],
    grad: &mut [f64],
    dy: &mut [f64],
) {
    let dof = system.dof();
    system.gradient(y, grad);
    for i in 0..dof {
        let dh_dq = grad[i];
        let dh_dp = grad[dof + i];
        dy[i] = dh_dp;
        dy[dof + i] = -dh_dq - friction * dh_dp;
    }
}

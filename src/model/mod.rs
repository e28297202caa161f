//! The HGN model's building blocks on burn tensors.
//!
//! - [`layers`]: TF/Haiku `SAME`/`VALID` padding and the adjoint of a convolution, the piece
//!   that makes input gradients explicit, differentiable tensor operations;
//! - [`hamiltonian`]: the learned Hamiltonian `H_γ(q, p)` (the `paper` preset's separable
//!   `K(p) + U(q)` conv nets and the `campusai` preset's net on `concat(q, p)`) with exact,
//!   explicit `∂H/∂q` and `∂H/∂p`;
//! - [`integrator`]: leapfrog, Euler, RK4 and 4th-order symplectic rollouts of the latent state;
//! - [`networks`]: encoder, latent transform f_ψ and decoder;
//! - [`hgn`]: the assembled model and its config presets;
//! - [`loss`](mod@loss): reconstruction + KL balanced by GECO (or β-ELBO).
//!
//! burn's autodiff is first-order only, and training differentiates through `∂H/∂q` and `∂H/∂p`.
//! So those gradients are not taken by autodiff: they are written out as ordinary tensor
//! operations (conv adjoint = `conv_transpose2d` with the same weights, softplus' = sigmoid of
//! the pre-activation), and one ordinary backward pass then gives exact training gradients.
//! `tests/gradients.rs` pins this in f64 against burn's autodiff and finite differences.

pub mod hamiltonian;
pub mod hgn;
pub mod integrator;
pub mod layers;
pub mod loss;
pub mod networks;

pub use hamiltonian::{
    ConvEnergy, ConvEnergyConfig, HamiltonianNet, HamiltonianNetConfig, LatentHamiltonian,
};
pub use hgn::{ForwardFlops, Hgn, HgnConfig, HgnOutput, MAX_DECODED_PIXELS};
pub use integrator::{IntegratorKind, Rollout, gradient_evaluations, rollout};
pub use loss::{LossParts, Objective, loss};
pub use networks::{Architecture, EncoderInput};

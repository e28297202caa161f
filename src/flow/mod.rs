//! Density modelling with Hamiltonian dynamics: the Neural Hamiltonian Flow of the paper (§4),
//! a RealNVP baseline trained by the same loop, the 2-D benchmark targets, and `hgn flow`.
//!
//! - [`mlp`]: energy networks with explicit input gradients, and plain MLPs;
//! - [`nhf`]: the NHF (stages of learned separable Hamiltonians integrated by leapfrog, a
//!   variational momentum posterior, ELBO and importance-weighted likelihood);
//! - [`realnvp`]: affine coupling flow;
//! - [`targets`]: the seeded 2-D densities;
//! - [`config`]: a flow run's settings;
//! - [`net`]: the network a run trains (NHF or RealNVP);
//! - [`points`]: a run's training, held-out and validation points;
//! - [`train`]: run folders, training and loading;
//! - [`eval`]: held-out likelihoods, samples and the evaluation report;
//! - [`plot`]: density heat maps, samples and the learned potentials;
//! - [`compare`]: NHF against RealNVP on every benchmark target, as a Markdown table.
//!
//! The NHF reuses the HGN's integrator (`model::integrator::leapfrog`) through the
//! `LatentHamiltonian<2>` trait: one leapfrog for image latents and for vectors.

pub mod compare;
pub mod config;
pub mod eval;
pub mod load;
pub mod mlp;
pub mod net;
pub mod nhf;
pub mod plot;
pub mod points;
pub mod realnvp;
pub mod targets;
pub mod train;

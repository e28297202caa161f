//! The Neural Hamiltonian Flow (paper §4; reference §11).
//!
//! The state is `s = (q, p) ∈ R^{2d}` with base density `π₀ = N(0, I)`. Stage `k` is a learned
//! separable Hamiltonian `H_k(q, p) = K_k(p) + V_k(q)` (an [`EnergyMlp`] for `V_k`; `K_k` is
//! `½|p|²`, a network, or both) integrated by `L` leapfrog steps of size `ε_k`; the flow is
//! `s_K = Φ_K ∘ … ∘ Φ_1(s₀)`. Leapfrog is symplectic, so every stage preserves volume
//! (log-det 0), and integrating with `−ε_k` inverts it exactly.
//!
//! A learned step size (the paper's learned `ε` per stage) is `ε_k = dt · exp(s_k)`. It is
//! realised by scaling the stage's Hamiltonian, `H_k ← exp(s_k)·H_k`, and stepping with `dt`:
//! every leapfrog update is `dt` times a gradient of `H`, so the two are the same map, and the
//! integrator needs no tensor-valued step.
//!
//! Data are positions `q`; the momentum is latent. With a variational posterior
//! `f_ψ(p | q) = N(μ(q), diag σ(q)²)` (an [`Mlp`] on `q`):
//!
//! ```text
//! log p(q) ≥ ELBO(q) = E_{p ~ f_ψ(·|q)} [ log π₀(Φ⁻¹(q, p)) − log f_ψ(p | q) ]
//! ```
//!
//! with `π₀` evaluated on both `q₀` and `p₀` (the gaspardbb implementation evaluates only `q₀`, a
//! bug). The posterior may be richer than a diagonal Gaussian: `C` affine couplings conditioned
//! on `q` ([`PosteriorCouplings`]) map the Gaussian draw `p⁽⁰⁾` to `p`, and
//! `log f_ψ(p | q) = log N(p⁽⁰⁾; μ, σ²) − Σ_c log |det ∂p⁽ᶜ⁾/∂p⁽ᶜ⁻¹⁾|`. The importance-weighted estimate `log (1/S) Σ_s exp(w_s)` with `S` posterior samples
//! tightens the bound for evaluation.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::mlp::{Activation, EnergyActivation, EnergyMlp, Mlp, MlpConfig};
use super::realnvp::coupling_mask;
use crate::model::LatentHamiltonian;
use crate::model::integrator::leapfrog;

/// `ln(2π)`.
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Size and dynamics of an NHF. A field absent from an older `config.json` takes the behaviour
/// runs had before it existed; [`crate::flow::config::new_config`] chooses a new run's settings.
#[derive(Config, Debug, PartialEq)]
pub struct NhfConfig {
    /// Data dimension `d` (the state has `2d`).
    pub dim: usize,
    /// Hamiltonian stages `K`.
    #[config(default = 4)]
    pub stages: usize,
    /// Leapfrog steps per stage `L`.
    #[config(default = 8)]
    pub leapfrog_steps: usize,
    /// Leapfrog step size.
    #[config(default = 0.1)]
    pub dt: f64,
    /// Width of every hidden layer (energies and posterior).
    #[config(default = 64)]
    pub hidden: usize,
    /// Hidden layers of every network.
    #[config(default = 2)]
    pub depth: usize,
    /// `K_k(p) = ½|p|² + k_θ(p)`: the kinetic network learns the deviation from the standard
    /// kinetic energy (true), or `K_k(p) = k_θ(p)` alone (false). With the quadratic base,
    /// momentum moves positions from the first step (`dq/dt = p + ∂k_θ/∂p`); a freshly
    /// initialised MLP alone gives nearly zero velocity and a flow that barely moves.
    #[config(default = true)]
    pub quadratic_kinetic: bool,
    /// Whether `K_k(p)` has a learned network `k_θ(p)`. With `quadratic_kinetic` and without
    /// it, `K_k = ½|p|²` and only `V_k` is learned (the fixed-kinetic NHF of Souveton et al.).
    #[config(default = true)]
    pub learned_kinetic: bool,
    /// Learn each stage's step size `ε_k = dt · exp(s_k)` (`s_k` starts at 0); otherwise every
    /// stage steps with `dt`.
    #[config(default = false)]
    pub learned_step: bool,
    /// Hidden-layer activation of the energy networks.
    #[config(default = "EnergyActivation::Softplus")]
    pub activation: EnergyActivation,
    /// Affine couplings conditioned on `q` after the posterior's Gaussian draw (0: the
    /// posterior is the diagonal Gaussian).
    #[config(default = 0)]
    pub posterior_couplings: usize,
    /// Width of the hidden layers of each posterior coupling's network.
    #[config(default = 32)]
    pub posterior_coupling_hidden: usize,
}

impl NhfConfig {
    /// A freshly initialised flow.
    pub fn init(&self, device: &Device) -> Nhf {
        let hidden = vec![self.hidden; self.depth];
        let energy = MlpConfig::new(self.dim, hidden.clone(), 1);
        Nhf {
            stages: (0..self.stages)
                .map(|_| Stage {
                    kinetic: self
                        .learned_kinetic
                        .then(|| energy.init_energy(self.activation, device)),
                    potential: energy.init_energy(self.activation, device),
                    log_step: self
                        .learned_step
                        .then(|| Param::from_tensor(Tensor::zeros([1], device))),
                    quadratic_kinetic: self.quadratic_kinetic,
                })
                .collect(),
            posterior: MlpConfig::new(self.dim, hidden, 2 * self.dim).init(device),
            posterior_flow: (self.posterior_couplings > 0).then(|| PosteriorCouplings {
                nets: (0..self.posterior_couplings)
                    .map(|_| {
                        MlpConfig::new(
                            2 * self.dim,
                            vec![self.posterior_coupling_hidden; self.depth],
                            2 * self.dim,
                        )
                        .init(device)
                    })
                    .collect(),
                dim: self.dim,
            }),
            dt: self.dt,
            leapfrog_steps: self.leapfrog_steps,
            dim: self.dim,
        }
    }
}

/// One stage: `H(q, p) = c·(K(p) + V(q))`, with `c = exp(s)` for a learned step size (the
/// stage then steps `dt·c`) and `c = 1` otherwise.
#[derive(Module, Debug)]
pub struct Stage {
    /// The learned part of the kinetic energy `K(p)` (absent: `K = ½|p|²`).
    pub kinetic: Option<EnergyMlp>,
    /// Potential energy `V(q)`, the interpretable landscape of the paper's figures.
    pub potential: EnergyMlp,
    /// `s`, the log of the factor on the stage's step size, `[1]` (absent: 0).
    pub log_step: Option<Param<Tensor<1>>>,
    /// Whether `K(p)` adds `½|p|²` to the network.
    #[module(skip)]
    pub quadratic_kinetic: bool,
}

impl Stage {
    /// `g · exp(s)` (`g` unchanged without a learned step).
    fn scaled<const D: usize>(&self, g: Tensor<D>) -> Tensor<D> {
        match &self.log_step {
            Some(s) => g * s.val().exp().unsqueeze(),
            None => g,
        }
    }

    /// The factor `exp(s)` on the stage's step size (1 without a learned step).
    pub fn step_factor(&self) -> f64 {
        self.log_step.as_ref().map_or(1.0, |s| {
            s.val()
                .into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .expect("float data")[0]
                .exp()
        })
    }
}

impl LatentHamiltonian<2> for Stage {
    fn energy(&self, q: Tensor<2>, p: Tensor<2>) -> Tensor<1> {
        let batch = p.dims()[0];
        let mut energy = self.potential.energy(q);
        if let Some(net) = &self.kinetic {
            energy = energy + net.energy(p.clone());
        }
        if self.quadratic_kinetic {
            energy = energy + p.square().sum_dim(1).reshape([batch]).mul_scalar(0.5);
        }
        self.scaled(energy)
    }
    fn dh_dq(&self, q: Tensor<2>, _p: Tensor<2>) -> Tensor<2> {
        self.scaled(self.potential.grad(q))
    }
    fn dh_dp(&self, _q: Tensor<2>, p: Tensor<2>) -> Tensor<2> {
        let grad = match (&self.kinetic, self.quadratic_kinetic) {
            (Some(net), true) => net.grad(p.clone()) + p,
            (Some(net), false) => net.grad(p),
            (None, true) => p,
            (None, false) => p.zeros_like(),
        };
        self.scaled(grad)
    }
    fn is_separable(&self) -> bool {
        true
    }
}

/// A Neural Hamiltonian Flow.
#[derive(Module, Debug)]
pub struct Nhf {
    /// The Hamiltonian stages, applied first to last from the base.
    pub stages: Vec<Stage>,
    /// `f_ψ(p | q)`: `q ↦ (μ, log σ)`.
    pub posterior: Mlp,
    /// Couplings after the Gaussian draw (absent: the posterior is the Gaussian).
    pub posterior_flow: Option<PosteriorCouplings>,
    /// Leapfrog step size.
    #[module(skip)]
    pub dt: f64,
    /// Leapfrog steps per stage.
    #[module(skip)]
    pub leapfrog_steps: usize,
    /// Data dimension.
    #[module(skip)]
    pub dim: usize,
}

impl Nhf {
    /// `L` leapfrog steps of `stage` with step `dt` (negative: backward).
    pub fn stage_map(
        &self,
        stage: &Stage,
        q: Tensor<2>,
        p: Tensor<2>,
        dt: f64,
    ) -> (Tensor<2>, Tensor<2>) {
        let (mut q, mut p) = (q, p);
        let mut force = None;
        for _ in 0..self.leapfrog_steps {
            (q, p) = leapfrog(stage, q, p, dt, &mut force);
        }
        (q, p)
    }

    /// The flow `Φ_K ∘ … ∘ Φ_1`: base samples to data space.
    ///
    /// # Shapes
    /// - `q`, `p`: `[batch, d]`; returns the same
    pub fn forward_flow(&self, q: Tensor<2>, p: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let (mut q, mut p) = (q, p);
        for stage in &self.stages {
            (q, p) = self.stage_map(stage, q, p, self.dt);
        }
        (q, p)
    }

    /// The states along the flow from base draws: `(q, p)` before the first leapfrog step and
    /// after each of the `K · L` steps (`K · L + 1` states; the last is [`Self::forward_flow`]'s
    /// result).
    pub fn forward_path(&self, q: Tensor<2>, p: Tensor<2>) -> Vec<(Tensor<2>, Tensor<2>)> {
        let mut path = vec![(q.clone(), p.clone())];
        let (mut q, mut p) = (q, p);
        for stage in &self.stages {
            let mut force = None;
            for _ in 0..self.leapfrog_steps {
                (q, p) = leapfrog(stage, q, p, self.dt, &mut force);
                path.push((q.clone(), p.clone()));
            }
        }
        path
    }

    /// The inverse flow: data space to the base, each stage integrated with `−dt`.
    pub fn inverse_flow(&self, q: Tensor<2>, p: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let (mut q, mut p) = (q, p);
        for stage in self.stages.iter().rev() {
            (q, p) = self.stage_map(stage, q, p, -self.dt);
        }
        (q, p)
    }

    /// Mean and log standard deviation of `f_ψ(p | q)`, each `[batch, d]`; `log σ = 5·tanh(a/5)`
    /// of the network's output `a`.
    pub fn posterior(&self, q: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let out = self.posterior.forward(q, Activation::Softplus);
        let mut parts = out.split(self.dim, 1);
        // log σ softly bounded to (−5, 5): σ never overflows or collapses to zero.
        let log_sigma = parts
            .pop()
            .expect("two halves")
            .div_scalar(5.0)
            .tanh()
            .mul_scalar(5.0);
        let mu = parts.pop().expect("two halves");
        (mu, log_sigma)
    }

    /// One-sample ELBO of each `q`, with the posterior draw `p = μ + σ ⊙ eps`.
    ///
    /// # Shapes
    /// - `q`, `eps` (standard normal): `[batch, d]`
    /// - returns: `[batch]`
    pub fn elbo(&self, q: Tensor<2>, eps: Tensor<2>) -> Tensor<1> {
        let batch = q.dims()[0];
        let d = self.dim as f64;
        let (mu, log_sigma) = self.posterior(q.clone());
        let p = mu + log_sigma.clone().exp() * eps.clone();
        let (p, log_det) = match &self.posterior_flow {
            Some(couplings) => {
                let (p, log_det) = couplings.forward(q.clone(), p);
                (p, Some(log_det))
            }
            None => (p, None),
        };
        let (q0, p0) = self.inverse_flow(q, p);
        // log π₀(q₀, p₀) over all 2d coordinates.
        let log_base = (q0.square() + p0.square())
            .sum_dim(1)
            .mul_scalar(-0.5)
            .sub_scalar(d * LN_2PI);
        // log f_ψ(p | q) = log N(eps; 0, I) − Σ log σ − Σ_c log-det of coupling c.
        let mut log_post = eps
            .square()
            .sum_dim(1)
            .mul_scalar(-0.5)
            .sub_scalar(0.5 * d * LN_2PI)
            - log_sigma.sum_dim(1);
        if let Some(log_det) = log_det {
            log_post = log_post - log_det;
        }
        (log_base - log_post).reshape([batch])
    }

    /// Samples in data space from base draws `(eps_q, eps_p)` (standard normal, `[n, d]` each).
    pub fn sample(&self, eps_q: Tensor<2>, eps_p: Tensor<2>) -> Tensor<2> {
        self.forward_flow(eps_q, eps_p).0
    }
}

/// Affine couplings on the momentum conditioned on the position: coupling `c` keeps the momentum
/// coordinates of mask `b_c` (`realnvp`'s coupling mask: alternating parity; none when `d = 1`)
/// and maps the rest, `p ↦ b⊙p + (1−b)⊙(p⊙exp(s) + t)` with `(s, t)` from an [`Mlp`] on
/// `(q, b⊙p)` and `s = tanh(·)`; `log |det| = Σ (1−b)⊙s`.
#[derive(Module, Debug)]
pub struct PosteriorCouplings {
    /// One network per coupling, `(q, b⊙p) ↦ (s, t)`.
    pub nets: Vec<Mlp>,
    /// Data dimension `d`.
    #[module(skip)]
    pub dim: usize,
}

impl PosteriorCouplings {
    /// `p` through every coupling, and the summed `log |det ∂p_out/∂p_in|` of each sample.
    ///
    /// # Shapes
    /// - `q`, `p`: `[batch, d]`
    /// - returns: (`[batch, d]`, `[batch, 1]`)
    pub fn forward(&self, q: Tensor<2>, p: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let device = p.device();
        let batch = p.dims()[0];
        let mut p = p;
        let mut log_det = Tensor::<2>::zeros([batch, 1], &device);
        for (c, net) in self.nets.iter().enumerate() {
            let mask = coupling_mask(self.dim, c, &device);
            let free = mask.clone().neg().add_scalar(1.0);
            let kept = p.clone() * mask;
            let out = net.forward(
                Tensor::cat(vec![q.clone(), kept.clone()], 1),
                Activation::Relu,
            );
            let mut parts = out.split(self.dim, 1);
            let t = parts.pop().expect("two halves") * free.clone();
            let s = parts.pop().expect("two halves").tanh() * free.clone();
            p = kept + (p * s.clone().exp() + t) * free;
            log_det = log_det + s.sum_dim(1);
        }
        (p, log_det)
    }
}

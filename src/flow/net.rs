//! The network a flow run trains: an NHF or a RealNVP behind one interface (objective,
//! samples), both in standardised coordinates.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::config::{FlowKind, FlowRunConfig};
use super::nhf::Nhf;
use super::realnvp::RealNvp;

/// A flow of either kind (exactly one field is present).
#[derive(Module, Debug)]
pub struct FlowNet {
    /// The NHF.
    pub nhf: Option<Nhf>,
    /// The RealNVP.
    pub realnvp: Option<RealNvp>,
}

impl FlowNet {
    /// A freshly initialised flow for `config`.
    pub fn init(config: &FlowRunConfig, device: &Device) -> Self {
        match config.kind {
            FlowKind::Nhf => FlowNet {
                nhf: Some(config.nhf.init(device)),
                realnvp: None,
            },
            FlowKind::Realnvp => FlowNet {
                nhf: None,
                realnvp: Some(config.realnvp.init(device)),
            },
        }
    }

    /// The training objective per point in standardised coordinates: the ELBO (NHF, one
    /// posterior draw `eps`) or the exact log-likelihood (RealNVP).
    pub fn objective(&self, x: Tensor<2>, eps: Tensor<2>) -> Tensor<1> {
        match (&self.nhf, &self.realnvp) {
            (Some(nhf), _) => nhf.elbo(x, eps),
            (None, Some(nvp)) => nvp.log_prob(x),
            _ => unreachable!("a flow is NHF or RealNVP"),
        }
    }

    /// The training objective with `samples` posterior draws per point (NHF): the
    /// importance-weighted bound `log (1/S) Σ_s exp(ELBO_s)` (Burda et al.'s IWAE), which is
    /// the ELBO for `S = 1` and tightens towards `log p(x)` as `S` grows; RealNVP ignores
    /// `samples`.
    ///
    /// # Shapes
    /// - `x`: `[batch, d]`; `eps`: `[samples · batch, d]`, draw-major
    /// - returns: `[batch]`
    pub fn training_objective(&self, x: Tensor<2>, eps: Tensor<2>, samples: usize) -> Tensor<1> {
        if samples <= 1 || self.nhf.is_none() {
            return self.objective(x, eps);
        }
        let batch = x.dims()[0];
        let w = self
            .objective(x.repeat_dim(0, samples), eps)
            .reshape([samples, batch]);
        // log-mean-exp over the draws; the shift is a constant for the gradient.
        let shift = w.clone().max_dim(0).detach();
        ((w - shift.clone()).exp().mean_dim(0).log() + shift).reshape([batch])
    }

    /// Draws in standardised coordinates from base noise `[n, 2d]` (NHF) or `[n, d]` (RealNVP).
    pub fn sample(&self, noise: Tensor<2>, dim: usize) -> Tensor<2> {
        match (&self.nhf, &self.realnvp) {
            (Some(nhf), _) => {
                let mut parts = noise.split(dim, 1);
                let p = parts.pop().expect("two halves");
                let q = parts.pop().expect("two halves");
                nhf.sample(q, p)
            }
            (None, Some(nvp)) => nvp.sample(noise),
            _ => unreachable!("a flow is NHF or RealNVP"),
        }
    }

    /// Base dimensions per sample: `2d` for the NHF (position and momentum), `d` for RealNVP.
    pub fn base_dim(&self, dim: usize) -> usize {
        if self.nhf.is_some() { 2 * dim } else { dim }
    }
}

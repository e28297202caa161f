//! The training objective: per-element reconstruction MSE and a normalised KL, balanced by GECO
//! as DeepMind does it (reference §6.2), or a β-ELBO, or plain MSE for the deterministic model.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::hgn::{Hgn, HgnOutput};

/// How reconstruction and KL are balanced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Objective {
    /// GECO (Rezende & Viola 2018) with DeepMind's settings: constraint `C = MSE − κ`,
    /// `loss = λ·C + KL`, λ = softplus(trainable) pushed up while `C > 0` (α = 0, no EMA).
    Geco {
        /// Tolerance on the per-element MSE (DeepMind: 1e-3).
        kappa: f64,
    },
    /// `loss = MSE + β·KL`.
    Elbo {
        /// Weight of the KL.
        beta: f64,
    },
}

impl Default for Objective {
    fn default() -> Self {
        Objective::Geco { kappa: 1e-3 }
    }
}

/// The parts of one batch's loss; `total` is what is backpropagated.
#[derive(Debug, Clone)]
pub struct LossParts {
    /// The differentiated objective.
    pub total: Tensor<1>,
    /// Per-element MSE over all target frames, batch mean.
    pub reconstruction: Tensor<1>,
    /// KL(q(z|x) ‖ N(0, I)) summed over latent dimensions, divided by T·C·H·W, batch mean.
    pub kl: Tensor<1>,
    /// GECO's λ (1 for the other objectives).
    pub lambda: Tensor<1>,
}

/// The loss of `output` against `targets` (`[batch, T', 3, S, S]`, same shape as the
/// reconstruction, which may hold a subset of the rollout's frames). The KL is normalised by the
/// full rollout length `T`, so subsampling the decoded frames leaves the objective's balance as
/// it is and the MSE an unbiased estimate.
pub fn loss(
    model: &Hgn,
    output: &HgnOutput,
    targets: Tensor<5>,
    objective: Objective,
) -> LossParts {
    let [b, _, c, h, w] = targets.dims();
    let t = output.rollout.q.len();
    let reconstruction = (output.reconstruction.clone() - targets).square().mean();
    let device = reconstruction.device();
    if !model.variational {
        let zero = Tensor::<1>::zeros([1], &device);
        return LossParts {
            total: reconstruction.clone(),
            reconstruction,
            kl: zero,
            lambda: Tensor::ones([1], &device),
        };
    }
    // KL of a diagonal Gaussian to N(0, I): ½ Σ (μ² + σ² − 1 − 2 log σ).
    let mean = output.mean.clone();
    let log_scale = output.log_scale.clone();
    let kl_terms =
        mean.square() + log_scale.clone().mul_scalar(2.0).exp() - log_scale.mul_scalar(2.0) - 1.0;
    let kl = kl_terms.sum().mul_scalar(0.5 / (b * t * c * h * w) as f64);
    match objective {
        Objective::Geco { kappa } => {
            let lambda = model.geco_multiplier();
            let constraint = reconstruction.clone().sub_scalar(kappa);
            // Networks see λ·∂C; λ's parameter sees −C·∂λ (gradient ascent on the constraint).
            let total = lambda.clone().detach() * constraint.clone() + kl.clone()
                - lambda.clone() * constraint.detach();
            LossParts {
                total,
                reconstruction,
                kl,
                lambda,
            }
        }
        Objective::Elbo { beta } => LossParts {
            total: reconstruction.clone() + kl.clone().mul_scalar(beta),
            reconstruction,
            kl,
            lambda: Tensor::ones([1], &device),
        },
    }
}

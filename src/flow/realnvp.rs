//! RealNVP (Dinh, Sohl-Dickstein & Bengio 2017), the coupling-flow baseline for the NHF.
//!
//! Coupling `i` keeps the coordinates with mask `b = 1` (alternating parity) and transforms the
//! rest: `y = b⊙x + (1−b)⊙(x⊙exp(s(b⊙x)) + t(b⊙x))`, with `s = tanh(·)` for stability and `s`,
//! `t` from one [`Mlp`] (ReLU hidden layers). `log |det ∂y/∂x| = Σ (1−b)⊙s`. The base is
//! `N(0, I)`; `log p(x) = log N(f(x)) + Σ log-dets`, exact.

use burn::config::Config;
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use super::mlp::{Activation, Mlp, MlpConfig};
use super::nhf::LN_2PI;

/// Size of a RealNVP.
#[derive(Config, Debug, PartialEq)]
pub struct RealNvpConfig {
    /// Data dimension (at least 2).
    pub dim: usize,
    /// Coupling layers.
    #[config(default = 8)]
    pub couplings: usize,
    /// Width of every hidden layer.
    #[config(default = 64)]
    pub hidden: usize,
    /// Hidden layers of every coupling network.
    #[config(default = 2)]
    pub depth: usize,
}

impl RealNvpConfig {
    /// A freshly initialised flow.
    pub fn init(&self, device: &Device) -> RealNvp {
        RealNvp {
            nets: (0..self.couplings)
                .map(|_| {
                    MlpConfig::new(self.dim, vec![self.hidden; self.depth], 2 * self.dim)
                        .init(device)
                })
                .collect(),
            dim: self.dim,
        }
    }
}

/// The mask of coupling `i` over `d` coordinates (1: kept), `[1, d]`: the coordinates of `i`'s
/// parity, alternating from coupling to coupling; none when `d = 1`, so that the one
/// coordinate is transformed.
pub(super) fn coupling_mask(d: usize, i: usize, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..d)
        .map(|j| if d > 1 && j % 2 == i % 2 { 1.0 } else { 0.0 })
        .collect();
    Tensor::from_data(TensorData::new(values, [1, d]), device)
}

/// A RealNVP flow.
#[derive(Module, Debug)]
pub struct RealNvp {
    /// One network per coupling, `x ↦ (s, t)`.
    pub nets: Vec<Mlp>,
    /// Data dimension.
    #[module(skip)]
    pub dim: usize,
}

impl RealNvp {
    fn scale_shift(&self, i: usize, kept: Tensor<2>, mask: &Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let out = self.nets[i].forward(kept, Activation::Relu);
        let mut parts = out.split(self.dim, 1);
        let t = parts.pop().expect("two halves");
        let s = parts.pop().expect("two halves").tanh();
        let free = mask.clone().neg().add_scalar(1.0);
        (s * free.clone(), t * free)
    }

    /// The map to the base, `z = f(x)`, and `log |det ∂f/∂x|` of each sample (`[batch, 1]`).
    pub fn to_base(&self, x: Tensor<2>) -> (Tensor<2>, Tensor<2>) {
        let batch = x.dims()[0];
        let device = x.device();
        let mut y = x;
        let mut log_det = Tensor::<2>::zeros([batch, 1], &device);
        for i in 0..self.nets.len() {
            let mask = coupling_mask(self.dim, i, &device);
            let kept = y.clone() * mask.clone();
            let (s, t) = self.scale_shift(i, kept.clone(), &mask);
            let free = mask.neg().add_scalar(1.0);
            y = kept + (y * s.clone().exp() + t) * free;
            log_det = log_det + s.sum_dim(1);
        }
        (y, log_det)
    }

    /// `log p(x)` of each sample, exact.
    ///
    /// # Shapes
    /// - `x`: `[batch, d]`
    /// - returns: `[batch]`
    pub fn log_prob(&self, x: Tensor<2>) -> Tensor<1> {
        let batch = x.dims()[0];
        let (z, log_det) = self.to_base(x);
        let d = self.dim as f64;
        let log_base = z
            .square()
            .sum_dim(1)
            .mul_scalar(-0.5)
            .sub_scalar(0.5 * d * LN_2PI);
        (log_base + log_det).reshape([batch])
    }

    /// Samples from base draws `z` (standard normal, `[n, d]`): the couplings inverted, last
    /// first.
    pub fn sample(&self, z: Tensor<2>) -> Tensor<2> {
        let device = z.device();
        let mut x = z;
        for i in (0..self.nets.len()).rev() {
            let mask = coupling_mask(self.dim, i, &device);
            let kept = x.clone() * mask.clone();
            let (s, t) = self.scale_shift(i, kept.clone(), &mask);
            let free = mask.neg().add_scalar(1.0);
            x = kept + ((x - t) * s.neg().exp()) * free;
        }
        x
    }
}

//! Small fully connected networks on vectors `[batch, d]`.
//!
//! - [`EnergyMlp`]: `x ↦ E(x)`, one scalar per sample, softplus or tanh between layers, with the
//!   input gradient `∂E/∂x` written out as ordinary differentiable tensor operations (the adjoint
//!   of `x ↦ xW + b` is `g ↦ gWᵀ`; softplus' is the sigmoid of the pre-activation, tanh' is
//!   `1 − tanh²` of it), the same construction as the HGN's conv energies, so training through
//!   leapfrog needs only burn's first-order autodiff;
//! - [`Mlp`]: a plain network (softplus or ReLU hidden layers, linear output) for the
//!   variational posterior and RealNVP's coupling functions.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::model::hamiltonian::{sigmoid, softplus};

/// Hidden-layer activation of an [`EnergyMlp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnergyActivation {
    /// `softplus(a)`, derivative `sigmoid(a)`: three transcendental functions per unit for the
    /// energy and its gradient.
    #[default]
    Softplus,
    /// `tanh(a)`, derivative `1 − tanh(a)²`: one.
    Tanh,
}

impl EnergyActivation {
    /// `h = σ(a)` and, when `derivative`, `σ'(a)`.
    fn apply<const D: usize>(
        self,
        a: Tensor<D>,
        derivative: bool,
    ) -> (Tensor<D>, Option<Tensor<D>>) {
        match self {
            EnergyActivation::Softplus => {
                let slope = derivative.then(|| sigmoid(a.clone()));
                (softplus(a), slope)
            }
            EnergyActivation::Tanh => {
                let h = a.tanh();
                let slope = derivative.then(|| h.clone().square().neg().add_scalar(1.0));
                (h, slope)
            }
        }
    }
}

impl std::str::FromStr for EnergyActivation {
    type Err = anyhow::Error;
    fn from_str(name: &str) -> anyhow::Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "softplus" => Ok(EnergyActivation::Softplus),
            "tanh" => Ok(EnergyActivation::Tanh),
            _ => anyhow::bail!("unknown energy activation '{name}' (known: softplus, tanh)"),
        }
    }
}

/// Layer sizes of an [`EnergyMlp`] or [`Mlp`].
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Input features.
    pub d_in: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Output features (1 for an energy).
    pub d_out: usize,
}

impl MlpConfig {
    fn linears(&self, device: &Device) -> Vec<Linear> {
        let mut sizes = vec![self.d_in];
        sizes.extend(&self.hidden);
        sizes.push(self.d_out);
        sizes
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect()
    }

    /// An energy network with `activation` between its layers (`d_out` is ignored: an energy
    /// is one scalar).
    pub fn init_energy(&self, activation: EnergyActivation, device: &Device) -> EnergyMlp {
        EnergyMlp {
            layers: MlpConfig::new(self.d_in, self.hidden.clone(), 1).linears(device),
            activation,
        }
    }

    /// A plain network.
    pub fn init(&self, device: &Device) -> Mlp {
        Mlp {
            layers: self.linears(device),
        }
    }
}

/// `E(x)`: linear layers with an activation between them, one scalar output per sample.
#[derive(Module, Debug)]
pub struct EnergyMlp {
    /// The layers, input first.
    pub layers: Vec<Linear>,
    /// The activation between layers.
    #[module(skip)]
    pub activation: EnergyActivation,
}

impl EnergyMlp {
    /// The energy of each sample.
    ///
    /// # Shapes
    /// - `x`: `[batch, d]`
    /// - returns: `[batch]`
    pub fn energy(&self, x: Tensor<2>) -> Tensor<1> {
        let last = self.layers.len() - 1;
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            let a = layer.forward(h);
            h = if i < last {
                self.activation.apply(a, false).0
            } else {
                a
            };
        }
        let batch = h.dims()[0];
        h.reshape([batch])
    }

    /// The energy of each sample and `∂E/∂x`, both differentiable:
    ///
    /// ```text
    /// a_l = h_{l−1} W_l + b_l,  h_l = σ(a_l) (l < L),  E = a_L
    /// g_L = 1,  g_{h_{l−1}} = g_l W_lᵀ,  g_{l−1} = g_{h_{l−1}} ⊙ σ'(a_{l−1})
    /// ```
    ///
    /// # Shapes
    /// - `x`: `[batch, d]`
    /// - returns: (`[batch]`, `[batch, d]`)
    pub fn energy_and_grad(&self, x: Tensor<2>) -> (Tensor<1>, Tensor<2>) {
        let (h, slopes) = self.hidden(x);
        let out = self.layers[self.layers.len() - 1].forward(h.clone());
        let batch = out.dims()[0];
        (out.reshape([batch]), self.backward(h, slopes))
    }

    /// `∂E/∂x` (see [`Self::energy_and_grad`]), without the output layer's forward pass.
    pub fn grad(&self, x: Tensor<2>) -> Tensor<2> {
        let (h, slopes) = self.hidden(x);
        self.backward(h, slopes)
    }

    /// The last hidden activation `h_{L−1}` (the input without hidden layers) and `σ'(a_l)` of
    /// every hidden layer.
    fn hidden(&self, x: Tensor<2>) -> (Tensor<2>, Vec<Tensor<2>>) {
        let last = self.layers.len() - 1;
        let mut slopes = Vec::with_capacity(last);
        let mut h = x;
        for layer in &self.layers[..last] {
            let (value, slope) = self.activation.apply(layer.forward(h), true);
            slopes.push(slope.expect("asked for the derivative"));
            h = value;
        }
        (h, slopes)
    }

    /// `∂E/∂x` from [`Self::hidden`]'s output: `g_L = 1` makes `g_{h_{L−1}} = W_Lᵀ`, one row
    /// broadcast over the batch, then `g_{l−1} = (g_l W_lᵀ) ⊙ σ'(a_{l−1})` down to the input.
    fn backward(&self, h: Tensor<2>, mut slopes: Vec<Tensor<2>>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let row = self.layers[last].weight.val().transpose();
        let mut g = match slopes.pop() {
            Some(slope) => slope * row,
            None => h.ones_like() * row,
        };
        for i in (1..last).rev() {
            g = g.matmul(self.layers[i].weight.val().transpose()) * slopes[i - 1].clone();
        }
        if last > 0 {
            g = g.matmul(self.layers[0].weight.val().transpose());
        }
        g
    }
}

/// Hidden-layer activation of an [`Mlp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Smooth.
    Softplus,
    /// Rectified linear.
    Relu,
}

/// A plain fully connected network with a linear output layer.
#[derive(Module, Debug)]
pub struct Mlp {
    /// The layers, input first.
    pub layers: Vec<Linear>,
}

impl Mlp {
    /// # Shapes
    /// - `x`: `[batch, d_in]`
    /// - returns: `[batch, d_out]`
    pub fn forward(&self, x: Tensor<2>, activation: Activation) -> Tensor<2> {
        let last = self.layers.len() - 1;
        let mut h = x;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = match activation {
                    Activation::Softplus => softplus(h),
                    Activation::Relu => burn::tensor::activation::relu(h),
                };
            }
        }
        h
    }
}

//! The learned Hamiltonian `H_γ(q, p)` with exact, explicit input gradients.
//!
//! A [`ConvEnergy`] is a stack of convolutions with softplus between them, mapping a latent map
//! `[B, C, S, S]` to one scalar per sample (the last layer's output summed over all positions,
//! DeepMind `hgn_paper_config`; the authors' e-mail in CampusAI issue #68). Its input gradient
//! is computed by running the layers' adjoints backwards by hand:
//!
//! ```text
//! a_l = conv_l(h_{l−1}),  h_l = softplus(a_l)  (l < L),   H = Σ a_L
//! g_L = 1,   g_{h_{l−1}} = conv_lᵀ(g_l),   g_{l−1} = g_{h_{l−1}} ⊙ sigmoid(a_{l−1})
//! ```
//!
//! Every operation is an ordinary differentiable tensor op, so the loss of a rollout that uses
//! these gradients can be backpropagated by burn's first-order autodiff exactly.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::{Device, Tensor};

use super::layers::Padding::{Same, Valid};
use super::layers::{Padding, conv, conv_adjoint, conv_flops};
use super::networks::Architecture;

/// `softplus(x) = max(x, 0) + log(1 + exp(−|x|))`: finite for every input, and its derivative
/// is exactly `sigmoid(x)` (unlike a thresholded softplus, whose derivative jumps to 1).
pub fn softplus<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let tail = x.clone().abs().neg().exp().log1p();
    burn::tensor::activation::relu(x) + tail
}

/// `sigmoid(x) = (1 + tanh(x/2)) / 2`, computed in the tensor's own precision (burn's `sigmoid`
/// computes in f32 on some backends, which would break the f64 gradient tests). Written with
/// `tanh` rather than `1 / (1 + exp(−x))`: for `x` below about −88 (f32) `exp(−x)` overflows, and
/// although the value is still right, its backward pass multiplies `0 · ∞` and turns every
/// training gradient into NaN.
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    x.mul_scalar(0.5).tanh().mul_scalar(0.5).add_scalar(0.5)
}

/// Layers of a [`ConvEnergy`].
#[derive(Config, Debug)]
pub struct ConvEnergyConfig {
    /// Input channels.
    pub channels_in: usize,
    /// Input height and width.
    pub input_size: usize,
    /// Output channels of each layer; the last is usually 1.
    pub channels: Vec<usize>,
    /// Kernel size of each layer.
    pub kernels: Vec<usize>,
    /// Stride of each layer.
    pub strides: Vec<usize>,
    /// Padding of each layer.
    pub paddings: Vec<Padding>,
}

/// Strides and paddings of the five layers of an implementation's energy network.
type FiveLayers = ([usize; 5], [Padding; 5]);
/// DeepMind's `hgn_paper_config`.
const PAPER_STACK: FiveLayers = ([1, 2, 1, 2, 1], [Same, Valid, Same, Valid, Same]);
/// CampusAI's `HamiltonianNet`.
const CAMPUSAI_STACK: FiveLayers = ([1, 2, 1, 1, 1], [Same, Valid, Same, Same, Valid]);

impl ConvEnergyConfig {
    /// DeepMind `hgn_paper_config`'s kinetic / potential net: channels [32, 64, 64, 64, 1],
    /// kernels [3, 2, 2, 2, 2], strides [1, 2, 1, 2, 1], SAME/VALID alternating; 46,049
    /// parameters for a 16×4×4 input.
    pub fn paper(channels_in: usize, input_size: usize) -> Self {
        Self::paper_with_width(channels_in, input_size, 64)
    }

    /// CampusAI's `HamiltonianNet` stack (authors' e-mail, CampusAI issue #68): kernels
    /// [3, 2, 2, 2, 2], strides [1, 2, 1, 1, 1], padding SAME, VALID, SAME, SAME, VALID;
    /// 50,657 parameters on `concat(q, p)` of 32×4×4 with `width` 64. No softplus on the output
    /// (that one is CampusAI's own, §4.4).
    pub fn campusai_with_width(channels_in: usize, input_size: usize, width: usize) -> Self {
        Self::five_layers(channels_in, input_size, width, CAMPUSAI_STACK)
    }

    /// The paper's layer stack with `width` channels instead of 64 (the first layer has half).
    pub fn paper_with_width(channels_in: usize, input_size: usize, width: usize) -> Self {
        Self::five_layers(channels_in, input_size, width, PAPER_STACK)
    }

    /// The authors' five-layer stack, channels [w/2, w, w, w, 1], kernels [3, 2, 2, 2, 2], with
    /// the strides and paddings of one implementation.
    fn five_layers(
        channels_in: usize,
        input_size: usize,
        width: usize,
        (strides, paddings): FiveLayers,
    ) -> Self {
        Self::new(
            channels_in,
            input_size,
            vec![width / 2, width, width, width, 1],
            vec![3, 2, 2, 2, 2],
            strides.to_vec(),
            paddings.to_vec(),
        )
    }

    /// An MLP on a vector state `[B, d, 1, 1]`, written as 1×1 convolutions: channels
    /// `[width, width, 1]`, softplus between (the vector-latent HGN).
    pub fn mlp(channels_in: usize, width: usize) -> Self {
        Self::new(
            channels_in,
            1,
            vec![width, width, 1],
            vec![1; 3],
            vec![1; 3],
            vec![Valid; 3],
        )
    }

    /// Builds the net.
    pub fn init(&self, device: &Device) -> ConvEnergy {
        let n = self.channels.len();
        assert!(
            n > 0 && self.kernels.len() == n && self.strides.len() == n && self.paddings.len() == n,
            "a conv energy needs one kernel, stride and padding per layer"
        );
        let mut layers = Vec::with_capacity(n);
        let mut sizes = Vec::with_capacity(n);
        let (mut channels, mut size) = (self.channels_in, self.input_size);
        for i in 0..n {
            sizes.push(size);
            layers.push(conv(
                channels,
                self.channels[i],
                self.kernels[i],
                self.strides[i],
                self.paddings[i],
                size,
                device,
            ));
            size = self.paddings[i].output_size(size, self.kernels[i], self.strides[i]);
            channels = self.channels[i];
        }
        ConvEnergy { layers, sizes }
    }
}

/// A conv net mapping `[B, C, S, S]` to one energy per sample, with its exact input gradient.
#[derive(Module, Debug)]
pub struct ConvEnergy {
    /// The convolutions, first to last.
    pub layers: Vec<Conv2d>,
    /// Spatial input size of each layer.
    #[module(skip)]
    pub sizes: Vec<usize>,
}

impl ConvEnergy {
    /// The energy of each sample.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels_in, size, size]`
    /// - returns: `[batch]`
    pub fn energy(&self, x: Tensor<4>) -> Tensor<1> {
        self.energy_with_grad(x, false).0
    }

    /// The energy of each sample and its gradient with respect to `x`, both differentiable.
    ///
    /// # Shapes
    /// - `x`: `[batch, channels_in, size, size]`
    /// - returns: (`[batch]`, same shape as `x`)
    pub fn energy_and_grad(&self, x: Tensor<4>) -> (Tensor<1>, Tensor<4>) {
        let (energy, grad) = self.energy_with_grad(x, true);
        (energy, grad.expect("asked for the gradient"))
    }

    /// The energy, and its gradient when `with_grad`: as convolutions, or as matrix products on
    /// `[batch, channels]` for a pointwise stack ([`Self::is_pointwise`]).
    fn energy_with_grad(&self, x: Tensor<4>, with_grad: bool) -> (Tensor<1>, Option<Tensor<4>>) {
        let [batch, channels, _, _] = x.dims();
        if self.is_pointwise(&x) {
            let weights: Vec<Tensor<2>> = self
                .layers
                .iter()
                .map(|layer| {
                    let [out, inp, _, _] = layer.weight.dims();
                    layer.weight.val().reshape([out, inp])
                })
                .collect();
            let (out, grad) = softplus_stack(
                self.layers.len(),
                x.reshape([batch, channels]),
                |i, h| {
                    let a = h.matmul(weights[i].clone().transpose());
                    match &self.layers[i].bias {
                        Some(bias) => a + bias.val().reshape([1, weights[i].dims()[0]]),
                        None => a,
                    }
                },
                with_grad.then_some(|i: usize, g: Tensor<2>| g.matmul(weights[i].clone())),
            );
            let energy = out.sum_dim(1).reshape([batch]);
            return (energy, grad.map(|g| g.reshape([batch, channels, 1, 1])));
        }
        let (out, grad) = softplus_stack(
            self.layers.len(),
            x,
            |i, h| self.layers[i].forward(h),
            with_grad.then_some(|i: usize, g: Tensor<4>| {
                let size = self.sizes[i];
                conv_adjoint(&self.layers[i], g, [size, size])
            }),
        );
        (out.sum_dims(&[1, 2, 3]).reshape([batch]), grad)
    }

    /// Whether every layer is a 1×1 convolution of a 1×1 input (the MLP of a vector state,
    /// [`ConvEnergyConfig::mlp`]): then each layer is the matrix product `a = h Wᵀ + b` and its
    /// adjoint `g W`, with the same parameters, at a fraction of a convolution's cost.
    fn is_pointwise(&self, x: &Tensor<4>) -> bool {
        let [_, _, h, w] = x.dims();
        h == 1
            && w == 1
            && self.layers.iter().all(|layer| {
                let [_, _, kh, kw] = layer.weight.dims();
                kh == 1 && kw == 1 && layer.groups == 1 && layer.dilation == [1, 1]
            })
    }

    /// The gradient of the energy with respect to `x` (see [`Self::energy_and_grad`]).
    pub fn grad(&self, x: Tensor<4>) -> Tensor<4> {
        self.energy_and_grad(x).1
    }

    /// Floating-point operations of [`Self::grad`] on `batch` inputs: every layer forward and
    /// its adjoint, which costs the same ([`conv_flops`]; on a 1×1 input a 1×1 layer is the
    /// matrix product of the same count).
    pub fn grad_flops(&self, batch: usize) -> f64 {
        let forward: f64 = self
            .layers
            .iter()
            .zip(&self.sizes)
            .map(|(layer, &size)| conv_flops(layer, [size, size]).0)
            .sum();
        2.0 * batch as f64 * forward
    }
}

/// A stack of `layers` maps with softplus between them (none after the last), run forward on
/// `x`, and, given each layer's adjoint, backward by hand for the gradient of the sum of the last
/// output with respect to `x` (see the module docs). Returns the last output and the gradient.
fn softplus_stack<const D: usize>(
    layers: usize,
    x: Tensor<D>,
    forward: impl Fn(usize, Tensor<D>) -> Tensor<D>,
    adjoint: Option<impl Fn(usize, Tensor<D>) -> Tensor<D>>,
) -> (Tensor<D>, Option<Tensor<D>>) {
    let last = layers - 1;
    let mut pre_activations = Vec::with_capacity(last);
    let mut h = x;
    for i in 0..layers {
        let a = forward(i, h);
        if i < last {
            if adjoint.is_some() {
                pre_activations.push(a.clone());
            }
            h = softplus(a);
        } else {
            h = a;
        }
    }
    let grad = adjoint.map(|adjoint| {
        let mut g = h.ones_like();
        for i in (0..layers).rev() {
            g = adjoint(i, g);
            if i > 0 {
                g = g * sigmoid(pre_activations[i - 1].clone());
            }
        }
        g
    });
    (h, grad)
}

/// The interface integrators need from a Hamiltonian on states `q`, `p` of equal shape: latent
/// maps `[batch, channels, size, size]` (the default `D = 4`, HGN) or vectors `[batch, d]`
/// (`D = 2`, the Neural Hamiltonian Flow).
pub trait LatentHamiltonian<const D: usize = 4> {
    /// `H(q, p)` per sample, shape `[batch]`.
    fn energy(&self, q: Tensor<D>, p: Tensor<D>) -> Tensor<1>;
    /// `∂H/∂q` at `(q, p)`.
    fn dh_dq(&self, q: Tensor<D>, p: Tensor<D>) -> Tensor<D>;
    /// `∂H/∂p` at `(q, p)`.
    fn dh_dp(&self, q: Tensor<D>, p: Tensor<D>) -> Tensor<D>;
    /// Whether `H = K(p) + U(q)`, so `∂H/∂q` ignores `p` and `∂H/∂p` ignores `q`.
    fn is_separable(&self) -> bool;
}

/// How the Hamiltonian network is laid out.
#[derive(Config, Debug)]
pub struct HamiltonianNetConfig {
    /// Channels of `q` (and of `p`).
    pub channels: usize,
    /// Spatial size of `q` and `p`.
    pub size: usize,
    /// `H = K(p) + U(q)` with two nets (DeepMind, `paper` preset), or one net on `concat(q, p)`
    /// (CampusAI, `campusai` preset).
    #[config(default = true)]
    pub separable: bool,
    /// Channel width of each energy net (DeepMind: 64).
    #[config(default = 64)]
    pub width: usize,
    /// Layer stack of each energy net.
    #[config(default = "Architecture::Paper")]
    pub architecture: Architecture,
    /// `Some(m)`: a fixed quadratic kinetic energy `K(p) = |p|²/(2m)` instead of a learned
    /// `K(p)` net (separable only; DeepMind's physics_inspired_models offers such fixed forms).
    #[config(default = "None")]
    pub kinetic_mass: Option<f64>,
}

impl HamiltonianNetConfig {
    /// Builds the network; each energy net uses the layer stack of `architecture`, or an MLP
    /// ([`ConvEnergyConfig::mlp`]) when the state is a vector (`size` 1).
    pub fn init(&self, device: &Device) -> HamiltonianNet {
        let stack = |channels_in: usize| match self.architecture {
            _ if self.size == 1 => ConvEnergyConfig::mlp(channels_in, self.width),
            Architecture::Paper => {
                ConvEnergyConfig::paper_with_width(channels_in, self.size, self.width)
            }
            Architecture::CampusAi => {
                ConvEnergyConfig::campusai_with_width(channels_in, self.size, self.width)
            }
        };
        if self.separable {
            HamiltonianNet {
                kinetic: self
                    .kinetic_mass
                    .is_none()
                    .then(|| stack(self.channels).init(device)),
                potential: Some(stack(self.channels).init(device)),
                joint: None,
                kinetic_mass: self.kinetic_mass,
            }
        } else {
            HamiltonianNet {
                kinetic: None,
                potential: None,
                joint: Some(stack(2 * self.channels).init(device)),
                kinetic_mass: None,
            }
        }
    }
}

/// `H_γ(q, p)`: either `K(p) + U(q)` or one net on `concat(q, p)` along channels.
#[derive(Module, Debug)]
pub struct HamiltonianNet {
    /// `K(p)` of a separable Hamiltonian.
    pub kinetic: Option<ConvEnergy>,
    /// `U(q)` of a separable Hamiltonian.
    pub potential: Option<ConvEnergy>,
    /// The net of a non-separable Hamiltonian.
    pub joint: Option<ConvEnergy>,
    /// Mass `m` of a fixed quadratic kinetic energy `|p|²/(2m)` (then `kinetic` is absent).
    #[module(skip)]
    pub kinetic_mass: Option<f64>,
}

impl HamiltonianNet {
    /// Floating-point operations of one [`LatentHamiltonian::dh_dq`] and of one
    /// [`LatentHamiltonian::dh_dp`] on `batch` states ([`ConvEnergy::grad_flops`]; a fixed
    /// mass makes `∂H/∂p` a scaling, not counted).
    pub fn gradient_flops(&self, batch: usize) -> (f64, f64) {
        let of = |net: &Option<ConvEnergy>| net.as_ref().map_or(0.0, |n| n.grad_flops(batch));
        match &self.joint {
            Some(joint) => {
                let both = joint.grad_flops(batch);
                (both, both)
            }
            None => (of(&self.potential), of(&self.kinetic)),
        }
    }

    fn joint_grad(&self, q: Tensor<4>, p: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let channels = q.dims()[1];
        let grad = self
            .joint
            .as_ref()
            .expect("non-separable H has a joint net")
            .grad(Tensor::cat(vec![q, p], 1));
        let [b, c, h, w] = grad.dims();
        (
            grad.clone().slice([0..b, 0..channels, 0..h, 0..w]),
            grad.slice([0..b, channels..c, 0..h, 0..w]),
        )
    }
}

impl LatentHamiltonian for HamiltonianNet {
    fn energy(&self, q: Tensor<4>, p: Tensor<4>) -> Tensor<1> {
        match (
            &self.kinetic,
            &self.potential,
            &self.joint,
            self.kinetic_mass,
        ) {
            (Some(k), Some(u), _, _) => k.energy(p) + u.energy(q),
            (None, Some(u), _, Some(m)) => {
                let batch = p.dims()[0];
                let kinetic = p
                    .square()
                    .sum_dims(&[1, 2, 3])
                    .reshape([batch])
                    .mul_scalar(0.5 / m);
                kinetic + u.energy(q)
            }
            (_, _, Some(j), _) => j.energy(Tensor::cat(vec![q, p], 1)),
            _ => unreachable!("a Hamiltonian net is separable or joint"),
        }
    }
    fn dh_dq(&self, q: Tensor<4>, p: Tensor<4>) -> Tensor<4> {
        match &self.potential {
            Some(u) => u.grad(q),
            None => self.joint_grad(q, p).0,
        }
    }
    fn dh_dp(&self, q: Tensor<4>, p: Tensor<4>) -> Tensor<4> {
        match (&self.kinetic, self.kinetic_mass) {
            (Some(k), _) => k.grad(p),
            (None, Some(m)) => p.mul_scalar(1.0 / m),
            (None, None) => self.joint_grad(q, p).1,
        }
    }
    fn is_separable(&self) -> bool {
        self.joint.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::host_values;
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn vector_mlp_matrix_products_match_the_convolution_path() {
        // On a 2×2 map holding the same vector at every position, the 1×1 stack runs as
        // convolutions (energy: 4 × the vector's; gradient: the vector's at each position); on
        // the vector itself it runs as matrix products.
        let device = Device::flex();
        let net = ConvEnergyConfig::mlp(3, 8).init(&device);
        // The same layers, laid out for 2×2 inputs.
        let mut on_maps = ConvEnergyConfig::mlp(3, 8);
        on_maps.input_size = 2;
        let mut on_maps = on_maps.init(&device);
        on_maps.layers = net.layers.clone();
        let x = Tensor::<4>::random([5, 3, 1, 1], Distribution::Normal(0.0, 1.0), &device);
        let (energy, grad) = net.energy_and_grad(x.clone());
        let (map_energy, map_grad) = on_maps.energy_and_grad(x.clone().expand([5, 3, 2, 2]));
        let (energy, map_energy) = (
            host_values::<f64, _>(energy),
            host_values::<f64, _>(map_energy),
        );
        assert_eq!(host_values::<f64, _>(net.energy(x)), energy);
        for (e, m) in energy.iter().zip(&map_energy) {
            assert!((4.0 * e - m).abs() <= 1e-5 * m.abs().max(1.0), "{e} vs {m}");
        }
        let (grad, map_grad) = (host_values::<f64, _>(grad), host_values::<f64, _>(map_grad));
        assert_eq!(map_grad.len(), 4 * grad.len());
        for (i, g) in grad.iter().enumerate() {
            for position in 0..4 {
                let m = map_grad[4 * i + position];
                assert!((g - m).abs() <= 1e-5 * g.abs().max(1.0), "{g} vs {m}");
            }
        }
    }

    #[test]
    fn sigmoid_and_softplus_backward_stay_finite_for_extreme_inputs() {
        // f32: exp(200) overflows; a backward pass through 1/(1 + exp(−x)) would give NaN.
        let device = Device::flex().autodiff();
        let x = Tensor::<1>::from_data(
            TensorData::new(vec![-200.0f32, -30.0, 0.0, 30.0, 200.0], [5]),
            &device,
        )
        .require_grad();
        let y = sigmoid(x.clone()).sum() + softplus(x.clone()).sum();
        let grads = y.backward();
        let g = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .convert::<f64>()
            .try_to_vec::<f64>()
            .unwrap();
        assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
        let s = sigmoid(Tensor::<1>::from_data(
            TensorData::new(vec![-200.0f32, 0.0, 200.0], [3]),
            &Device::flex(),
        ))
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap();
        assert!(
            s[0].abs() < 1e-30 && (s[1] - 0.5).abs() < 1e-7 && (s[2] - 1.0).abs() < 1e-7,
            "{s:?}"
        );
    }
}

//! The latent transform f_ψ(z) → (q, p).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::model::layers::{Padding, conv, conv_flops};

/// The latent transform f_ψ: `depth` convs `k3 s1 SAME`, ReLU between, none at the end (`k1`,
/// i.e. an MLP, on a vector latent).
#[derive(Config, Debug)]
pub struct TransformConfig {
    /// Channels of `z` in and of `(q, p)` out.
    pub channels: usize,
    /// Spatial size of the latent map.
    pub size: usize,
    /// Hidden channels (DeepMind: 64).
    pub hidden: usize,
    /// Number of convolutions (DeepMind: 5).
    #[config(default = 5)]
    pub depth: usize,
}

impl TransformConfig {
    /// CampusAI's transformer: three `k3 s2` convs (PyTorch padding 1) from `z_channels` to
    /// `out_channels`, ReLU between and none on the output.
    pub fn campusai(
        z_channels: usize,
        size: usize,
        hidden: usize,
        out_channels: usize,
        device: &Device,
    ) -> Transform {
        let layers = vec![
            conv(
                z_channels,
                hidden,
                3,
                2,
                Padding::Symmetric(1),
                size,
                device,
            ),
            conv(
                hidden,
                hidden,
                3,
                2,
                Padding::Symmetric(1),
                size / 2,
                device,
            ),
            conv(
                hidden,
                out_channels,
                3,
                2,
                Padding::Symmetric(1),
                size / 4,
                device,
            ),
        ];
        Transform { layers }
    }

    /// Builds the transform.
    pub fn init(&self, device: &Device) -> Transform {
        let layers = (0..self.depth)
            .map(|i| {
                let ci = if i == 0 { self.channels } else { self.hidden };
                let co = if i + 1 == self.depth {
                    self.channels
                } else {
                    self.hidden
                };
                // On a 1×1 state (vector latent) a 3×3 kernel would only use its centre.
                let kernel = if self.size == 1 { 1 } else { 3 };
                conv(ci, co, kernel, 1, Padding::Same, self.size, device)
            })
            .collect();
        Transform { layers }
    }
}

/// f_ψ(z) → s = (q, p).
#[derive(Module, Debug)]
pub struct Transform {
    /// The convolutions.
    pub layers: Vec<Conv2d>,
}

impl Transform {
    /// # Shapes
    /// - `z`: `[batch, C, s, s]`; returns the same shape (first half of channels is `q`).
    pub fn forward(&self, z: Tensor<4>) -> Tensor<4> {
        let last = self.layers.len() - 1;
        let mut h = z;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = relu(h);
            }
        }
        h
    }

    /// Floating-point operations of [`Self::forward`] on `batch` maps of `size`² ([`conv_flops`]),
    /// and the spatial size of its output.
    pub fn flops(&self, batch: usize, size: usize) -> (f64, usize) {
        let mut hw = [size, size];
        let mut total = 0.0;
        for layer in &self.layers {
            let (flops, out) = conv_flops(layer, hw);
            total += batch as f64 * flops;
            hw = out;
        }
        (total, hw[0])
    }
}

//! The decoders q → frame: DeepMind's upsampling conv net, the spatial broadcast decoder of the
//! `vector` preset, and CampusAI's residual one.

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor};

use super::{leaky, linear, pixel_grid};
use crate::model::hamiltonian::sigmoid;
use crate::model::layers::{Padding, conv, conv_flops, linear_flops};

/// Decoder layout: a learned constant concatenated to `q`, then three blocks of nearest ×2
/// upsampling and `depth` 3×3 convs with leaky ReLU (slope 0.2), no residuals, final sigmoid.
#[derive(Config, Debug)]
pub struct DecoderConfig {
    /// Channels of `q`.
    pub q_channels: usize,
    /// Spatial size of `q`.
    pub size: usize,
    /// Hidden channels (DeepMind: 64).
    pub hidden: usize,
    /// Channels of the learned constant (DeepMind: 2).
    #[config(default = 2)]
    pub constant_channels: usize,
    /// Convs per upsampling block (DeepMind: 2).
    #[config(default = 2)]
    pub depth: usize,
}

impl DecoderConfig {
    /// Builds the decoder.
    pub fn init(&self, device: &Device) -> Decoder {
        let mut blocks = Vec::new();
        let mut channels = self.q_channels + self.constant_channels;
        let mut size = self.size;
        for block in 0..3 {
            size *= 2;
            let mut layers = Vec::new();
            for _ in 0..self.depth {
                layers.push(conv(
                    channels,
                    self.hidden,
                    3,
                    1,
                    Padding::Same,
                    size,
                    device,
                ));
                channels = self.hidden;
            }
            if block == 2 {
                layers.push(conv(channels, 3, 3, 1, Padding::Same, size, device));
            }
            blocks.push(layers);
        }
        let constant = Tensor::ones([1, self.constant_channels, self.size, self.size], device);
        Decoder {
            constant: Param::from_tensor(constant),
            blocks,
        }
    }
}

/// The decoder p_θ(x | q): renders a frame from the positions `q` only.
#[derive(Module, Debug)]
pub struct Decoder {
    /// Learned constant channels, `[1, c, s, s]`, initialised to 1.
    pub constant: Param<Tensor<4>>,
    /// Convolutions of each upsampling block.
    pub blocks: Vec<Vec<Conv2d>>,
}

/// Nearest-neighbour ×2 upsampling: `out[b, c, y, x] = x[b, c, ⌊y/2⌋, ⌊x/2⌋]`.
/// `[b, c, h, w]` → `[b, c, 2h, 2w]`.
///
/// Through the backend's nearest interpolation (one gather forward, one 2 × 2 block sum
/// backward) rather than a broadcast view and a reshape, which the CPU backend copies through a
/// generic strided iterator.
pub fn upsample2(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    interpolate(
        x,
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * h, 2 * w]),
    )
}

impl Decoder {
    /// # Shapes
    /// - `q`: `[batch, q_channels, s, s]`
    /// - returns: `[batch, 3, 8s, 8s]` in (0, 1)
    pub fn forward(&self, q: Tensor<4>) -> Tensor<4> {
        let constant = self.constant.val();
        let [_, c, s, _] = constant.dims();
        let b = q.dims()[0];
        let mut h = Tensor::cat(vec![q, constant.expand([b, c, s, s])], 1);
        let num_blocks = self.blocks.len();
        for (bi, block) in self.blocks.iter().enumerate() {
            h = upsample2(h);
            let last = block.len() - 1;
            for (li, layer) in block.iter().enumerate() {
                h = layer.forward(h);
                if !(bi + 1 == num_blocks && li == last) {
                    h = leaky(h, 0.2);
                }
            }
        }
        sigmoid(h)
    }

    /// Floating-point operations of [`Self::forward`] on `images` states of `size`²
    /// ([`conv_flops`]).
    pub fn flops(&self, images: usize, size: usize) -> f64 {
        let mut hw = [size, size];
        let mut total = 0.0;
        for block in &self.blocks {
            hw = [2 * hw[0], 2 * hw[1]];
            for layer in block {
                let (flops, out) = conv_flops(layer, hw);
                total += images as f64 * flops;
                hw = out;
            }
        }
        total
    }
}

/// Spatial broadcast decoder (Watters et al. 2019) for a vector latent: every pixel sees the
/// whole of `q` beside its own coordinates `(x, y) ∈ [−1, 1]²`, and an MLP (leaky ReLU, slope
/// 0.2, sigmoid output) gives its colour. A position held in `q` then renders as a shape at that
/// position without the decoder having to learn to place it, so a point state decodes to one
/// body rather than to a blend of images. The MLP runs on `[batch, pixels, width]` matrices
/// (one matmul a layer rather than a 1×1 convolution).
#[derive(Config, Debug)]
pub struct BroadcastDecoderConfig {
    /// Dimensions of `q`.
    pub q_dim: usize,
    /// Image height and width.
    pub image_size: usize,
    /// Width of the per-pixel MLP.
    pub width: usize,
    /// Hidden layers of the per-pixel MLP.
    #[config(default = 3)]
    pub depth: usize,
}

impl BroadcastDecoderConfig {
    /// Builds the decoder.
    pub fn init(&self, device: &Device) -> BroadcastDecoder {
        let mut layers = Vec::new();
        for _ in 1..self.depth {
            layers.push(linear(self.width, self.width, device));
        }
        layers.push(linear(self.width, 3, device));
        // The first layer acts on concat(q, x, y); its q and (x, y) parts are held apart so
        // that `q` is never tiled over the image.
        BroadcastDecoder {
            position: linear(self.q_dim, self.width, device),
            coordinates: linear(2, self.width, device),
            layers,
            image_size: self.image_size,
        }
    }
}

/// The decoder p_θ(x | q) of a vector latent: see [`BroadcastDecoderConfig`].
#[derive(Module, Debug)]
pub struct BroadcastDecoder {
    /// The first layer's weights on `q`.
    pub position: Linear,
    /// The first layer's weights on the pixel coordinates.
    pub coordinates: Linear,
    /// The further layers, the last to RGB.
    pub layers: Vec<Linear>,
    /// Image height and width.
    #[module(skip)]
    pub image_size: usize,
}

impl BroadcastDecoder {
    /// # Shapes
    /// - `q`: `[batch, d, 1, 1]`
    /// - returns: `[batch, 3, S, S]` in (0, 1)
    pub fn forward(&self, q: Tensor<4>) -> Tensor<4> {
        let [b, d, _, _] = q.dims();
        let s = self.image_size;
        let grid = pixel_grid(s, &q.device());
        let from_q = self.position.forward(q.reshape([b, 1, d]));
        let mut h = leaky(self.coordinates.forward(grid) + from_q, 0.2);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(h);
            if i < last {
                h = leaky(h, 0.2);
            }
        }
        sigmoid(h.swap_dims(1, 2).reshape([b, 3, s, s]))
    }

    /// Floating-point operations of [`Self::forward`] on `images` states ([`linear_flops`]; the
    /// coordinates' layer runs once, shared by the batch).
    pub fn flops(&self, images: usize) -> f64 {
        let pixels = self.image_size * self.image_size;
        let hidden: f64 = self
            .layers
            .iter()
            .map(|layer| linear_flops(layer, images * pixels))
            .sum();
        linear_flops(&self.position, images) + linear_flops(&self.coordinates, pixels) + hidden
    }
}

/// CampusAI's residual decoder: three blocks of nearest ×2 upsampling, two 3×3 convs with leaky
/// ReLU (slope 0.01), a skip connection from the upsampled input (through a 1×1 conv when the
/// channels change) and a sigmoid; then a 3×3 conv to RGB and a sigmoid.
#[derive(Module, Debug)]
pub struct ResidualDecoder {
    /// The two convolutions of each block.
    pub blocks: Vec<Vec<Conv2d>>,
    /// The 1×1 skip projection of each block (only where the channels change).
    pub skips: Vec<Option<Conv2d>>,
    /// The final conv to RGB.
    pub output: Conv2d,
}

impl ResidualDecoder {
    /// Builds the decoder for `q` of `q_channels × size × size`.
    pub fn new(q_channels: usize, size: usize, hidden: usize, device: &Device) -> Self {
        let mut blocks = Vec::new();
        let mut skips = Vec::new();
        let (mut channels, mut s) = (q_channels, size);
        for _ in 0..3 {
            s *= 2;
            blocks.push(vec![
                conv(channels, hidden, 3, 1, Padding::Same, s, device),
                conv(hidden, hidden, 3, 1, Padding::Same, s, device),
            ]);
            skips.push(
                (channels != hidden)
                    .then(|| conv(channels, hidden, 1, 1, Padding::Valid, s, device)),
            );
            channels = hidden;
        }
        let output = conv(hidden, 3, 3, 1, Padding::Same, s, device);
        Self {
            blocks,
            skips,
            output,
        }
    }

    /// # Shapes
    /// - `q`: `[batch, q_channels, s, s]`; returns `[batch, 3, 8s, 8s]` in (0, 1)
    pub fn forward(&self, q: Tensor<4>) -> Tensor<4> {
        let mut h = q;
        for (block, skip) in self.blocks.iter().zip(&self.skips) {
            let up = upsample2(h);
            let mut x = up.clone();
            for layer in block {
                x = leaky(layer.forward(x), 0.01);
            }
            let residual = match skip {
                Some(projection) => projection.forward(up),
                None => up,
            };
            h = sigmoid(x + residual);
        }
        sigmoid(self.output.forward(h))
    }

    /// Floating-point operations of [`Self::forward`] on `images` states of `size`²
    /// ([`conv_flops`]).
    pub fn flops(&self, images: usize, size: usize) -> f64 {
        let mut hw = [size, size];
        let mut total = 0.0;
        for (block, skip) in self.blocks.iter().zip(&self.skips) {
            let up = [2 * hw[0], 2 * hw[1]];
            hw = up;
            for layer in block {
                let (flops, out) = conv_flops(layer, hw);
                total += images as f64 * flops;
                hw = out;
            }
            if let Some(projection) = skip {
                total += images as f64 * conv_flops(projection, up).0;
            }
        }
        total + images as f64 * conv_flops(&self.output, hw).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::host_values;
    use burn::tensor::TensorData;

    #[test]
    fn upsample2_repeats_each_pixel_in_a_2x2_block_and_sums_its_gradient_back() {
        let device = Device::flex().autodiff();
        let [b, c, h, w] = [2, 3, 3, 5];
        let values: Vec<f32> = (0..b * c * h * w).map(|i| i as f32 * 0.5 - 7.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), [b, c, h, w]), &device)
            .require_grad();
        let up = upsample2(x.clone());
        assert_eq!(up.dims(), [b, c, 2 * h, 2 * w]);
        // A weight per output pixel, so that the gradient tells the four pixels of a block apart.
        let weights: Vec<f32> = (0..b * c * 4 * h * w)
            .map(|i| (i % 7) as f32 - 3.0)
            .collect();
        let weight = Tensor::<4>::from_data(
            TensorData::new(weights.clone(), [b, c, 2 * h, 2 * w]),
            &device,
        );
        let grads = (up.clone() * weight).sum().backward();
        let out = host_values::<f32, _>(up);
        let grad = host_values::<f32, _>(x.grad(&grads).unwrap());
        for plane in 0..b * c {
            for y in 0..2 * h {
                for xx in 0..2 * w {
                    let o = (plane * 2 * h + y) * 2 * w + xx;
                    assert_eq!(out[o], values[(plane * h + y / 2) * w + xx / 2]);
                }
            }
            for y in 0..h {
                for xx in 0..w {
                    let block: f32 = [(0, 0), (0, 1), (1, 0), (1, 1)]
                        .iter()
                        .map(|(dy, dx)| weights[(plane * 2 * h + 2 * y + dy) * 2 * w + 2 * xx + dx])
                        .sum();
                    assert_eq!(grad[(plane * h + y) * w + xx], block);
                }
            }
        }
    }

    #[test]
    fn broadcast_decoder_renders_each_state_of_a_batch_on_its_own() {
        let device = Device::flex();
        let decoder = BroadcastDecoderConfig::new(2, 32, 8).init(&device);
        let a = Tensor::<4>::from_data(TensorData::new(vec![0.5f32, -1.0], [1, 2, 1, 1]), &device);
        let b = Tensor::<4>::from_data(TensorData::new(vec![-2.0f32, 3.0], [1, 2, 1, 1]), &device);
        let both =
            host_values::<f32, _>(decoder.forward(Tensor::cat(vec![a.clone(), b.clone()], 0)));
        let (alone_a, alone_b) = (
            host_values::<f32, _>(decoder.forward(a)),
            host_values::<f32, _>(decoder.forward(b)),
        );
        assert_eq!(both.len(), 2 * 3 * 32 * 32);
        assert_eq!(&both[..alone_a.len()], &alone_a[..]);
        assert_eq!(&both[alone_a.len()..], &alone_b[..]);
        assert_ne!(alone_a, alone_b, "the image must depend on q");
        assert!(both.iter().all(|v| *v > 0.0 && *v < 1.0));
        // The pixel coordinates enter: a frame is not one colour everywhere.
        assert!(
            alone_a[..1024]
                .iter()
                .any(|v| (v - alone_a[0]).abs() > 1e-4)
        );
    }
}

//! The encoder q_φ(z | frames), the latent transform f_ψ(z) → (q, p), and the decoder q → frame,
//! in two layouts: DeepMind's `hgn_paper_config` (reference D1, §4.2) and the CampusAI/ReScience
//! one (§4.3), without CampusAI's ReLU on the transform's output (§5.5).

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::conv::Conv2d;
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::hamiltonian::sigmoid;
use super::layers::{Padding, conv, conv_flops, linear_flops};

/// Which published network layout to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// DeepMind's `hgn_paper_config`: strided encoder to a 4×4 latent, 5-conv f_ψ at 4×4, plain
    /// decoder with learned constant channels.
    #[default]
    Paper,
    /// CampusAI/ReScience: stride-1 encoder to a 48×32×32 latent, stride-2 f_ψ down to 4×4,
    /// residual decoder.
    CampusAi,
}

/// How the encoder takes its K inference frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum EncoderInput {
    /// All frames stacked along channels into the first convolution (DeepMind's encoder).
    #[default]
    Stacked,
    /// Each frame through the same convolutions alone, the frames combined by the last one
    /// ([`EncoderConfig::per_frame`]).
    PerFrame,
    /// As [`EncoderInput::PerFrame`], each frame with two more channels: its pixels' coordinates
    /// ([`EncoderConfig::coordinates`]; CoordConv, Liu et al. 2018).
    PerFrameCoords,
}

impl EncoderInput {
    /// Every choice, in the order `--help` lists them.
    pub const ALL: [EncoderInput; 3] = [
        EncoderInput::Stacked,
        EncoderInput::PerFrame,
        EncoderInput::PerFrameCoords,
    ];

    /// The name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EncoderInput::Stacked => "stacked",
            EncoderInput::PerFrame => "per-frame",
            EncoderInput::PerFrameCoords => "per-frame-coords",
        }
    }

    /// Whether each frame goes through the shared convolutions alone.
    pub fn per_frame(self) -> bool {
        self != EncoderInput::Stacked
    }
}

impl std::str::FromStr for EncoderInput {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Self> {
        EncoderInput::ALL
            .into_iter()
            .find(|e| e.name().eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                let known: Vec<&str> = EncoderInput::ALL.iter().map(|e| e.name()).collect();
                anyhow::anyhow!(
                    "unknown encoder input '{name}' (known: {})",
                    known.join(", ")
                )
            })
    }
}

/// Encoder layout. Paper: three blocks, each `conv k2 s2 VALID` then `conv k4 s1 SAME`, ReLU
/// between. CampusAI: eight stride-1 `k3` convs with ReLU, the last giving mean and log-scale
/// (CampusAI's two heads, concatenated).
#[derive(Config, Debug)]
pub struct EncoderConfig {
    /// Input channels: 3 × the number of inference frames.
    pub channels_in: usize,
    /// Image height and width (a multiple of 8).
    pub image_size: usize,
    /// Hidden channels (DeepMind: 64; the first conv has half).
    pub hidden: usize,
    /// Channels of the latent `z` (DeepMind: 32). The encoder outputs twice as many: mean and
    /// log-scale.
    pub z_channels: usize,
    /// Layout.
    #[config(default = "Architecture::Paper")]
    pub architecture: Architecture,
    /// `z` is a vector (`[batch, z_channels, 1, 1]`): the last conv gives `hidden` channels and a
    /// linear layer on the flattened map gives mean and log-scale (`paper` layout only).
    #[config(default = false)]
    pub vector: bool,
    /// Encode each frame alone: all but the last convolution run on every frame with shared
    /// weights (`channels_in / 3` frames of 3 channels), and the last one combines the frames'
    /// maps, stacked frame-major along channels (`paper` layout only).
    #[config(default = false)]
    pub per_frame: bool,
    /// With `per_frame`: each frame enters the first convolution with two more channels, its
    /// pixels' coordinates `(x, y) ∈ [−1, 1]²` (column, row), so that the convolutions can
    /// read where the objects are, not only their shape (CoordConv, Liu et al. 2018).
    #[config(default = false)]
    pub coordinates: bool,
}

impl EncoderConfig {
    /// Builds the encoder.
    pub fn init(&self, device: &Device) -> Encoder {
        let h = self.hidden;
        let s = self.image_size;
        if self.architecture == Architecture::CampusAi {
            let mut layers = vec![conv(
                self.channels_in,
                h / 2,
                3,
                1,
                Padding::Same,
                s,
                device,
            )];
            layers.push(conv(h / 2, h, 3, 1, Padding::Same, s, device));
            for _ in 0..5 {
                layers.push(conv(h, h, 3, 1, Padding::Same, s, device));
            }
            layers.push(conv(h, 2 * self.z_channels, 3, 1, Padding::Same, s, device));
            return Encoder {
                layers,
                head: None,
                per_frame: None,
                coordinates: false,
            };
        }
        let last = if self.vector { h } else { 2 * self.z_channels };
        let frames = self.channels_in / 3;
        let (first_in, last_in) = if self.per_frame {
            (if self.coordinates { 5 } else { 3 }, frames * h)
        } else {
            (self.channels_in, h)
        };
        let specs = [
            (first_in, h / 2, 2, 2, Padding::Valid, s),
            (h / 2, h, 4, 1, Padding::Same, s / 2),
            (h, h, 2, 2, Padding::Valid, s / 2),
            (h, h, 4, 1, Padding::Same, s / 4),
            (h, h, 2, 2, Padding::Valid, s / 4),
            (last_in, last, 4, 1, Padding::Same, s / 8),
        ];
        let layers = specs
            .iter()
            .map(|&(ci, co, k, st, pad, size)| conv(ci, co, k, st, pad, size, device))
            .collect();
        let head = self
            .vector
            .then(|| linear(h * (s / 8) * (s / 8), 2 * self.z_channels, device));
        Encoder {
            layers,
            head,
            per_frame: self.per_frame.then_some(frames),
            coordinates: self.per_frame && self.coordinates,
        }
    }
}

/// A linear layer with the convolutions' initialisation (normal, variance 1/fan-in, zero bias).
fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: (d_in as f64).powf(-0.5),
        })
        .init(device)
}

/// q_φ(z | x): stacked frames to the mean and log-scale of a diagonal Gaussian over `z`.
#[derive(Module, Debug)]
pub struct Encoder {
    /// Six convolutions (paper layout) or eight (CampusAI), ReLU between.
    pub layers: Vec<Conv2d>,
    /// Linear layer to a vector `z` (ReLU before it), for a vector latent.
    pub head: Option<Linear>,
    /// `Some(K)`: the layers before the last run on each of the K frames alone
    /// ([`EncoderConfig::per_frame`]).
    #[module(skip)]
    pub per_frame: Option<usize>,
    /// Each frame gets two coordinate channels before the first layer
    /// ([`EncoderConfig::coordinates`]; with `per_frame` only).
    #[module(skip)]
    pub coordinates: bool,
}

impl Encoder {
    /// # Shapes
    /// - `x`: `[batch, 3·K, S, S]`, frames stacked frame-major along channels
    /// - returns: (mean, log-scale), each `[batch, z_channels, S/8, S/8]` (`[batch, z_channels,
    ///   1, 1]` for a vector latent)
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let last = self.layers.len() - 1;
        let mut h = x;
        if let Some(k) = self.per_frame {
            let [b, c, height, width] = h.dims();
            h = h.reshape([b * k, c / k, height, width]);
            if self.coordinates {
                // [1, s·s, 2] → [b·K, 2, s, s]: channel 0 the column's x, channel 1 the row's y.
                let grid = pixel_grid(height, &h.device())
                    .swap_dims(1, 2)
                    .reshape([1, 2, height, width])
                    .expand([b * k, 2, height, width]);
                h = Tensor::cat(vec![h, grid], 1);
            }
        }
        for (i, layer) in self.layers.iter().enumerate() {
            if i == last
                && let Some(k) = self.per_frame
            {
                // [batch·K, C, s, s] → [batch, K·C, s, s], frame-major like the input.
                let [bk, c, height, width] = h.dims();
                h = h.reshape([bk / k, k * c, height, width]);
            }
            h = layer.forward(h);
            if i < last || self.head.is_some() {
                h = relu(h);
            }
        }
        if let Some(head) = &self.head {
            let [b, c, hh, w] = h.dims();
            let out = head.forward(h.reshape([b, c * hh * w]));
            let n = out.dims()[1];
            h = out.reshape([b, n, 1, 1]);
        }
        let z_channels = h.dims()[1] / 2;
        let mut halves = h.split(z_channels, 1);
        let log_scale = halves.pop().expect("two halves");
        let mean = halves.pop().expect("two halves");
        (mean, log_scale)
    }

    /// Floating-point operations of [`Self::forward`] on `batch` sequences of `image_size`²
    /// frames ([`conv_flops`]), and the spatial size of `z`.
    pub fn flops(&self, batch: usize, image_size: usize) -> (f64, usize) {
        let last = self.layers.len() - 1;
        let frames = self.per_frame.unwrap_or(1);
        let mut hw = [image_size, image_size];
        let mut total = 0.0;
        for (i, layer) in self.layers.iter().enumerate() {
            let images = if i == last { batch } else { batch * frames };
            let (flops, out) = conv_flops(layer, hw);
            total += images as f64 * flops;
            hw = out;
        }
        match &self.head {
            Some(head) => (total + linear_flops(head, batch), 1),
            None => (total, hw[0]),
        }
    }
}

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

/// Leaky ReLU `max(x, a·x)` for `0 ≤ a ≤ 1`, written as `(1 − a)·relu(x) + a·x`: the function
/// of burn's `leaky_relu` without its comparison and select (`docs/performance.md` has the
/// timing).
pub fn leaky<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    relu(x.clone()).mul_scalar(1.0 - slope) + x.mul_scalar(slope)
}

/// Pixel centres in `[−1, 1]`, row-major, `[1, s·s, 2]`: `(x, y)` = (column, row).
fn pixel_grid(s: usize, device: &Device) -> Tensor<3> {
    let at = |i: usize| {
        if s == 1 {
            0.0
        } else {
            -1.0 + 2.0 * i as f32 / (s - 1) as f32
        }
    };
    let values: Vec<f32> = (0..s * s).flat_map(|k| [at(k % s), at(k / s)]).collect();
    Tensor::from_data(TensorData::new(values, [1, s * s, 2]), device)
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
    fn leaky_is_burns_leaky_relu_in_value_and_gradient() {
        let device = Device::flex().autodiff();
        let values = vec![-3.0f32, -0.5, -1e-3, 0.0, 1e-3, 0.5, 3.0];
        let n = values.len();
        for slope in [0.01, 0.2] {
            let x = Tensor::<1>::from_data(TensorData::new(values.clone(), [n]), &device)
                .require_grad();
            let ours = leaky(x.clone(), slope);
            let grads = ours.clone().sum().backward();
            let our_grad = host_values::<f32, _>(x.grad(&grads).unwrap());
            let x2 = Tensor::<1>::from_data(TensorData::new(values.clone(), [n]), &device)
                .require_grad();
            let theirs = burn::tensor::activation::leaky_relu(x2.clone(), slope);
            let grads = theirs.clone().sum().backward();
            let their_grad = host_values::<f32, _>(x2.grad(&grads).unwrap());
            for (a, b) in host_values::<f32, _>(ours)
                .iter()
                .zip(host_values::<f32, _>(theirs))
            {
                assert!((a - b).abs() <= 1e-7, "slope {slope}: {a} vs {b}");
            }
            // Away from the kink at 0, where the two may pick different one-sided slopes.
            for (i, (a, b)) in our_grad.iter().zip(their_grad).enumerate() {
                if values[i] != 0.0 {
                    assert!(
                        (a - b).abs() <= 1e-7,
                        "slope {slope} at {}: {a} vs {b}",
                        values[i]
                    );
                }
            }
        }
    }

    #[test]
    fn per_frame_encoder_shares_its_weights_over_frames_and_keeps_sequences_apart() {
        let device = Device::flex();
        let (k, s) = (3, 16);
        // Coordinate planes by their definition: channel 0 the column's x, channel 1 the row's y,
        // pixel centres from −1 to 1.
        let at = |i: usize| -1.0 + 2.0 * i as f32 / (s - 1) as f32;
        let planes: Vec<f32> = (0..2)
            .flat_map(|c| (0..s * s).map(move |p| if c == 0 { p % s } else { p / s }))
            .map(at)
            .collect();
        let planes = Tensor::<4>::from_data(TensorData::new(planes, [1, 2, s, s]), &device);
        for (vector, coordinates) in [(false, false), (true, false), (false, true), (true, true)] {
            let encoder = EncoderConfig::new(3 * k, s, 8, 6)
                .with_vector(vector)
                .with_per_frame(true)
                .with_coordinates(coordinates)
                .init(&device);
            assert_eq!(encoder.per_frame, Some(k));
            assert_eq!(
                encoder.layers[0].weight.dims()[1],
                3 + 2 * coordinates as usize
            );
            let n = 3 * k * s * s;
            let pixels = |seed: usize| -> Vec<f32> {
                (0..n)
                    .map(|i| ((i * 7919 + seed * 104_729) % 997) as f32 / 997.0)
                    .collect()
            };
            let x =
                |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [1, 3 * k, s, s]), &device);
            let (one, other) = (pixels(1), pixels(2));
            // By hand: the shared layers on each frame alone (its coordinate planes beside it),
            // the maps stacked frame-major, the last layer (and the vector head) on the stack.
            let last = encoder.layers.len() - 1;
            let maps: Vec<Tensor<4>> = (0..k)
                .map(|f| {
                    let mut frame = x(one.clone()).narrow(1, 3 * f, 3);
                    if coordinates {
                        frame = Tensor::cat(vec![frame, planes.clone()], 1);
                    }
                    encoder.layers[..last]
                        .iter()
                        .fold(frame, |h, layer| relu(layer.forward(h)))
                })
                .collect();
            let mut h = encoder.layers[last].forward(Tensor::cat(maps, 1));
            if let Some(head) = &encoder.head {
                let [b, c, hh, w] = h.dims();
                let out = head.forward(relu(h).reshape([b, c * hh * w]));
                let d = out.dims()[1];
                h = out.reshape([b, d, 1, 1]);
            }
            let (mean, log_scale) = encoder.forward(x(one.clone()));
            let by_hand = host_values::<f32, _>(h);
            let ours = [
                host_values::<f32, _>(mean.clone()),
                host_values::<f32, _>(log_scale.clone()),
            ]
            .concat();
            assert_eq!(ours.len(), by_hand.len());
            for (a, b) in ours.iter().zip(&by_hand) {
                assert!(
                    (a - b).abs() <= 1e-5,
                    "vector {vector}, coordinates {coordinates}: {a} vs {b}"
                );
            }
            // Two sequences in one batch come out as each alone.
            let both = Tensor::cat(vec![x(one.clone()), x(other.clone())], 0);
            let (mean_both, _) = encoder.forward(both);
            let (mean_other, _) = encoder.forward(x(other));
            let half = host_values::<f32, _>(mean.clone()).len();
            let together = host_values::<f32, _>(mean_both);
            assert_eq!(together.len(), 2 * half);
            for (a, b) in together[..half].iter().zip(host_values::<f32, _>(mean)) {
                assert!((a - b).abs() <= 1e-6);
            }
            for (a, b) in together[half..]
                .iter()
                .zip(host_values::<f32, _>(mean_other))
            {
                assert!((a - b).abs() <= 1e-6);
            }
        }
    }

    #[test]
    fn pixel_grid_runs_x_along_columns_and_y_along_rows() {
        let grid = host_values::<f32, _>(pixel_grid(3, &Device::flex()));
        let xs: Vec<f32> = grid.iter().step_by(2).copied().collect();
        let ys: Vec<f32> = grid.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(xs, [-1., 0., 1., -1., 0., 1., -1., 0., 1.]);
        assert_eq!(ys, [-1., -1., -1., 0., 0., 0., 1., 1., 1.]);
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

//! The encoder q_φ(z | frames): DeepMind's stacked layout, the per-frame variant and CampusAI's.

use burn::config::Config;
use burn::module::Module;
use burn::nn::Linear;
use burn::nn::conv::Conv2d;
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{Architecture, linear, pixel_grid};
use crate::model::layers::{Padding, conv, conv_flops, linear_flops};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::host_values;
    use burn::tensor::TensorData;

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
}

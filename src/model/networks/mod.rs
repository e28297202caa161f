//! The encoder q_φ(z | frames), the latent transform f_ψ(z) → (q, p), and the decoder q → frame,
//! in two layouts: DeepMind's `hgn_paper_config` (reference D1, §4.2) and the CampusAI/ReScience
//! one (§4.3), without CampusAI's ReLU on the transform's output (§5.5).
//!
//! `encoder.rs`, `transform.rs` and `decoder.rs` hold one network each; this module holds the
//! pieces they share (the layout, the dense layer's initialisation, the leaky ReLU and the pixel
//! grid).

mod decoder;
mod encoder;
mod transform;

pub use decoder::{
    BroadcastDecoder, BroadcastDecoderConfig, Decoder, DecoderConfig, ResidualDecoder, upsample2,
};
pub use encoder::{Encoder, EncoderConfig, EncoderInput};
pub use transform::{Transform, TransformConfig};

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

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

/// A linear layer with the convolutions' initialisation (normal, variance 1/fan-in, zero bias).
fn linear(d_in: usize, d_out: usize, device: &Device) -> Linear {
    LinearConfig::new(d_in, d_out)
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: (d_in as f64).powf(-0.5),
        })
        .init(device)
}

/// Leaky ReLU `max(x, a·x)` for `0 ≤ a ≤ 1`: burn's `leaky_relu`, whose backward (patched
/// burn-autodiff, `patches/README.md`) is one pass, `g` where `x > 0` and `a·g` elsewhere.
pub fn leaky<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    burn::tensor::activation::leaky_relu(x, slope)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::host_values;

    #[test]
    fn leaky_has_the_value_and_gradient_of_max_x_ax() {
        let device = Device::flex().autodiff();
        let values = vec![-3.0f32, -0.5, -1e-3, 0.0, 1e-3, 0.5, 3.0];
        let n = values.len();
        for slope in [0.01f32, 0.2] {
            let x = Tensor::<1>::from_data(TensorData::new(values.clone(), [n]), &device)
                .require_grad();
            let y = leaky(x.clone(), slope as f64);
            // Weights per element, so each gradient is told apart from its neighbours'.
            let w: Vec<f32> = (1..=n).map(|k| k as f32).collect();
            let weights = Tensor::<1>::from_data(TensorData::new(w.clone(), [n]), &device);
            let grads = (y.clone() * weights).sum().backward();
            let grad = host_values::<f32, _>(x.grad(&grads).unwrap());
            for (i, (&v, &out)) in values.iter().zip(&host_values::<f32, _>(y)).enumerate() {
                assert_eq!(out, v.max(slope * v), "slope {slope} at {v}");
                // As PyTorch: the slope's side includes 0.
                let expected = if v > 0.0 { w[i] } else { slope * w[i] };
                assert_eq!(grad[i], expected, "slope {slope}: gradient at {v}");
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
}

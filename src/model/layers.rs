//! Convolution helpers shared by the networks: TF/Haiku padding rules and the conv adjoint.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, PaddingConfig2d};
use burn::tensor::module::conv_transpose2d;
use burn::tensor::ops::{ConvTransposeOptions, PadMode};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

/// Padding modes: TF/Haiku's (DeepMind's networks are written with them) and PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Padding {
    /// Output size `ceil(n / stride)`; for even kernels the extra zero goes after (right/bottom).
    Same,
    /// No padding.
    Valid,
    /// PyTorch-style `padding = n` on both sides (CampusAI's stride-2 convs).
    Symmetric(usize),
}

impl Padding {
    /// `(before, after)` zero padding of one spatial axis of size `n`.
    pub fn pads(self, n: usize, kernel: usize, stride: usize) -> (usize, usize) {
        match self {
            Padding::Valid => (0, 0),
            Padding::Symmetric(n) => (n, n),
            Padding::Same => {
                let out = n.div_ceil(stride);
                let total = ((out - 1) * stride + kernel).saturating_sub(n);
                (total / 2, total - total / 2)
            }
        }
    }

    /// Output size of one axis.
    pub fn output_size(self, n: usize, kernel: usize, stride: usize) -> usize {
        let (before, after) = self.pads(n, kernel, stride);
        (n + before + after - kernel) / stride + 1
    }
}

/// A square convolution with TF padding resolved for a known input size.
///
/// burn's [`Conv2d`] takes explicit `(top, left, bottom, right)` padding, which this fixes at
/// construction from the input size, so the adjoint below knows exactly what the forward did.
/// Weights use Haiku's default initialisation: truncated normal with variance 1/fan-in
/// (approximated by a normal), zero bias.
pub fn conv(
    channels_in: usize,
    channels_out: usize,
    kernel: usize,
    stride: usize,
    padding: Padding,
    input_size: usize,
    device: &Device,
) -> Conv2d {
    let (before, after) = padding.pads(input_size, kernel, stride);
    let fan_in = (channels_in * kernel * kernel) as f64;
    Conv2dConfig::new([channels_in, channels_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(before, before, after, after))
        .with_initializer(Initializer::Normal {
            mean: 0.0,
            std: fan_in.powf(-0.5),
        })
        .init(device)
}

/// The `(before, after)` padding a [`Conv2d`] built by [`conv`] applies to each axis.
fn explicit_pads(layer: &Conv2d) -> ((usize, usize), (usize, usize)) {
    match layer.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => ((top, bottom), (left, right)),
        PaddingConfig2d::Valid => ((0, 0), (0, 0)),
        PaddingConfig2d::Same => {
            panic!("conv_adjoint needs explicit padding; build layers with `conv`")
        }
    }
}

/// Floating-point operations of one image through `layer` (2 per multiply–add:
/// `2 · C_out · C_in/groups · k_h · k_w · H_out · W_out`; the bias is not counted), and the
/// output's spatial size, for an input of spatial size `input_hw`. The adjoint
/// ([`conv_adjoint`]) and each of the two gradients of a training step cost the same.
pub fn conv_flops(layer: &Conv2d, input_hw: [usize; 2]) -> (f64, [usize; 2]) {
    let [out, inp, kh, kw] = layer.weight.dims();
    let pads = explicit_pads(layer);
    let side = |n: usize, (before, after): (usize, usize), k: usize, axis: usize| {
        (n + before + after - layer.dilation[axis] * (k - 1) - 1) / layer.stride[axis] + 1
    };
    let hw = [
        side(input_hw[0], pads.0, kh, 0),
        side(input_hw[1], pads.1, kw, 1),
    ];
    let flops = 2.0 * (out * inp * kh * kw) as f64 * (hw[0] * hw[1]) as f64;
    (flops, hw)
}

/// Floating-point operations of `rows` input rows through `layer` (`2 · d_in · d_out` each).
pub fn linear_flops(layer: &Linear, rows: usize) -> f64 {
    let [d_in, d_out] = layer.weight.dims();
    2.0 * (d_in * d_out * rows) as f64
}

/// The adjoint (vector–Jacobian product) of `layer` with respect to its input: given
/// `grad_out = ∂L/∂y` for `y = layer(x)`, returns `∂L/∂x`, for an input of spatial size
/// `input_hw`. The bias does not enter.
///
/// `conv_transpose2d` with the same weights and stride and no padding maps `grad_out` back onto
/// the zero-padded input; positions the forward never read get zeros, and the padding is cropped.
/// Every step is a differentiable tensor op, so the result can itself be backpropagated.
///
/// # Shapes
/// - `grad_out`: `[batch, channels_out, h_out, w_out]`
/// - returns: `[batch, channels_in, input_hw[0], input_hw[1]]`
pub fn conv_adjoint(layer: &Conv2d, grad_out: Tensor<4>, input_hw: [usize; 2]) -> Tensor<4> {
    let ((top, bottom), (left, right)) = explicit_pads(layer);
    let stride = layer.stride;
    let raw = conv_transpose2d(
        grad_out,
        layer.weight.val(),
        None,
        ConvTransposeOptions::new(stride, [0, 0], [0, 0], layer.dilation, layer.groups),
    );
    let [batch, channels, raw_h, raw_w] = raw.dims();
    let full_h = input_hw[0] + top + bottom;
    let full_w = input_hw[1] + left + right;
    let raw = if raw_h < full_h || raw_w < full_w {
        raw.pad(
            [(0, full_h - raw_h), (0, full_w - raw_w)],
            PadMode::Constant(0.0),
        )
    } else {
        raw
    };
    raw.slice([
        0..batch,
        0..channels,
        top..top + input_hw[0],
        left..left + input_hw[1],
    ])
}

//! Weight gradients of 2-D convolutions and transposed convolutions as matrix products over a
//! column buffer.
//!
//! burn's default `conv2d_weight_backward` computes the gradient as a convolution whose output
//! is the kernel itself: `channels_out` output channels of `kernel_h × kernel_w` pixels, a shape
//! on which the forward convolution's GEMM runs many calls on products a few rows tall. Here the
//! gradient is one GEMM per chunk of the batch:
//!
//! `dW[m, c, i, j] = Σ_{b, oh, ow} g[b, m, oh, ow] · x[b, c, oh·s_h + i·d_h − p_h, ow·s_w + j·d_w − p_w]`
//!
//! with the summed index `(b, oh, ow)` outermost in both operands, as the GEMM packs them: `g`
//! as a `[batch · oh · ow, m]` matrix and `x` unrolled into an im2col matrix, a row per
//! `(b, oh, ow)` and a column per `(i, j, c)`, filled from `x` laid out channels last by copies
//! of `c` values. Positions in the padding read 0. For few input channels those copies are too
//! short to pay, and burn's default is kept ([`MIN_CHANNELS`]).
//!
//! A transposed convolution `y = conv_transpose(x, W)` is the adjoint of a convolution with the
//! roles swapped, so its weight gradient is the same sum with its output gradient in the place
//! of `x` and its input in the place of `g`:
//! `dW[c, m, i, j] = Σ x[b, c, ih, iw] · g[b, m, ih·s_h + i·d_h − p_h, iw·s_w + j·d_w − p_w]`.

use alloc::vec;
use alloc::vec::Vec;

use burn_backend::DType;
use burn_backend::ops::{ConvOptions, ConvTransposeOptions, FloatTensorOps, ModuleOps};
use burn_std::{Bytes, Shape, Slice, bf16, f16};

use crate::ops::module::{cast_from_f32, cast_to_f32};
use crate::{Flex, FlexTensor, Layout};

/// Column-buffer elements per GEMM: the batch is split into chunks no larger than this (or one
/// batch item, if that is larger).
const CHUNK_ELEMENTS: usize = 1 << 22;

/// `(m, n, k)` products at least this large run on every thread (as in `matmul.rs`).
#[cfg(feature = "rayon")]
const PARALLEL_THRESHOLD: usize = 192 * 192 * 192;

/// The element types this module (and `shifted`) computes in.
pub(crate) trait WeightGradScalar:
    burn_backend::Element + burn_backend::ElementAdd + bytemuck::Pod + Copy + Send + Sync + 'static
{
    const ZERO: Self;
    const ONE: Self;
}

impl WeightGradScalar for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl WeightGradScalar for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// Geometry of one weight gradient: the tensor read through the kernel (`x`, `[batch, c, h, w]`)
/// and the one it is contracted with (`g`, `[batch, m, oh, ow]`), in `groups` groups.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    c: usize,
    h: usize,
    w: usize,
    m: usize,
    oh: usize,
    ow: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
}

/// Input channels (per group) from which the GEMM over the column buffer is used. Below, each
/// kernel position's copy into the buffer is too short to pay, and burn's default is kept: a
/// convolution of the input, batch and channels swapped, by the output's gradient.
const MIN_CHANNELS: usize = 32;

/// `conv2d_weight_backward` of the backend: [`conv2d_weight_grad`], or for few input channels
/// (ungrouped, symmetric padding) burn's default.
pub(crate) fn conv2d_weight_backward(
    x: FlexTensor,
    weight_shape: &Shape,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    if options.groups == 1 && !options.is_asymmetric() && x.layout().shape()[1] < MIN_CHANNELS {
        let options =
            ConvOptions::new(options.dilation, options.padding_begin(), options.stride, 1);
        return swapped_convolution(x, output_grad, weight_shape, options);
    }
    conv2d_weight_grad(x, weight_shape, output_grad, options)
}

/// `conv_transpose2d_weight_backward` of the backend: [`conv_transpose2d_weight_grad`], or for
/// few output channels (ungrouped) burn's default.
pub(crate) fn conv_transpose2d_weight_backward(
    x: FlexTensor,
    weight_shape: &Shape,
    output_grad: FlexTensor,
    options: &ConvTransposeOptions<2>,
) -> FlexTensor {
    if options.groups == 1 && output_grad.layout().shape()[1] < MIN_CHANNELS {
        let options = ConvOptions::new(options.dilation, options.padding, options.stride, 1);
        return swapped_convolution(output_grad, x, weight_shape, options);
    }
    conv_transpose2d_weight_grad(x, weight_shape, output_grad, options)
}

/// burn's default weight gradient (`burn_backend::ops::conv`, `*_weight_grad_no_groups`):
/// `read` (`[batch, c, h, w]`) convolved, batch and channels swapped, by `kernel`
/// (`[batch, m, oh, ow]`) at the kernel's dilation as stride and stride as dilation, cut to
/// `weight_shape` (`[m, c, kh, kw]`).
fn swapped_convolution(
    read: FlexTensor,
    kernel: FlexTensor,
    weight_shape: &Shape,
    options: ConvOptions<2>,
) -> FlexTensor {
    let read = Flex::float_swap_dims(read, 0, 1);
    let kernel = Flex::float_swap_dims(kernel, 0, 1);
    let grad = Flex::float_swap_dims(Flex::conv2d(read, kernel, None, options), 0, 1);
    if grad.layout().shape() == weight_shape {
        return grad;
    }
    let slices: Vec<Slice> = (0..4).map(|d| Slice::from(0..weight_shape[d])).collect();
    Flex::float_slice(grad, &slices)
}

/// The gradient of `conv2d(x, weight, options)` with respect to `weight`, given the output's
/// gradient: `[channels_out, channels_in / groups, kernel_h, kernel_w]`.
pub(crate) fn conv2d_weight_grad(
    x: FlexTensor,
    weight_shape: &Shape,
    output_grad: FlexTensor,
    options: &ConvOptions<2>,
) -> FlexTensor {
    let geometry = Geometry::new(
        &x,
        &output_grad,
        weight_shape,
        [options.stride, options.padding_begin(), options.dilation],
        options.groups,
    );
    compute(x, output_grad, geometry)
}

/// The gradient of `conv_transpose2d(x, weight, options)` with respect to `weight`, given the
/// output's gradient: `[channels_in, channels_out / groups, kernel_h, kernel_w]`.
pub(crate) fn conv_transpose2d_weight_grad(
    x: FlexTensor,
    weight_shape: &Shape,
    output_grad: FlexTensor,
    options: &ConvTransposeOptions<2>,
) -> FlexTensor {
    let geometry = Geometry::new(
        &output_grad,
        &x,
        weight_shape,
        [options.stride, options.padding, options.dilation],
        options.groups,
    );
    compute(output_grad, x, geometry)
}

impl Geometry {
    /// The geometry of `read` (`[batch, c, h, w]`) contracted with `contracted` (`[batch, m, oh,
    /// ow]`) through a kernel of `weight_shape`'s last two sizes, at `[stride, padding,
    /// dilation]`.
    fn new(
        read: &FlexTensor,
        contracted: &FlexTensor,
        weight_shape: &Shape,
        [stride, padding, dilation]: [[usize; 2]; 3],
        groups: usize,
    ) -> Self {
        let [batch, c, h, w] = dims4(read);
        let [_, m, oh, ow] = dims4(contracted);
        Geometry {
            batch,
            c,
            h,
            w,
            m,
            oh,
            ow,
            kernel: [weight_shape[2], weight_shape[3]],
            stride,
            padding,
            dilation,
            groups,
        }
    }
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// f32 and f64 natively; the half types through f32, as the forward convolutions.
fn compute(x: FlexTensor, g: FlexTensor, geo: Geometry) -> FlexTensor {
    let dtype = x.dtype();
    assert_eq!(g.dtype(), dtype, "conv weight gradient: dtype mismatch");
    let (x, g) = (x.to_contiguous(), g.to_contiguous());
    let shape = Shape::new([geo.m, geo.c / geo.groups, geo.kernel[0], geo.kernel[1]]);
    let bytes = match dtype {
        DType::F32 => Bytes::from_elems(weight_grad::<f32>(x.storage(), g.storage(), geo)),
        DType::F64 => Bytes::from_elems(weight_grad::<f64>(x.storage(), g.storage(), geo)),
        DType::F16 => return through_f32(x, g, geo, f16::to_f32, f16::from_f32),
        DType::BF16 => return through_f32(x, g, geo, bf16::to_f32, bf16::from_f32),
        dtype => panic!("conv weight gradient: unsupported dtype {dtype:?}"),
    };
    FlexTensor::new(bytes, Layout::contiguous(shape), dtype)
}

/// [`compute`] of a half-precision pair in f32, the result cast back.
fn through_f32<H: burn_backend::Element + bytemuck::Pod + Copy>(
    x: FlexTensor,
    g: FlexTensor,
    geo: Geometry,
    to: fn(H) -> f32,
    from: fn(f32) -> H,
) -> FlexTensor {
    let grad = compute(cast_to_f32(x, to), cast_to_f32(g, to), geo);
    cast_from_f32(grad, from)
}

/// `dW` (`[m, c / groups, kh, kw]`, row-major) of the module's equation, on contiguous slices.
fn weight_grad<T: WeightGradScalar>(x: &[T], g: &[T], geo: Geometry) -> Vec<T> {
    let Geometry {
        batch,
        c,
        h,
        w,
        m,
        oh,
        ow,
        kernel: [kh, kw],
        groups,
        ..
    } = geo;
    let spatial = oh * ow;
    let (c_group, m_group) = (c / groups, m / groups);
    let rows = c_group * kh * kw;
    // dW with its columns in the buffer's (i, j, c) order.
    let mut out = vec![T::ZERO; m * rows];
    if batch == 0 || spatial == 0 || rows == 0 || m == 0 {
        return out;
    }
    // Both operands with the summed index (b, oh, ow) outermost, as the GEMM packs them:
    // g as [batch · oh · ow, m] and x as [batch, h, w, c].
    let g_t = channels_last(g, batch, m, spatial);
    let x_t = channels_last(x, batch, c, h * w);
    let chunk = (CHUNK_ELEMENTS / (rows * spatial)).clamp(1, batch);
    let mut cols = vec![T::ZERO; rows * chunk * spatial];
    for group in 0..groups {
        for (index, first) in (0..batch).step_by(chunk).enumerate() {
            let items = chunk.min(batch - first);
            let k = items * spatial;
            let cols = &mut cols[..rows * k];
            fill_columns(&x_t, cols, geo, group * c_group, first, items);
            let lhs = &g_t[first * spatial * m + group * m_group..];
            let dst = &mut out[group * m_group * rows..(group + 1) * m_group * rows];
            // dst[m_group, rows] (+)= gᵀ[m_group, k] · cols[k, rows]
            unsafe {
                gemm::gemm(
                    m_group,
                    rows,
                    k,
                    dst.as_mut_ptr(),
                    1,
                    rows as isize,
                    index > 0,
                    lhs.as_ptr(),
                    m as isize,
                    1,
                    cols.as_ptr(),
                    1,
                    rows as isize,
                    T::ONE,
                    T::ONE,
                    false,
                    false,
                    false,
                    parallelism(m_group, rows, k),
                );
            }
        }
    }
    // (i, j, c) → (c, i, j) within each output channel's row.
    let mut grad = vec![T::ZERO; m * rows];
    for (src, dst) in out.chunks(rows).zip(grad.chunks_mut(rows)) {
        for ij in 0..kh * kw {
            for cl in 0..c_group {
                dst[cl * kh * kw + ij] = src[ij * c_group + cl];
            }
        }
    }
    grad
}

/// `[batch, channels, n]` → `[batch, n, channels]`.
fn channels_last<T: WeightGradScalar>(t: &[T], batch: usize, channels: usize, n: usize) -> Vec<T> {
    let mut out = vec![T::ZERO; t.len()];
    for (src, dst) in t
        .chunks(channels * n)
        .zip(out.chunks_mut(channels * n))
        .take(batch)
    {
        // Blocks of 16 × 16 keep both sides in cache.
        for c0 in (0..channels).step_by(16) {
            for i0 in (0..n).step_by(16) {
                for ch in c0..(c0 + 16).min(channels) {
                    for i in i0..(i0 + 16).min(n) {
                        dst[i * channels + ch] = src[ch * n + i];
                    }
                }
            }
        }
    }
    out
}

fn parallelism(m: usize, n: usize, k: usize) -> gemm::Parallelism {
    #[cfg(feature = "rayon")]
    if m.saturating_mul(n).saturating_mul(k) >= PARALLEL_THRESHOLD {
        return gemm::Parallelism::Rayon(0);
    }
    let _ = (m, n, k);
    gemm::Parallelism::None
}

/// Writes the im2col matrix of channels `c0..c0 + c / groups` of batch items
/// `first..first + items` into `cols` (`[items · oh · ow, kh · kw · c / groups]`, a row per
/// output position, its columns in (i, j, c) order), reading `x_t` (`[batch, h, w, c]`).
/// Positions in the padding read 0.
fn fill_columns<T: WeightGradScalar>(
    x_t: &[T],
    cols: &mut [T],
    geo: Geometry,
    c0: usize,
    first: usize,
    items: usize,
) {
    let [kh, kw] = geo.kernel;
    let [sh, sw] = geo.stride;
    let [ph, pw] = geo.padding;
    let [dh, dw] = geo.dilation;
    let c_group = geo.c / geo.groups;
    let rows = kh * kw * c_group;
    // One output row (oh) of one batch item per task.
    let fill = |task: usize, dst: &mut [T]| {
        let (item, r) = (task / geo.oh, task % geo.oh);
        let image = &x_t[(first + item) * geo.h * geo.w * geo.c..][..geo.h * geo.w * geo.c];
        for (q, dst) in dst.chunks_mut(rows).enumerate() {
            for i in 0..kh {
                let ih = (r * sh + i * dh) as isize - ph as isize;
                for j in 0..kw {
                    let iw = (q * sw + j * dw) as isize - pw as isize;
                    let dst = &mut dst[(i * kw + j) * c_group..][..c_group];
                    if ih < 0 || ih >= geo.h as isize || iw < 0 || iw >= geo.w as isize {
                        dst.fill(T::ZERO);
                    } else {
                        let at = (ih as usize * geo.w + iw as usize) * geo.c + c0;
                        dst.copy_from_slice(&image[at..at + c_group]);
                    }
                }
            }
        }
    };
    let task_len = geo.ow * rows;
    #[cfg(feature = "rayon")]
    if cols.len() >= 1 << 16 {
        use rayon::prelude::*;
        cols[..items * geo.oh * task_len]
            .par_chunks_mut(task_len)
            .enumerate()
            .for_each(|(task, dst)| fill(task, dst));
        return;
    }
    for (task, dst) in cols[..items * geo.oh * task_len]
        .chunks_mut(task_len)
        .enumerate()
    {
        fill(task, dst);
    }
}

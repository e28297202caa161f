//! Stride-1 2-D convolutions, their transposes and their weight gradients as sums of shifted
//! matrix products, without an im2col buffer.
//!
//! With the input zero-padded into a buffer laid out `[c, images, hp, wp]` (channel-major, each
//! image's padded rows one after the other), the input pixel that kernel position `(i, j)`
//! reads for the output at padded-grid position `p = (image, y, x)` sits at `p + i·dh·wp +
//! j·dw` in every channel's row. The zero rows and columns between two images or two rows
//! serve as the bottom (right) padding of the one and the top (left) padding of the next, so
//! a `3 × 3` "same" convolution of `32 × 32` images has `hp = wp = 33`, not 34. So, over a
//! whole chunk of images at once,
//!
//! `out[m, p] = Σ_{i, j} W_ij[m, c] · xp[c, p + i·dh·wp + j·dw]`
//!
//! is `kh · kw` products of the `[m, c]` weight slice by a `[c, n]` matrix read straight from the
//! padded buffer at a shifted offset, accumulated into one `[m, n]` result; the outputs at the
//! grid's rows past `oh` and columns past `ow` of each image are computed and dropped (`hp·wp /
//! (oh·ow)` times the work of the valid outputs, see [`MAX_WASTE`]). The
//! weight gradient is the same sum read the other way,
//!
//! `dW_ij[m, c] = Σ_p g[m, p] · xp[c, p + i·dh·wp + j·dw]`,
//!
//! with `g` placed on the padded grid (zero at the dropped positions), and a stride-1 transposed
//! convolution is the convolution by the flipped kernel with its two channel axes swapped, at
//! padding `d·(k − 1) − p`. The buffers hold a chunk of images of about [`CHUNK_ELEMENTS`]
//! elements; chunks run in parallel.

use alloc::vec;
use alloc::vec::Vec;

use burn_backend::DType;
use burn_backend::ops::{ConvOptions, ConvTransposeOptions};
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

// The element types computed here: f32 and f64, those `gemm` multiplies natively.
use super::weight_grad::WeightGradScalar as Scalar;
use super::winograd::{self, Real};
use super::{unwritten, written};

/// Padded-buffer elements per chunk of images (at least one image per chunk).
const CHUNK_ELEMENTS: usize = 1 << 19;

/// Rows of the padded buffers and of the output grid are a multiple of this many elements
/// long (64 bytes of f32): `gemm` reads an operand in place, without packing it, only when its
/// vector dimension is a multiple of its vector width.
const ALIGN: usize = 16;

/// Output channels per matrix product: `gemm` reads the padded buffer in place, without
/// copying it into its packed layout, when the product has at most 48 of them.
const ROW_BLOCK: usize = 48;

/// Weight gradients with at least this many output channels read the input channels last.
const MIN_ROWS_CHANNELS_LAST: usize = 16;

/// The padded grid may hold at most this many times the valid outputs; beyond (small images with
/// wide kernels), the work spent on dropped positions outweighs the copies saved, and the
/// backend's other paths are used.
const MAX_WASTE: f64 = 1.6;

/// A stride-1, ungrouped 2-D convolution of `[batch, c, h, w]` by `[m, c, kh, kw]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub batch: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub m: usize,
    pub kernel: [usize; 2],
    /// Zeros before the first row and column.
    pub pad_begin: [usize; 2],
    /// Zeros after the last row and column.
    pub pad_end: [usize; 2],
    pub dilation: [usize; 2],
}

impl Geometry {
    /// Height and width of an image's slot in the padded buffer: its rows and columns, then
    /// zero rows and columns that serve as this image's bottom and right padding and as the
    /// next row's or image's top and left padding, so at least `max(begin, end)` of them, and
    /// enough for the output to fit in the slot.
    fn padded(&self) -> [usize; 2] {
        let zeros = |axis: usize| {
            let (begin, end) = (self.pad_begin[axis], self.pad_end[axis]);
            let span = self.dilation[axis] * (self.kernel[axis] - 1);
            begin.max(end).max((begin + end).saturating_sub(span))
        };
        [self.h + zeros(0), self.w + zeros(1)]
    }

    /// Output height and width; `None` where the kernel spans more than the padded image.
    pub fn out(&self) -> Option<[usize; 2]> {
        let out = |axis: usize, size: usize| {
            let span = self.dilation[axis] * (self.kernel[axis] - 1);
            (size + self.pad_begin[axis] + self.pad_end[axis]).checked_sub(span)
        };
        Some([out(0, self.h)?, out(1, self.w)?]).filter(|o| o[0] > 0 && o[1] > 0)
    }

    /// Whether this module computes the convolution: a kernel larger than 1 × 1, non-empty
    /// sizes, and a padded grid at most [`MAX_WASTE`] times the output.
    pub fn applies(&self) -> bool {
        let [kh, kw] = self.kernel;
        if kh * kw <= 1 || self.batch == 0 || self.c == 0 || self.m == 0 {
            return false;
        }
        if self.dilation.contains(&0) {
            return false;
        }
        let Some([oh, ow]) = self.out() else {
            return false;
        };
        let [hp, wp] = self.padded();
        (hp * wp) as f64 <= MAX_WASTE * (oh * ow) as f64
    }

    /// Offset in the padded buffer of kernel position `(i, j)`.
    fn offset(&self, i: usize, j: usize) -> usize {
        i * self.dilation[0] * self.padded()[1] + j * self.dilation[1]
    }

    /// Elements past a chunk's last image that the largest offset reads (kept zero).
    fn guard(&self) -> usize {
        self.offset(self.kernel[0] - 1, self.kernel[1] - 1)
    }

    /// Images per chunk: about [`CHUNK_ELEMENTS`] padded elements, and at least four chunks per
    /// thread where the batch allows.
    fn chunk_images(&self) -> usize {
        let [hp, wp] = self.padded();
        self.images_per_chunk(CHUNK_ELEMENTS / (self.c.max(self.m) * hp * wp))
    }

    /// `by_size` images per chunk, fewer where that leaves under four chunks per thread, and
    /// between one and the batch.
    pub fn images_per_chunk(&self, by_size: usize) -> usize {
        #[cfg(feature = "rayon")]
        let threads = rayon::current_num_threads();
        #[cfg(not(feature = "rayon"))]
        let threads = 1;
        by_size
            .min(self.batch.div_ceil(4 * threads))
            .clamp(1, self.batch)
    }
}

/// The images `first..first + items` of `x` (`[batch, c, h, w]`), zero-padded, into `xp`
/// (`[c, ld]`, all zeros on entry: each channel's row holds the padded images one after the
/// other, then zeros).
fn fill_padded<T: Scalar>(x: &[T], geo: &Geometry, first: usize, items: usize, xp: &mut [T]) {
    let [hp, wp] = geo.padded();
    let [top, left] = geo.pad_begin;
    let ld = xp.len() / geo.c;
    for (ch, row) in xp.chunks_mut(ld).enumerate() {
        for item in 0..items {
            let src = &x[((first + item) * geo.c + ch) * geo.h * geo.w..][..geo.h * geo.w];
            let dst = &mut row[item * hp * wp..][..hp * wp];
            for (y, line) in src.chunks(geo.w).enumerate() {
                dst[(y + top) * wp + left..][..geo.w].copy_from_slice(line);
            }
        }
    }
}

/// As [`fill_padded`], channels last: `xp` (all zeros on entry) is `[positions, c]`, position
/// `p` of the padded grid holding its `c` channels side by side.
fn fill_padded_channels_last<T: Scalar>(
    x: &[T],
    geo: &Geometry,
    first: usize,
    items: usize,
    xp: &mut [T],
) {
    let [hp, wp] = geo.padded();
    let [top, left] = geo.pad_begin;
    let c = geo.c;
    for item in 0..items {
        let image = &x[(first + item) * c * geo.h * geo.w..][..c * geo.h * geo.w];
        for y in 0..geo.h {
            let row = &mut xp[((item * hp + y + top) * wp + left) * c..][..geo.w * c];
            for (ch, plane) in image.chunks(geo.h * geo.w).enumerate() {
                for (xx, &value) in plane[y * geo.w..][..geo.w].iter().enumerate() {
                    row[xx * c + ch] = value;
                }
            }
        }
    }
}

/// Runs `task(first image, chunk of out)` over `out` cut into chunks of `per_image · images`
/// elements, in parallel where the crate has threads.
pub(super) fn for_each_chunk<T: Send>(
    out: &mut [T],
    per_image: usize,
    images: usize,
    task: impl Fn(usize, &mut [T]) + Send + Sync,
) {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(per_image * images)
            .enumerate()
            .for_each(|(index, chunk)| task(index * images, chunk));
    }
    #[cfg(not(feature = "rayon"))]
    for (index, chunk) in out.chunks_mut(per_image * images).enumerate() {
        task(index * images, chunk);
    }
}

/// The element-wise sum of `partial(0)`, …, `partial(chunks − 1)` (at least one), computed in
/// parallel where the crate has threads and added in chunk order, so that the result does not
/// depend on how the chunks were scheduled.
pub(super) fn sum_of_chunks<T: Scalar>(
    chunks: usize,
    partial: impl Fn(usize) -> Vec<T> + Send + Sync,
) -> Vec<T> {
    let sum = |mut a: Vec<T>, b: Vec<T>| {
        for (a, b) in a.iter_mut().zip(b) {
            *a = a.add(b);
        }
        a
    };
    #[cfg(feature = "rayon")]
    let total = {
        use rayon::prelude::*;
        let parts: Vec<Vec<T>> = (0..chunks).into_par_iter().map(partial).collect();
        parts.into_iter().reduce(sum)
    };
    #[cfg(not(feature = "rayon"))]
    let total = (0..chunks).map(partial).reduce(sum);
    total.expect("at least one chunk")
}

/// A matrix operand: its first element and the distance between neighbours along its rows
/// (from one column to the next) and along its columns (from one row to the next).
#[derive(Clone, Copy)]
pub(super) struct Operand<T> {
    at: *const T,
    column_step: isize,
    row_step: isize,
}

impl<T> Operand<T> {
    /// Row-major with rows `ld` elements apart.
    pub(super) fn rows(at: *const T, ld: usize) -> Self {
        Operand {
            at,
            column_step: 1,
            row_step: ld as isize,
        }
    }

    /// Column-major with columns `ld` elements apart.
    pub(super) fn columns(at: *const T, ld: usize) -> Self {
        Operand {
            at,
            column_step: ld as isize,
            row_step: 1,
        }
    }
}

/// `dst[rows, n] (+)= lhs[rows, k] · rhs[k, n]` on this thread; `dst.at` comes from a mutable
/// pointer.
pub(super) unsafe fn product<T: Scalar>(
    [rows, n, k]: [usize; 3],
    dst: Operand<T>,
    accumulate: bool,
    lhs: Operand<T>,
    rhs: Operand<T>,
) {
    unsafe {
        gemm::gemm(
            rows,
            n,
            k,
            dst.at as *mut T,
            dst.column_step,
            dst.row_step,
            accumulate,
            lhs.at,
            lhs.column_step,
            lhs.row_step,
            rhs.at,
            rhs.column_step,
            rhs.row_step,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The convolution (`[batch, m, oh, ow]`, row-major) of `x` by `weight` (`[m, c, kh, kw]`),
/// plus `bias` (`[m]`) if given, added as the result is copied out of the grid.
pub(crate) fn conv2d<T: Scalar>(
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    geo: &Geometry,
) -> Vec<T> {
    let [oh, ow] = geo
        .out()
        .expect("shifted conv2d: kernel larger than the padded input");
    let [hp, wp] = geo.padded();
    let [kh, kw] = geo.kernel;
    let (c, m) = (geo.c, geo.m);
    // W_ij as [kh·kw][m, c].
    let mut per_position = vec![T::ZERO; kh * kw * m * c];
    for (index, &value) in weight.iter().enumerate() {
        let (row, ij) = (index / (kh * kw), index % (kh * kw));
        per_position[ij * m * c + row] = value;
    }
    let mut out = unwritten::<T>(geo.batch * m * oh * ow);
    let images = geo.chunk_images();
    for_each_chunk(&mut out, m * oh * ow, images, |first, chunk| {
        let items = chunk.len() / (m * oh * ow);
        let n = (items * hp * wp).next_multiple_of(ALIGN);
        let ld = (n + geo.guard()).next_multiple_of(ALIGN);
        let mut xp = vec![T::ZERO; c * ld];
        fill_padded(x, geo, first, items, &mut xp);
        // Every element is written by the first product of its row block (no accumulation).
        let mut grid = unwritten::<T>(m * n);
        for first_row in (0..m).step_by(ROW_BLOCK) {
            let rows = ROW_BLOCK.min(m - first_row);
            for i in 0..kh {
                for j in 0..kw {
                    let ij = i * kw + j;
                    // grid[rows, n] (+)= W_ij[rows, c] · xp[c, offset .. offset + n]
                    unsafe {
                        product(
                            [rows, n, c],
                            Operand::rows(grid[first_row * n..].as_mut_ptr().cast::<T>(), n),
                            ij > 0,
                            Operand::rows(per_position[ij * m * c + first_row * c..].as_ptr(), c),
                            Operand::rows(xp[geo.offset(i, j)..].as_ptr(), ld),
                        );
                    }
                }
            }
        }
        // SAFETY: the products above wrote all `m` rows of `n` elements.
        let grid = unsafe { written(grid) };
        for (index, dst) in chunk.chunks_mut(ow).enumerate() {
            let (plane, y) = (index / oh, index % oh);
            let (item, channel) = (plane / m, plane % m);
            let src = &grid[channel * n + item * hp * wp + y * wp..][..ow];
            let b = bias.map_or(T::ZERO, |b| b[channel]);
            for (d, &v) in dst.iter_mut().zip(src) {
                d.write(v.add(b));
            }
        }
    });
    // SAFETY: the chunks cover `out`, and each chunk's rows of `ow` were all written above.
    unsafe { written(out) }
}

/// The gradient (`[m, c, kh, kw]`, row-major) of [`conv2d`] with respect to the weight, given
/// `g`, the gradient of its output.
pub(crate) fn conv2d_weight_grad<T: Scalar>(x: &[T], g: &[T], geo: &Geometry) -> Vec<T> {
    let [oh, ow] = geo
        .out()
        .expect("shifted conv2d: kernel larger than the padded input");
    let [hp, wp] = geo.padded();
    let [kh, kw] = geo.kernel;
    let (c, m) = (geo.c, geo.m);
    let images = geo.chunk_images();
    let chunks = geo.batch.div_ceil(images);
    // Channels last lets `gemm` read the input in place, which pays where the gradient has
    // enough rows to fill its kernel; with a few (an RGB output layer) the copy does not.
    let channels_last = m >= MIN_ROWS_CHANNELS_LAST;
    // One partial dW_ij, [kh·kw][m, c], per chunk, summed in chunk order.
    let partial = |index: usize| -> Vec<T> {
        let first = index * images;
        let items = images.min(geo.batch - first);
        let n = (items * hp * wp).next_multiple_of(ALIGN);
        let ld = (n + geo.guard()).next_multiple_of(ALIGN);
        let mut xp = vec![T::ZERO; c * ld];
        if channels_last {
            fill_padded_channels_last(x, geo, first, items, &mut xp);
        } else {
            fill_padded(x, geo, first, items, &mut xp);
        }
        // g on the padded grid, zero where no output is.
        let mut grid = vec![T::ZERO; m * n];
        for item in 0..items {
            for channel in 0..m {
                let src = &g[((first + item) * m + channel) * oh * ow..][..oh * ow];
                let dst = &mut grid[channel * n + item * hp * wp..][..hp * wp];
                for (y, line) in src.chunks(ow).enumerate() {
                    dst[y * wp..][..ow].copy_from_slice(line);
                }
            }
        }
        let mut dw = vec![T::ZERO; kh * kw * m * c];
        for first_row in (0..m).step_by(ROW_BLOCK) {
            let rows = ROW_BLOCK.min(m - first_row);
            for i in 0..kh {
                for j in 0..kw {
                    let ij = i * kw + j;
                    // dW_ij[rows, c] = grid[rows, n] · xp[c, offset .. offset + n]ᵀ, with xp
                    // channels last read in place as a column-major [c, n] matrix, or
                    // channel-major as a row-major one; computed as its transpose, dW_ijᵀ.
                    let xs = if channels_last {
                        Operand::columns(xp[geo.offset(i, j) * c..].as_ptr(), c)
                    } else {
                        Operand::rows(xp[geo.offset(i, j)..].as_ptr(), ld)
                    };
                    let grad = Operand::columns(grid[first_row * n..].as_ptr(), n);
                    let dst = Operand::columns(dw[ij * m * c + first_row * c..].as_mut_ptr(), c);
                    unsafe { product([c, rows, n], dst, false, xs, grad) };
                }
            }
        }
        dw
    };
    let total = sum_of_chunks(chunks, partial);
    // [kh·kw][m, c] → [m, c, kh, kw].
    let mut grad = vec![T::ZERO; m * c * kh * kw];
    for (ij, block) in total.chunks(m * c).enumerate() {
        for (row, &value) in block.iter().enumerate() {
            grad[row * kh * kw + ij] = value;
        }
    }
    grad
}

/// The convolution weight of a stride-1 transposed convolution: `weight` (`[c, m, kh, kw]`)
/// flipped in both spatial axes, its channel axes swapped (`[m, c, kh, kw]`).
fn transposed_kernel<T: Scalar>(weight: &[T], [c, m, kh, kw]: [usize; 4]) -> Vec<T> {
    let mut out = vec![T::ZERO; weight.len()];
    for ci in 0..c {
        for mi in 0..m {
            for i in 0..kh {
                for j in 0..kw {
                    out[((mi * c + ci) * kh + kh - 1 - i) * kw + kw - 1 - j] =
                        weight[((ci * m + mi) * kh + i) * kw + j];
                }
            }
        }
    }
    out
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

fn computed(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F64)
}

/// The geometry of `conv2d(x, weight, options)` if this module computes it (f32 or f64,
/// stride 1, one group).
fn conv_geometry(
    x: &FlexTensor,
    weight_shape: &Shape,
    options: &ConvOptions<2>,
) -> Option<Geometry> {
    if !computed(x.dtype()) || options.stride != [1, 1] || options.groups != 1 {
        return None;
    }
    let [batch, c, h, w] = dims4(x);
    let geo = Geometry {
        batch,
        c,
        h,
        w,
        m: weight_shape[0],
        kernel: [weight_shape[2], weight_shape[3]],
        pad_begin: options.padding_begin(),
        pad_end: options.padding_end(),
        dilation: options.dilation,
    };
    (weight_shape[1] == c && geo.applies()).then_some(geo)
}

fn tensor<T: Scalar>(data: Vec<T>, shape: [usize; 4], dtype: DType) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::new(shape)),
        dtype,
    )
}

/// `conv2d` of the backend through this module, or `None` where it does not apply.
pub(crate) fn try_conv2d(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    let geo = conv_geometry(x, weight.layout().shape(), options)?;
    if weight.dtype() != x.dtype() {
        return None;
    }
    let [oh, ow] = geo.out()?;
    let (x, weight) = (x.clone().to_contiguous(), weight.clone().to_contiguous());
    let bias = bias.map(|b| b.clone().to_contiguous());
    let shape = [geo.batch, geo.m, oh, ow];
    Some(match x.dtype() {
        DType::F32 => tensor(
            convolve::<f32>(x.storage(), weight.storage(), storage(&bias), &geo),
            shape,
            DType::F32,
        ),
        _ => tensor(
            convolve::<f64>(x.storage(), weight.storage(), storage(&bias), &geo),
            shape,
            DType::F64,
        ),
    })
}

/// The convolution of `x` by `weight` (as [`conv2d`]): by Winograd's F(2 × 2, 3 × 3) where
/// [`winograd::applies`], by shifted products otherwise.
fn convolve<T: Real>(x: &[T], weight: &[T], bias: Option<&[T]>, geo: &Geometry) -> Vec<T> {
    if winograd::applies(geo) {
        winograd::conv2d(x, weight, bias, geo)
    } else {
        conv2d(x, weight, bias, geo)
    }
}

/// The weight gradient of [`convolve`] (as [`conv2d_weight_grad`]), by the same algorithm.
fn weight_grad_of<T: Real>(x: &[T], g: &[T], geo: &Geometry) -> Vec<T> {
    if winograd::applies(geo) {
        winograd::conv2d_weight_grad(x, g, geo)
    } else {
        conv2d_weight_grad(x, g, geo)
    }
}

/// The elements of a contiguous bias, if any.
fn storage<T: Scalar>(bias: &Option<FlexTensor>) -> Option<&[T]> {
    bias.as_ref().map(|b| b.storage::<T>())
}

/// `conv2d_weight_backward` of the backend through this module, or `None` where it does not
/// apply.
pub(crate) fn try_conv2d_weight_grad(
    x: &FlexTensor,
    weight_shape: &Shape,
    output_grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    let geo = conv_geometry(x, weight_shape, options)?;
    if output_grad.dtype() != x.dtype() || dims4(output_grad)[1] != geo.m {
        return None;
    }
    let (x, g) = (
        x.clone().to_contiguous(),
        output_grad.clone().to_contiguous(),
    );
    let shape = [geo.m, geo.c, geo.kernel[0], geo.kernel[1]];
    Some(match x.dtype() {
        DType::F32 => tensor(
            weight_grad_of::<f32>(x.storage(), g.storage(), &geo),
            shape,
            DType::F32,
        ),
        _ => tensor(
            weight_grad_of::<f64>(x.storage(), g.storage(), &geo),
            shape,
            DType::F64,
        ),
    })
}

/// `conv_transpose2d` of the backend through this module (stride 1, one group, no output
/// padding, `d·(k − 1) ≥ p`), or `None` where it does not apply.
pub(crate) fn try_conv_transpose2d(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    options: &ConvTransposeOptions<2>,
) -> Option<FlexTensor> {
    if !computed(x.dtype())
        || weight.dtype() != x.dtype()
        || options.stride != [1, 1]
        || options.groups != 1
        || options.padding_out != [0, 0]
    {
        return None;
    }
    let [c, m, kh, kw] = dims4(weight);
    let [batch, xc, h, w] = dims4(x);
    let span = [
        options.dilation[0] * (kh - 1),
        options.dilation[1] * (kw - 1),
    ];
    if xc != c || span[0] < options.padding[0] || span[1] < options.padding[1] {
        return None;
    }
    let pad = [span[0] - options.padding[0], span[1] - options.padding[1]];
    let geo = Geometry {
        batch,
        c,
        h,
        w,
        m,
        kernel: [kh, kw],
        pad_begin: pad,
        pad_end: pad,
        dilation: options.dilation,
    };
    if !geo.applies() {
        return None;
    }
    let [oh, ow] = geo.out()?;
    let (x, weight) = (x.clone().to_contiguous(), weight.clone().to_contiguous());
    let bias = bias.map(|b| b.clone().to_contiguous());
    let shape = [batch, m, oh, ow];
    Some(match x.dtype() {
        DType::F32 => {
            let kernel = transposed_kernel::<f32>(weight.storage(), [c, m, kh, kw]);
            let out = convolve::<f32>(x.storage(), &kernel, storage(&bias), &geo);
            tensor(out, shape, DType::F32)
        }
        _ => {
            let kernel = transposed_kernel::<f64>(weight.storage(), [c, m, kh, kw]);
            let out = convolve::<f64>(x.storage(), &kernel, storage(&bias), &geo);
            tensor(out, shape, DType::F64)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values in [−1, 1).
    fn values(n: usize, seed: usize) -> Vec<f64> {
        (0..n)
            .map(|i| (((i + 1) * 7919 + seed * 104_729) % 2001) as f64 / 1000.5 - 1.0)
            .collect()
    }

    /// The value of `x` (`[batch, c, h, w]`) that kernel position `[i, j]` reads for output
    /// `[y, x]` of image `b`, channel `c`: 0 in the padding.
    fn read(
        x: &[f64],
        geo: &Geometry,
        [b, c]: [usize; 2],
        [y, xx]: [usize; 2],
        [i, j]: [usize; 2],
    ) -> f64 {
        let iy = (y + i * geo.dilation[0]) as isize - geo.pad_begin[0] as isize;
        let ix = (xx + j * geo.dilation[1]) as isize - geo.pad_begin[1] as isize;
        if iy < 0 || ix < 0 || iy >= geo.h as isize || ix >= geo.w as isize {
            return 0.0;
        }
        x[((b * geo.c + c) * geo.h + iy as usize) * geo.w + ix as usize]
    }

    /// The convolution by its definition (padding reads 0).
    fn direct(x: &[f64], weight: &[f64], geo: &Geometry) -> Vec<f64> {
        let [oh, ow] = geo.out().unwrap();
        let [kh, kw] = geo.kernel;
        let mut out = vec![0.0; geo.batch * geo.m * oh * ow];
        for b in 0..geo.batch {
            for mi in 0..geo.m {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut s = 0.0;
                        for ci in 0..geo.c {
                            for i in 0..kh {
                                for j in 0..kw {
                                    s += weight[((mi * geo.c + ci) * kh + i) * kw + j]
                                        * read(x, geo, [b, ci], [y, xx], [i, j]);
                                }
                            }
                        }
                        out[((b * geo.m + mi) * oh + y) * ow + xx] = s;
                    }
                }
            }
        }
        out
    }

    fn geometries() -> Vec<Geometry> {
        let g = |batch, c, h, w, m, kernel, pad_begin, pad_end, dilation| Geometry {
            batch,
            c,
            h,
            w,
            m,
            kernel,
            pad_begin,
            pad_end,
            dilation,
        };
        vec![
            g(3, 4, 8, 8, 5, [3, 3], [1, 1], [1, 1], [1, 1]),
            g(2, 3, 16, 14, 2, [4, 4], [1, 1], [2, 2], [1, 1]),
            g(2, 2, 10, 12, 3, [3, 2], [0, 1], [0, 0], [1, 1]),
            g(1, 3, 20, 20, 4, [3, 3], [2, 2], [2, 2], [2, 2]),
            // Several chunks (at least four per thread where the batch allows).
            g(40, 17, 32, 32, 6, [3, 3], [1, 1], [1, 1], [1, 1]),
            // Enough output channels for the weight gradient's channels-last input, and more
            // than one block of rows.
            g(3, 5, 9, 7, 50, [3, 3], [1, 1], [1, 1], [1, 1]),
            g(2, 16, 10, 10, 16, [3, 3], [2, 2], [2, 2], [2, 2]),
            // Padding wider than the kernel's span: the output is larger than the image.
            g(2, 3, 6, 7, 2, [2, 2], [2, 2], [2, 2], [1, 1]),
            // Padding at one end only, on a wide image.
            g(3, 2, 8, 9, 3, [3, 3], [2, 0], [0, 2], [1, 1]),
        ]
    }

    #[test]
    fn conv2d_matches_the_definition() {
        for geo in geometries() {
            assert!(geo.applies(), "{geo:?}");
            let x = values(geo.batch * geo.c * geo.h * geo.w, 1);
            let weight = values(geo.m * geo.c * geo.kernel[0] * geo.kernel[1], 2);
            let want = direct(&x, &weight, &geo);
            let got = conv2d(&x, &weight, None, &geo);
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                    "{geo:?}: {a} vs {b}"
                );
            }
        }
    }

    /// The weight gradient by its definition:
    /// `dW[m, c, i, j] = Σ_{b, y, x} g[b, m, y, x] · x[b, c, y + i·dh − top, x + j·dw − left]`.
    fn direct_weight_grad(x: &[f64], g: &[f64], geo: &Geometry) -> Vec<f64> {
        let [oh, ow] = geo.out().unwrap();
        let [kh, kw] = geo.kernel;
        let mut dw = vec![0.0; geo.m * geo.c * kh * kw];
        for b in 0..geo.batch {
            for mi in 0..geo.m {
                for ci in 0..geo.c {
                    for i in 0..kh {
                        for j in 0..kw {
                            let mut s = 0.0;
                            for y in 0..oh {
                                for xx in 0..ow {
                                    s += g[((b * geo.m + mi) * oh + y) * ow + xx]
                                        * read(x, geo, [b, ci], [y, xx], [i, j]);
                                }
                            }
                            dw[((mi * geo.c + ci) * kh + i) * kw + j] += s;
                        }
                    }
                }
            }
        }
        dw
    }

    #[test]
    fn weight_grad_matches_the_definition() {
        for geo in geometries() {
            let [oh, ow] = geo.out().unwrap();
            let x = values(geo.batch * geo.c * geo.h * geo.w, 3);
            let g = values(geo.batch * geo.m * oh * ow, 4);
            let want = direct_weight_grad(&x, &g, &geo);
            let got = conv2d_weight_grad(&x, &g, &geo);
            assert_eq!(got.len(), want.len());
            for (a, b) in got.iter().zip(&want) {
                assert!(
                    (a - b).abs() <= 1e-10 * (1.0 + b.abs()),
                    "{geo:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn transposed_kernel_gives_the_adjoint() {
        // conv_transpose(g, W) is the adjoint of conv(·, W): <conv(x, W), g> = <x, convT(g, W)>.
        let geo = Geometry {
            batch: 2,
            c: 3,
            h: 7,
            w: 6,
            m: 4,
            kernel: [3, 3],
            pad_begin: [1, 1],
            pad_end: [1, 1],
            dilation: [1, 1],
        };
        let [oh, ow] = geo.out().unwrap();
        let x = values(geo.batch * geo.c * geo.h * geo.w, 5);
        let weight = values(geo.m * geo.c * 9, 6);
        let g = values(geo.batch * geo.m * oh * ow, 7);
        let lhs: f64 = direct(&x, &weight, &geo)
            .iter()
            .zip(&g)
            .map(|(a, b)| a * b)
            .sum();
        let transposed = Geometry {
            c: geo.m,
            m: geo.c,
            h: oh,
            w: ow,
            ..geo
        };
        let kernel = transposed_kernel(&weight, [geo.m, geo.c, 3, 3]);
        let back = conv2d(&g, &kernel, None, &transposed);
        let rhs: f64 = back.iter().zip(&x).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() <= 1e-10 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
    }

    #[test]
    fn small_images_and_1x1_kernels_are_left_to_the_other_paths() {
        let geo = |h, kernel: [usize; 2], pad| Geometry {
            batch: 1,
            c: 2,
            h,
            w: h,
            m: 2,
            kernel,
            pad_begin: [pad; 2],
            pad_end: [pad; 2],
            dilation: [1, 1],
        };
        assert!(
            !geo(3, [3, 3], 1).applies(),
            "16 padded positions for 9 outputs"
        );
        assert!(geo(4, [3, 3], 1).applies(), "25 for 16");
        assert!(geo(16, [3, 3], 1).applies());
        assert!(!geo(16, [1, 1], 0).applies());
        assert!(!geo(2, [5, 5], 0).applies(), "kernel larger than the image");
    }
}

//! 3 × 3 stride-1 convolutions by Winograd's minimal filtering F(2 × 2, 3 × 3) (Lavin and Gray,
//! "Fast Algorithms for Convolutional Neural Networks", 2016).
//!
//! Each 2 × 2 tile of the output is `Y = Aᵀ [U ⊙ V] A` with `U = G g Gᵀ` the 4 × 4 transform of
//! a 3 × 3 kernel `g` and `V = Bᵀ d B` that of the 4 × 4 input tile `d` under it (tiles
//! overlapping by two rows and columns). Summed over input channels, the 16 element-wise products
//! become 16 matrix products, `M_ξ[m, t] = Σ_c U_ξ[m, c] · V_ξ[c, t]` over the tiles `t` of a
//! chunk of images: 16 multiply–adds per tile and channel pair where the direct sum takes 36,
//! 2.25 times fewer. The transforms are additions (and halvings of the kernel); the output is
//! the exact convolution up to rounding.
//!
//! `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]`,
//! `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`, `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`.
//!
//! The weight gradient is the transposed algorithm, `dW = Gᵀ [Σ_t V_t ⊙ (A g_t Aᵀ)] G` with
//! `g_t` the output gradient's 2 × 2 tile: again 16 matrix products, now summed over the tiles.
//! A transposed stride-1 convolution (the input gradient) reaches [`conv2d`] as the convolution
//! by the flipped kernel (see the shifted products). The transforms are plain loops over a row
//! of tiles, compiled once more for AVX-512 and AVX2 and chosen at run time.

use alloc::vec;
use alloc::vec::Vec;

use super::shifted::{Geometry, Operand, for_each_chunk, product, sum_of_chunks};
use super::weight_grad::WeightGradScalar as Scalar;
use super::{unwritten, written};

/// Transformed elements (`16 · max(c, m) · tiles`) per chunk of images (at least one image).
const CHUNK_ELEMENTS: usize = 1 << 19;

/// Tile rows of the transformed buffers are a multiple of this many elements (64 bytes of f32),
/// so that `gemm` reads them in place.
const ALIGN: usize = 16;

/// Output channels per matrix product (as in the shifted products).
const ROW_BLOCK: usize = 48;

/// The transforms cost in proportion to the input and output channels, the products to their
/// product: Winograd is taken from [`MIN_CHANNELS`] channels on either side and a product of
/// the two of at least [`MIN_CHANNEL_PAIRS`].
const MIN_CHANNELS: usize = 16;
/// See [`MIN_CHANNELS`].
const MIN_CHANNEL_PAIRS: usize = 2048;

/// The element types computed here.
pub(crate) trait Real:
    Scalar
    + core::ops::Add<Output = Self>
    + core::ops::Sub<Output = Self>
    + core::ops::Mul<Output = Self>
{
    const HALF: Self;
}

impl Real for f32 {
    const HALF: Self = 0.5;
}

impl Real for f64 {
    const HALF: Self = 0.5;
}

/// Whether this module computes the convolution of `geo`: a 3 × 3 kernel without dilation
/// between enough channels (see [`MIN_CHANNELS`]).
pub(crate) fn applies(geo: &Geometry) -> bool {
    geo.kernel == [3, 3]
        && geo.dilation == [1, 1]
        && geo.c >= MIN_CHANNELS
        && geo.m >= MIN_CHANNELS
        && geo.c * geo.m >= MIN_CHANNEL_PAIRS
        && geo.batch > 0
        && geo.out().is_some()
}

/// The tile grid of one image and the zero-padded slot its tiles read.
#[derive(Clone, Copy)]
struct Tiles {
    /// Output height and width.
    out: [usize; 2],
    /// Tile rows and columns (`⌈out / 2⌉`).
    th: usize,
    tw: usize,
    /// Rows and columns of an image's padded slot (`2·tiles + 2`).
    hp: usize,
    wp: usize,
}

impl Tiles {
    fn of(geo: &Geometry) -> Self {
        let out = geo.out().expect("checked by applies");
        let (th, tw) = (out[0].div_ceil(2), out[1].div_ceil(2));
        Tiles {
            out,
            th,
            tw,
            hp: 2 * th + 2,
            wp: 2 * tw + 2,
        }
    }

    fn per_image(&self) -> usize {
        self.th * self.tw
    }
}

/// Images per chunk: about [`CHUNK_ELEMENTS`] transformed elements, and at least four chunks
/// per thread where the batch allows.
fn chunk_images(geo: &Geometry, tiles: &Tiles) -> usize {
    geo.images_per_chunk(CHUNK_ELEMENTS / (16 * geo.c.max(geo.m) * tiles.per_image()))
}

/// The one-dimensional output transform `Aᵀ m` of four values.
#[inline(always)]
fn a_t<T: Real>([m0, m1, m2, m3]: [T; 4]) -> [T; 2] {
    [m0 + m1 + m2, m1 - m2 - m3]
}

/// The one-dimensional kernel transform `G g` of three values.
#[inline(always)]
fn g_t<T: Real>([g0, g1, g2]: [T; 3]) -> [T; 4] {
    [g0, T::HALF * (g0 + g1 + g2), T::HALF * (g0 - g1 + g2), g2]
}

/// Defines the function it is given twice more, compiled for AVX-512 and for AVX2, and calls the
/// one the CPU has: this crate is built for the baseline x86-64, whose vectors are four floats
/// wide, and the loop nests below are written for the compiler to vectorise.
macro_rules! widest_vectors {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$doc])*
        fn $name<T: Real>($($arg: $ty),*) {
            #[inline(always)]
            fn portable<T: Real>($($arg: $ty),*) $body
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512<T: Real>($($arg: $ty),*) {
                    portable($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2<T: Real>($($arg: $ty),*) {
                    portable($($arg),*)
                }
                if std::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU has AVX2 and FMA.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}

/// `U_ξ = G g Gᵀ` of every kernel of `weight` (`[m, c, 3, 3]`), as `[16][m, c]`.
fn kernel_transform<T: Real>(weight: &[T], m: usize, c: usize) -> Vec<T> {
    let mut u = vec![T::ZERO; 16 * m * c];
    for (pair, g) in weight.chunks_exact(9).enumerate() {
        // Rows first: G applied to each column of g, then to each row of the result.
        let columns: [[T; 4]; 3] = core::array::from_fn(|j| g_t([g[j], g[3 + j], g[6 + j]]));
        for a in 0..4 {
            let row = g_t([columns[0][a], columns[1][a], columns[2][a]]);
            for (b, &value) in row.iter().enumerate() {
                u[(a * 4 + b) * m * c + pair] = value;
            }
        }
    }
    u
}

widest_vectors! {
    /// The images `first..first + items` of `x` (`[batch, c, h, w]`) zero-padded into `xp`
    /// (`[c, items, hp, wp]`, all zeros on entry), the image's first row and column at `pad_begin`,
    /// each padded row stored as its even columns, then its odd ones (`wp / 2` each).
    fn fill_padded(
        x: &[T],
        geo: &Geometry,
        tiles: &Tiles,
        first: usize,
        items: usize,
        xp: &mut [T],
    ) {
        let (c, h, w) = (geo.c, geo.h, geo.w);
        let [top, left] = geo.pad_begin;
        let (hp, wp) = (tiles.hp, tiles.wp);
        let half = wp / 2;
        // Rows and columns of the image that land in the slot (the slot may cut the bottom or right
        // padding, never an image row or column that an output reads).
        let rows = h.min(hp.saturating_sub(top));
        let cols = w.min(wp.saturating_sub(left));
        // One padded row, zero outside the image's columns.
        let mut line = vec![T::ZERO; wp];
        for ci in 0..c {
            for item in 0..items {
                let src = &x[((first + item) * c + ci) * h * w..][..h * w];
                let dst = &mut xp[(ci * items + item) * hp * wp..][..hp * wp];
                for y in 0..rows {
                    line[left..][..cols].copy_from_slice(&src[y * w..][..cols]);
                    let (even, odd) = dst[(top + y) * wp..][..wp].split_at_mut(half);
                    for ((pair, e), o) in line.chunks_exact(2).zip(even).zip(odd) {
                        (*e, *o) = (pair[0], pair[1]);
                    }
                }
            }
        }
    }
}

/// Row `a` of `Bᵀ d B` for a row of tiles: `combine` makes row `a` of `Bᵀ d` from rows `x`
/// and `y` of the padded input (each as its even and odd columns), then `B` along it: tile `tx`
/// reads the even and odd columns `tx` and `tx + 1`; `out` holds the four values' rows.
#[inline(always)]
fn tile_row<T: Real>(
    (x_even, x_odd): (&[T], &[T]),
    (y_even, y_odd): (&[T], &[T]),
    combine: impl Fn(T, T) -> T,
    [v0, v1, v2, v3]: [&mut [core::mem::MaybeUninit<T>]; 4],
) {
    let tw = v0.len();
    let (xe0, xo0, xe1, xo1) = (
        &x_even[..tw],
        &x_odd[..tw],
        &x_even[1..][..tw],
        &x_odd[1..][..tw],
    );
    let (ye0, yo0, ye1, yo1) = (
        &y_even[..tw],
        &y_odd[..tw],
        &y_even[1..][..tw],
        &y_odd[1..][..tw],
    );
    let (v1, v2, v3) = (&mut v1[..tw], &mut v2[..tw], &mut v3[..tw]);
    for tx in 0..tw {
        let [d0, d1, d2, d3] = [
            combine(xe0[tx], ye0[tx]),
            combine(xo0[tx], yo0[tx]),
            combine(xe1[tx], ye1[tx]),
            combine(xo1[tx], yo1[tx]),
        ];
        v0[tx].write(d0 - d2);
        v1[tx].write(d1 + d2);
        v2[tx].write(d2 - d1);
        v3[tx].write(d1 - d3);
    }
}

widest_vectors! {
    fn input_transform(
        xp: &[T],
        c: usize,
        items: usize,
        tiles: &Tiles,
        ld: usize,
        v: &mut [core::mem::MaybeUninit<T>],
    ) {
        let (th, tw, hp, wp) = (tiles.th, tiles.tw, tiles.hp, tiles.wp);
        let count = items * th * tw;
        let half = wp / 2;
        for ci in 0..c {
            for item in 0..items {
                let image = &xp[(ci * items + item) * hp * wp..][..hp * wp];
                for ty in 0..th {
                    let first_tile = (item * th + ty) * tw;
                    let row = |k: usize| image[(2 * ty + k) * wp..][..wp].split_at(half);
                    let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
                    let mut rows = v.chunks_exact_mut(c * ld);
                    let mut next = || &mut rows.next().expect("16 rows")[ci * ld + first_tile..][..tw];
                    // Row a of Bᵀ d combines two of the tile's rows.
                    tile_row(r0, r2, |p, q| p - q, [next(), next(), next(), next()]);
                    tile_row(r1, r2, |p, q| p + q, [next(), next(), next(), next()]);
                    tile_row(r2, r1, |p, q| p - q, [next(), next(), next(), next()]);
                    tile_row(r1, r3, |p, q| p - q, [next(), next(), next(), next()]);
                }
            }
            for xi in 0..16 {
                for slot in &mut v[(xi * c + ci) * ld + count..][..ld - count] {
                    slot.write(T::ZERO);
                }
            }
        }
    }
}

/// The convolution (`[batch, m, oh, ow]`, row-major) of `x` by `weight` (`[m, c, 3, 3]`), plus
/// `bias` (`[m]`) if given; `geo` must satisfy [`applies`].
pub(crate) fn conv2d<T: Real>(x: &[T], weight: &[T], bias: Option<&[T]>, geo: &Geometry) -> Vec<T> {
    let tiles = Tiles::of(geo);
    let [oh, ow] = tiles.out;
    let (c, m) = (geo.c, geo.m);
    let u = kernel_transform(weight, m, c);
    let images = chunk_images(geo, &tiles);
    let mut out = unwritten::<T>(geo.batch * m * oh * ow);
    for_each_chunk(&mut out, m * oh * ow, images, |first, chunk| {
        let items = chunk.len() / (m * oh * ow);
        let mut xp = vec![T::ZERO; c * items * tiles.hp * tiles.wp];
        fill_padded(x, geo, &tiles, first, items, &mut xp);
        let count = items * tiles.per_image();
        let ld = count.next_multiple_of(ALIGN);
        let mut v = unwritten::<T>(16 * c * ld);
        input_transform(&xp, c, items, &tiles, ld, &mut v);
        drop(xp);
        // SAFETY: input_transform wrote every column of every row.
        let v = unsafe { written(v) };
        let mut products = unwritten::<T>(16 * m * ld);
        for xi in 0..16 {
            for first_row in (0..m).step_by(ROW_BLOCK) {
                let rows = ROW_BLOCK.min(m - first_row);
                // M_ξ[rows, ld] = U_ξ[rows, c] · V_ξ[c, ld]
                unsafe {
                    product(
                        [rows, ld, c],
                        Operand::rows(
                            products[(xi * m + first_row) * ld..]
                                .as_mut_ptr()
                                .cast::<T>(),
                            ld,
                        ),
                        false,
                        Operand::rows(u[(xi * m + first_row) * c..].as_ptr(), c),
                        Operand::rows(v[xi * c * ld..].as_ptr(), ld),
                    );
                }
            }
        }
        drop(v);
        // SAFETY: the products wrote all 16 · m rows of ld elements.
        let products = unsafe { written(products) };
        output_transform(&products, m, items, &tiles, ld, bias, chunk);
    });
    // SAFETY: every chunk's outputs were written by output_transform.
    unsafe { written(out) }
}

widest_vectors! {
    /// `Y = Aᵀ M A` of every tile, plus the bias, into the chunk's outputs (`[items, m, oh, ow]`).
    ///
    /// A row of tiles at a time, every step a loop over the tiles' columns: `Aᵀ` along the columns
    /// of the 16 products, then along the rows, writing output columns `2tx` and `2tx + 1`.
    fn output_transform(
        products: &[T],
        m: usize,
        items: usize,
        tiles: &Tiles,
        ld: usize,
        bias: Option<&[T]>,
        chunk: &mut [core::mem::MaybeUninit<T>],
    ) {
        let [oh, ow] = tiles.out;
        let (th, tw) = (tiles.th, tiles.tw);
        // Aᵀ down the columns of the 4 × 4 products: [2][4][tw].
        let mut columns = vec![T::ZERO; 8 * tw];
        // The tile row's two output rows: [2][2·tw].
        let mut rows = vec![T::ZERO; 4 * tw];
        for item in 0..items {
            for mi in 0..m {
                let b = bias.map_or(T::ZERO, |b| b[mi]);
                let plane = &mut chunk[(item * m + mi) * oh * ow..][..oh * ow];
                for ty in 0..th {
                    let first_tile = (item * th + ty) * tw;
                    let at = |xi: usize| &products[(xi * m + mi) * ld + first_tile..][..tw];
                    for bj in 0..4 {
                        let (p0, p1, p2, p3) = (at(bj), at(4 + bj), at(8 + bj), at(12 + bj));
                        let (top, bottom) = columns.split_at_mut(4 * tw);
                        let (top, bottom) = (&mut top[bj * tw..][..tw], &mut bottom[bj * tw..][..tw]);
                        for tx in 0..tw {
                            [top[tx], bottom[tx]] = a_t([p0[tx], p1[tx], p2[tx], p3[tx]]);
                        }
                    }
                    for a in 0..2 {
                        // Aᵀ along each row: output columns 2tx and 2tx + 1, plus the bias.
                        let q = &columns[a * 4 * tw..][..4 * tw];
                        let (q0, q1, q2, q3) =
                            (&q[..tw], &q[tw..2 * tw], &q[2 * tw..3 * tw], &q[3 * tw..]);
                        let row = &mut rows[a * 2 * tw..][..2 * tw];
                        for (tx, pair) in row.chunks_exact_mut(2).enumerate() {
                            let [y0, y1] = a_t([q0[tx], q1[tx], q2[tx], q3[tx]]);
                            pair[0] = y0 + b;
                            pair[1] = y1 + b;
                        }
                    }
                    for a in 0..2.min(oh - 2 * ty) {
                        let src = &rows[a * 2 * tw..][..ow];
                        for (dst, &value) in plane[(2 * ty + a) * ow..][..ow].iter_mut().zip(src) {
                            dst.write(value);
                        }
                    }
                }
            }
        }
    }
}

/// The transposed output transform `A g` of two values (`A = (Aᵀ)ᵀ`).
#[inline(always)]
fn a<T: Real>([g0, g1]: [T; 2]) -> [T; 4] {
    [g0, g0 + g1, g0 - g1, T::ZERO - g1]
}

/// The transposed kernel transform `Gᵀ s` of four values.
#[inline(always)]
fn g<T: Real>([s0, s1, s2, s3]: [T; 4]) -> [T; 3] {
    let (sum, difference) = (T::HALF * (s1 + s2), T::HALF * (s1 - s2));
    [s0 + sum, difference, sum + s3]
}

widest_vectors! {
    /// `Z_ξ[m, t] = (A g_t Aᵀ)_ξ` of every 2 × 2 tile `t` of the output gradient of the images
    /// `first..first + items` of `grad` (`[batch, m, oh, ow]`; zero past the last row and column),
    /// into `z` (`[16][m, ld]`; the columns from `items · th · tw` to `ld` are zeroed).
    fn gradient_transform(
        grad: &[T],
        m: usize,
        first: usize,
        items: usize,
        tiles: &Tiles,
        ld: usize,
        z: &mut [core::mem::MaybeUninit<T>],
    ) {
        let [oh, ow] = tiles.out;
        let (th, tw) = (tiles.th, tiles.tw);
        let count = items * th * tw;
        // The tile row's two gradient rows, even and odd columns apart: [2][tw] each.
        let mut even = vec![T::ZERO; 2 * tw];
        let mut odd = vec![T::ZERO; 2 * tw];
        for mi in 0..m {
            for item in 0..items {
                let plane = &grad[((first + item) * m + mi) * oh * ow..][..oh * ow];
                for ty in 0..th {
                    for r in 0..2 {
                        let y = 2 * ty + r;
                        let (e, o) = (&mut even[r * tw..][..tw], &mut odd[r * tw..][..tw]);
                        e.fill(T::ZERO);
                        o.fill(T::ZERO);
                        if y < oh {
                            let row = &plane[y * ow..][..ow];
                            for (x, &value) in row.iter().enumerate() {
                                if x % 2 == 0 {
                                    e[x / 2] = value;
                                } else {
                                    o[x / 2] = value;
                                }
                            }
                        }
                    }
                    let first_tile = (item * th + ty) * tw;
                    let (e0, e1) = even.split_at(tw);
                    let (o0, o1) = odd.split_at(tw);
                    for ai in 0..4 {
                        // A along the tile's columns (row ai of A g), then along its rows.
                        let row = |b: usize| ((ai * 4 + b) * m + mi) * ld + first_tile;
                        let (z0, rest) = z[row(0)..].split_at_mut(m * ld);
                        let (z1, rest) = rest.split_at_mut(m * ld);
                        let (z2, z3) = rest.split_at_mut(m * ld);
                        let (z0, z1, z2, z3) =
                            (&mut z0[..tw], &mut z1[..tw], &mut z2[..tw], &mut z3[..tw]);
                        for tx in 0..tw {
                            let (e, o) = (a([e0[tx], e1[tx]])[ai], a([o0[tx], o1[tx]])[ai]);
                            z0[tx].write(e);
                            z1[tx].write(e + o);
                            z2[tx].write(e - o);
                            z3[tx].write(T::ZERO - o);
                        }
                    }
                }
            }
            for xi in 0..16 {
                for slot in &mut z[(xi * m + mi) * ld + count..][..ld - count] {
                    slot.write(T::ZERO);
                }
            }
        }
    }
}

/// The gradient (`[m, c, 3, 3]`) of [`conv2d`] with respect to its weight, given `grad`, the
/// gradient of its output: by the transposed algorithm, `dW = Gᵀ [Σ_t V_t ⊙ (A g_t Aᵀ)] G`,
/// the sum over the tiles `t` of each chunk of images 16 matrix products
/// `S_ξ[m, c] = Σ_t Z_ξ[m, t] · V_ξ[c, t]`, the chunks' sums added in chunk order.
pub(crate) fn conv2d_weight_grad<T: Real>(x: &[T], grad: &[T], geo: &Geometry) -> Vec<T> {
    let tiles = Tiles::of(geo);
    let (c, m) = (geo.c, geo.m);
    let images = chunk_images(geo, &tiles);
    let chunks = geo.batch.div_ceil(images);
    let partial = |index: usize| -> Vec<T> {
        let first = index * images;
        let items = images.min(geo.batch - first);
        let mut xp = vec![T::ZERO; c * items * tiles.hp * tiles.wp];
        fill_padded(x, geo, &tiles, first, items, &mut xp);
        let ld = (items * tiles.per_image()).next_multiple_of(ALIGN);
        let mut v = unwritten::<T>(16 * c * ld);
        input_transform(&xp, c, items, &tiles, ld, &mut v);
        drop(xp);
        let mut z = unwritten::<T>(16 * m * ld);
        gradient_transform(grad, m, first, items, &tiles, ld, &mut z);
        // SAFETY: the transforms wrote every column of every row.
        let (v, z) = unsafe { (written(v), written(z)) };
        let mut s = unwritten::<T>(16 * m * c);
        for xi in 0..16 {
            // S_ξ[m, c] = Z_ξ[m, ld] · V_ξ[c, ld]ᵀ
            unsafe {
                product(
                    [m, c, ld],
                    Operand::rows(s[xi * m * c..].as_mut_ptr().cast::<T>(), c),
                    false,
                    Operand::rows(z[xi * m * ld..].as_ptr(), ld),
                    Operand::columns(v[xi * c * ld..].as_ptr(), ld),
                );
            }
        }
        // SAFETY: the products wrote all 16 · m rows of c elements.
        unsafe { written(s) }
    };
    let s = sum_of_chunks(chunks, partial);
    // dW = Gᵀ S G, for every (m, c) pair.
    let mut dw = vec![T::ZERO; m * c * 9];
    for (pair, out) in dw.chunks_exact_mut(9).enumerate() {
        let at = |a: usize, b: usize| s[(a * 4 + b) * m * c + pair];
        let columns: [[T; 3]; 4] =
            core::array::from_fn(|b| g([at(0, b), at(1, b), at(2, b), at(3, b)]));
        for i in 0..3 {
            let row = g([columns[0][i], columns[1][i], columns[2][i], columns[3][i]]);
            out[i * 3..][..3].copy_from_slice(&row);
        }
    }
    dw
}

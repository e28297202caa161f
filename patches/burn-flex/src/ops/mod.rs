//! Backend operations implementations.

use alloc::borrow::Cow;
use alloc::vec::Vec;
use burn_backend::DType;
use burn_std::{bf16, f16};
use core::mem::{ManuallyDrop, MaybeUninit};

use crate::FlexTensor;

/// The `DType` that matches `isize` on the current platform.
#[cfg(target_pointer_width = "64")]
pub(crate) const INDEX_DTYPE: DType = DType::I64;
/// The `DType` that matches `isize` on the current platform.
#[cfg(target_pointer_width = "32")]
pub(crate) const INDEX_DTYPE: DType = DType::I32;

/// Minimum total element count for rayon fan-out on per-row or per-chunk loops.
/// Below this, task-dispatch overhead dominates the per-unit work.
#[cfg(feature = "rayon")]
pub(crate) const PARALLEL_THRESHOLD: usize = 256 * 1024;

/// Wrapper for raw mutable pointers that can be sent across rayon threads.
///
/// # Safety
///
/// The caller must ensure:
/// - The pointer remains valid for the lifetime of all uses
/// - No two threads write to the same offset
/// - No references to the underlying data exist during writes
#[cfg(feature = "rayon")]
pub(crate) struct SendMutPtr<T>(*mut T);

#[cfg(feature = "rayon")]
unsafe impl<T> Send for SendMutPtr<T> {}
#[cfg(feature = "rayon")]
unsafe impl<T> Sync for SendMutPtr<T> {}

#[cfg(feature = "rayon")]
impl<T> SendMutPtr<T> {
    pub(crate) fn new(ptr: *mut T) -> Self {
        Self(ptr)
    }

    /// Write `val` at the given element offset.
    ///
    /// # Safety
    /// Offset must be in bounds and no other thread may write to the same offset.
    pub(crate) unsafe fn write(&self, offset: usize, val: T) {
        unsafe { self.0.add(offset).write(val) }
    }

    /// Returns the raw pointer offset by `offset` elements.
    ///
    /// # Safety
    /// Offset must be in bounds.
    pub(crate) unsafe fn ptr_add(&self, offset: usize) -> *mut T {
        unsafe { self.0.add(offset) }
    }
}

/// Elements per task of [`for_each_chunk`] (64 KiB of f32).
#[cfg(feature = "rayon")]
pub(crate) const ELEMENTWISE_CHUNK: usize = 16 * 1024;

/// `task(start, chunk)` over `xs` cut into chunks of [`ELEMENTWISE_CHUNK`] elements, `start`
/// being the chunk's first index, in parallel from [`PARALLEL_THRESHOLD`] elements on (one
/// call over all of `xs` below that). The tasks read their inputs at `start..`.
///
/// The element-wise helpers below copy their operation (`Copy`) into a local inside the task,
/// so that what it captures is known not to change and the loop vectorises.
fn for_each_chunk<A: Send>(xs: &mut [A], task: impl Fn(usize, &mut [A]) + Sync) {
    #[cfg(feature = "rayon")]
    if xs.len() >= PARALLEL_THRESHOLD {
        use rayon::prelude::*;
        xs.par_chunks_mut(ELEMENTWISE_CHUNK)
            .enumerate()
            .for_each(|(i, chunk)| task(i * ELEMENTWISE_CHUNK, chunk));
        return;
    }
    task(0, xs);
}

/// `x = op(x)` for every element (see [`for_each_chunk`]).
pub(crate) fn map_inplace<E: Copy + Send, Op: Fn(E) -> E + Sync + Copy>(xs: &mut [E], op: Op) {
    for_each_chunk(xs, |_, xs| {
        let op = op;
        xs.iter_mut().for_each(|x| *x = op(*x));
    });
}

/// `[op(x) for x in xs]` (see [`for_each_chunk`]).
pub(crate) fn map<E: Copy + Sync, R: Send, Op: Fn(E) -> R + Sync + Copy>(
    xs: &[E],
    op: Op,
) -> Vec<R> {
    let mut out = unwritten::<R>(xs.len());
    for_each_chunk(&mut out, |start, out| {
        let op = op;
        for (o, &x) in out.iter_mut().zip(&xs[start..]) {
            o.write(op(x));
        }
    });
    // SAFETY: `out` is as long as `xs`, and every chunk was written in full.
    unsafe { written(out) }
}

/// `l = op(l, r)` element by element, `rs` at least as long as `ls` (see [`for_each_chunk`]).
pub(crate) fn zip_inplace<E: Copy + Send + Sync, Op: Fn(E, E) -> E + Sync + Copy>(
    ls: &mut [E],
    rs: &[E],
    op: Op,
) {
    for_each_chunk(ls, |start, ls| {
        let op = op;
        for (l, &r) in ls.iter_mut().zip(&rs[start..]) {
            *l = op(*l, r);
        }
    });
}

/// `[op(l, r) for (l, r) in zip(ls, rs)]`, as long as the shorter (see [`for_each_chunk`]).
pub(crate) fn zip_map<E: Copy + Sync, R: Send, Op: Fn(E, E) -> R + Sync + Copy>(
    ls: &[E],
    rs: &[E],
    op: Op,
) -> Vec<R> {
    let mut out = unwritten::<R>(ls.len().min(rs.len()));
    for_each_chunk(&mut out, |start, out| {
        let op = op;
        for ((o, &l), &r) in out.iter_mut().zip(&ls[start..]).zip(&rs[start..]) {
            o.write(op(l, r));
        }
    });
    // SAFETY: `out` is no longer than `ls` or `rs`, and every chunk was written in full.
    unsafe { written(out) }
}

/// `kernel(l, r)` on matching chunks of `ls` and `rs` (of equal length), for in-place kernels
/// that vectorise by themselves (see [`for_each_chunk`]).
#[cfg(feature = "simd")]
pub(crate) fn zip_chunks_inplace<E: Send + Sync>(
    ls: &mut [E],
    rs: &[E],
    kernel: impl Fn(&mut [E], &[E]) + Sync,
) {
    debug_assert_eq!(ls.len(), rs.len());
    for_each_chunk(ls, |start, ls| kernel(ls, &rs[start..start + ls.len()]));
}

/// `len` elements, each written before it is read (no pass that zeroes them).
pub(crate) fn unwritten<T>(len: usize) -> Vec<MaybeUninit<T>> {
    let mut v = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit` needs no initialisation; capacity is `len`.
    unsafe { v.set_len(len) };
    v
}

/// The vector of the values written into `v`.
///
/// # Safety
/// Every element of `v` has been written.
pub(crate) unsafe fn written<T>(v: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut v = ManuallyDrop::new(v);
    // SAFETY: `MaybeUninit<T>` has the layout of `T`, and every element is initialised.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<T>(), v.len(), v.capacity()) }
}

/// Read a float tensor's storage as f32 values, regardless of source dtype.
/// Returns a borrowed slice for F32 (zero-copy) and an owned Vec for other
/// float dtypes (F64, F16, BF16).
///
/// Returns elements in underlying buffer order. Callers needing logical
/// iteration order must call `to_contiguous()` first.
///
/// # Panics
/// Panics if the tensor's dtype is not one of F32, F64, F16, or BF16.
pub(crate) fn float_storage_as_f32(tensor: &FlexTensor) -> Cow<'_, [f32]> {
    match tensor.dtype() {
        DType::F32 => Cow::Borrowed(tensor.storage::<f32>()),
        DType::F64 => Cow::Owned(tensor.storage::<f64>().iter().map(|&x| x as f32).collect()),
        DType::F16 => Cow::Owned(
            tensor
                .storage::<f16>()
                .iter()
                .map(|x| f32::from(*x))
                .collect(),
        ),
        DType::BF16 => Cow::Owned(
            tensor
                .storage::<bf16>()
                .iter()
                .map(|x| f32::from(*x))
                .collect(),
        ),
        other => panic!("float_storage_as_f32: unsupported dtype {:?}", other),
    }
}

pub mod activation;
pub mod attention;
pub mod binary;
mod bool;
pub mod cat;
pub mod comparison;
#[macro_use]
mod conv_common;
pub mod conv;
pub mod conv_transpose;
pub mod cumulative;
pub mod deform_conv;
pub mod expand;
#[cfg(feature = "fft")]
pub mod fft;
pub mod flip;
mod float;
pub mod gather_scatter;
pub mod grid_sample;
mod int;
pub mod interpolate;
pub mod mask;
pub mod matmul;
mod module;
pub mod pool;
mod qtensor;
pub mod reduce;
pub mod repeat_dim;
mod shifted;
pub mod slice;
pub mod sort;
mod transaction;
pub mod unary;
pub mod unfold;
mod weight_grad;
mod winograd;

//! The patched dependencies (`patches/`, see `patches/README.md`): burn's f32 `tanh` on the CPU
//! backend is `burn_flex::ops::unary::tanh_f32`, within a few ulp of the exact value
//! everywhere; its 2-D convolutions, transposed convolutions and their gradients equal their
//! defining sums; `leaky_relu` and its own backward equal their definitions; matrix products
//! write every element of their (unzeroed) output; element-wise operations on large tensors
//! (run in parallel chunks) equal their definitions. A separate test binary: it needs the default
//! f32 device.

use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};
use burn_flex::ops::unary::tanh_f32;

#[test]
fn f32_tanh_is_within_eight_ulp_of_the_exact_value() {
    // A dense even grid over [-10, 10] and a geometric one over 1e-9 .. 10 (both signs),
    // against the f64 tanh rounded to f32.
    let grid = (0..=2_000_000).map(|i| -10.0 + 20.0 * i as f64 / 2e6);
    let geometric = (0..=20_000)
        .map(|i| 1e-9 * 10f64.powf(10.0 * i as f64 / 2e4))
        .flat_map(|x| [x, -x]);
    let mut worst = 0u32;
    for x in grid.chain(geometric).map(|x| x as f32) {
        let exact = (x as f64).tanh() as f32;
        let got = tanh_f32(x);
        assert_eq!(
            exact.is_sign_negative(),
            got.is_sign_negative(),
            "tanh({x})"
        );
        assert!(got.abs() <= 1.0, "tanh({x}) = {got} lies outside [-1, 1]");
        worst = worst.max(exact.to_bits().abs_diff(got.to_bits()));
    }
    assert!(worst <= 8, "{worst} ulp");
    for (x, y) in [(30.0f32, 1.0f32), (f32::INFINITY, 1.0), (-1e30, -1.0)] {
        assert_eq!(tanh_f32(x), y, "tanh({x})");
    }
    assert_eq!(tanh_f32(-0.0).to_bits(), (-0.0f32).to_bits());
    assert!(tanh_f32(f32::NAN).is_nan());
    for x in [1e-6f32, 0.3, 1.7, 4.0] {
        assert_eq!(tanh_f32(-x), -tanh_f32(x));
    }
}

#[test]
fn burns_f32_tanh_on_the_cpu_is_the_patched_one() {
    let device = Device::flex();
    let xs: Vec<f32> = (0..1000).map(|i| -12.0 + 0.024 * i as f32).collect();
    let t = Tensor::<1>::from_data(TensorData::new(xs.clone(), [xs.len()]), &device);
    let got: Vec<f32> = t.tanh().into_data().try_to_vec::<f32>().unwrap();
    for (x, y) in xs.iter().zip(&got) {
        assert_eq!(y.to_bits(), tanh_f32(*x).to_bits(), "tanh({x})");
    }
}

/// Deterministic values in [−1, 1).
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn tensor(shape: [usize; 4], seed: u64, device: &Device) -> (Vec<f32>, Tensor<4>) {
    let v = values(shape.iter().product(), seed);
    let t = Tensor::<4>::from_data(TensorData::new(v.clone(), shape), device);
    (v, t)
}

/// A convolution's geometry: `[batch, c, h, w]` read through a `[kh, kw]` kernel at `stride`,
/// `dilation`, padding `(begin, end)` per axis, in `groups` groups, to `m` channels.
#[derive(Clone, Copy, Debug)]
struct Case {
    x: [usize; 4],
    m: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
    groups: usize,
}

impl Case {
    fn out(&self, axis: usize) -> usize {
        let (b, e) = self.padding[axis];
        (self.x[2 + axis] + b + e - self.dilation[axis] * (self.kernel[axis] - 1) - 1)
            / self.stride[axis]
            + 1
    }

    /// `Σ_{b, oh, ow} g[b, m, oh, ow] · x[b, c, oh·s + i·d − p, ow·s + j·d − p]` over the group
    /// of `m`, for every `[m, c / groups, i, j]` (f64).
    fn defining_sum(&self, x: &[f32], g: &[f32]) -> Vec<f64> {
        let [batch, c, h, w] = self.x;
        let (oh, ow) = (self.out(0), self.out(1));
        let (cg, mg) = (c / self.groups, self.m / self.groups);
        let [kh, kw] = self.kernel;
        let mut out = vec![0.0; self.m * cg * kh * kw];
        for m in 0..self.m {
            for cl in 0..cg {
                let ch = (m / mg) * cg + cl;
                for i in 0..kh {
                    for j in 0..kw {
                        let mut sum = 0.0;
                        for b in 0..batch {
                            for r in 0..oh {
                                let ih = (r * self.stride[0] + i * self.dilation[0]) as isize
                                    - self.padding[0].0 as isize;
                                if ih < 0 || ih >= h as isize {
                                    continue;
                                }
                                for q in 0..ow {
                                    let iw = (q * self.stride[1] + j * self.dilation[1]) as isize
                                        - self.padding[1].0 as isize;
                                    if iw < 0 || iw >= w as isize {
                                        continue;
                                    }
                                    let gv = g[((b * self.m + m) * oh + r) * ow + q] as f64;
                                    let xv = x[((b * c + ch) * h + ih as usize) * w + iw as usize];
                                    sum += gv * xv as f64;
                                }
                            }
                        }
                        out[((m * cg + cl) * kh + i) * kw + j] = sum;
                    }
                }
            }
        }
        out
    }
}

fn assert_close(got: &[f32], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let scale = want.iter().fold(1.0f64, |a, v| a.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (*g as f64 - w).abs() <= 2e-5 * scale,
            "{what}: element {i}: {g} against {w}"
        );
    }
}

fn gradient(t: Tensor<4>, grads: &burn::tensor::Gradients) -> Vec<f32> {
    t.grad(grads)
        .expect("a gradient")
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

#[test]
fn conv_weight_gradients_equal_their_defining_sums() {
    let device = Device::flex().autodiff();
    let case = |x, m, kernel, stride, padding, dilation, groups| Case {
        x,
        m,
        kernel,
        stride,
        padding,
        dilation,
        groups,
    };
    let cases = [
        // The HGN's shapes: a 3×3 "same" convolution, and a stride-2 one.
        case([2, 3, 8, 8], 4, [3, 3], [1, 1], [(1, 1); 2], [1, 1], 1),
        case([3, 4, 9, 7], 5, [4, 4], [2, 2], [(1, 2), (2, 1)], [1, 1], 1),
        case(
            [2, 3, 11, 10],
            2,
            [3, 2],
            [1, 2],
            [(0, 0), (1, 0)],
            [2, 3],
            1,
        ),
        case([2, 4, 6, 6], 6, [3, 3], [1, 1], [(1, 1); 2], [1, 1], 2),
        // From 32 input channels the gradient is a GEMM over a column buffer (below, burn's
        // default); here with batch items enough for the buffer to be filled twice.
        case([16, 32, 32, 32], 4, [3, 3], [1, 1], [(1, 1); 2], [1, 1], 1),
        case([3, 40, 9, 7], 5, [4, 4], [2, 2], [(1, 1); 2], [1, 1], 1),
    ];
    for (n, c) in cases.iter().enumerate() {
        let (xv, x) = tensor(c.x, 3 * n as u64 + 1, &device);
        let (_, w) = tensor(
            [c.m, c.x[1] / c.groups, c.kernel[0], c.kernel[1]],
            3 * n as u64 + 2,
            &device,
        );
        let w = w.require_grad();
        let (gv, g) = tensor([c.x[0], c.m, c.out(0), c.out(1)], 3 * n as u64 + 3, &device);
        let options = ConvOptions {
            stride: c.stride,
            padding: c.padding,
            dilation: c.dilation,
            groups: c.groups,
        };
        let y = conv2d(x, w.clone(), None, options);
        assert_eq!(y.dims(), g.dims(), "{c:?}");
        let grads = (y * g).sum().backward();
        assert_close(
            &gradient(w, &grads),
            &c.defining_sum(&xv, &gv),
            &format!("conv2d {c:?}"),
        );
    }
    // A transposed convolution's weight gradient is the convolution's sum with the roles of its
    // input and its output's gradient swapped.
    for (n, (c, padding_out)) in [
        (
            case([2, 3, 9, 9], 4, [4, 4], [2, 2], [(1, 1); 2], [1, 1], 1),
            [1, 1],
        ),
        (
            case([2, 32, 9, 9], 4, [4, 4], [2, 2], [(1, 1); 2], [1, 1], 1),
            [1, 1],
        ),
        (
            case([2, 4, 8, 8], 6, [3, 3], [2, 1], [(1, 1); 2], [1, 2], 2),
            [1, 0],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (gv, g) = tensor(c.x, 3 * n as u64 + 50, &device);
        let (xv, x) = tensor(
            [c.x[0], c.m, c.out(0), c.out(1)],
            3 * n as u64 + 51,
            &device,
        );
        let (_, w) = tensor(
            [c.m, c.x[1] / c.groups, c.kernel[0], c.kernel[1]],
            3 * n as u64 + 52,
            &device,
        );
        let w = w.require_grad();
        let options = ConvTransposeOptions::new(
            c.stride,
            [c.padding[0].0, c.padding[1].0],
            padding_out,
            c.dilation,
            c.groups,
        );
        let y = conv_transpose2d(x, w.clone(), None, options);
        assert_eq!(y.dims(), g.dims(), "{c:?}");
        let grads = (y * g).sum().backward();
        // dW[m, c', i, j] = Σ x[b, m, ih, iw] · g[b, c, ih·s + i·d − p, iw·s + j·d − p]: the
        // convolution's sum reading g through the kernel and contracting with x.
        assert_close(
            &gradient(w, &grads),
            &c.defining_sum(&gv, &xv),
            &format!("conv_transpose2d {c:?}"),
        );
    }
}

impl Case {
    /// `y[b, m, r, q] = Σ_{c, i, j} w[m, c, i, j] · x[b, c, r·s + i·d − p, q·s + j·d − p]` and,
    /// given `g` for `y`, `dx[b, c, ih, iw] = Σ_{m, r, q, i, j} g[b, m, r, q] · w[m, c, i, j]`
    /// over the `(r, q, i, j)` that read `(ih, iw)` (one group, f64).
    fn defining_conv_and_input_grad(&self, x: &[f32], w: &[f32], g: &[f32]) -> [Vec<f64>; 2] {
        let [batch, c, h, wd] = self.x;
        let (oh, ow) = (self.out(0), self.out(1));
        let [kh, kw] = self.kernel;
        let mut y = vec![0.0; batch * self.m * oh * ow];
        let mut dx = vec![0.0; x.len()];
        for b in 0..batch {
            for m in 0..self.m {
                for r in 0..oh {
                    for q in 0..ow {
                        let at = ((b * self.m + m) * oh + r) * ow + q;
                        for ch in 0..c {
                            for i in 0..kh {
                                let ih = (r * self.stride[0] + i * self.dilation[0]) as isize
                                    - self.padding[0].0 as isize;
                                if ih < 0 || ih >= h as isize {
                                    continue;
                                }
                                for j in 0..kw {
                                    let iw = (q * self.stride[1] + j * self.dilation[1]) as isize
                                        - self.padding[1].0 as isize;
                                    if iw < 0 || iw >= wd as isize {
                                        continue;
                                    }
                                    let xi = ((b * c + ch) * h + ih as usize) * wd + iw as usize;
                                    let wv = w[((m * c + ch) * kh + i) * kw + j] as f64;
                                    y[at] += wv * x[xi] as f64;
                                    dx[xi] += wv * g[at] as f64;
                                }
                            }
                        }
                    }
                }
            }
        }
        [y, dx]
    }
}

#[test]
fn stride_one_convolutions_and_their_input_gradients_equal_their_defining_sums() {
    // Stride-1 convolutions (forward, input gradient through the transposed convolution, and
    // weight gradient) run as shifted matrix products over a padded buffer: the HGN decoder's and
    // Hamiltonian's 3×3 "same" layers, the encoder's 4×4 "same" one (asymmetric padding), a
    // dilated one, and enough images for several chunks.
    let device = Device::flex().autodiff();
    let case = |x, m, kernel, padding, dilation| Case {
        x,
        m,
        kernel,
        stride: [1, 1],
        padding,
        dilation,
        groups: 1,
    };
    let cases = [
        case([2, 3, 8, 8], 4, [3, 3], [(1, 1); 2], [1, 1]),
        case([2, 5, 16, 14], 3, [4, 4], [(1, 2), (1, 2)], [1, 1]),
        case([1, 3, 20, 20], 4, [3, 3], [(2, 2); 2], [2, 2]),
        case([12, 16, 32, 32], 16, [3, 3], [(1, 1); 2], [1, 1]),
        // 3×3 kernels between 16 or more channels on each side and 2,048 or more channel pairs
        // run by Winograd's F(2×2, 3×3), forward and input gradient alike: odd output sizes (a
        // tile row and column half outside), more output channels than a product's row block,
        // "valid" and asymmetric padding.
        case([3, 48, 9, 7], 50, [3, 3], [(1, 1); 2], [1, 1]),
        case([2, 32, 8, 8], 64, [3, 3], [(0, 0); 2], [1, 1]),
        case([2, 40, 6, 5], 64, [3, 3], [(2, 1), (0, 2)], [1, 1]),
    ];
    for (n, c) in cases.iter().enumerate() {
        let (xv, x) = tensor(c.x, 5 * n as u64 + 100, &device);
        let (wv, w) = tensor(
            [c.m, c.x[1], c.kernel[0], c.kernel[1]],
            5 * n as u64 + 101,
            &device,
        );
        let (x, w) = (x.require_grad(), w.require_grad());
        let (gv, g) = tensor(
            [c.x[0], c.m, c.out(0), c.out(1)],
            5 * n as u64 + 102,
            &device,
        );
        let options = ConvOptions {
            stride: c.stride,
            padding: c.padding,
            dilation: c.dilation,
            groups: 1,
        };
        // A bias, added as the output is copied out of the padded grid.
        let bv = values(c.m, 5 * n as u64 + 103);
        let b = Tensor::<1>::from_data(TensorData::new(bv.clone(), [c.m]), &device);
        let y = conv2d(x.clone(), w.clone(), Some(b.clone()), options.clone());
        let [mut want_y, want_dx] = c.defining_conv_and_input_grad(&xv, &wv, &gv);
        let plane = c.out(0) * c.out(1);
        for (i, v) in want_y.iter_mut().enumerate() {
            *v += bv[(i / plane) % c.m] as f64;
        }
        let got_y = y.clone().into_data().try_to_vec::<f32>().unwrap();
        assert_close(&got_y, &want_y, &format!("conv2d {c:?}"));
        // The transposed convolution adds its bias the same way.
        let (_, t) = tensor([c.x[0], c.x[1], 6, 7], 5 * n as u64 + 104, &device);
        let transpose = |bias| {
            let options = ConvTransposeOptions::new([1, 1], [1, 1], [0, 0], [1, 1], 1);
            let wt = Tensor::<4>::from_data(
                TensorData::new(wv.clone(), [c.x[1], c.m, c.kernel[0], c.kernel[1]]),
                &device,
            );
            conv_transpose2d(t.clone(), wt, bias, options)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (with, without) = (transpose(Some(b.clone())), transpose(None));
        let plane = with.len() / (c.x[0] * c.m);
        let want: Vec<f64> = without
            .iter()
            .enumerate()
            .map(|(i, &v)| (v + bv[(i / plane) % c.m]) as f64)
            .collect();
        assert_close(&with, &want, &format!("conv_transpose2d with bias {c:?}"));
        let grads = (y * g).sum().backward();
        assert_close(
            &gradient(x, &grads),
            &want_dx,
            &format!("input gradient {c:?}"),
        );
        assert_close(
            &gradient(w, &grads),
            &c.defining_sum(&xv, &gv),
            &format!("weight gradient {c:?}"),
        );
    }
}

/// burn's `leaky_relu` on the autodiff CPU device, f32, through the patched burn-autodiff
/// override (forward burn-flex's one pass, backward `leaky_relu_backward`): value and gradient
/// against their definitions, on a tensor large enough for every parallel path, zeros included.
#[test]
fn leaky_relu_and_its_backward_equal_their_definitions() {
    let device = Device::flex().autodiff();
    let shape = [8, 16, 32, 32];
    let (mut xs, _) = tensor(shape, 41, &device);
    for v in xs.iter_mut().step_by(97) {
        *v = 0.0;
    }
    let (w, weights) = tensor(shape, 43, &device);
    for slope in [0.01f32, 0.2] {
        let x = Tensor::<4>::from_data(TensorData::new(xs.clone(), shape), &device).require_grad();
        let y = burn::tensor::activation::leaky_relu(x.clone(), slope as f64);
        let grads = (y.clone() * weights.clone()).sum().backward();
        let grad = x
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let ys = y.into_data().try_to_vec::<f32>().unwrap();
        for i in 0..xs.len() {
            assert_eq!(ys[i], xs[i].max(slope * xs[i]), "value at {}", xs[i]);
            let want = if xs[i] > 0.0 { w[i] } else { slope * w[i] };
            assert_eq!(grad[i], want, "slope {slope}: gradient at {}", xs[i]);
        }
    }
}

/// `lhs · rhs` for `[batch, m, k] · [batch or 1, k, n]`, summed in f64.
fn matmul_sum(lhs: &[f32], rhs: &[f32], [b, m, k, n]: [usize; 4], rhs_batch: usize) -> Vec<f64> {
    let mut out = vec![0.0; b * m * n];
    for bi in 0..b {
        let r = if rhs_batch == 1 { 0 } else { bi };
        for i in 0..m {
            for j in 0..n {
                out[(bi * m + i) * n + j] = (0..k)
                    .map(|l| lhs[(bi * m + i) * k + l] as f64 * rhs[(r * k + l) * n + j] as f64)
                    .sum();
            }
        }
    }
    out
}

#[test]
fn matrix_products_write_every_element_of_their_uninitialised_output() {
    // burn-flex's matmul allocates its output without zeroing it. An element it did not
    // write differs from the defining sum; for k = 0, where the sum is zero, each case first
    // frees a NaN-filled buffer of the output's size, which the allocator tends to hand out
    // again, so that an unwritten element shows up as NaN rather than as a fresh page's zero.
    // The cases cover the 2-D path, the batched one (serial, parallel over the batch, parallel
    // inside each product), a broadcast right-hand side, a transposed (strided) one, and k = 0
    // (all zeros).
    let device = Device::flex();
    let cases = [
        // (batch or 0 for 2-D, m, k, n, right-hand batch, right-hand side transposed)
        (0, 7, 5, 9, 1, false),
        (0, 200, 200, 200, 1, true),
        (0, 4, 0, 6, 1, false),
        (3, 7, 5, 9, 3, false),
        (8, 64, 64, 64, 1, false),
        (8, 64, 64, 64, 8, true),
        (2, 200, 200, 200, 2, false),
        (3, 4, 0, 6, 3, false),
    ];
    for (seed, (batch, m, k, n, rhs_batch, transposed)) in cases.into_iter().enumerate() {
        let b = batch.max(1);
        let lhs = values(b * m * k, 2 * seed as u64 + 1);
        let rhs = values(rhs_batch * k * n, 2 * seed as u64 + 2);
        let want = matmul_sum(&lhs, &rhs, [b, m, k, n], rhs_batch);
        // The right-hand side stored as [n, k] and transposed back: a strided operand.
        let stored: Vec<f32> = if transposed {
            (0..rhs_batch * n * k)
                .map(|i| {
                    let (r, j, l) = (i / (n * k), i / k % n, i % k);
                    rhs[(r * k + l) * n + j]
                })
                .collect()
        } else {
            rhs.clone()
        };
        let what = format!("batch {batch}, {m}×{k}·{k}×{n}, transposed {transposed}");
        let got = if batch == 0 {
            let l = Tensor::<2>::from_data(TensorData::new(lhs.clone(), [m, k]), &device);
            let r = if transposed {
                Tensor::<2>::from_data(TensorData::new(stored, [n, k]), &device).transpose()
            } else {
                Tensor::<2>::from_data(TensorData::new(stored, [k, n]), &device)
            };
            drop(vec![f32::NAN; m * n]);
            l.matmul(r).into_data()
        } else {
            let l = Tensor::<3>::from_data(TensorData::new(lhs.clone(), [b, m, k]), &device);
            let r = if transposed {
                Tensor::<3>::from_data(TensorData::new(stored, [rhs_batch, n, k]), &device)
                    .swap_dims(1, 2)
            } else {
                Tensor::<3>::from_data(TensorData::new(stored, [rhs_batch, k, n]), &device)
            };
            drop(vec![f32::NAN; b * m * n]);
            l.matmul(r).into_data()
        };
        let got = got.try_to_vec::<f32>().unwrap();
        assert_close(&got, &want, &what);
        if k == 0 {
            assert!(got.iter().all(|v| *v == 0.0), "{what}: {got:?}");
        }
    }
}

#[test]
fn element_wise_operations_on_large_tensors_equal_their_definitions() {
    // From 256 Ki elements burn-flex runs unary, binary and scalar element-wise operations in
    // parallel chunks of 16 Ki. A length that is no multiple of the chunk, and every path:
    // in place on a uniquely owned operand (either side), into a new buffer when both are
    // shared, through a SIMD kernel (subtraction) and through a closure (remainder).
    let device = Device::flex();
    let n = 600_001;
    let (xs, ys) = (values(n, 51), values(n, 52));
    let fresh = |v: &[f32]| Tensor::<1>::from_data(TensorData::new(v.to_vec(), [n]), &device);
    let (x, y) = (fresh(&xs), fresh(&ys));
    let vec = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    let check = |got: Vec<f32>, want: &dyn Fn(usize) -> f32, what: &str| {
        assert_eq!(got.len(), n, "{what}");
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g.to_bits(), want(i).to_bits(), "{what}: element {i}");
        }
    };
    let leaky = |i: usize| xs[i].max(0.1 * xs[i]);
    let rem = |a: f32, b: f32| {
        let r = a % b;
        if r != 0.0 && (r < 0.0) != (b < 0.0) {
            r + b
        } else {
            r
        }
    };
    use burn::tensor::activation::leaky_relu;
    check(vec(leaky_relu(fresh(&xs), 0.1)), &leaky, "leaky, in place");
    check(vec(leaky_relu(x.clone(), 0.1)), &leaky, "leaky, new buffer");
    let sub = |i: usize| xs[i] - ys[i];
    check(vec(fresh(&xs) - y.clone()), &sub, "sub, in place on lhs");
    check(vec(x.clone() - fresh(&ys)), &sub, "sub, in place on rhs");
    check(vec(x.clone() - y.clone()), &sub, "sub, new buffer");
    let remainder = |i: usize| rem(xs[i], ys[i]);
    check(
        vec(fresh(&xs).remainder(y.clone())),
        &remainder,
        "remainder, in place",
    );
    check(
        vec(x.clone().remainder(y.clone())),
        &remainder,
        "remainder, new buffer",
    );
    let scalar = |i: usize| rem(xs[i], 0.3);
    check(
        vec(fresh(&xs).remainder_scalar(0.3)),
        &scalar,
        "scalar, in place",
    );
    check(
        vec(x.clone().remainder_scalar(0.3)),
        &scalar,
        "scalar, new buffer",
    );
}

#[test]
fn broadcast_element_wise_operations_on_large_tensors_equal_their_definitions() {
    // From 256 Ki elements burn-flex cuts a broadcast operation's loop nest into blocks of its
    // outermost dim and runs them in parallel: into a new buffer, in place on a uniquely owned
    // operand (either side), against a row, a column and a transposed (strided) operand, and
    // comparisons. 37 · 1,000 · 47 elements: blocks that are no multiple of anything.
    let device = Device::flex();
    let [a, b, c] = [37, 1000, 47];
    let n = a * b * c;
    let xs = values(n, 61);
    let rows = values(c, 62);
    let cols = values(a * b, 63);
    let ts = values(n, 64); // laid out [a, c, b]
    let x = |v: &[f32]| Tensor::<3>::from_data(TensorData::new(v.to_vec(), [a, b, c]), &device);
    let row = Tensor::<3>::from_data(TensorData::new(rows.clone(), [1, 1, c]), &device);
    let col = Tensor::<3>::from_data(TensorData::new(cols.clone(), [a, b, 1]), &device);
    let transposed =
        Tensor::<3>::from_data(TensorData::new(ts.clone(), [a, c, b]), &device).swap_dims(1, 2);
    let shared = x(&xs);
    let at = |i: usize| (i / (b * c), i / c % b, i % c);
    let check = |got: Tensor<3>, want: &dyn Fn(usize) -> f32, what: &str| {
        let got = got.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(got.len(), n, "{what}");
        for (i, g) in got.iter().enumerate() {
            assert_eq!(g.to_bits(), want(i).to_bits(), "{what}: element {i} of {n}");
        }
    };
    let minus_row = |i: usize| xs[i] - rows[at(i).2];
    check(x(&xs) - row.clone(), &minus_row, "x - row, in place on x");
    check(
        shared.clone() - row.clone(),
        &minus_row,
        "x - row, new buffer",
    );
    let row_minus = |i: usize| rows[at(i).2] - xs[i];
    check(row.clone() - x(&xs), &row_minus, "row - x, in place on x");
    let times_col = |i: usize| xs[i] * cols[i / c];
    check(shared.clone() * col.clone(), &times_col, "x * column");
    let outer = |i: usize| cols[i / c] + rows[at(i).2];
    check(col.clone() + row.clone(), &outer, "column + row");
    let plus_t = |i: usize| {
        let (p, q, r) = at(i);
        xs[i] + ts[(p * c + r) * b + q]
    };
    check(
        x(&xs) + transposed.clone(),
        &plus_t,
        "x + transposed, in place",
    );
    check(
        shared.clone() + transposed,
        &plus_t,
        "x + transposed, new buffer",
    );
    let greater = shared.greater(row).int().into_data().convert::<i64>();
    let greater = greater.try_to_vec::<i64>().unwrap();
    for (i, g) in greater.iter().enumerate() {
        assert_eq!(*g == 1, xs[i] > rows[at(i).2], "x > row: element {i}");
    }
}

#[test]
fn sums_over_leading_and_middle_dims_equal_their_definitions_on_any_thread_count() {
    // From 256 Ki terms burn-flex sums a leading or middle dim in parallel blocks of outputs,
    // each output summed in one task in the serial order: the result is the serial one, bit
    // for bit, whatever the number of threads.
    let device = Device::flex();
    let [a, b, c] = [23, 700, 47];
    let xs = values(a * b * c, 71);
    let x = Tensor::<3>::from_data(TensorData::new(xs.clone(), [a, b, c]), &device);
    let wide = Tensor::<3>::from_data(TensorData::new(xs.clone(), [1, a, b * c]), &device);
    let sums = || {
        [
            x.clone().sum_dim(0),
            x.clone().sum_dim(1),
            wide.clone().sum_dim(1),
        ]
        .map(|t| t.into_data().try_to_vec::<f32>().unwrap())
    };
    let pool = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    };
    let one = pool(1).install(sums);
    let three = pool(3).install(sums);
    let v = |p: usize, q: usize, r: usize| xs[(p * b + q) * c + r] as f64;
    let over_first: Vec<f64> = (0..b * c)
        .map(|i| (0..a).map(|p| v(p, i / c, i % c)).sum())
        .collect();
    let over_middle: Vec<f64> = (0..a * c)
        .map(|i| (0..b).map(|q| v(i / c, q, i % c)).sum())
        .collect();
    let what = [
        "sum over dim 0",
        "sum over dim 1",
        "sum over dim 1 of [1, a, b·c]",
    ];
    for (k, want) in [&over_first, &over_middle, &over_first]
        .into_iter()
        .enumerate()
    {
        assert_close(&one[k], want, what[k]);
        let same = one[k].iter().zip(&three[k]);
        assert!(
            same.clone().all(|(p, q)| p.to_bits() == q.to_bits()),
            "{}: 1 and 3 threads differ",
            what[k]
        );
    }
}

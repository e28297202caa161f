//! The patched dependency (`patches/burn-flex`, see `patches/README.md`): burn's f32 `tanh` on
//! the CPU backend is `burn_flex::ops::unary::tanh_f32`, within a few ulp of the exact value
//! everywhere. A separate test binary: it needs the default f32 device.

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

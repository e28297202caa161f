//! Exactness of the explicit Hamiltonian gradients and of the latent integrators, in f64 on the
//! CPU backend. A separate test binary, so configuring the device for f64 affects nothing else.

mod common;

use burn::module::Param;
use burn::tensor::{DType, Device, Distribution, Tensor, TensorData};
use hgn::model::{
    ConvEnergyConfig, HamiltonianNet, HamiltonianNetConfig, IntegratorKind, LatentHamiltonian,
    rollout,
};

/// The f64 CPU device of this binary, seeded with 7.
fn f64_device() -> Device {
    common::f64_device(7)
}

fn values(t: Tensor<4>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

fn normal(shape: [usize; 4], device: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

#[test]
fn the_device_really_computes_in_f64() {
    let device = f64_device().autodiff();
    let x = normal([1, 1, 2, 2], &device);
    assert_eq!(x.dtype(), DType::F64);
    let one = Tensor::<1>::from_data(TensorData::new(vec![1.0f64 + 1e-12], [1]), &device);
    let v = scalar(one.sub_scalar(1.0));
    assert!((v - 1e-12).abs() < 1e-15, "not f64: {v}");
}

#[test]
fn explicit_energy_gradient_matches_autodiff() {
    let device = f64_device().autodiff();
    // The paper's conv stack, and the MLP of a vector state (run as matrix products).
    for (channels, size) in [(16, 4), (3, 5), (32, 4), (3, 1)] {
        let net = if size == 1 {
            ConvEnergyConfig::mlp(channels, 8).init(&device)
        } else {
            ConvEnergyConfig::paper(channels, size).init(&device)
        };
        let x = normal([3, channels, size, size], &device).require_grad();
        let (energy, explicit) = net.energy_and_grad(x.clone());
        let grads = energy.sum().backward();
        let auto = x.grad(&grads).expect("x is tracked");
        let err = relative_error(&values(explicit), &values(auto));
        assert!(
            err <= 1e-10,
            "{channels}×{size}×{size}: relative error {err:e}"
        );
    }
}

#[test]
fn joint_hamiltonian_gradients_match_autodiff() {
    let device = f64_device().autodiff();
    // Learned K(p) net, one joint net, and the fixed K(p) = |p|²/(2m) of the tiny preset, on
    // latent maps (16×4×4) and on vector states (3×1×1, MLP energies).
    for (separable, mass, channels, size) in [
        (true, None, 16, 4),
        (false, None, 16, 4),
        (true, Some(0.7), 16, 4),
        (true, None, 3, 1),
        (false, None, 3, 1),
        (true, Some(0.7), 3, 1),
    ] {
        let h = HamiltonianNetConfig::new(channels, size)
            .with_separable(separable)
            .with_kinetic_mass(mass)
            .with_width(8)
            .init(&device);
        assert_eq!(h.kinetic.is_none(), mass.is_some() || !separable);
        let q = normal([2, channels, size, size], &device).require_grad();
        let p = normal([2, channels, size, size], &device).require_grad();
        let grads = h.energy(q.clone(), p.clone()).sum().backward();
        let auto_q = values(q.grad(&grads).unwrap());
        let auto_p = values(p.grad(&grads).unwrap());
        let err_q = relative_error(&values(h.dh_dq(q.clone(), p.clone())), &auto_q);
        let err_p = relative_error(&values(h.dh_dp(q, p)), &auto_p);
        assert!(
            err_q <= 1e-10 && err_p <= 1e-10,
            "{channels}×{size}×{size}, separable {separable}, mass {mass:?}: {err_q:e}, {err_p:e}"
        );
    }
}

#[test]
fn paper_hamiltonian_has_the_published_parameter_count() {
    let device = f64_device();
    let net = ConvEnergyConfig::paper(16, 4).init(&device);
    use burn::module::Module;
    assert_eq!(net.num_params(), 46_049);
}

/// Selects one energy net of a Hamiltonian, mutably.
type PickNet = fn(&mut HamiltonianNet) -> &mut hgn::model::ConvEnergy;

/// A loss through a 3-step rollout: squared distance of every state from a fixed target.
fn rollout_loss(
    h: &HamiltonianNet,
    kind: IntegratorKind,
    q0: &Tensor<4>,
    p0: &Tensor<4>,
) -> Tensor<1> {
    let r = rollout(h, kind, q0.clone(), p0.clone(), 0.125, 3);
    let mut loss = Tensor::<1>::zeros([1], &q0.device());
    for (t, (q, p)) in r.q.into_iter().zip(r.p).enumerate() {
        let target = q0.clone().mul_scalar(0.3 * t as f64).sin();
        loss = loss + (q - target).square().sum() + p.square().sum().mul_scalar(0.1);
    }
    loss
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()[0]
}

#[test]
fn rollout_parameter_gradients_match_central_finite_differences() {
    let device = f64_device().autodiff();
    // Conv energies on 4×4×4 maps, and MLP energies on 3-vectors (the vector latent).
    for (separable, kind, channels, size) in [
        (true, IntegratorKind::Leapfrog, 4, 4),
        (false, IntegratorKind::Leapfrog, 4, 4),
        (true, IntegratorKind::Euler, 4, 4),
        (true, IntegratorKind::Leapfrog, 3, 1),
        (false, IntegratorKind::Leapfrog, 3, 1),
    ] {
        let h = HamiltonianNetConfig::new(channels, size)
            .with_separable(separable)
            .with_width(if size == 1 { 8 } else { 64 })
            .init(&device);
        let q0 = normal([2, channels, size, size], &device).mul_scalar(0.5);
        let p0 = normal([2, channels, size, size], &device).mul_scalar(0.5);
        let grads = rollout_loss(&h, kind, &q0, &p0).backward();
        let nets: Vec<(&str, PickNet)> = if separable {
            vec![
                ("U", |h| h.potential.as_mut().unwrap()),
                ("K", |h| h.kinetic.as_mut().unwrap()),
            ]
        } else {
            vec![("joint", |h| h.joint.as_mut().unwrap())]
        };
        for (name, pick) in nets {
            let layers = pick(&mut h.clone()).layers.len();
            assert_eq!(layers, if size == 1 { 3 } else { 5 });
            for layer in 0..layers {
                let mut probe = h.clone();
                let weight = pick(&mut probe).layers[layer].weight.val();
                let analytic = values(weight.grad(&grads).expect("weights are tracked"));
                let shape = weight.dims();
                let numel: usize = shape.iter().product();
                // Probe a few entries spread over the tensor.
                for index in [0, numel / 3, numel - 1] {
                    let eps = 1e-3;
                    let perturbed = |sign: f64| {
                        let mut copy = h.clone();
                        let mut w = values(pick(&mut copy).layers[layer].weight.val());
                        w[index] += sign * eps;
                        let w = Tensor::<4>::from_data(TensorData::new(w, shape), &device);
                        pick(&mut copy).layers[layer].weight = Param::from_tensor(w);
                        scalar(rollout_loss(&copy, kind, &q0, &p0))
                    };
                    let fd = (perturbed(1.0) - perturbed(-1.0)) / (2.0 * eps);
                    let err = (fd - analytic[index]).abs() / analytic[index].abs().max(1e-6);
                    assert!(
                        err <= 1e-4,
                        "{kind:?} {name} layer {layer} entry {index}: autodiff {} vs finite difference {fd}",
                        analytic[index]
                    );
                }
            }
        }
    }
}

/// `H = ½‖p‖² + ½k‖q‖²`, solved exactly by a rotation with `ω = √k`.
struct Oscillator {
    k: f64,
}

impl LatentHamiltonian for Oscillator {
    fn energy(&self, q: Tensor<4>, p: Tensor<4>) -> Tensor<1> {
        let b = q.dims()[0];
        (p.square() + q.square().mul_scalar(self.k))
            .mul_scalar(0.5)
            .sum_dims(&[1, 2, 3])
            .reshape([b])
    }
    fn dh_dq(&self, q: Tensor<4>, _p: Tensor<4>) -> Tensor<4> {
        q.mul_scalar(self.k)
    }
    fn dh_dp(&self, _q: Tensor<4>, p: Tensor<4>) -> Tensor<4> {
        p
    }
    fn is_separable(&self) -> bool {
        true
    }
}

/// `H = ½‖p‖² + Σ(1 − cos q)`: a field of independent pendulums.
struct Pendulums;

impl LatentHamiltonian for Pendulums {
    fn energy(&self, q: Tensor<4>, p: Tensor<4>) -> Tensor<1> {
        let b = q.dims()[0];
        (p.square().mul_scalar(0.5) - q.cos().add_scalar(-1.0))
            .sum_dims(&[1, 2, 3])
            .reshape([b])
    }
    fn dh_dq(&self, q: Tensor<4>, _p: Tensor<4>) -> Tensor<4> {
        q.sin()
    }
    fn dh_dp(&self, _q: Tensor<4>, p: Tensor<4>) -> Tensor<4> {
        p
    }
    fn is_separable(&self) -> bool {
        true
    }
}

fn state(values: &[f64], device: &Device) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [1, 1, 1, values.len()]),
        device,
    )
}

#[test]
fn integrators_converge_at_their_order() {
    let device = f64_device();
    let h = Oscillator { k: 2.0 };
    let (q0, p0) = ([1.0, -0.3, 0.5], [0.5, 0.8, -1.1]);
    let w = 2f64.sqrt();
    let total_time = 2.0;
    let error = |kind: IntegratorKind, steps: usize| {
        let r = rollout(
            &h,
            kind,
            state(&q0, &device),
            state(&p0, &device),
            total_time / steps as f64,
            steps,
        );
        let (q, p) = (values(r.q[steps].clone()), values(r.p[steps].clone()));
        let (s, c) = (w * total_time).sin_cos();
        (0..3)
            .map(|i| {
                let qe = q0[i] * c + p0[i] / w * s;
                let pe = -q0[i] * w * s + p0[i] * c;
                (q[i] - qe).abs().max((p[i] - pe).abs())
            })
            .fold(0.0, f64::max)
    };
    for kind in IntegratorKind::ALL {
        let (coarse, fine) = (error(kind, 40), error(kind, 80));
        let observed = (coarse / fine).log2();
        let expected = kind.order() as f64;
        assert!(
            (observed - expected).abs() < 0.3,
            "{kind:?}: observed order {observed:.2}, expected {expected}"
        );
    }
}

#[test]
fn leapfrog_forward_then_backward_returns_to_the_start() {
    let device = f64_device();
    let (q0, p0) = (
        state(&[2.0, -0.4, 1.0], &device),
        state(&[0.3, 1.5, -0.7], &device),
    );
    for kind in [IntegratorKind::Leapfrog, IntegratorKind::Yoshida4] {
        let fwd = rollout(&Pendulums, kind, q0.clone(), p0.clone(), 0.125, 200);
        let back = rollout(
            &Pendulums,
            kind,
            fwd.q[200].clone(),
            fwd.p[200].clone(),
            -0.125,
            200,
        );
        let err_q = relative_error(&values(back.q[200].clone()), &values(q0.clone()));
        let err_p = relative_error(&values(back.p[200].clone()), &values(p0.clone()));
        assert!(
            err_q < 1e-12 && err_p < 1e-12,
            "{kind:?}: {err_q:e}, {err_p:e}"
        );
        // And it really went somewhere.
        assert!(relative_error(&values(fwd.q[100].clone()), &values(q0.clone())) > 0.1);
    }
}

#[test]
fn symplectic_integrators_keep_the_energy_error_bounded_over_10000_steps() {
    let device = f64_device();
    let (q0, p0) = (
        state(&[2.0, -0.4, 1.0], &device),
        state(&[0.3, 1.5, -0.7], &device),
    );
    let energy = |q: &Tensor<4>, p: &Tensor<4>| scalar(Pendulums.energy(q.clone(), p.clone()));
    let h0 = energy(&q0, &p0);
    for kind in [IntegratorKind::Leapfrog, IntegratorKind::Yoshida4] {
        let r = rollout(&Pendulums, kind, q0.clone(), p0.clone(), 0.1, 10_000);
        let errors: Vec<f64> =
            r.q.iter()
                .zip(&r.p)
                .map(|(q, p)| (energy(q, p) - h0).abs() / h0)
                .collect();
        let early = errors[..1000].iter().cloned().fold(0.0, f64::max);
        let late = errors[9000..].iter().cloned().fold(0.0, f64::max);
        assert!(late < 1e-2, "{kind:?}: energy error {late:e}");
        assert!(
            late <= 1.5 * early + 1e-12,
            "{kind:?}: energy error grows from {early:e} to {late:e}"
        );
    }
    // Euler, by contrast, drifts.
    let r = rollout(
        &Pendulums,
        IntegratorKind::Euler,
        q0.clone(),
        p0.clone(),
        0.1,
        2000,
    );
    let last = (energy(&r.q[2000], &r.p[2000]) - h0).abs() / h0;
    assert!(last > 0.1, "Euler should visibly drift, got {last:e}");
}

#[test]
fn paper_preset_matches_deepminds_parameter_counts() {
    // DeepMind's hgn_paper_config sees 31 frames (93 input channels); reference §4.5.
    let device = f64_device();
    let model = hgn::model::HgnConfig::paper()
        .with_num_inference_frames(31)
        .init(&device);
    use burn::module::Module;
    assert_eq!(model.encoder.num_params(), 208_864);
    assert_eq!(model.transform.as_ref().unwrap().num_params(), 147_744);
    assert_eq!(
        model.hamiltonian.kinetic.as_ref().unwrap().num_params(),
        46_049
    );
    assert_eq!(
        model.hamiltonian.potential.as_ref().unwrap().num_params(),
        46_049
    );
    assert_eq!(model.decoder.as_ref().unwrap().num_params(), 196_835);
    assert_eq!(model.num_params(), 645_542);
}

#[test]
fn decoder_and_encoder_produce_the_documented_shapes() {
    let device = f64_device();
    let model = hgn::model::HgnConfig::paper().init(&device);
    let frames = Tensor::<5>::random([2, 5, 3, 32, 32], Distribution::Default, &device);
    let out = model.forward(frames, None, 0.125, 3);
    assert_eq!(out.mean.dims(), [2, 32, 4, 4]);
    assert_eq!(out.rollout.q.len(), 4);
    assert_eq!(out.rollout.q[0].dims(), [2, 16, 4, 4]);
    assert_eq!(out.reconstruction.dims(), [2, 4, 3, 32, 32]);
    let values = out
        .reconstruction
        .into_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap();
    assert!(
        values.iter().all(|v| *v > 0.0 && *v < 1.0),
        "decoder output must be in (0, 1)"
    );
}

#[test]
fn vector_latent_model_produces_the_documented_shapes() {
    let device = f64_device();
    let model = hgn::model::HgnConfig::tiny()
        .with_latent_dim(Some(3))
        .init(&device);
    let frames = Tensor::<5>::random([2, 5, 3, 32, 32], Distribution::Default, &device);
    let out = model.forward(frames, None, 0.125, 3);
    assert_eq!(out.mean.dims(), [2, 6, 1, 1]);
    assert_eq!(out.rollout.q[3].dims(), [2, 3, 1, 1]);
    assert_eq!(out.rollout.p[3].dims(), [2, 3, 1, 1]);
    assert_eq!(out.reconstruction.dims(), [2, 4, 3, 32, 32]);
    assert!(
        model.broadcast_decoder.is_some() && model.decoder.is_none(),
        "a vector latent decodes through the spatial broadcast decoder"
    );
    let h = &model.hamiltonian;
    assert!(h.kinetic.is_none(), "tiny fixes K(p) = |p|²/2");
    assert_eq!(h.potential.as_ref().unwrap().layers.len(), 3);
    let z = model.infer(
        Tensor::<5>::random([2, 5, 3, 32, 32], Distribution::Default, &device),
        None,
    );
    assert_eq!(z.0.dims(), [2, 3, 1, 1]);
}

#[test]
fn decoding_in_several_calls_gives_the_frames_of_one_call() {
    // On a GPU `decode_all` splits many states into decoder calls of at most
    // MAX_DECODED_PIXELS output pixels: every image must still decode to its own frame, in its
    // own place.
    use hgn::model::HgnConfig;
    let device = f64_device();
    for (what, config) in [
        ("plain decoder", HgnConfig::tiny()),
        ("residual decoder", HgnConfig::campusai()),
        (
            "broadcast decoder",
            HgnConfig::tiny().with_latent_dim(Some(2)),
        ),
    ] {
        let model = config.init(&device);
        let frames = Tensor::<5>::random([3, 5, 3, 32, 32], Distribution::Default, &device);
        let out = model.forward(frames, None, 0.125, 3);
        let qs = &out.rollout.q; // 4 states of 3 sequences: 12 images
        let one_call = model.decode_all_in_calls(qs, usize::MAX);
        // Calls of 5, 5 and 2 images, and of one image each.
        for max_pixels in [5 * 32 * 32, 1] {
            let calls = model.decode_all_in_calls(qs, max_pixels);
            assert_eq!(calls.dims(), [3, 4, 3, 32, 32], "{what}");
            let [a, b] = [&calls, &one_call].map(|t| t.clone().reshape([12, 3, 32, 32]));
            let error = relative_error(&values(a), &values(b));
            assert!(
                error < 1e-12,
                "{what}, {max_pixels} pixels a call: {error:e}"
            );
        }
        // `decode_all` (on the CPU one call, whatever the count) in the same layout.
        let default = model.decode_all(qs).reshape([12, 3, 32, 32]);
        assert_eq!(
            values(default),
            values(one_call.reshape([12, 3, 32, 32])),
            "{what}"
        );
    }
}

#[test]
fn campusai_preset_matches_the_published_parameter_counts_and_shapes() {
    // Reference §4.3/§4.5: encoder 262,880, transformer 83,104, H 50,657, decoder 196,739.
    use burn::module::Module;
    let device = f64_device();
    let config = hgn::model::HgnConfig::campusai();
    let model = config.init(&device);
    assert_eq!(model.encoder.num_params(), 262_880);
    assert_eq!(model.transform.as_ref().unwrap().num_params(), 83_104);
    assert_eq!(
        model.hamiltonian.joint.as_ref().unwrap().num_params(),
        50_657
    );
    assert_eq!(
        model.residual_decoder.as_ref().unwrap().num_params(),
        196_739
    );
    assert_eq!(model.num_params(), 593_380 + 1, "plus GECO's λ");
    let frames = Tensor::<5>::random([2, 5, 3, 32, 32], Distribution::Default, &device);
    let noise = normal([2, 48, 32, 32], &device);
    let out = model.forward(frames, Some(noise), 0.125, 2);
    assert_eq!(out.mean.dims(), [2, 48, 32, 32]);
    assert_eq!(out.rollout.q[0].dims(), [2, 16, 4, 4]);
    assert_eq!(out.reconstruction.dims(), [2, 3, 3, 32, 32]);
}

#[test]
fn campusai_hamiltonian_gradients_match_autodiff() {
    let device = f64_device().autodiff();
    let h = HamiltonianNetConfig::new(16, 4)
        .with_separable(false)
        .with_architecture(hgn::model::Architecture::CampusAi)
        .init(&device);
    let q = normal([3, 16, 4, 4], &device).require_grad();
    let p = normal([3, 16, 4, 4], &device).require_grad();
    let grads = h.energy(q.clone(), p.clone()).sum().backward();
    let err_q = relative_error(
        &values(h.dh_dq(q.clone(), p.clone())),
        &values(q.grad(&grads).unwrap()),
    );
    let err_p = relative_error(
        &values(h.dh_dp(q.clone(), p.clone())),
        &values(p.grad(&grads).unwrap()),
    );
    assert!(err_q <= 1e-10 && err_p <= 1e-10, "{err_q:e}, {err_p:e}");
}

/// The objective itself: GECO's value and its λ gradient (DeepMind's sign and size), and the
/// β-ELBO, on a micro variational model whose reconstruction is far above κ.
#[test]
fn geco_pushes_lambda_up_by_the_constraint_and_elbo_weighs_the_kl() {
    use hgn::model::{HgnConfig, Objective, loss};
    let device = f64_device().autodiff();
    let config = HgnConfig::tiny()
        .with_variational(true)
        .with_num_inference_frames(2)
        .with_rollout_steps(2)
        .with_hidden(4)
        .with_latent_channels(2)
        .with_hamiltonian_width(4);
    let model = config.init(&device);
    let frames = Tensor::<5>::random([2, 4, 3, 32, 32], Distribution::Default, &device);
    let inference = frames.clone().slice([0..2, 0..2, 0..3, 0..32, 0..32]);
    let targets = frames.slice([0..2, 1..4, 0..3, 0..32, 0..32]);
    let (zc, zs) = config.z_shape();
    let noise = Tensor::<4>::random([2, zc, zs, zs], Distribution::Normal(0.0, 1.0), &device);
    let output = model.forward(inference, Some(noise), 0.125, 2);

    let kappa = 1e-3;
    let parts = loss(&model, &output, targets.clone(), Objective::Geco { kappa });
    let (mse, kl) = (
        scalar(parts.reconstruction.clone()),
        scalar(parts.kl.clone()),
    );
    assert!(mse > 10.0 * kappa && kl > 0.0, "mse {mse}, kl {kl}");
    let lambda0 = scalar(parts.lambda.clone());
    // Initialised at softplus⁻¹(1), through an f32 literal.
    assert!((lambda0 - 1.0).abs() < 1e-7, "λ starts at 1, not {lambda0}");
    // The value is λ·C + KL − λ·C = KL; the gradients are what differ.
    assert!((scalar(parts.total.clone()) - kl).abs() < 1e-12 * kl.max(1.0));
    let grads = parts.total.backward();
    let raw = model.geco_lambda.val();
    let raw_value = scalar(raw.clone().inner());
    let g = scalar(raw.grad(&grads).expect("λ is trained").reshape([1]));
    // d/d raw of −softplus(raw)·C is −C·sigmoid(raw): negative while the MSE is above κ, so
    // gradient descent raises λ.
    let sigmoid = 1.0 / (1.0 + (-raw_value).exp());
    let expected = -(mse - kappa) * sigmoid;
    assert!(g < 0.0, "λ's gradient {g} must push it up");
    assert!(
        (g - expected).abs() < 1e-9 * expected.abs(),
        "{g} vs {expected}"
    );

    let beta = 4.0;
    let elbo = loss(&model, &output, targets, Objective::Elbo { beta });
    assert!((scalar(elbo.total) - (mse + beta * kl)).abs() < 1e-12);
    assert_eq!(scalar(elbo.lambda), 1.0);
}

/// The decoder's leaky ReLU in f64: value `max(x, a·x)` and gradient `1` for `x > 0`, `a`
/// elsewhere, through the patched burn-autodiff override and burn-flex's one-pass backward.
#[test]
fn leaky_relu_value_and_gradient_in_f64() {
    let device = f64_device().autodiff();
    let n = 4 * 3 * 5 * 5;
    let w: Vec<f64> = (0..n).map(|k| 1.0 + k as f64 / 7.0).collect();
    let weights = Tensor::<4>::from_data(TensorData::new(w.clone(), [4, 3, 5, 5]), &device);
    for slope in [0.01, 0.2] {
        let x = normal([4, 3, 5, 5], &device).require_grad();
        let y = hgn::model::networks::leaky(x.clone(), slope);
        let grads = (y.clone() * weights.clone()).sum().backward();
        let grad = values(x.grad(&grads).expect("x is tracked"));
        let (xs, ys) = (values(x), values(y));
        for i in 0..n {
            assert_eq!(ys[i], xs[i].max(slope * xs[i]), "value at {}", xs[i]);
            let want = if xs[i] > 0.0 { w[i] } else { slope * w[i] };
            assert_eq!(grad[i], want, "gradient at {}", xs[i]);
        }
    }
}

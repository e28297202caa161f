//! The Neural Hamiltonian Flow, in f64 on the CPU backend: exact energy gradients, volume
//! preservation, invertibility, the ordering ELBO ≤ importance-weighted estimate ≤ true
//! log-density, and learning a density. A separate test binary, so the f64 device affects
//! nothing else.

mod common;

use burn::module::Param;
use burn::tensor::{Device, Distribution, Tensor};
use hgn::flow::config::{FlowData, FlowKind, new_config};
use hgn::flow::eval::log_likelihoods;
use hgn::flow::load::load_flow;
use hgn::flow::mlp::{EnergyActivation, MlpConfig};
use hgn::flow::net::FlowNet;
use hgn::flow::nhf::{Nhf, NhfConfig};
use hgn::flow::train::{FlowTrainOptions, train_flow};

/// The f64 CPU device of this binary, seeded with 11. Every test calls it first: the
/// process-wide dtype must be set before anything (here or in `train_flow`) touches the device.
fn f64_device() -> Device {
    common::f64_device(11)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap()
}

/// Determinant by Gaussian elimination with partial pivoting.
fn determinant(mut a: Vec<Vec<f64>>) -> f64 {
    let n = a.len();
    let mut det = 1.0;
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap();
        if pivot != col {
            a.swap(pivot, col);
            det = -det;
        }
        det *= a[col][col];
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            for k in col..n {
                a[row][k] -= f * a[col][k];
            }
        }
    }
    det
}

/// The largest entry of `J − I` for a square Jacobian given by rows.
fn distance_from_identity(rows: &[Vec<f64>]) -> f64 {
    rows.iter()
        .enumerate()
        .flat_map(|(i, row)| {
            row.iter()
                .enumerate()
                .map(move |(j, v)| (v - if i == j { 1.0 } else { 0.0 }).abs())
        })
        .fold(0.0, f64::max)
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

/// Trains a new flow run in `run` on the CPU, silently; it must succeed.
fn train_new(run: &Path, config: hgn::flow::config::FlowRunConfig) {
    train_flow(&FlowTrainOptions {
        run: run.to_path_buf(),
        config,
        resume: false,
        steps_override: None,
        device: hgn::device::DeviceChoice::Cpu,
        reporter: hgn::progress::Reporter::silent(),
    })
    .unwrap();
}

#[test]
fn energy_mlp_gradient_matches_autodiff() {
    let device = f64_device().autodiff();
    for activation in [EnergyActivation::Softplus, EnergyActivation::Tanh] {
        for (d, hidden) in [
            (1, vec![16, 16]),
            (2, vec![16, 16]),
            (5, vec![16, 16]),
            (3, vec![8]),
        ] {
            let net = MlpConfig::new(d, hidden.clone(), 1).init_energy(activation, &device);
            let x =
                Tensor::<2>::random([7, d], Distribution::Normal(0.0, 1.0), &device).require_grad();
            let (energy, explicit) = net.energy_and_grad(x.clone());
            let grads = energy.sum().backward();
            let auto = values(x.grad(&grads).unwrap());
            let scale = auto.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let what = format!("{activation:?}, d {d}, hidden {hidden:?}");
            let err = max_abs_diff(&auto, &values(explicit));
            assert!(err <= 1e-10 * scale, "{what}: {err}");
            // The gradient alone (no output layer pass) is the same.
            let err = max_abs_diff(&auto, &values(net.grad(x.clone())));
            assert!(err <= 1e-10 * scale, "{what}, grad: {err}");
        }
    }
}

/// Every NHF variant: (kinetic ½|p|², kinetic network, learned step, activation).
fn variants() -> Vec<(bool, bool, bool, EnergyActivation)> {
    let mut out = vec![];
    for (quadratic, learned) in [(true, true), (false, true), (true, false)] {
        for learned_step in [false, true] {
            for activation in [EnergyActivation::Softplus, EnergyActivation::Tanh] {
                out.push((quadratic, learned, learned_step, activation));
            }
        }
    }
    out
}

/// An NHF of the given variant; learned step factors are set away from 1 (stage k: `exp(0.3 −
/// 0.2k)`), so a test exercises them.
fn variant_nhf(
    config: NhfConfig,
    (quadratic, learned, learned_step, activation): (bool, bool, bool, EnergyActivation),
    device: &Device,
) -> Nhf {
    let mut nhf = config
        .with_quadratic_kinetic(quadratic)
        .with_learned_kinetic(learned)
        .with_learned_step(learned_step)
        .with_activation(activation)
        .init(device);
    for (k, stage) in nhf.stages.iter_mut().enumerate() {
        if stage.log_step.is_some() {
            let s = 0.3 - 0.2 * k as f64;
            stage.log_step = Some(Param::from_tensor(Tensor::zeros([1], device).add_scalar(s)));
        }
    }
    nhf
}

/// The Jacobian of `stages` NHF stages of `variant` at one random state, by autodiff (exact in
/// f64).
fn flow_jacobian(
    dim: usize,
    stages: usize,
    variant: (bool, bool, bool, EnergyActivation),
) -> (Vec<Vec<f64>>, f64) {
    let device = f64_device().autodiff();
    let config = NhfConfig::new(dim)
        .with_stages(stages)
        .with_leapfrog_steps(6)
        .with_dt(0.4)
        .with_hidden(16);
    let nhf = variant_nhf(config, variant, &device);
    let q = Tensor::<2>::random([1, dim], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let p = Tensor::<2>::random([1, dim], Distribution::Normal(0.0, 1.0), &device).require_grad();
    let mut rows = vec![];
    for i in 0..2 * dim {
        let (q1, p1) = nhf.forward_flow(q.clone(), p.clone());
        let out = Tensor::cat(vec![q1, p1], 1);
        let component = out.slice([0..1, i..i + 1]).sum();
        let grads = component.backward();
        let mut row = values(q.grad(&grads).unwrap());
        row.extend(values(p.grad(&grads).unwrap()));
        rows.push(row);
    }
    let distance = distance_from_identity(&rows);
    (rows, distance)
}

#[test]
fn every_stage_of_every_variant_preserves_volume() {
    let _ = f64_device();
    for variant in variants() {
        for (dim, stages) in [(1, 1), (2, 1), (2, 3), (3, 2)] {
            let (jacobian, distance) = flow_jacobian(dim, stages, variant);
            // The map is far from the identity, so a unit determinant is not trivial (a fresh
            // kinetic network alone moves least: nearly zero velocity).
            assert!(
                distance > 0.01,
                "{variant:?}, dim {dim}: the flow barely moves ({distance})"
            );
            let det = determinant(jacobian);
            assert!(
                (det - 1.0).abs() < 1e-9,
                "{variant:?}, dim {dim}, {stages} stages: det {det}"
            );
        }
    }
}

#[test]
fn integrating_backward_inverts_every_variant() {
    let device = f64_device();
    for variant in variants() {
        let config = NhfConfig::new(2)
            .with_stages(3)
            .with_leapfrog_steps(8)
            .with_dt(0.3);
        let nhf = variant_nhf(config, variant, &device);
        let q = Tensor::<2>::random([64, 2], Distribution::Normal(0.0, 1.0), &device);
        let p = Tensor::<2>::random([64, 2], Distribution::Normal(0.0, 1.0), &device);
        let (q1, p1) = nhf.forward_flow(q.clone(), p.clone());
        let moved = values(q1.clone() - q.clone())
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(moved > 0.05, "{variant:?}: the flow barely moves ({moved})");
        let (q0, p0) = nhf.inverse_flow(q1, p1);
        for (a, b) in [(q, q0), (p, p0)] {
            let err = values(a - b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
            assert!(err < 1e-10, "{variant:?}: returned {err} away");
        }
    }
}

#[test]
fn a_learned_step_factor_is_a_longer_step() {
    // exp(s) on a stage's step: the flow with s = ln 2 and dt is the flow with 2·dt, weights
    // alike; and the factor is trained (it receives a gradient).
    let device = f64_device().autodiff();
    let config = NhfConfig::new(2)
        .with_stages(2)
        .with_leapfrog_steps(3)
        .with_dt(0.15)
        .with_hidden(16)
        .with_learned_step(true);
    let mut learned = config.init(&device);
    for stage in &mut learned.stages {
        // Built from zeros: the device's dtype (f64), where `from_floats` would round to f32.
        stage.log_step = Some(Param::from_tensor(
            Tensor::zeros([1], &device).add_scalar(2f64.ln()),
        ));
    }
    assert!((learned.stages[0].step_factor() - 2.0).abs() < 1e-12);
    let mut doubled = learned.clone();
    for stage in &mut doubled.stages {
        stage.log_step = None;
    }
    doubled.dt = 0.3;
    let q = Tensor::<2>::random([16, 2], Distribution::Normal(0.0, 1.0), &device);
    let p = Tensor::<2>::random([16, 2], Distribution::Normal(0.0, 1.0), &device);
    let (q1, p1) = learned.forward_flow(q.clone(), p.clone());
    let (q2, p2) = doubled.forward_flow(q, p);
    let err =
        max_abs_diff(&values(q1.clone()), &values(q2)).max(max_abs_diff(&values(p1), &values(p2)));
    assert!(err < 1e-12, "{err}");
    let grads = q1.square().sum().backward();
    for stage in &learned.stages {
        let s = stage.log_step.as_ref().unwrap();
        let g = values(
            s.val()
                .grad(&grads)
                .expect("the step factor has a gradient"),
        );
        assert!(g[0].abs() > 1e-6, "{g:?}");
    }
}

/// The posterior couplings' log-determinant is that of their Jacobian in `p` (by autodiff,
/// exact in f64), for every data dimension's masks, with the map far from the identity.
#[test]
fn posterior_couplings_report_the_log_determinant_of_their_jacobian() {
    let device = f64_device().autodiff();
    for dim in [1, 2, 3] {
        let nhf = NhfConfig::new(dim)
            .with_stages(1)
            .with_posterior_couplings(3)
            .with_posterior_coupling_hidden(8)
            .init(&device);
        let couplings = nhf.posterior_flow.as_ref().expect("couplings asked for");
        assert_eq!(couplings.nets.len(), 3);
        let q = Tensor::<2>::random([1, dim], Distribution::Normal(0.0, 1.0), &device);
        let p =
            Tensor::<2>::random([1, dim], Distribution::Normal(0.0, 1.0), &device).require_grad();
        let mut rows = vec![];
        for i in 0..dim {
            let (out, _) = couplings.forward(q.clone(), p.clone());
            let grads = out.slice([0..1, i..i + 1]).sum().backward();
            let row = values(p.grad(&grads).unwrap());
            rows.push(row);
        }
        let distance = distance_from_identity(&rows);
        assert!(
            distance > 0.01,
            "dim {dim}: the couplings barely move ({distance})"
        );
        let (_, log_det) = couplings.forward(q, p);
        let expected = determinant(rows).abs().ln();
        let got = values(log_det)[0];
        assert!(
            (got - expected).abs() < 1e-10,
            "dim {dim}: {got} against {expected}"
        );
    }
}

#[test]
fn elbo_lies_below_the_importance_weighted_estimate_which_lies_below_the_truth() {
    let _ = f64_device();
    // The diagonal Gaussian posterior and one with couplings after it.
    for couplings in [0, 2] {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("gauss");
        let mut config = new_config(FlowKind::Nhf, FlowData::Target("gaussian".into()), 3).unwrap();
        config.train.steps = 150;
        config.train.eval_every = 150;
        config.train.test_size = 1000;
        config.nhf.stages = 2;
        config.nhf.leapfrog_steps = 4;
        config.nhf.hidden = 32;
        config.nhf.posterior_couplings = couplings;
        train_new(&run, config);
        let device = f64_device();
        let flow = load_flow(&run, &device).unwrap();
        let (points, _) = hgn::flow::points::read_points(&run.join("test.npy")).unwrap();
        let (iw, elbo) = log_likelihoods(&flow.model, &flow.config, &points, 64, &device);
        let truth: Vec<f64> = points
            .chunks_exact(2)
            .map(|p| hgn::flow::targets::gaussian_log_density([p[0], p[1]]))
            .collect();
        // Jensen, point by point: log-mean-exp ≥ mean.
        for (a, b) in iw.iter().zip(&elbo) {
            assert!(
                a + 1e-12 >= *b,
                "couplings {couplings}: IW {a} below ELBO {b}"
            );
        }
        // Gibbs: no model beats the true density on average, up to sampling error.
        let gap: Vec<f64> = iw.iter().zip(&truth).map(|(a, t)| a - t).collect();
        let (mean_gap, ci) = hgn::metrics::mean_with_ci95(&gap);
        assert!(
            mean_gap < ci,
            "couplings {couplings}: model above the truth: {mean_gap} ± {ci}"
        );
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(mean(&elbo) < mean(&iw));
        // And training got somewhere: within 0.3 nats of the truth.
        assert!(mean_gap > -0.3, "couplings {couplings}: {mean_gap}");
    }
}

#[test]
fn training_on_two_moons_beats_the_gaussian_baseline() {
    let _ = f64_device();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("moons");
    let mut config = new_config(FlowKind::Nhf, FlowData::Target("two-moons".into()), 0).unwrap();
    config.train.steps = 500;
    config.train.eval_every = 500;
    config.train.test_size = 2000;
    train_new(&run, config);
    let report = hgn::flow::eval::evaluate_flow(&run, None, Some(16)).unwrap();
    assert!(
        report.test_nll < report.gaussian_baseline_nll - 0.3,
        "NLL {} vs Gaussian {}",
        report.test_nll,
        report.gaussian_baseline_nll
    );
    // With one importance sample the NLL estimate is the negative ELBO of the same draw; with
    // 16 it is strictly tighter (the posterior f_ψ(p | q) is not exact).
    let single = hgn::flow::eval::evaluate_flow(&run, None, Some(1)).unwrap();
    assert_eq!(single.iw_samples, 1);
    assert!(
        (single.test_nll - single.test_nll_bound).abs() < 1e-9 * single.test_nll.abs().max(1.0),
        "1 sample: NLL {} vs bound {}",
        single.test_nll,
        single.test_nll_bound
    );
    assert!(
        report.test_nll < report.test_nll_bound - 1e-3,
        "16 samples: NLL {} vs bound {}",
        report.test_nll,
        report.test_nll_bound
    );
}

#[test]
fn flows_of_both_kinds_sample_the_base_dimension_they_need() {
    let device = f64_device();
    let config = new_config(FlowKind::Realnvp, FlowData::Target("rings".into()), 0).unwrap();
    let net = FlowNet::init(&config, &device);
    assert_eq!(net.base_dim(2), 2);
    let mut nhf_config = config.clone();
    nhf_config.kind = FlowKind::Nhf;
    assert_eq!(FlowNet::init(&nhf_config, &device).base_dim(2), 4);
    // RealNVP's sampler inverts its density map.
    let nvp = net.realnvp.unwrap();
    let x = Tensor::<2>::random([32, 2], Distribution::Normal(0.0, 2.0), &device);
    let (z, _) = nvp.to_base(x.clone());
    let back = nvp.sample(z);
    let err = values(back - x).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(err < 1e-12, "{err}");
}

// ---- `hgn flow` end to end -------------------------------------------------------------

use std::path::Path;

use common::{assert_error, hgn, ok, png_size};

#[test]
fn flow_cli_trains_evaluates_samples_and_plots_user_data_and_targets() {
    let _ = f64_device();
    use rand::SeedableRng;
    let tmp = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // A user's file: 400 two-moons points.
    let points = hgn::flow::targets::sample(
        "two-moons",
        400,
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(5),
    )
    .unwrap();
    let file = tmp.path().join("points.npy");
    hgn::flow::points::write_points(&file, &points, 2).unwrap();
    let run = tmp.path().join("nvp");
    ok(hgn(&[
        "flow",
        "train",
        "--data",
        &s(&file),
        "--run",
        &s(&run),
        "--model",
        "realnvp",
        "--steps",
        "30",
        "-q",
    ]));
    let report: serde_json::Value =
        serde_json::from_str(&ok(hgn(&["flow", "eval", "--run", &s(&run), "--json"]))).unwrap();
    assert_eq!(report["points"], 40, "10 % held out");
    assert_eq!(report["model"], "realnvp");
    assert!(report["parameters"].as_u64().unwrap() > 1000);
    assert!(report["test_nll"].as_f64().unwrap().is_finite());
    let all: serde_json::Value = serde_json::from_str(&ok(hgn(&[
        "flow",
        "eval",
        "--run",
        &s(&run),
        "--data",
        &s(&file),
        "--json",
    ])))
    .unwrap();
    assert_eq!(all["points"], 400);
    // Resuming refuses a real change of the saved settings, naming it, and writes nothing.
    let before = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_error(
        &hgn(&[
            "flow",
            "train",
            "--run",
            &s(&run),
            "--resume",
            "--hidden",
            "9",
            "--model",
            "nhf",
        ]),
        "the flags change kind: \"realnvp\" → \"nhf\", nhf.hidden: 56 → 9, realnvp.hidden: 64 → 9",
    );
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.jsonl")).unwrap(),
        before
    );
    // The first command again with --resume (flags that repeat the saved settings) continues
    // to the new step count.
    ok(hgn(&[
        "flow",
        "train",
        "--data",
        &s(&file),
        "--run",
        &s(&run),
        "--model",
        "realnvp",
        "--resume",
        "--steps",
        "40",
        "-q",
    ]));
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(
        metrics.lines().last().unwrap().contains("\"step\":40"),
        "{metrics}"
    );
    // Samples as .npy and .png.
    let npy = tmp.path().join("samples.npy");
    ok(hgn(&[
        "flow",
        "sample",
        "--run",
        &s(&run),
        "--count",
        "123",
        "--out",
        &s(&npy),
    ]));
    let (drawn, d) = hgn::flow::points::read_points(&npy).unwrap();
    assert_eq!((drawn.len() / d, d), (123, 2));
    let png = tmp.path().join("samples.png");
    ok(hgn(&[
        "flow",
        "sample",
        "--run",
        &s(&run),
        "--count",
        "500",
        "--out",
        &s(&png),
    ]));
    assert_eq!(png_size(&png), (600, 600));
    let plots = ok(hgn(&["flow", "plot", "--run", &s(&run)]));
    assert!(plots.contains("density.png") && !plots.contains("potentials.png"));
    assert_eq!(png_size(&run.join("plots/density.png")), (900, 300));

    // An NHF on a built-in target also draws its learned potentials.
    let nhf = tmp.path().join("nhf");
    ok(hgn(&[
        "flow",
        "train",
        "--target",
        "eight-gaussians",
        "--run",
        &s(&nhf),
        "--steps",
        "10",
        "--stages",
        "2",
        "--leapfrog-steps",
        "2",
        "--hidden",
        "16",
        "-q",
    ]));
    let plots = ok(hgn(&["flow", "plot", "--run", &s(&nhf)]));
    assert!(plots.contains("potentials.png"), "{plots}");
    assert_eq!(png_size(&nhf.join("plots/potentials.png")), (600, 300));
    let flow_eval = |samples: &str| -> serde_json::Value {
        let args = [
            "flow",
            "eval",
            "--run",
            &s(&nhf),
            "--json",
            "--samples",
            samples,
        ];
        serde_json::from_str(&ok(hgn(&args))).unwrap()
    };
    let report = flow_eval("4");
    assert_eq!(report["iw_samples"], 4);
    // With one importance sample the estimate is the negative ELBO of that same draw.
    let single = flow_eval("1");
    assert_eq!(single["iw_samples"], 1);
    let (nll, bound) = (
        single["test_nll"].as_f64().unwrap(),
        single["test_nll_bound"].as_f64().unwrap(),
    );
    assert!(
        (nll - bound).abs() < 1e-9 * nll.abs().max(1.0),
        "{nll} vs {bound}"
    );

    // Bad input: one line each, nothing written.
    let fresh = tmp.path().join("fresh");
    assert_error(
        &hgn(&[
            "flow",
            "train",
            "--target",
            "spiral-galaxy",
            "--run",
            &s(&fresh),
        ]),
        "unknown target",
    );
    assert_error(
        &hgn(&["flow", "train", "--run", &s(&fresh)]),
        "--target NAME or --data",
    );
    let text = tmp.path().join("not.npy");
    std::fs::write(&text, "1,2\n3,4\n").unwrap();
    assert_error(
        &hgn(&["flow", "train", "--data", &s(&text), "--run", &s(&fresh)]),
        "not a float64 .npy",
    );
    let line = tmp.path().join("line.npy");
    hgn::flow::points::write_points(&line, &[0.0, 1.0, 2.0, 3.0], 1).unwrap();
    assert_error(
        &hgn(&[
            "flow",
            "train",
            "--data",
            &s(&line),
            "--run",
            &s(&fresh),
            "--model",
            "realnvp",
        ]),
        "at least 2 dimensions",
    );
    assert!(!fresh.exists());
    assert_error(
        &hgn(&["flow", "eval", "--run", &s(&run), "--data", &s(&line)]),
        "1 columns but the flow models 2",
    );
    assert_error(
        &hgn(&[
            "flow",
            "sample",
            "--run",
            &s(&run),
            "--out",
            &s(&tmp.path().join("x.txt")),
        ]),
        "must end in .npy or .png",
    );
    assert_error(
        &hgn(&["flow", "train", "--target", "rings", "--run", &s(&run)]),
        "already holds a run",
    );
    assert_error(
        &hgn(&["flow", "eval", "--run", &s(&fresh)]),
        "not a flow run",
    );
}

#[test]
fn a_flow_run_killed_at_any_moment_and_resumed_ends_as_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let (straight, killed) = (tmp.path().join("straight"), tmp.path().join("killed"));
    let new_run = |run: &Path| -> Vec<String> {
        let args = ["flow", "train", "--target", "two-moons", "--run", &s(run)];
        let mut args: Vec<String> = args.map(String::from).to_vec();
        args.extend(["--steps", "60", "--eval-every", "10", "-q"].map(String::from));
        args
    };
    let started = std::time::Instant::now();
    ok(hgn(&new_run(&straight)));
    let full = started.elapsed();

    let kills = common::run_with_kills(full, || {
        if killed.join("config.json").exists() {
            ["flow", "train", "--run", &s(&killed), "--resume", "-q"]
                .map(String::from)
                .to_vec()
        } else {
            new_run(&killed)
        }
    });
    assert!(kills >= 2, "only {kills} attempts were killed");

    // Everything but the wall-clock figures and the run's own path is the uninterrupted run's.
    let timeless = |mut v: serde_json::Value| {
        let object = v.as_object_mut().unwrap();
        for key in [
            "seconds",
            "steps_per_second",
            "train_seconds",
            "samples_per_second",
            "run",
            "eval_data",
        ] {
            object.remove(key);
        }
        v
    };
    let read = |run: &Path, file: &str| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(run.join(file)).unwrap();
        let values: Vec<serde_json::Value> = if file.ends_with(".jsonl") {
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        } else {
            vec![serde_json::from_str(&text).unwrap()]
        };
        values.into_iter().map(timeless).collect()
    };
    for file in ["config.json", "metrics.jsonl", "checkpoint/state.json"] {
        assert_eq!(read(&killed, file), read(&straight, file), "{file}");
    }
    assert!(
        std::fs::read(killed.join("test.npy")).unwrap()
            == std::fs::read(straight.join("test.npy")).unwrap()
    );
    // The same weights: the same held-out likelihoods, to the last bit.
    let report = |run: &Path| {
        let text = ok(hgn(&["flow", "eval", "--run", &s(run), "--json"]));
        timeless(serde_json::from_str(&text).unwrap())
    };
    assert_eq!(report(&killed), report(&straight));
}

#[test]
fn training_stops_when_the_validation_nll_stops_improving() {
    let _ = f64_device();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("nvp");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    // A cap far beyond convergence: patience 1 with one halving stops at the second plateau.
    ok(hgn(&[
        "flow",
        "train",
        "--target",
        "gaussian",
        "--run",
        &s(&run),
        "--model",
        "realnvp",
        "--steps",
        "200000",
        "--eval-every",
        "20",
        "--patience",
        "1",
        "--plateau-halvings",
        "1",
        "-q",
    ]));
    let state = hgn::flow::load::early_stop_of(&run).unwrap().unwrap();
    assert!(state.converged && state.halvings == 1, "{state:?}");
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let evals: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "eval")
        .collect();
    let last = evals.last().unwrap()["step"].as_u64().unwrap();
    assert!(last < 200_000, "stopped at {last}");
    assert!(
        evals
            .iter()
            .all(|v| v["valid_nll"].is_f64() && v["seconds"].is_f64())
    );
    // Resuming a converged run trains nothing more.
    ok(hgn(&["flow", "train", "--run", &s(&run), "--resume", "-q"]));
    let again = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert_eq!(again, metrics);
}

#[test]
fn flow_compare_writes_its_table_and_curves_and_reuses_its_runs() {
    let _ = f64_device();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let compare = |eval_every: &str| {
        hgn(&[
            "flow",
            "compare",
            "--targets",
            "gaussian",
            "--steps",
            "40",
            "--eval-every",
            eval_every,
            "--patience",
            "1",
            "--plateau-halvings",
            "0",
            "--iw-samples",
            "8",
            "--out",
            &s(&out),
            "-q",
        ])
    };
    let printed = ok(compare("20"));
    let table = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(printed.contains(&table), "{printed}");
    assert!(table.contains("(8 posterior samples;"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("| gaussian"))
        .expect("a gaussian row");
    assert_eq!(row.matches('|').count(), 10, "{row}");
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("compare.json")).unwrap()).unwrap();
    for model in ["nhf", "realnvp"] {
        let steps = rows[0][model]["steps"].as_u64().unwrap();
        assert!((20..=40).contains(&steps), "{model}: {steps}");
    }
    assert!(rows[0]["nhf_steps_per_second"].as_f64().unwrap() > 0.0);
    // One row of two charts (against steps, against seconds).
    assert_eq!(png_size(&out.join("curves.png")), (960, 300));
    assert_eq!(png_size(&out.join("densities.png")), (900, 300));
    // A second call reuses both runs; other settings are refused in one line.
    let model = out.join("runs/gaussian-nhf/checkpoint/model.bpk");
    let before = std::fs::metadata(&model).unwrap().modified().unwrap();
    ok(compare("20"));
    assert_eq!(
        std::fs::metadata(&model).unwrap().modified().unwrap(),
        before
    );
    assert_error(&compare("10"), "other settings");
}

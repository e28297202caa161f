//! `hgn train` end to end on a micro model: checkpoints, exact resumption, evaluation lines,
//! and one-line errors for bad runs.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{assert_error, hgn, ok, run_with_kills, train_with_config};

use hgn::model::Objective;
use hgn::train::{MetricsLine, RunConfig};

/// A small 32×32 pendulum dataset with 8-frame sequences.
fn dataset(dir: &Path) {
    generate(dir, "pendulum", 24, 8, 8);
}

/// `hgn generate` of `train` and `test` sequences of `len` frames, which must succeed.
fn generate(dir: &Path, system: &str, train: usize, test: usize, len: usize) {
    let (train, test, len) = (train.to_string(), test.to_string(), len.to_string());
    let out = hgn(&[
        "generate",
        "--system",
        system,
        "--out",
        dir.to_str().unwrap(),
        "--train",
        &train,
        "--test",
        &test,
        "--seq-len",
        &len,
        "--test-seq-len",
        &len,
        "-q",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A micro model: 2 inference frames, 4 rollout steps, 4 channels.
fn micro_config(dir: &Path, steps: usize) -> std::path::PathBuf {
    let mut config = RunConfig::preset("tiny").unwrap();
    config.model = config
        .model
        .with_num_inference_frames(2)
        .with_rollout_steps(4)
        .with_hidden(4)
        .with_latent_channels(2)
        .with_hamiltonian_width(4);
    config.model.variational = true;
    // A learned K(p) net, as in the paper (the tiny preset fixes K = |p|²/2).
    config.model.kinetic_mass = None;
    // Both directions of time, so an exact resume also repeats each step's direction draw.
    config.train.bidirectional = true;
    config.train.steps = steps;
    config.train.batch_size = 4;
    config.train.log_every = 1;
    config.train.eval_every = 2;
    config.train.eval_sequences = 8;
    config.train.checkpoint_every = 2;
    let path = dir.join("micro.json");
    std::fs::write(&path, serde_json::to_string_pretty(&config).unwrap()).unwrap();
    path
}

/// As [`train_with_config`], which must succeed.
fn train_ok(data: &Path, run: &Path, config: &Path) {
    let out = train_with_config(data, run, config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn metrics(run: &Path) -> Vec<MetricsLine> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Metrics without the wall-clock throughput, which legitimately differs between runs.
fn comparable(lines: Vec<MetricsLine>) -> Vec<MetricsLine> {
    lines
        .into_iter()
        .map(|l| MetricsLine {
            steps_per_second: None,
            ..l
        })
        .collect()
}

#[test]
fn an_interrupted_and_resumed_run_repeats_an_uninterrupted_one_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data);
    let config = micro_config(tmp.path(), 6);
    let (straight, split) = (tmp.path().join("straight"), tmp.path().join("split"));
    fn args<'a>(data: &'a Path, run: &'a Path) -> Vec<&'a str> {
        vec![
            "train",
            "--data",
            data.to_str().unwrap(),
            "--run",
            run.to_str().unwrap(),
            "-q",
        ]
    }

    let out = hgn(&[
        &args(&data, &straight)[..],
        &["--config", config.to_str().unwrap()],
    ]
    .concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("test pixel MSE"), "{stdout}");

    // Stop after 4 steps (a checkpoint), then resume to 6.
    let out = hgn(&[
        &args(&data, &split)[..],
        &["--config", config.to_str().unwrap(), "--steps", "4"],
    ]
    .concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Killed in the middle of a checkpoint swap: `checkpoint` already renamed to
    // `checkpoint.old`, the new one still named `checkpoint.partial`. Resuming recovers it.
    let ckpt = split.join("checkpoint");
    std::fs::create_dir(split.join("checkpoint.old")).unwrap();
    for file in ["model.bpk", "optim.bpk", "state.json"] {
        std::fs::copy(ckpt.join(file), split.join("checkpoint.old").join(file)).unwrap();
    }
    std::fs::rename(&ckpt, split.join("checkpoint.partial")).unwrap();
    // No --data: the run's recorded dataset is used.
    let out = hgn(&[
        "train",
        "--run",
        split.to_str().unwrap(),
        "--resume",
        "--steps",
        "6",
        "-q",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(
        !split.join("checkpoint.old").exists() && !split.join("checkpoint.partial").exists(),
        "the recovered checkpoint is back under its name, the others gone"
    );
    let (a, b) = (comparable(metrics(&straight)), comparable(metrics(&split)));
    assert_eq!(a.len(), 6 + 3, "6 train lines and 3 eval lines");
    assert_eq!(a, b, "the resumed run differs from the uninterrupted one");
    assert!(a.iter().all(|l| l.mse.is_finite() && l.mse > 0.0));
    // Evaluations report the mean-frame baseline and the physics oracle beside the model; the
    // oracle, from two noisy frames, still beats the mean frame.
    assert!(
        a.iter()
            .filter(|l| l.kind == "eval")
            .all(|l| l.baseline_mse.unwrap() > 0.0
                && l.oracle_mse.unwrap() > 0.0
                && l.oracle_mse.unwrap() < l.baseline_mse.unwrap())
    );
    // The checkpoint is complete.
    for file in ["model.bpk", "optim.bpk", "state.json"] {
        assert!(
            straight.join("checkpoint").join(file).is_file(),
            "{file} missing"
        );
    }
    let saved = RunConfig::load(&straight.join("config.json")).unwrap();
    assert_eq!(saved.train.steps, 6);
}

#[test]
fn a_run_killed_at_any_moment_and_resumed_ends_with_the_files_of_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data);
    let config = micro_config(tmp.path(), 12);
    let (straight, killed) = (tmp.path().join("straight"), tmp.path().join("killed"));
    let started = Instant::now();
    train_ok(&data, &straight, &config);
    let full = started.elapsed();

    // Rerun as a user would: the same command until the run exists, then with --resume.
    let kills = run_with_kills(full, || {
        let run = killed.to_str().unwrap().to_string();
        let mut args = vec!["train".to_string(), "--run".into(), run, "-q".into()];
        if killed.join("config.json").exists() {
            args.push("--resume".into());
        } else {
            args.extend(["--data", data.to_str().unwrap(), "--config"].map(String::from));
            args.push(config.to_str().unwrap().into());
        }
        args
    });
    assert!(kills >= 2, "only {kills} attempts were killed");

    let names = |run: &Path| {
        let mut names: Vec<_> = std::fs::read_dir(run)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&killed), names(&straight));
    assert_eq!(comparable(metrics(&killed)), comparable(metrics(&straight)));
    for file in ["config.json", "checkpoint/state.json"] {
        assert!(
            std::fs::read(killed.join(file)).unwrap()
                == std::fs::read(straight.join(file)).unwrap(),
            "{file} differs from the uninterrupted run's"
        );
    }
    // Killed after writing its config, before its first checkpoint was whole: the deterministic
    // case of what a kill above may or may not have hit.
    let early = tmp.path().join("early");
    std::fs::create_dir_all(early.join("checkpoint.partial")).unwrap();
    std::fs::copy(straight.join("config.json"), early.join("config.json")).unwrap();
    let first_line = std::fs::read_to_string(straight.join("metrics.jsonl")).unwrap();
    std::fs::write(
        early.join("metrics.jsonl"),
        first_line.lines().next().unwrap(),
    )
    .unwrap();
    ok(hgn(&[
        "train",
        "--run",
        early.to_str().unwrap(),
        "--resume",
        "-q",
    ]));
    assert_eq!(names(&early), names(&straight));
    assert_eq!(comparable(metrics(&early)), comparable(metrics(&straight)));

    // The weights, compared through `hgn export` (a `.bpk` file also holds burn's parameter ids,
    // drawn afresh by every process); the optimiser's state at each resume is pinned by the
    // identical losses of every later step.
    let exported = |run: &Path| {
        let out = tmp.path().join("weights.safetensors");
        ok(hgn(&[
            "export",
            "--run",
            run.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]));
        std::fs::read(out).unwrap()
    };
    let weights = exported(&straight);
    assert!(
        exported(&killed) == weights,
        "the killed run's weights differ"
    );
    assert!(
        exported(&early) == weights,
        "the restarted run's weights differ"
    );
}

#[test]
fn training_reduces_the_reconstruction_error() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data);
    let config = micro_config(tmp.path(), 40);
    let mut cfg = RunConfig::load(&config).unwrap();
    cfg.train.learning_rate = 3e-3;
    std::fs::write(&config, serde_json::to_string(&cfg).unwrap()).unwrap();
    let run = tmp.path().join("run");
    train_ok(&data, &run, &config);
    let lines: Vec<MetricsLine> = metrics(&run)
        .into_iter()
        .filter(|l| l.kind == "eval")
        .collect();
    let (first, last) = (lines.first().unwrap().mse, lines.last().unwrap().mse);
    assert!(last < 0.7 * first, "test MSE went from {first} to {last}");
}

#[test]
fn the_default_preset_follows_the_systems_degrees_of_freedom() {
    // One step without --preset: the pendulum (one degree of freedom) gets the vector preset's
    // 2-vector state, two bodies the latent maps of tiny; a named preset and --latent-dim win.
    let tmp = tempfile::tempdir().unwrap();
    for (system, flags, preset, dim) in [
        ("pendulum", &[][..], "vector", Some(2)),
        ("two-body", &[][..], "tiny", None),
        (
            "two-body",
            &["--preset", "vector", "--latent-dim", "3"][..],
            "vector",
            Some(3),
        ),
    ] {
        let data = tmp.path().join(system);
        if !data.exists() {
            generate(&data, system, 4, 2, 34);
        }
        let run = tmp.path().join(format!("run-{system}-{preset}"));
        let mut args = vec![
            "train",
            "--data",
            data.to_str().unwrap(),
            "--run",
            run.to_str().unwrap(),
            "--steps",
            "1",
            "--batch-size",
            "2",
            "-q",
        ];
        args.extend_from_slice(flags);
        let out = hgn(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config = RunConfig::load(&run.join("config.json")).unwrap();
        assert_eq!(config.preset, preset, "{system} {flags:?}");
        assert_eq!(config.model.latent_dim, dim, "{system} {flags:?}");
    }
}

#[test]
fn variational_and_beta_flags_give_a_fixed_kl_weight() {
    // `--variational --beta B` turns the vector preset's deterministic model into a VAE whose
    // loss is MSE + B·KL (no GECO multiplier): the KL is paid and λ stays 1.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("pendulum");
    generate(&data, "pendulum", 4, 2, 34);
    let run = tmp.path().join("run");
    ok(hgn(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--variational",
        "--beta",
        "0.01",
        "-q",
    ]));
    let config = RunConfig::load(&run.join("config.json")).unwrap();
    assert!(config.model.variational);
    assert_eq!(config.objective, Objective::Elbo { beta: 0.01 });
    let first = metrics(&run)
        .into_iter()
        .find(|l| l.kind == "train")
        .unwrap();
    assert!(
        first.kl.unwrap() > 0.0 && first.lambda == Some(1.0),
        "{first:?}"
    );
}

#[test]
fn bad_training_requests_get_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data);
    let config = micro_config(tmp.path(), 2);
    let d = data.to_str().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let c = config.to_str().unwrap();
    // `hgn train` on the test dataset and run folder with a config file and more flags.
    let train_with = |config: &str, flags: &[&str]| {
        let mut args = vec!["train", "--data", d, "--run", r, "--config", config];
        args.extend_from_slice(flags);
        args.push("-q");
        hgn(&args)
    };

    assert_error(
        &hgn(&["train", "--data", "/nonexistent/dataset", "--run", r, "-q"]),
        "is not a dataset",
    );
    assert_error(
        &hgn(&["train", "--data", d, "--run", r, "--preset", "huge", "-q"]),
        "invalid value 'huge' for '--preset <PRESET>'; possible values: vector, tiny, paper, \
         campusai",
    );
    for (flag, value, needle) in [
        (
            "--integrator",
            "verlet",
            "'verlet' for '--integrator <INTEGRATOR>'; possible values: leapfrog, euler, rk4, \
             yoshida4",
        ),
        (
            "--lr-schedule",
            "step",
            "'step' for '--lr-schedule <LR_SCHEDULE>'; possible values: constant, cosine, drop",
        ),
        (
            "--protocol",
            "autoencode",
            "'autoencode' for '--protocol <PROTOCOL>'; possible values: forecast, reconstruct",
        ),
        (
            "--beta",
            "-1",
            "objective.beta must be a non-negative number",
        ),
        ("--device", "tpu", "unknown device 'tpu'"),
        (
            "--encoder-input",
            "lstm",
            "'lstm' for '--encoder-input <ENCODER_INPUT>'; possible values: stacked, per-frame",
        ),
    ] {
        assert_error(&train_with(c, &[flag, value]), needle);
    }
    // A KL weight for a model without a KL.
    assert_error(
        &train_with(c, &["--deterministic", "--beta", "0.01"]),
        "--beta weighs the KL of a variational model",
    );
    assert_error(
        &hgn(&["train", "--data", d, "--run", r, "--resume", "-q"]),
        "holds no run to resume",
    );
    assert_error(
        &hgn(&["train", "--run", r, "--resume", "-q"]),
        "holds no run to resume",
    );
    assert_error(&hgn(&["train", "--resume", "-q"]), "--resume needs --run");
    // The default preset wants 34-frame windows.
    assert_error(
        &hgn(&["train", "--data", d, "--run", r, "-q"]),
        "needs windows of 34 frames",
    );
    for (size, needle) in [
        (64, "expects 64×64 images"),
        (16, "must be a multiple of 8 and at least 32"),
    ] {
        let mut cfg = RunConfig::load(&config).unwrap();
        cfg.model.image_size = size;
        let path = tmp.path().join(format!("size{size}.json"));
        std::fs::write(&path, serde_json::to_string(&cfg).unwrap()).unwrap();
        assert_error(&train_with(path.to_str().unwrap(), &[]), needle);
    }
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{\"preset\": 3}").unwrap();
    assert_error(
        &train_with(bad.to_str().unwrap(), &[]),
        "not a valid run config",
    );
    let mut long = RunConfig::load(&config).unwrap();
    long.model.rollout_steps = 20;
    let long_path = tmp.path().join("long.json");
    std::fs::write(&long_path, serde_json::to_string(&long).unwrap()).unwrap();
    assert_error(
        &train_with(long_path.to_str().unwrap(), &[]),
        "needs windows of 22 frames",
    );
    assert!(
        !run.join("config.json").exists(),
        "a refused run left a config behind"
    );

    // A finished run is not silently overwritten, and --resume keeps its saved config.
    assert!(train_with(c, &[]).status.success());
    assert_error(&train_with(c, &[]), "already holds a run");
    // --resume takes flags that repeat the saved settings, and refuses a real change, named.
    assert_error(
        &hgn(&[
            "train", "--data", d, "--run", r, "--resume", "--seed", "3", "-q",
        ]),
        "only --steps may change); the flags change train.seed: 0 → 3",
    );
    assert_error(
        &hgn(&["train", "--run", r, "--resume", "--preset", "paper", "-q"]),
        "preset tiny → paper",
    );
    assert_error(
        &hgn(&[
            "train",
            "--run",
            r,
            "--resume",
            "--encoder-input",
            "per-frame",
            "-q",
        ]),
        "the flags change model.encoder_input",
    );
    let elsewhere = tmp.path().join("elsewhere");
    assert_error(
        &hgn(&[
            "train",
            "--data",
            elsewhere.to_str().unwrap(),
            "--run",
            r,
            "--resume",
            "-q",
        ]),
        "the flags change data:",
    );
    for same in [
        &["--seed", "0", "--config", c][..],
        &["--preset", "tiny", "--batch-size", "4"][..],
    ] {
        let out = hgn(&[
            &["train", "--data", d, "--run", r, "--resume", "-q"][..],
            same,
        ]
        .concat());
        assert!(
            out.status.success(),
            "{same:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A config edited by hand so that it contradicts the checkpoint is refused, not a panic.
    let saved = run.join("config.json");
    let mut edited = RunConfig::load(&saved).unwrap();
    edited.model.hidden = 8;
    std::fs::write(&saved, serde_json::to_string(&edited).unwrap()).unwrap();
    assert_error(
        &hgn(&["train", "--run", r, "--resume", "--steps", "4", "-q"]),
        "does not match",
    );
    let file = tmp.path().join("w.safetensors");
    assert_error(
        &hgn(&["export", "--run", r, "--out", file.to_str().unwrap()]),
        "does not match",
    );
}

#[test]
fn encoder_flags_reach_the_saved_config_and_the_model_they_describe_trains() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data);
    let config = micro_config(tmp.path(), 2);
    let (d, c) = (data.to_str().unwrap(), config.to_str().unwrap());
    let per_frame_run = tmp.path().join("per-frame");
    ok(hgn(&[
        "train",
        "--data",
        d,
        "--run",
        per_frame_run.to_str().unwrap(),
        "--config",
        c,
        "--encoder-input",
        "per-frame",
        "--encoder-hidden",
        "6",
        "-q",
    ]));
    let saved = RunConfig::load(&per_frame_run.join("config.json")).unwrap();
    assert_eq!(
        saved.model.encoder_input,
        Some(hgn::model::EncoderInput::PerFrame)
    );
    assert_eq!(saved.model.encoder_hidden, Some(6));
}

#[test]
fn a_diverging_run_stops_with_the_step_named_and_keeps_its_last_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data);
    let path = micro_config(tmp.path(), 30);
    let mut config = RunConfig::load(&path).unwrap();
    config.train.learning_rate = 1e12;
    config.train.checkpoint_every = 1;
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    let run = tmp.path().join("run");
    let out = train_with_config(&data, &run, &path);
    assert_error(&out, "the loss became");
    // The message names the failing step, and the checkpoint left behind is from before it.
    let err = String::from_utf8_lossy(&out.stderr);
    let failed: usize = err
        .split("at step ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no step in: {err}"));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap())
            .unwrap();
    let saved = state["step"].as_u64().unwrap() as usize;
    assert!(
        saved <= failed,
        "checkpoint step {saved} is not before the failing step {failed}"
    );
    assert!(saved >= 1, "no good step was checkpointed");
}

#[test]
fn export_writes_safetensors_with_stable_names() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    dataset(&data);
    let config = micro_config(tmp.path(), 2);
    let run = tmp.path().join("run");
    train_ok(&data, &run, &config);
    let file = tmp.path().join("weights.safetensors");
    let out = hgn(&[
        "export",
        "--run",
        run.to_str().unwrap(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bytes = std::fs::read(&file).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let data_len = bytes.len() - 8 - header_len;
    let tensors = header.as_object().unwrap();
    let mut total = 0;
    for (name, info) in tensors.iter().filter(|(n, _)| *n != "__metadata__") {
        assert_eq!(info["dtype"], "F32", "{name}");
        let shape: Vec<u64> = serde_json::from_value(info["shape"].clone()).unwrap();
        let offsets: Vec<usize> = serde_json::from_value(info["data_offsets"].clone()).unwrap();
        assert_eq!(
            (offsets[1] - offsets[0]) as u64,
            4 * shape.iter().product::<u64>(),
            "{name}"
        );
        total += offsets[1] - offsets[0];
    }
    assert_eq!(total, data_len);
    for name in [
        "encoder.layers.0.weight",
        "encoder.layers.5.bias",
        "transform.layers.4.weight",
        "hamiltonian.kinetic.layers.0.weight",
        "hamiltonian.potential.layers.4.bias",
        "decoder.constant",
        "decoder.blocks.2.2.weight",
        "geco_lambda",
    ] {
        assert!(
            tensors.contains_key(name),
            "{name} missing from {:?}",
            tensors.keys().collect::<Vec<_>>()
        );
    }
    let meta = &header["__metadata__"];
    assert!(
        meta["config"]
            .as_str()
            .unwrap()
            .contains("\"rollout_steps\":4")
    );

    assert_error(
        &hgn(&[
            "export",
            "--run",
            tmp.path().join("nothing").to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ]),
        "is not a training run",
    );
}

#[test]
fn bench_times_the_model_of_a_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = RunConfig::preset("vector").unwrap();
    config.model.hidden = 4;
    config.model.hamiltonian_width = 4;
    config.model.rollout_steps = 3;
    config.train.batch_size = 3;
    let path = tmp.path().join("config.json");
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
    let path = path.to_str().unwrap();
    let stdout = ok(hgn(&[
        "bench",
        "--config",
        path,
        "--steps",
        "1",
        "--batch-size",
        "2",
    ]));
    assert!(
        stdout.contains("preset vector, ")
            && stdout.contains(" parameters, batch 2, 3 rollout steps"),
        "{stdout}"
    );
    assert!(stdout.contains("ms/step"), "{stdout}");
    // The step's operations and its rate beside the device's matrix-product rate.
    assert!(stdout.contains("GFLOP/step (forward: decoder"), "{stdout}");
    assert!(
        stdout.contains("of this device's f32 matrix-product rate"),
        "{stdout}"
    );
    // Without --batch-size the config's own batch is timed.
    let stdout = ok(hgn(&["bench", "--config", path, "--steps", "1"]));
    assert!(stdout.contains(" parameters, batch 3, "), "{stdout}");
    let missing = tmp.path().join("missing.json");
    assert_error(
        &hgn(&["bench", "--config", missing.to_str().unwrap()]),
        "cannot read",
    );
    assert_error(
        &hgn(&["bench", "--config", path, "--preset", "tiny"]),
        "cannot be used with",
    );
}

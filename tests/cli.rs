//! End-to-end tests of the `hgn` binary: generate → inspect round trips, reproducibility, and
//! every bad input getting a one-line error without damaging what is on disk.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hgn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hgn"))
        .args(args)
        .output()
        .expect("hgn runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a failure with exactly one `error:` line that mentions `needle`, and no panic.
fn assert_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].starts_with("error: "), "not an error line: {err}");
    assert!(lines[0].contains(needle), "'{needle}' not in: {err}");
}

fn generate(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "generate",
        "--out",
        out.to_str().unwrap(),
        "--train",
        "6",
        "--test",
        "3",
        "--seq-len",
        "8",
        "--test-seq-len",
        "10",
        "-q",
    ];
    args.extend_from_slice(extra);
    hgn(&args)
}

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for split in ["train", "test"] {
        for name in ["frames", "states", "observed_states", "params"] {
            let p = dir.join(split).join(format!("{name}.npy"));
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.push((
        dir.join("meta.json"),
        std::fs::read(dir.join("meta.json")).unwrap(),
    ));
    out
}

#[test]
fn generate_then_inspect_every_paper_system() {
    let tmp = tempfile::tempdir().unwrap();
    for system in ["mass-spring", "pendulum", "two-body", "three-body"] {
        let dir = tmp.path().join(system);
        let out = generate(&dir, &["--system", system]);
        assert!(out.status.success(), "{system}: {}", stderr(&out));
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["system"], system);
        assert_eq!(meta["dt"], 0.125);
        assert_eq!(
            meta["splits"]["train"]["files"]["frames"]["shape"],
            serde_json::json!([6, 8, 32, 32, 3])
        );
        assert_eq!(meta["splits"]["test"]["seq_len"], 10);
        assert!(dir.join("preview.png").is_file());
        let report = hgn(&["inspect", dir.to_str().unwrap()]);
        assert!(report.status.success(), "{system}: {}", stderr(&report));
        let text = String::from_utf8_lossy(&report.stdout);
        assert!(text.contains("checksums OK"), "{text}");
    }
}

#[test]
fn output_is_byte_identical_at_one_and_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    // More sequences than one parallel block, so the block boundary is exercised too.
    let args = ["--system", "three-body", "--train", "300", "--test", "5"];
    assert!(
        generate(&a, &[&args[..], &["--threads", "1"]].concat())
            .status
            .success()
    );
    assert!(
        generate(&b, &[&args[..], &["--threads", "2"]].concat())
            .status
            .success()
    );
    for ((pa, da), (_, db)) in files(&a).into_iter().zip(files(&b)) {
        assert!(da == db, "{} differs between 1 and 2 threads", pa.display());
    }
    // A different seed gives different data.
    let c = tmp.path().join("c");
    assert!(
        generate(&c, &[&args[..], &["--seed", "1"]].concat())
            .status
            .success()
    );
    assert_ne!(files(&a)[0].1, files(&c)[0].1);
}

#[test]
fn bad_generate_arguments_get_one_line_errors_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ds");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--system", "quadruple-pendulum"],
            "invalid value 'quadruple-pendulum' for '--system <SYSTEM>'; possible values: \
             mass-spring, pendulum,",
        ),
        (&["--train", "0"], "--train must be at least 1"),
        (&["--test", "0"], "--test must be at least 1"),
        (&["--train", "-5"], "must not be negative"),
        (&["--train", "many"], "not a whole number"),
        (&["--seq-len", "1"], "--seq-len must be between 2"),
        (
            &["--test-seq-len", "1000000"],
            "--test-seq-len must be between 2",
        ),
        (
            &["--image-size", "4"],
            "--image-size must be between 8 and 512",
        ),
        (
            &["--image-size", "4096"],
            "--image-size must be between 8 and 512",
        ),
        (&["--dt", "0"], "--dt must be a positive number"),
        (&["--dt", "-0.1"], "--dt must be a positive number"),
        (&["--dt", "NaN"], "--dt must be a positive number"),
        (&["--noise", "-1"], "--noise must be zero or positive"),
        (&["--threads", "0"], "--threads must be at least 1"),
        (&["--colour", "red"], "unexpected argument '--colour'"),
    ];
    for (args, needle) in cases {
        assert_error(&generate(&out, args), needle);
        assert!(!out.exists(), "{args:?} created the output folder");
    }
    // Leftover partial folders are cleaned up after validation failures too.
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn unwritable_output_folder_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let blocker = tmp.path().join("a-file");
    std::fs::write(&blocker, "not a folder").unwrap();
    assert_error(
        &generate(&blocker.join("ds"), &[]),
        "cannot create the output folder",
    );
    assert_error(&generate(&blocker, &[]), "exists and is not a folder");
}

#[test]
fn existing_datasets_are_replaced_only_with_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    assert!(generate(&dir, &[]).status.success());
    let before = files(&dir);
    assert_error(&generate(&dir, &["--seed", "5"]), "pass --overwrite");
    assert_eq!(files(&dir), before, "a refused run changed the dataset");
    assert!(
        generate(&dir, &["--seed", "5", "--overwrite"])
            .status
            .success()
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["seed"], 5);
    assert!(hgn(&["inspect", dir.to_str().unwrap()]).status.success());
    // Nothing is left beside it.
    let names: Vec<String> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["ds".to_string()]);

    // A folder that is not an hgn dataset is never replaced, even with --overwrite.
    let precious = tmp.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("thesis.tex"), "years of work").unwrap();
    assert_error(
        &generate(&precious, &["--overwrite"]),
        "is not an hgn dataset",
    );
    assert_eq!(
        std::fs::read_to_string(precious.join("thesis.tex")).unwrap(),
        "years of work"
    );
}

#[test]
fn a_killed_run_leaves_no_complete_looking_dataset_and_keeps_the_old_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    assert!(generate(&dir, &[]).status.success());
    let before = files(&dir);
    let fresh = tmp.path().join("fresh");
    for (target, extra) in [(&dir, vec!["--overwrite"]), (&fresh, vec![])] {
        let mut args: Vec<&str> = vec![
            "generate",
            "--out",
            target.to_str().unwrap(),
            "--train",
            "200000",
            "-q",
        ];
        args.extend(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_hgn"))
            .args(&args)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(700));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_eq!(
        files(&dir),
        before,
        "the old dataset was damaged by an interrupted --overwrite"
    );
    assert!(
        !fresh.exists(),
        "an interrupted run left a folder under the final name"
    );
}

/// Every file below `dir`, hidden ones included, as relative paths with their bytes.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    common::files_below(dir)
        .into_iter()
        .map(|file| {
            let bytes = std::fs::read(dir.join(&file)).unwrap();
            (file, bytes)
        })
        .collect()
}

#[test]
fn a_generate_killed_at_any_moment_and_rerun_ends_with_the_files_of_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    // Each folder starts with another dataset, which the command replaces.
    let (straight, killed) = (tmp.path().join("straight"), tmp.path().join("killed"));
    for parent in [&straight, &killed] {
        assert!(
            generate(&parent.join("ds"), &["--seed", "1"])
                .status
                .success()
        );
    }
    let args = |parent: &Path| -> Vec<String> {
        let out = parent.join("ds").to_str().unwrap().to_string();
        let args = [
            "generate", "--out", &out, "--train", "3000", "--test", "300",
        ];
        let more = ["--overwrite", "-q"];
        args.iter().chain(&more).map(|s| s.to_string()).collect()
    };
    let started = std::time::Instant::now();
    let out = common::hgn(&args(&straight));
    assert!(out.status.success(), "{}", stderr(&out));
    let full = started.elapsed();
    let kills = common::run_with_kills(full, || args(&killed));
    assert!(kills >= 2, "only {kills} attempts were killed");
    let names = |t: &[(PathBuf, Vec<u8>)]| t.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    let (expected, got) = (tree(&straight), tree(&killed));
    assert_eq!(names(&got), names(&expected));
    assert!(
        got == expected,
        "the files differ from an uninterrupted run's"
    );
}

#[test]
fn damaged_datasets_fail_inspection_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    assert!(generate(&pristine, &[]).status.success());
    let copy = |name: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(dir.join("train")).unwrap();
        std::fs::create_dir_all(dir.join("test")).unwrap();
        for (path, data) in files(&pristine) {
            let rel = path.strip_prefix(&pristine).unwrap();
            std::fs::write(dir.join(rel), data).unwrap();
        }
        dir
    };
    let inspect = |dir: &Path| hgn(&["inspect", dir.to_str().unwrap()]);

    assert_error(&inspect(&tmp.path().join("nowhere")), "is not a folder");

    let d = copy("no-meta");
    std::fs::remove_file(d.join("meta.json")).unwrap();
    assert_error(&inspect(&d), "meta.json is missing");

    let d = copy("bad-meta");
    std::fs::write(d.join("meta.json"), "{ \"format\": \"hgn-dataset\", ").unwrap();
    assert_error(&inspect(&d), "meta.json is damaged");

    let d = copy("truncated");
    let frames = d.join("train/frames.npy");
    let data = std::fs::read(&frames).unwrap();
    std::fs::write(&frames, &data[..data.len() - 100]).unwrap();
    assert_error(&inspect(&d), "train/frames.npy is truncated");

    let d = copy("flipped-byte");
    let states = d.join("test/states.npy");
    let mut data = std::fs::read(&states).unwrap();
    let last = data.len() - 1;
    data[last] ^= 0x40;
    std::fs::write(&states, data).unwrap();
    assert_error(&inspect(&d), "test/states.npy fails its SHA-256 check");

    let d = copy("swapped");
    std::fs::copy(d.join("test/states.npy"), d.join("train/states.npy")).unwrap();
    assert_error(&inspect(&d), "train/states.npy has shape");

    let d = copy("missing");
    std::fs::remove_file(d.join("test/params.npy")).unwrap();
    assert_error(&inspect(&d), "test/params.npy is missing");

    let d = copy("not-numpy");
    std::fs::write(d.join("train/params.npy"), b"PK\x03\x04 a zip file").unwrap();
    assert_error(&inspect(&d), "train/params.npy is not a valid .npy file");

    let d = copy("negative-dt");
    let meta = std::fs::read_to_string(d.join("meta.json")).unwrap();
    std::fs::write(
        d.join("meta.json"),
        meta.replace("\"dt\": 0.125", "\"dt\": -0.125"),
    )
    .unwrap();
    assert_error(&inspect(&d), "dt is -0.125, not a positive time step");

    let d = copy("inconsistent-meta");
    let meta = std::fs::read_to_string(d.join("meta.json")).unwrap();
    std::fs::write(
        d.join("meta.json"),
        meta.replacen("\"num_sequences\": 3", "\"num_sequences\": 4", 1),
    )
    .unwrap();
    assert_error(&inspect(&d), "but the split's counts imply");

    assert!(inspect(&pristine).status.success());
}

/// Seeded damage to every file of a dataset (headers, bodies, truncation, meta.json values and
/// syntax): every reader answers with success or one `error:` line, never a panic or a hang.
#[test]
fn fuzzed_datasets_get_one_line_errors_and_never_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let pristine = tmp.path().join("pristine");
    assert!(generate(&pristine, &[]).status.success());
    let originals = files(&pristine);
    // A small deterministic generator (xorshift), so failures can be replayed by case number.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let dir = tmp.path().join("case");
    let mut refused = 0;
    for case in 0..240 {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("train")).unwrap();
        std::fs::create_dir_all(dir.join("test")).unwrap();
        let target = (next() % originals.len() as u64) as usize;
        for (i, (path, data)) in originals.iter().enumerate() {
            let mut data = data.clone();
            if i == target && !data.is_empty() {
                let len = data.len() as u64;
                let is_meta = path.ends_with("meta.json");
                match next() % 4 {
                    // Flip a byte of the header (or of the start of meta.json).
                    0 => {
                        let at = (next() % len.min(128)) as usize;
                        data[at] ^= 1 << (next() % 8);
                    }
                    // Flip a byte anywhere.
                    1 => {
                        let at = (next() % len) as usize;
                        data[at] ^= 1 << (next() % 8);
                    }
                    // Truncate.
                    2 => data.truncate((next() % len) as usize),
                    // Overwrite a digit of meta.json, or a run of bytes of an array.
                    _ if is_meta => {
                        let digits: Vec<usize> = data
                            .iter()
                            .enumerate()
                            .filter(|(_, b)| b.is_ascii_digit())
                            .map(|(i, _)| i)
                            .collect();
                        let at = digits[(next() % digits.len() as u64) as usize];
                        data[at] = b"0-9e."[(next() % 5) as usize];
                    }
                    _ => {
                        let at = (next() % len) as usize;
                        let end = (at + 16).min(data.len());
                        for b in &mut data[at..end] {
                            *b = next() as u8;
                        }
                    }
                }
            }
            let rel = path.strip_prefix(&pristine).unwrap();
            std::fs::write(dir.join(rel), data).unwrap();
        }
        for args in [
            vec!["inspect", dir.to_str().unwrap()],
            vec![
                "oracle",
                "--data",
                dir.to_str().unwrap(),
                "--sequences",
                "2",
                "--draws",
                "2",
                "--protocol",
                "reconstruct",
                "--inference-frames",
                "8",
                "-q",
            ],
        ] {
            let out = hgn(&args);
            let err = stderr(&out);
            assert!(
                !err.contains("panicked") && out.status.code().is_some(),
                "case {case}, {}: {err}",
                args[0]
            );
            if !out.status.success() {
                refused += 1;
                assert!(
                    err.starts_with("error: ") && err.trim_end().lines().count() == 1,
                    "case {case}, {}: not one error line: {err}",
                    args[0]
                );
            }
        }
    }
    // Most damage is caught (a flipped bit in a free-text field of meta.json is harmless).
    assert!(refused > 200, "only {refused} of 480 reads refused");
}

#[test]
fn systems_lists_every_system_with_its_hamiltonian() {
    let out = hgn(&["systems"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "mass-spring",
        "pendulum",
        "two-body",
        "three-body",
        "double-pendulum",
        "pendulum-colors-friction",
        "two-body-colors",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} missing from:\n{text}"
        );
    }
    assert!(text.contains("m·g·l·(1 − cos q)"));
}

//! Helpers shared by the integration tests that drive the `hgn` binary.
// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use burn::tensor::{Device, FloatDType};

/// The CPU device, switched to f64 once for the whole test binary (burn allows it only once),
/// its random draws seeded with `seed` on that first call.
pub fn f64_device(seed: u64) -> Device {
    static CONFIGURED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    CONFIGURED.get_or_init(|| {
        Device::flex()
            .configure(FloatDType::F64)
            .expect("flex computes in f64");
        Device::flex().seed(seed);
    });
    Device::flex()
}

/// Runs `hgn ARGS`.
pub fn hgn(args: &[impl AsRef<std::ffi::OsStr>]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hgn"))
        .args(args)
        .output()
        .expect("hgn runs")
}

/// Asserts success and returns stdout.
pub fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a failure reported as exactly one `error: …` line containing `needle`, and no panic.
pub fn assert_error(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure: {err}");
    assert!(!err.contains("panicked"), "panicked: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line: {err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(needle),
        "'{needle}' not in: {err}"
    );
}

/// Width and height of a PNG file.
pub fn png_size(path: &Path) -> (u32, u32) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let reader = decoder.read_info().unwrap();
    (reader.info().width, reader.info().height)
}

/// `hgn train --data DATA --run RUN --config CONFIG -q`.
pub fn train_with_config(data: &Path, run: &Path, config: &Path) -> Output {
    hgn(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "-q",
    ])
}

/// Runs `hgn` until an attempt completes, killing each one (SIGKILL) once it has run a growing
/// share of `full`, the uninterrupted command's wall time: 1/12 of it, then 2/12, and so on, so
/// that kills land at startup, between steps and inside checkpoint writes. Each attempt's
/// arguments come from `args()`, called just before it starts. Returns how many were killed.
pub fn run_with_kills(full: Duration, args: impl Fn() -> Vec<String>) -> u32 {
    let mut kills = 0;
    for attempt in 1u32.. {
        let args = args();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hgn"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hgn starts");
        let (started, limit) = (Instant::now(), full * attempt / 12);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                assert!(
                    status.success(),
                    "attempt {attempt} ({args:?}) failed: {err}"
                );
                return kills;
            }
            if started.elapsed() >= limit {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    unreachable!("attempts are unbounded")
}

/// Every file below `dir`, hidden ones included, as paths relative to it, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut out = vec![];
    walk(dir, dir, &mut out);
    out.sort();
    out
}

//! Helpers shared by the integration tests that drive the `hgn` binary.
// Each test binary compiles this module and uses a different part of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

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
pub fn hgn(args: &[&str]) -> Output {
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

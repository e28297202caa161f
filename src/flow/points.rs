//! The points of a flow run: a built-in target's draws or a file's rows (split into training
//! and held-out points), early stopping's validation draws, batches, and `.npy` input and output.
//!
//! Points are standardised `(x − mean) / std` (recorded in the config) before they reach a
//! flow. Held-out target points come from the stream `(seed, 4, 0)`, the split of a user file
//! from `(seed, 5, 0)`, validation draws from `(seed, 11, 0)`.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use rand::Rng;

use super::config::{FlowData, FlowRunConfig};
use super::targets;
use crate::data::npy::{Dtype, NpyWriter, read_f64};
use crate::rng::{Stream, stream_rng};

/// Reads a user's points: a float64 `.npy` of shape `[N, d]` with finite values.
pub fn read_points(path: &Path) -> Result<(Vec<f64>, usize)> {
    let (shape, values) = read_f64(path)
        .with_context(|| format!("{} is not a float64 .npy array", path.display()))?;
    ensure!(
        shape.len() == 2 && shape[0] >= 2 && shape[1] >= 1,
        "{} has shape {:?}; expected [N, d] with N ≥ 2",
        path.display(),
        shape
    );
    ensure!(
        values.iter().all(|v| v.is_finite()),
        "{} holds NaN or infinite values",
        path.display()
    );
    Ok((values, shape[1]))
}

/// Splits points into a kept part and a held-out tenth (at least one point) after a shuffle
/// seeded by `(seed, stream)`.
pub(crate) fn split_file(
    points: &[f64],
    d: usize,
    seed: u64,
    stream: Stream,
) -> (Vec<f64>, Vec<f64>) {
    let n = points.len() / d;
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = stream_rng(seed, stream, 0);
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        order.swap(i, j);
    }
    let test_n = (n / 10).max(1);
    let rows = |ids: &[usize]| -> Vec<f64> {
        ids.iter()
            .flat_map(|&i| points[i * d..(i + 1) * d].iter().copied())
            .collect()
    };
    (rows(&order[test_n..]), rows(&order[..test_n]))
}

/// Writes `[n × d]` points as a float64 `.npy` through a temporary file.
pub fn write_points(path: &Path, points: &[f64], d: usize) -> Result<()> {
    let tmp = crate::run::fs::temporary_path(path);
    let mut writer = NpyWriter::create(&tmp, Dtype::F64, &[points.len() / d, d])?;
    let result = writer
        .write_f64(points)
        .and_then(|_| writer.finish().map(|_| ()));
    crate::run::fs::finish(result, &tmp, path)
}

/// The points of a flow run.
pub(crate) struct FlowPoints {
    /// The training points of a file run (`None` for a built-in target, which is sampled
    /// afresh every step).
    pub(crate) train: Option<Vec<f64>>,
    /// The held-out points the run keeps in `RUN/test.npy`.
    pub(crate) test: Vec<f64>,
    /// Early stopping's validation points (runs with a patience).
    pub(crate) valid: Option<Vec<f64>>,
}

/// The data of a flow run (see [`FlowPoints`]).
pub(crate) fn flow_points(config: &FlowRunConfig) -> Result<FlowPoints> {
    let d = config.dim();
    let early = config.train.patience.is_some();
    match &config.data {
        FlowData::Target(name) => {
            let mut rng = stream_rng(config.train.seed, Stream::FlowTestPoints, 0);
            let test = targets::sample(name, config.train.test_size, &mut rng)
                .context("unknown target")?;
            let valid = early.then(|| {
                let mut rng = stream_rng(config.train.seed, Stream::FlowValidation, 0);
                targets::sample(name, VALIDATION_DRAWS, &mut rng).expect("a known target")
            });
            Ok(FlowPoints {
                train: None,
                test,
                valid,
            })
        }
        FlowData::File(path) => {
            let (all, file_d) = read_points(path)?;
            ensure!(
                file_d == d,
                "{} has {file_d} columns but the run has {d}",
                path.display()
            );
            let (train, test) = split_file(&all, d, config.train.seed, Stream::FlowFileSplit);
            if !early {
                return Ok(FlowPoints {
                    train: Some(train),
                    test,
                    valid: None,
                });
            }
            ensure!(
                train.len() / d >= 2,
                "{} has too few points to set a validation part aside",
                path.display()
            );
            let (train, valid) = split_file(&train, d, config.train.seed, Stream::FlowValidation);
            Ok(FlowPoints {
                train: Some(train),
                test,
                valid: Some(valid),
            })
        }
    }
}

/// Validation draws of a built-in target for early stopping.
const VALIDATION_DRAWS: usize = 2000;

/// One training batch `[batch_size × d]`: drawn from the target, or rows of the training
/// points drawn with replacement.
pub(crate) fn flow_batch(
    config: &FlowRunConfig,
    train_points: Option<&[f64]>,
    rng: &mut impl Rng,
) -> Result<Vec<f64>> {
    let (b, d) = (config.train.batch_size, config.dim());
    Ok(match (&config.data, train_points) {
        (FlowData::Target(name), _) => targets::sample(name, b, rng).context("unknown target")?,
        (_, Some(train)) => {
            let n = train.len() / d;
            (0..b)
                .flat_map(|_| {
                    let i = rng.random_range(0..n);
                    train[i * d..(i + 1) * d].iter().copied()
                })
                .collect()
        }
        _ => unreachable!("file runs hold their training points"),
    })
}

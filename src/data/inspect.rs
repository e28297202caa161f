//! `hgn inspect`: verify a dataset folder against its `meta.json` and summarise it.
//!
//! Verification checks every array's header, dtype, shape, size and SHA-256 against
//! `meta.json`, and the shapes against the system's dimensions. The summary recomputes the
//! energy of every clean trajectory with the system's Hamiltonian: for a conservative system its
//! relative drift is round-off, so a large value means the files do not match the physics.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use super::format::{ARRAYS, DatasetMeta, FileMeta, Split};
use super::npy::{Dtype, read_f64, read_header, sha256_file};
use crate::physics::find_system;

/// Summary of one verified split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitReport {
    /// Which split.
    pub split: Split,
    /// Number of sequences.
    pub num_sequences: usize,
    /// Frames per sequence.
    pub seq_len: usize,
    /// Largest relative energy change `|H_t − H_0| / |H_0|` over all sequences and frames.
    pub max_energy_change: f64,
    /// Median over sequences of the relative energy change between the first and last frame.
    pub median_energy_change: f64,
    /// Bytes on disk.
    pub bytes: u64,
}

/// What `hgn inspect` found.
#[derive(Debug, Clone, PartialEq)]
pub struct InspectReport {
    /// The folder.
    pub dir: PathBuf,
    /// Its metadata.
    pub meta: DatasetMeta,
    /// Per split, train first.
    pub splits: Vec<SplitReport>,
}

/// Verifies `dir` and summarises it; fails with a one-line reason on the first problem.
pub fn inspect(dir: &Path) -> Result<InspectReport> {
    let meta = DatasetMeta::load(dir)?;
    let spec = find_system(&meta.system)
        .with_context(|| format!("{}: unknown system '{}'", dir.display(), meta.system))?;
    let dim = 2 * spec.dof();
    ensure!(
        meta.state_names.len() == dim && meta.param_names.len() == spec.param_names().len(),
        "{}: the state or parameter names do not match the {} system",
        dir.display(),
        spec.name
    );
    let mut splits = Vec::new();
    for split in Split::ALL {
        let sm = meta.split(split);
        let (n, t, s) = (sm.num_sequences, sm.seq_len, meta.image_size);
        let expected: [(Dtype, Vec<usize>); 4] = [
            (Dtype::U8, vec![n, t, s, s, 3]),
            (Dtype::F64, vec![n, t, dim]),
            (Dtype::F64, vec![n, t, dim]),
            (Dtype::F64, vec![n, meta.param_names.len()]),
        ];
        let mut bytes = 0;
        for (array, (dtype, shape)) in ARRAYS.iter().zip(&expected) {
            bytes += verify_file(dir, split, array, *dtype, shape, &sm.files[*array])?;
        }
        let (_, states) = read_f64(&dir.join(split.name()).join("states.npy"))?;
        let (_, params) = read_f64(&dir.join(split.name()).join("params.npy"))?;
        let np = meta.param_names.len();
        let mut max_change: f64 = 0.0;
        let mut end_changes = Vec::with_capacity(n);
        for (sequence, row) in states.chunks(t * dim).zip(params.chunks(np)) {
            let system = spec.system_from_params(row);
            let h0 = system.hamiltonian(&sequence[..dim]);
            let scale = h0.abs().max(1e-12);
            for y in sequence.chunks(dim) {
                max_change = max_change.max((system.hamiltonian(y) - h0).abs() / scale);
            }
            end_changes.push((system.hamiltonian(&sequence[(t - 1) * dim..]) - h0).abs() / scale);
        }
        end_changes.sort_by(f64::total_cmp);
        splits.push(SplitReport {
            split,
            num_sequences: n,
            seq_len: t,
            max_energy_change: max_change,
            median_energy_change: end_changes[end_changes.len() / 2],
            bytes,
        });
    }
    Ok(InspectReport {
        dir: dir.to_path_buf(),
        meta,
        splits,
    })
}

/// Checks `SPLIT/ARRAY.npy` against its expected dtype and shape and its `meta.json` record
/// (dtype, shape, size, SHA-256); returns its size in bytes.
fn verify_file(
    dir: &Path,
    split: Split,
    array: &str,
    dtype: Dtype,
    shape: &[usize],
    recorded: &FileMeta,
) -> Result<u64> {
    let rel = format!("{}/{array}.npy", split.name());
    let path = dir.join(&rel);
    if !path.is_file() {
        bail!("{}: {rel} is missing", dir.display());
    }
    let header = read_header(&path)?;
    ensure!(
        header.dtype == dtype && recorded.dtype == dtype.name(),
        "{}: {rel} holds {} but {} is expected",
        dir.display(),
        header.dtype.name(),
        dtype.name()
    );
    ensure!(
        header.shape == shape && recorded.shape == shape,
        "{}: {rel} has shape {:?} but meta.json implies {:?}",
        dir.display(),
        header.shape,
        shape
    );
    let size = std::fs::metadata(&path)?.len();
    ensure!(
        size == recorded.bytes,
        "{}: {rel} is {size} bytes but meta.json records {}",
        dir.display(),
        recorded.bytes
    );
    let digest = sha256_file(&path)?;
    if digest != recorded.sha256 {
        bail!(
            "{}: {rel} fails its SHA-256 check (damaged or changed since it was written)",
            dir.display()
        );
    }
    Ok(size)
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.meta;
        writeln!(
            f,
            "{}: {} dataset, format v{} ({})",
            self.dir.display(),
            m.system,
            m.format_version,
            m.generator
        )?;
        writeln!(f, "  Hamiltonian   {}", m.hamiltonian)?;
        let ranges: Vec<String> = m
            .param_ranges
            .iter()
            .map(|r| crate::physics::catalog::format_range(&r.name, r.low, r.high))
            .collect();
        writeln!(f, "  parameters    {}", ranges.join(", "))?;
        writeln!(
            f,
            "  sampling      r ∈ [{}, {}], noise σ = {}, friction γ = {}, dt = {}, seed = {}",
            m.radius_range[0], m.radius_range[1], m.noise_std, m.friction, m.dt, m.seed
        )?;
        writeln!(
            f,
            "  images        {0}×{0} RGB, canvas ±{1:.3} world units",
            m.image_size, m.canvas_half_size
        )?;
        writeln!(
            f,
            "  ground truth  {} (rtol {:e}, atol {:e})",
            m.integrator, m.rtol, m.atol
        )?;
        for s in &self.splits {
            writeln!(
                f,
                "  {:<5}         {} sequences × {} frames, {:.1} MiB, checksums OK; relative energy change: max {:.2e}, median at last frame {:.2e}",
                s.split.name(),
                s.num_sequences,
                s.seq_len,
                s.bytes as f64 / (1 << 20) as f64,
                s.max_energy_change,
                s.median_energy_change
            )?;
        }
        Ok(())
    }
}

//! `hgn generate`: simulate, render and write a dataset folder, in parallel and atomically.
//!
//! Trajectory `i` of split `s` is drawn from its own RNG stream `(seed, s, i)`, so the files are
//! byte-identical whatever the thread count. Work proceeds in blocks of sequences: a block is
//! generated in parallel, then written in index order, so memory stays bounded by one block
//! however large the dataset. Everything is written into a hidden sibling folder
//! (`.NAME.partial-PID`) that is renamed into place only once every file and `meta.json` are
//! complete and synced: an interrupted run never leaves a folder that looks like a dataset, and an
//! existing dataset is replaced only with `--overwrite` (and only if it is an hgn dataset). A call
//! locks its hidden folders while it works and first removes those no running call holds (a
//! killed call's), so a killed run rerun ends with exactly the files of an uninterrupted one.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use rayon::prelude::*;

use super::format::{
    ARRAYS, DatasetMeta, FORMAT_NAME, FORMAT_VERSION, FileMeta, META_FILE, PREVIEW_FILE, RangeMeta,
    Split, SplitMeta,
};
use super::npy::{Dtype, NpyWriter};
use crate::physics::integrate::Tolerance;
use crate::physics::render::BACKGROUND;
use crate::physics::sampling::trajectory_rng;
use crate::physics::trajectory::RenderSettings;
use crate::physics::{SystemSpec, Trajectory};
use crate::run::fs::{sync_dir, sync_file, write_atomic};

/// Largest accepted sequence length.
pub const MAX_SEQ_LEN: usize = 100_000;
/// Accepted image sizes.
pub const IMAGE_SIZE_RANGE: (usize, usize) = (8, 512);
/// Sequences generated in parallel before being written in order.
const BLOCK: usize = 256;

/// Everything `hgn generate` needs.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// The system to simulate.
    pub system: &'static SystemSpec,
    /// Output folder.
    pub out: PathBuf,
    /// Number of training sequences.
    pub num_train: usize,
    /// Number of test sequences.
    pub num_test: usize,
    /// Frames per training sequence.
    pub seq_len: usize,
    /// Frames per test sequence.
    pub test_seq_len: usize,
    /// Time between frames.
    pub dt: f64,
    /// Seed of every random draw.
    pub seed: u64,
    /// Image height and width.
    pub image_size: usize,
    /// Observation noise σ.
    pub noise_std: f64,
    /// Replace an existing dataset at `out`.
    pub overwrite: bool,
    /// Worker threads (`None`: all cores).
    pub threads: Option<usize>,
    /// Where the progress of the sequences goes.
    pub reporter: crate::progress::Reporter,
}

impl GenerateOptions {
    /// Defaults for `system`: its own dt and noise, 34-frame training sequences (the authors'
    /// 5 inference + 30 target frames), test sequences 60 frames longer for extrapolation.
    pub fn new(system: &'static SystemSpec, out: PathBuf) -> Self {
        Self {
            system,
            out,
            num_train: 5000,
            num_test: 1000,
            seq_len: 34,
            test_seq_len: 94,
            dt: system.default_dt,
            seed: 0,
            image_size: 32,
            noise_std: system.noise_std,
            overwrite: false,
            threads: None,
            reporter: crate::progress::Reporter::silent(),
        }
    }

    /// Checks every setting; the message names the flag and the accepted range.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.num_train >= 1,
            "--train must be at least 1 (got {})",
            self.num_train
        );
        ensure!(
            self.num_test >= 1,
            "--test must be at least 1 (got {})",
            self.num_test
        );
        for (flag, len) in [
            ("--seq-len", self.seq_len),
            ("--test-seq-len", self.test_seq_len),
        ] {
            ensure!(
                (2..=MAX_SEQ_LEN).contains(&len),
                "{flag} must be between 2 and {MAX_SEQ_LEN} frames (got {len})"
            );
        }
        let (lo, hi) = IMAGE_SIZE_RANGE;
        ensure!(
            (lo..=hi).contains(&self.image_size),
            "--image-size must be between {lo} and {hi} pixels (got {})",
            self.image_size
        );
        ensure!(
            self.dt.is_finite() && self.dt > 0.0 && self.dt <= 10.0,
            "--dt must be a positive number of at most 10 (got {})",
            self.dt
        );
        ensure!(
            self.noise_std.is_finite() && self.noise_std >= 0.0,
            "--noise must be zero or positive (got {})",
            self.noise_std
        );
        ensure!(self.threads != Some(0), "--threads must be at least 1");
        let frame_bytes = (self.image_size * self.image_size * 3) as u128;
        let total = frame_bytes
            * (self.num_train as u128 * self.seq_len as u128
                + self.num_test as u128 * self.test_seq_len as u128);
        ensure!(
            total < 1 << 40,
            "the frames would take {:.1} TiB; reduce --train, --test, --seq-len or --image-size",
            total as f64 / (1u64 << 40) as f64
        );
        Ok(())
    }

    fn settings(&self, split: Split) -> RenderSettings {
        RenderSettings {
            seq_len: match split {
                Split::Train => self.seq_len,
                Split::Test => self.test_seq_len,
            },
            dt: self.dt,
            noise_std: self.noise_std,
            image_size: self.image_size,
            tolerance: Tolerance::default(),
        }
    }

    fn count(&self, split: Split) -> usize {
        match split {
            Split::Train => self.num_train,
            Split::Test => self.num_test,
        }
    }
}

/// What a finished `hgn generate` reports.
#[derive(Debug, Clone)]
pub struct GenerateSummary {
    /// Where the dataset is.
    pub out: PathBuf,
    /// Its metadata.
    pub meta: DatasetMeta,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Sequences generated per second.
    pub sequences_per_second: f64,
}

/// Removes the partial folder unless the dataset was committed.
struct PartialDir {
    path: PathBuf,
    committed: bool,
    /// Held while this call works, so that no other call removes the folder as a leftover.
    _lock: Option<File>,
}

impl Drop for PartialDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Generates the dataset described by `opts`.
pub fn generate(opts: &GenerateOptions) -> Result<GenerateSummary> {
    opts.validate()?;
    let out = &opts.out;
    let name = out
        .file_name()
        .with_context(|| format!("--out {} does not name a folder", out.display()))?
        .to_string_lossy()
        .into_owned();
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create the output folder {}", parent.display()))?;
    check_replaceable(out, opts.overwrite)?;
    remove_leftovers(&parent, &name)?;

    let mut partial = PartialDir {
        path: parent.join(format!(".{name}.partial-{}", std::process::id())),
        committed: false,
        _lock: None,
    };
    std::fs::create_dir(&partial.path)
        .with_context(|| format!("cannot write into {}", parent.display()))?;
    partial._lock = lock_dir(&partial.path);

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.unwrap_or(0))
        .build()
        .context("cannot start worker threads")?;
    let total = (opts.num_train + opts.num_test) as u64;
    let bar = opts.reporter.task(
        &format!("generating {}", opts.system.name),
        "sequences",
        total,
        0,
    );
    let start = Instant::now();
    let mut splits = BTreeMap::new();
    let mut preview = Vec::new();
    for split in Split::ALL {
        let (meta, first) = pool.install(|| write_split(opts, split, &partial.path, &bar))?;
        if split == Split::Train {
            preview = first;
        }
        splits.insert(split.name().to_string(), meta);
    }
    drop(bar);
    let seconds = start.elapsed().as_secs_f64();

    let meta = build_meta(opts, splits);
    write_preview(&partial.path.join(PREVIEW_FILE), &preview, opts)?;
    sync_file(&partial.path.join(PREVIEW_FILE))?;
    // meta.json last: written whole, then the folder synced, before the folder is renamed.
    write_atomic(
        &partial.path.join(META_FILE),
        serde_json::to_string_pretty(&meta)? + "\n",
    )?;

    commit(partial, out)?;
    Ok(GenerateSummary {
        out: out.clone(),
        meta,
        seconds,
        sequences_per_second: total as f64 / seconds.max(1e-9),
    })
}

/// An open handle on the folder `path` holding an exclusive lock on it until dropped, or `None`
/// when another process holds one (or the system cannot lock folders). The lock dies with its
/// process, so a folder left by a killed call can be locked, and one in use by a running call
/// cannot.
fn lock_dir(path: &Path) -> Option<File> {
    let file = File::open(path).ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// Removes the `.NAME.partial-PID` and `.NAME.old-PID` folders beside the dataset that no running
/// call holds: those a killed call left.
fn remove_leftovers(parent: &Path, name: &str) -> Result<()> {
    let prefixes = [format!(".{name}.partial-"), format!(".{name}.old-")];
    let entries =
        std::fs::read_dir(parent).with_context(|| format!("cannot read {}", parent.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", parent.display()))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if prefixes.iter().any(|p| file_name.starts_with(p))
            && let Some(_lock) = lock_dir(&entry.path())
        {
            std::fs::remove_dir_all(entry.path()).with_context(|| {
                format!(
                    "cannot remove {}, left by a killed run",
                    entry.path().display()
                )
            })?;
        }
    }
    Ok(())
}

/// Refuses to replace anything but an hgn dataset, and that only with `--overwrite`.
fn check_replaceable(out: &Path, overwrite: bool) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        bail!(
            "{} exists and is not a folder; choose another --out",
            out.display()
        );
    }
    let is_empty = std::fs::read_dir(out)
        .with_context(|| format!("cannot read {}", out.display()))?
        .next()
        .is_none();
    if is_empty {
        return Ok(());
    }
    if !out.join(META_FILE).is_file() {
        bail!(
            "{} exists and is not an hgn dataset (no {META_FILE}); refusing to replace it",
            out.display()
        );
    }
    if !overwrite {
        bail!(
            "{} already holds a dataset; pass --overwrite to replace it",
            out.display()
        );
    }
    Ok(())
}

/// Moves the finished partial folder into place, replacing any previous dataset.
fn commit(mut partial: PartialDir, out: &Path) -> Result<()> {
    let old = out.with_file_name(format!(
        ".{}.old-{}",
        out.file_name().expect("checked").to_string_lossy(),
        std::process::id()
    ));
    let replacing = out.exists();
    // Held until the old dataset is removed, so that no other call takes it for a leftover.
    let _old_lock = replacing.then(|| lock_dir(out)).flatten();
    if replacing {
        std::fs::rename(out, &old)
            .with_context(|| format!("cannot move the old dataset {} aside", out.display()))?;
    }
    if let Err(err) = std::fs::rename(&partial.path, out) {
        if replacing {
            let _ = std::fs::rename(&old, out);
        }
        return Err(err)
            .with_context(|| format!("cannot move the new dataset to {}", out.display()));
    }
    partial.committed = true;
    if replacing {
        std::fs::remove_dir_all(&old)
            .with_context(|| format!("cannot remove the old dataset at {}", old.display()))?;
    }
    sync_dir(out.parent().unwrap_or(Path::new(".")))
}

/// Writes one split and returns its metadata and its first trajectories (for the preview).
fn write_split(
    opts: &GenerateOptions,
    split: Split,
    dir: &Path,
    bar: &crate::progress::Task,
) -> Result<(SplitMeta, Vec<Trajectory>)> {
    let spec = opts.system;
    let settings = opts.settings(split);
    let n = opts.count(split);
    let t = settings.seq_len;
    let s = opts.image_size;
    let dim = 2 * spec.dof();
    let num_params = spec.param_names().len();
    let split_dir = dir.join(split.name());
    std::fs::create_dir(&split_dir)
        .with_context(|| format!("cannot create {}", split_dir.display()))?;
    let shapes: [(Dtype, Vec<usize>); 4] = [
        (Dtype::U8, vec![n, t, s, s, 3]),
        (Dtype::F64, vec![n, t, dim]),
        (Dtype::F64, vec![n, t, dim]),
        (Dtype::F64, vec![n, num_params]),
    ];
    let mut writers = ARRAYS
        .iter()
        .zip(&shapes)
        .map(|(name, (dtype, shape))| {
            NpyWriter::create(&split_dir.join(format!("{name}.npy")), *dtype, shape)
        })
        .collect::<Result<Vec<_>>>()?;

    let generate_block = |block_start: usize| -> Result<Vec<Trajectory>> {
        let block_end = (block_start + BLOCK).min(n);
        (block_start..block_end)
            .into_par_iter()
            .map(|i| {
                let mut rng = trajectory_rng(opts.seed, split.stream_id(), i as u64);
                let trajectory = spec.sample_trajectory(&mut rng, &settings);
                bar.inc(1);
                trajectory.with_context(|| format!("{} sequence {i}", split.name()))
            })
            .collect()
    };
    let write_block = |writers: &mut [NpyWriter], block: &[Trajectory]| -> Result<()> {
        for trajectory in block {
            writers[0].write_u8(&trajectory.frames)?;
            writers[1].write_f64(&trajectory.states)?;
            writers[2].write_f64(&trajectory.observed_states)?;
            writers[3].write_f64(&trajectory.params)?;
        }
        Ok(())
    };
    // Block k is written while block k + 1 is generated, so disk I/O overlaps the simulation.
    let mut pending = generate_block(0)?;
    let first: Vec<Trajectory> = pending.iter().take(PREVIEW_ROWS).cloned().collect();
    for block_start in (BLOCK..n).step_by(BLOCK) {
        let (written, next) = rayon::join(
            || write_block(&mut writers, &pending),
            || generate_block(block_start),
        );
        written?;
        pending = next?;
    }
    write_block(&mut writers, &pending)?;
    Ok((
        SplitMeta {
            num_sequences: n,
            seq_len: t,
            files: finish_arrays(writers, shapes)?,
        },
        first,
    ))
}

/// Completes the split's `.npy` files (one per entry of `ARRAYS`, with these dtypes and
/// shapes) and describes each for `meta.json`: dtype, shape, size and SHA-256.
fn finish_arrays(
    writers: Vec<NpyWriter>,
    shapes: [(Dtype, Vec<usize>); 4],
) -> Result<BTreeMap<String, FileMeta>> {
    let mut files = BTreeMap::new();
    for ((name, (dtype, shape)), writer) in ARRAYS.iter().zip(shapes).zip(writers) {
        let written = writer.finish()?;
        files.insert(
            name.to_string(),
            FileMeta {
                dtype: dtype.name().to_string(),
                shape,
                bytes: written.bytes,
                sha256: written.sha256,
            },
        );
    }
    Ok(files)
}

fn build_meta(opts: &GenerateOptions, splits: BTreeMap<String, SplitMeta>) -> DatasetMeta {
    let spec = opts.system;
    let canvas = spec.canvas();
    let tolerance = Tolerance::default();
    DatasetMeta {
        format: FORMAT_NAME.to_string(),
        format_version: FORMAT_VERSION,
        generator: format!("hgn {}", env!("CARGO_PKG_VERSION")),
        system: spec.name.to_string(),
        hamiltonian: spec.hamiltonian.to_string(),
        origin: spec.origin.to_string(),
        state_names: spec.state_names(),
        param_names: spec.param_names(),
        param_ranges: spec
            .params
            .iter()
            .map(|p| RangeMeta {
                name: p.name.to_string(),
                low: p.low,
                high: p.high,
            })
            .collect(),
        radius_range: [spec.radius.0, spec.radius.1],
        uniform_annulus: spec.uniform_annulus,
        orbit_noise: spec.orbit_noise,
        friction: spec.friction,
        noise_std: opts.noise_std,
        dt: opts.dt,
        image_size: opts.image_size,
        canvas_center: canvas.center,
        canvas_half_size: canvas.half_size,
        max_canvas_offset: spec.max_canvas_offset(),
        num_colors: spec.num_colors,
        background: BACKGROUND,
        integrator: if spec.friction == 0.0
            && spec.dynamics == crate::physics::catalog::Dynamics::MassSpring
        {
            "analytic".to_string()
        } else {
            "dopri5 (adaptive Dormand–Prince RK45)".to_string()
        },
        rtol: tolerance.rtol,
        atol: tolerance.atol,
        seed: opts.seed,
        splits,
    }
}

/// Sequences shown in the preview.
const PREVIEW_ROWS: usize = 6;
/// Frames shown per sequence in the preview.
const PREVIEW_COLS: usize = 12;

/// Writes a PNG grid: one row per sequence, one column per frame, 2 px gaps.
fn write_preview(path: &Path, trajectories: &[Trajectory], opts: &GenerateOptions) -> Result<()> {
    let s = opts.image_size;
    let scale = (96 / s).max(1);
    let cols = PREVIEW_COLS.min(opts.seq_len);
    let rows = trajectories.len();
    let cell = s * scale + 2;
    let (width, height) = (cols * cell + 2, rows * cell + 2);
    let mut image = vec![255u8; width * height * 3];
    let frame_bytes = s * s * 3;
    for (r, trajectory) in trajectories.iter().enumerate() {
        for c in 0..cols {
            let frame = &trajectory.frames[c * frame_bytes..(c + 1) * frame_bytes];
            for y in 0..s * scale {
                for x in 0..s * scale {
                    let src = ((y / scale) * s + x / scale) * 3;
                    let dst = ((2 + r * cell + y) * width + 2 + c * cell + x) * 3;
                    image[dst..dst + 3].copy_from_slice(&frame[src..src + 3]);
                }
            }
        }
    }
    write_png(path, &image, width, height)
}

/// Writes an 8-bit RGB PNG.
pub fn write_png(path: &Path, rgb: &[u8], width: usize, height: usize) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width as u32, height as u32);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().context("cannot encode PNG")?;
    writer.write_image_data(rgb).context("cannot encode PNG")?;
    writer.finish().context("cannot encode PNG")?;
    Ok(())
}

//! The on-disk layout of a dataset and its `meta.json`.
//!
//! ```text
//! DIR/meta.json                 everything needed to interpret and verify the files
//! DIR/preview.png               the first sequences of the train split, for a quick look
//! DIR/{train,test}/frames.npy           uint8   [N, T, H, W, 3]  rendered RGB frames
//! DIR/{train,test}/states.npy           float64 [N, T, 2·dof]    clean states, q then p
//! DIR/{train,test}/observed_states.npy  float64 [N, T, 2·dof]    the noisy states rendered
//! DIR/{train,test}/params.npy           float64 [N, P]           per-trajectory parameters
//! ```
//!
//! `meta.json` is written last, after every array is complete and synced, and the folder only
//! appears under its final name once it is whole, so a folder with a `meta.json` is complete.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

/// Version of the layout and `meta.json` schema; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;
/// The value of `meta.json`'s `format` field.
pub const FORMAT_NAME: &str = "hgn-dataset";
/// Name of the metadata file.
pub const META_FILE: &str = "meta.json";
/// Name of the preview picture.
pub const PREVIEW_FILE: &str = "preview.png";
/// The arrays of each split, in the order they are written.
pub const ARRAYS: [&str; 4] = ["frames", "states", "observed_states", "params"];

/// A dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    /// Training sequences.
    Train,
    /// Held-out sequences.
    Test,
}

impl Split {
    /// Both splits, train first.
    pub const ALL: [Split; 2] = [Split::Train, Split::Test];
    /// Folder name.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
        }
    }
    /// The split's id in the per-trajectory RNG stream (see [`crate::rng::Stream`]).
    pub fn stream_id(self) -> u64 {
        match self {
            Split::Train => crate::rng::Stream::DatasetTrain.id(),
            Split::Test => crate::rng::Stream::DatasetTest.id(),
        }
    }
}

/// The description of one stored array.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileMeta {
    /// numpy dtype name.
    pub dtype: String,
    /// Array shape.
    pub shape: Vec<usize>,
    /// File size in bytes.
    pub bytes: u64,
    /// SHA-256 of the whole file, hex.
    pub sha256: String,
}

/// One split's sequences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitMeta {
    /// Number of sequences.
    pub num_sequences: usize,
    /// Frames per sequence.
    pub seq_len: usize,
    /// The arrays, keyed by name (`frames`, `states`, `observed_states`, `params`).
    pub files: BTreeMap<String, FileMeta>,
}

/// A parameter's sampling range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeMeta {
    /// Parameter name.
    pub name: String,
    /// Lower bound.
    pub low: f64,
    /// Upper bound (equal to `low` for a fixed parameter).
    pub high: f64,
}

/// Everything `meta.json` records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetMeta {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// The program that wrote it, e.g. `hgn 0.1.0`.
    pub generator: String,
    /// System name (see `hgn systems`).
    pub system: String,
    /// The Hamiltonian as a formula.
    pub hamiltonian: String,
    /// Where the settings come from.
    pub origin: String,
    /// Names of the state components, `q` first then `p`.
    pub state_names: Vec<String>,
    /// Names of the columns of `params.npy`.
    pub param_names: Vec<String>,
    /// Sampling range of every physical parameter.
    pub param_ranges: Vec<RangeMeta>,
    /// Range of the initial-state radius.
    pub radius_range: [f64; 2],
    /// Whether the radius is uniform in area.
    pub uniform_annulus: bool,
    /// Relative perturbation of n-body initial velocities.
    pub orbit_noise: f64,
    /// Friction γ.
    pub friction: f64,
    /// Observation noise σ added to every state coordinate before rendering.
    pub noise_std: f64,
    /// Time between frames.
    pub dt: f64,
    /// Image height and width.
    pub image_size: usize,
    /// Centre of the canvas in world coordinates.
    pub canvas_center: [f64; 2],
    /// Half-width of the canvas in world units (random offsets included).
    pub canvas_half_size: f64,
    /// Largest random canvas offset per axis (0 when not randomised).
    pub max_canvas_offset: f64,
    /// Palette size for random colours; 0 for a fixed colour per body.
    pub num_colors: usize,
    /// Background colour (RGB in [0, 1]).
    pub background: [f64; 3],
    /// How the ground truth was computed.
    pub integrator: String,
    /// Integrator relative tolerance.
    pub rtol: f64,
    /// Integrator absolute tolerance.
    pub atol: f64,
    /// The seed; trajectory `i` of a split is drawn from stream `(seed, split, i)`.
    pub seed: u64,
    /// The splits, keyed `train` and `test`.
    pub splits: BTreeMap<String, SplitMeta>,
}

impl DatasetMeta {
    /// Reads and checks `DIR/meta.json` (format, version, both splits present).
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            bail!("{} is not a folder", dir.display());
        }
        let path = dir.join(META_FILE);
        if !path.is_file() {
            bail!(
                "{} is not an hgn dataset: {} is missing",
                dir.display(),
                META_FILE
            );
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let meta: DatasetMeta = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display()))?;
        ensure!(
            meta.format == FORMAT_NAME,
            "{}: format is '{}', not '{FORMAT_NAME}'",
            path.display(),
            meta.format
        );
        ensure!(
            meta.format_version == FORMAT_VERSION,
            "{}: format version {} is not supported by this hgn (it reads version {FORMAT_VERSION})",
            path.display(),
            meta.format_version
        );
        meta.validate()
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        for split in Split::ALL {
            let Some(s) = meta.splits.get(split.name()) else {
                bail!(
                    "{}: the '{}' split is missing",
                    path.display(),
                    split.name()
                );
            };
            for array in ARRAYS {
                ensure!(
                    s.files.contains_key(array),
                    "{}: the '{}' split lists no {array}.npy",
                    path.display(),
                    split.name()
                );
            }
        }
        Ok(meta)
    }

    /// Checks every value's range and the consistency of the fields with each other (the files
    /// themselves are checked against these values by their readers and by `hgn inspect`).
    pub fn validate(&self) -> Result<()> {
        let finite = |name: &str, v: f64| -> Result<()> {
            ensure!(v.is_finite(), "{name} is {v}, not a finite number");
            Ok(())
        };
        finite("dt", self.dt)?;
        ensure!(self.dt > 0.0, "dt is {}, not a positive time step", self.dt);
        for (name, v) in [
            ("noise_std", self.noise_std),
            ("friction", self.friction),
            ("orbit_noise", self.orbit_noise),
        ] {
            finite(name, v)?;
            ensure!(v >= 0.0, "{name} is {v}, not a non-negative number");
        }
        for (name, v) in [("rtol", self.rtol), ("atol", self.atol)] {
            finite(name, v)?;
            ensure!(v > 0.0, "{name} is {v}, not a positive tolerance");
        }
        finite("canvas_half_size", self.canvas_half_size)?;
        ensure!(
            self.canvas_half_size > 0.0,
            "canvas_half_size is {}, not positive",
            self.canvas_half_size
        );
        finite("max_canvas_offset", self.max_canvas_offset)?;
        for (i, v) in self
            .canvas_center
            .iter()
            .chain(&self.background)
            .chain(&self.radius_range)
            .enumerate()
        {
            finite(&format!("a canvas, background or radius value (#{i})"), *v)?;
        }
        ensure!(
            self.background.iter().all(|c| (0.0..=1.0).contains(c)),
            "background {:?} is not a colour in [0, 1]",
            self.background
        );
        let (lo, hi) = super::generate::IMAGE_SIZE_RANGE;
        ensure!(
            (lo..=hi).contains(&self.image_size),
            "image_size is {}, not {lo} to {hi}",
            self.image_size
        );
        ensure!(
            !self.state_names.is_empty() && self.state_names.len().is_multiple_of(2),
            "state_names lists {} names, not an even number (q then p)",
            self.state_names.len()
        );
        for r in &self.param_ranges {
            finite(&r.name, r.low)?;
            finite(&r.name, r.high)?;
            ensure!(
                r.low <= r.high,
                "the range of {} is [{}, {}], low above high",
                r.name,
                r.low,
                r.high
            );
        }
        self.validate_split_shapes()
    }

    /// Checks that each split's listed file shapes match its sequence counts and lengths.
    fn validate_split_shapes(&self) -> Result<()> {
        let dim = self.state_names.len();
        let size = self.image_size;
        for (name, split) in &self.splits {
            let n = split.num_sequences;
            let t = split.seq_len;
            let expected: [(&str, Vec<usize>); 3] = [
                ("frames", vec![n, t, size, size, 3]),
                ("states", vec![n, t, dim]),
                ("observed_states", vec![n, t, dim]),
            ];
            for (array, shape) in expected {
                if let Some(file) = split.files.get(array) {
                    ensure!(
                        file.shape == shape,
                        "{name}/{array}.npy is listed with shape {:?}, but the split's counts \
                         imply {shape:?}",
                        file.shape
                    );
                }
            }
            if let Some(file) = split.files.get("params") {
                ensure!(
                    file.shape.len() == 2
                        && file.shape[0] == n
                        && file.shape[1] == self.param_names.len(),
                    "{name}/params.npy is listed with shape {:?}, not [{n}, {}]",
                    file.shape,
                    self.param_names.len()
                );
            }
        }
        Ok(())
    }

    /// The metadata of one split.
    pub fn split(&self, split: Split) -> &SplitMeta {
        &self.splits[split.name()]
    }
}

//! Reading training windows from a dataset folder, and turning them into batches.
//!
//! Frames are read on demand with positioned reads from `frames.npy` (one window is a few
//! hundred kilobytes), so a 50,000-sequence dataset never has to fit in memory. Values are mapped
//! from `u8` to `[0, 1]` and laid out channels-first, `[T, 3, H, W]`.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::{Device, Tensor, TensorData};

use super::format::{DatasetMeta, Split};
use super::npy::{Dtype, read_header};

/// One split's frames, opened for random access.
#[derive(Debug)]
pub struct SequenceDataset {
    path: PathBuf,
    file: File,
    data_offset: u64,
    /// Number of sequences.
    pub num_sequences: usize,
    /// Frames per sequence.
    pub seq_len: usize,
    /// Image height and width.
    pub image_size: usize,
    /// The dataset's metadata.
    pub meta: DatasetMeta,
}

impl SequenceDataset {
    /// Opens `DIR/SPLIT/frames.npy` after checking it against `meta.json` (shape and dtype;
    /// `hgn inspect` verifies checksums).
    pub fn open(dir: &Path, split: Split) -> Result<Self> {
        let meta = DatasetMeta::load(dir)?;
        let sm = meta.split(split);
        ensure!(
            sm.num_sequences >= 1 && sm.seq_len >= 1,
            "{}: the {} split holds no frames",
            dir.display(),
            split.name()
        );
        let path = dir.join(split.name()).join("frames.npy");
        ensure!(
            path.is_file(),
            "{}: {}/frames.npy is missing",
            dir.display(),
            split.name()
        );
        let header = read_header(&path)?;
        let s = meta.image_size;
        let expected = vec![sm.num_sequences, sm.seq_len, s, s, 3];
        ensure!(
            header.dtype == Dtype::U8 && header.shape == expected,
            "{} has shape {:?} ({}) but meta.json implies {:?} (uint8)",
            path.display(),
            header.shape,
            header.dtype.name(),
            expected
        );
        let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self {
            path,
            file,
            data_offset: header.data_offset,
            num_sequences: sm.num_sequences,
            seq_len: sm.seq_len,
            image_size: s,
            meta,
        })
    }

    fn frame_bytes(&self) -> usize {
        self.image_size * self.image_size * 3
    }

    /// The first `len` frames of each sequence in `sequences`, each as in [`Self::read_window`].
    pub fn read_windows(&self, sequences: Range<usize>, len: usize) -> Result<Vec<Vec<f32>>> {
        sequences.map(|i| self.read_window(i, 0, len)).collect()
    }

    /// Frames `start .. start + len` of sequence `index`, as `[len, 3, S, S]` values in [0, 1].
    pub fn read_window(&self, index: usize, start: usize, len: usize) -> Result<Vec<f32>> {
        ensure!(
            index < self.num_sequences,
            "sequence {index} is out of range ({} sequences)",
            self.num_sequences
        );
        ensure!(
            start + len <= self.seq_len,
            "frames {start}..{} exceed the sequence length {}",
            start + len,
            self.seq_len
        );
        let fb = self.frame_bytes();
        let mut raw = vec![0u8; len * fb];
        let offset = self.data_offset + ((index * self.seq_len + start) * fb) as u64;
        self.file
            .read_exact_at(&mut raw, offset)
            .with_context(|| format!("cannot read {}", self.path.display()))?;
        let s = self.image_size;
        let plane = s * s;
        let mut out = vec![0f32; raw.len()];
        for t in 0..len {
            let frame = &raw[t * fb..(t + 1) * fb];
            let dst = &mut out[t * fb..(t + 1) * fb];
            for (pixel, rgb) in frame.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    dst[c * plane + pixel] = rgb[c] as f32 / 255.0;
                }
            }
        }
        Ok(out)
    }

    /// The mean frame over (up to) the first `max_sequences` sequences, `[3, S, S]` in [0, 1]:
    /// the "predict the average frame" baseline.
    pub fn mean_frame(&self, max_sequences: usize) -> Result<Vec<f32>> {
        let n = self.num_sequences.min(max_sequences).max(1);
        let fb = self.frame_bytes();
        let mut sum = vec![0f64; fb];
        for i in 0..n {
            let window = self.read_window(i, 0, self.seq_len)?;
            for frame in window.chunks_exact(fb) {
                for (acc, v) in sum.iter_mut().zip(frame) {
                    *acc += *v as f64;
                }
            }
        }
        let count = (n * self.seq_len) as f64;
        Ok(sum.into_iter().map(|v| (v / count) as f32).collect())
    }
}

/// Stacks windows of `[T, 3, S, S]` values into a `[B, T, 3, S, S]` tensor.
pub fn batch_tensor(
    windows: Vec<Vec<f32>>,
    len: usize,
    image_size: usize,
    device: &Device,
) -> Tensor<5> {
    let b = windows.len();
    let data: Vec<f32> = windows.into_iter().flatten().collect();
    Tensor::from_data(
        TensorData::new(data, [b, len, 3, image_size, image_size]),
        device,
    )
}

//! NumPy `.npy` files (format version 1.0): a streaming writer and a validating reader.
//!
//! The writer produces byte-for-byte what `numpy.save` writes for the same C-ordered array,
//! header padding included (pinned by a golden test), so `numpy.load` reads every file with no
//! extra code. It hashes everything it writes with SHA-256 on the way, so a dataset's checksums
//! cost no second pass. The reader checks the magic, the header, the dtype and the file size
//! against the shape, and names the file and the problem in its errors.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};

const MAGIC: &[u8] = b"\x93NUMPY";
/// numpy leaves room for the first axis to grow to this many digits (`GROWTH_AXIS_MAX_DIGITS`).
const GROWTH_AXIS_MAX_DIGITS: usize = 21;

/// The element types hgn stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `uint8`, numpy descr `|u1`.
    U8,
    /// little-endian `float64`, numpy descr `<f8`.
    F64,
}

impl Dtype {
    /// The numpy type descriptor.
    pub fn descr(self) -> &'static str {
        match self {
            Dtype::U8 => "|u1",
            Dtype::F64 => "<f8",
        }
    }
    /// The numpy name, as recorded in `meta.json`.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::U8 => "uint8",
            Dtype::F64 => "float64",
        }
    }
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::U8 => 1,
            Dtype::F64 => 8,
        }
    }
    /// Parses a numpy name as written by [`Dtype::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "uint8" => Some(Dtype::U8),
            "float64" => Some(Dtype::F64),
            _ => None,
        }
    }
}

/// The complete header of an `.npy` v1.0 file, exactly as `numpy.save` writes it.
pub fn header_bytes(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let shape_repr = match shape {
        [single] => format!("({single},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape_repr}, }}",
        dtype.descr()
    );
    if let Some(first) = shape.first() {
        dict.push_str(&" ".repeat(GROWTH_AXIS_MAX_DIGITS.saturating_sub(first.to_string().len())));
    }
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    dict.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    dict.push('\n');
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// What a finished file holds: its size and SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// Total size in bytes, header included.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of the whole file.
    pub sha256: String,
}

/// Writes one array of known shape, row block by row block, hashing as it goes.
pub struct NpyWriter {
    path: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    dtype: Dtype,
    remaining: u64,
    bytes: u64,
}

impl NpyWriter {
    /// Creates `path` and writes the header for an array of `dtype` and `shape`.
    pub fn create(path: &Path, dtype: Dtype, shape: &[usize]) -> Result<Self> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            dtype,
            remaining: shape.iter().map(|&d| d as u64).product(),
            bytes: 0,
        };
        writer.put(&header_bytes(dtype, shape))?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.bytes += bytes.len() as u64;
        self.out
            .write_all(bytes)
            .with_context(|| format!("cannot write {}", self.path.display()))
    }

    fn take(&mut self, count: usize, dtype: Dtype) -> Result<()> {
        ensure!(
            dtype == self.dtype,
            "{}: wrote {:?} into a {:?} array",
            self.path.display(),
            dtype,
            self.dtype
        );
        ensure!(
            count as u64 <= self.remaining,
            "{}: more elements written than its shape holds",
            self.path.display()
        );
        self.remaining -= count as u64;
        Ok(())
    }

    /// Appends `uint8` elements in C order.
    pub fn write_u8(&mut self, values: &[u8]) -> Result<()> {
        self.take(values.len(), Dtype::U8)?;
        self.put(values)
    }

    /// Appends `float64` elements in C order.
    pub fn write_f64(&mut self, values: &[f64]) -> Result<()> {
        self.take(values.len(), Dtype::F64)?;
        let mut buf = Vec::with_capacity(values.len() * 8);
        for v in values {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        self.put(&buf)
    }

    /// Checks that the whole array was written, flushes it to disk and returns its checksum.
    pub fn finish(mut self) -> Result<WrittenFile> {
        ensure!(
            self.remaining == 0,
            "{}: {} elements were never written",
            self.path.display(),
            self.remaining
        );
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))?;
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()
            .with_context(|| format!("cannot sync {}", self.path.display()))?;
        Ok(WrittenFile {
            bytes: self.bytes,
            sha256: hex(&self.hasher.finalize()),
        })
    }
}

/// Lower-case hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The parsed header of an `.npy` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Element type.
    pub dtype: Dtype,
    /// Array shape.
    pub shape: Vec<usize>,
    /// Byte offset of the first element.
    pub data_offset: u64,
}

impl NpyHeader {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads and validates the header of `path`, including that the file is exactly as long as the
/// shape says.
pub fn read_header(path: &Path) -> Result<NpyHeader> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let header = parse_header(&mut file)
        .with_context(|| format!("{} is not a valid .npy file", path.display()))?;
    let expected = header.data_offset + (header.len() * header.dtype.size()) as u64;
    if file_len < expected {
        bail!(
            "{} is truncated: {} bytes, but its shape {:?} needs {}",
            path.display(),
            file_len,
            header.shape,
            expected
        );
    }
    if file_len > expected {
        bail!(
            "{} has {} unexpected trailing bytes",
            path.display(),
            file_len - expected
        );
    }
    Ok(header)
}

fn parse_header(file: &mut impl Read) -> Result<NpyHeader> {
    let mut lead = [0u8; 8];
    file.read_exact(&mut lead)
        .context("the file is shorter than an .npy header")?;
    ensure!(
        &lead[..6] == MAGIC,
        "it does not start with the .npy magic bytes"
    );
    let (len_bytes, prefix) = match lead[6] {
        1 => (2, 10u64),
        2 | 3 => (4, 12u64),
        v => bail!("unsupported .npy format version {v}"),
    };
    let mut len_buf = [0u8; 4];
    file.read_exact(&mut len_buf[..len_bytes])
        .context("the header is truncated")?;
    let header_len = u32::from_le_bytes(len_buf) as usize;
    ensure!(
        header_len < 1 << 20,
        "the header claims an absurd length of {header_len} bytes"
    );
    let mut text = vec![0u8; header_len];
    file.read_exact(&mut text)
        .context("the header is truncated")?;
    let text = String::from_utf8(text).context("the header is not text")?;
    let descr = dict_value(&text, "descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let dtype = match descr {
        "|u1" | "<u1" | "u1" => Dtype::U8,
        "<f8" => Dtype::F64,
        other => bail!("unsupported dtype '{other}' (hgn stores uint8 and little-endian float64)"),
    };
    ensure!(
        dict_value(&text, "fortran_order")? == "False",
        "Fortran-ordered arrays are not supported"
    );
    let shape_text = dict_value(&text, "shape")?;
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .with_context(|| format!("malformed shape {shape_text}"))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .with_context(|| format!("malformed shape {shape_text}"))
        })
        .collect::<Result<Vec<_>>>()?;
    // The byte count must fit in memory's address space (a damaged header could wrap it).
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .and_then(|bytes| bytes.checked_add(prefix as usize + header_len))
        .with_context(|| format!("the shape {shape_text} is too large to address"))?;
    Ok(NpyHeader {
        dtype,
        shape,
        data_offset: prefix + header_len as u64,
    })
}

/// The raw text of `key`'s value in a numpy header dict (values here never contain `{}` or `:`).
fn dict_value<'a>(text: &'a str, key: &str) -> Result<&'a str> {
    let needle = format!("'{key}':");
    let start = text
        .find(&needle)
        .with_context(|| format!("the header has no '{key}'"))?
        + needle.len();
    let rest = text[start..].trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)
    } else {
        rest.find([',', '}'])
    }
    .with_context(|| format!("the header's '{key}' is malformed"))?;
    Ok(rest[..end].trim())
}

/// Reads a whole array of `expected` dtype.
fn read_raw(path: &Path, expected: Dtype) -> Result<(NpyHeader, Vec<u8>)> {
    let header = read_header(path)?;
    ensure!(
        header.dtype == expected,
        "{} holds {} but {} was expected",
        path.display(),
        header.dtype.name(),
        expected.name()
    );
    let mut file = BufReader::new(
        File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
    );
    file.seek(SeekFrom::Start(header.data_offset))?;
    let mut data = vec![0u8; header.len() * header.dtype.size()];
    file.read_exact(&mut data)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok((header, data))
}

/// Reads a `uint8` array: its shape and elements in C order.
pub fn read_u8(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let (header, data) = read_raw(path, Dtype::U8)?;
    Ok((header.shape, data))
}

/// Reads a `float64` array: its shape and elements in C order.
pub fn read_f64(path: &Path) -> Result<(Vec<usize>, Vec<f64>)> {
    let (header, data) = read_raw(path, Dtype::F64)?;
    let values = data
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    Ok((header.shape, values))
}

/// SHA-256 of a whole file, hex-encoded.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = BufReader::with_capacity(
        1 << 20,
        File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
    );
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_whose_size_overflows_is_refused() {
        let header = header_bytes(Dtype::F64, &[1 << 40, 1 << 40]);
        let err = parse_header(&mut &header[..]).unwrap_err();
        assert!(err.to_string().contains("too large to address"), "{err}");
    }

    /// Headers printed by `numpy.save` (numpy 2.x) for the same dtypes and shapes.
    #[test]
    fn headers_match_numpy_byte_for_byte() {
        let cases: [(Dtype, &[usize], &str); 4] = [
            (
                Dtype::U8,
                &[2, 3],
                "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3), }",
            ),
            (
                Dtype::F64,
                &[5],
                "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }",
            ),
            (
                Dtype::U8,
                &[2, 34, 32, 32, 3],
                "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 34, 32, 32, 3), }",
            ),
            (
                Dtype::F64,
                &[50000, 94, 12],
                "{'descr': '<f8', 'fortran_order': False, 'shape': (50000, 94, 12), }",
            ),
        ];
        for (dtype, shape, dict) in cases {
            let bytes = header_bytes(dtype, shape);
            // numpy: 0x76 = 118 header bytes after the 10-byte prefix, 128 in all.
            assert_eq!(bytes.len(), 128, "{shape:?}");
            assert_eq!(&bytes[..10], b"\x93NUMPY\x01\x00v\x00");
            let text = std::str::from_utf8(&bytes[10..]).unwrap();
            assert!(text.starts_with(dict));
            assert!(text.ends_with('\n'));
            assert!(text[dict.len()..text.len() - 1].chars().all(|c| c == ' '));
        }
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let mut w = NpyWriter::create(&path, Dtype::F64, &[2, 3]).unwrap();
        w.write_f64(&[1.0, 2.0, 3.0]).unwrap();
        w.write_f64(&[-4.5, 0.0, 1e300]).unwrap();
        let written = w.finish().unwrap();
        assert_eq!(written.sha256, sha256_file(&path).unwrap());
        let (shape, values) = read_f64(&path).unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(values, vec![1.0, 2.0, 3.0, -4.5, 0.0, 1e300]);
        assert!(read_u8(&path).unwrap_err().to_string().contains("float64"));
    }

    #[test]
    fn short_writes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let mut w = NpyWriter::create(&path, Dtype::U8, &[4]).unwrap();
        w.write_u8(&[1, 2]).unwrap();
        assert!(
            w.finish()
                .unwrap_err()
                .to_string()
                .contains("never written")
        );
        let mut w = NpyWriter::create(&path, Dtype::U8, &[1]).unwrap();
        assert!(w.write_u8(&[1, 2]).is_err());
    }

    #[test]
    fn damaged_files_are_named_with_their_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let mut w = NpyWriter::create(&path, Dtype::U8, &[10]).unwrap();
        w.write_u8(&[7; 10]).unwrap();
        w.finish().unwrap();
        let good = std::fs::read(&path).unwrap();

        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert!(
            read_header(&path)
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        std::fs::write(&path, [&good[..], &[0, 0]].concat()).unwrap();
        assert!(
            read_header(&path)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
        std::fs::write(&path, b"not numpy at all").unwrap();
        assert!(format!("{:#}", read_header(&path).unwrap_err()).contains("magic"));
        std::fs::write(&path, &good[..20]).unwrap();
        assert!(format!("{:#}", read_header(&path).unwrap_err()).contains("truncated"));
    }
}

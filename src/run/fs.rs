//! Crash-safe file writes: the one place a file of a run (or a report) reaches the disk.
//!
//! A file is written under a temporary name beside its final one, `fsync`ed, renamed over the
//! final name, and the folder is `fsync`ed, so after a crash at any instant the final name holds
//! either the old content or the new, never a mixture, and a completed write survives power loss.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The hidden temporary name `path` is written under: `.NAME.tmp` in the same folder.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.tmp"))
}

/// `fsync`s a folder, so that renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// `fsync`s a file that was written by other code (a `.bpk` record, an `.npy`).
pub fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}

/// Writes `bytes` to `path` atomically and durably (temporary file, `fsync`, rename, `fsync` of
/// the folder).
pub fn write_atomic(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    write_atomic_with(path, |file| {
        file.write_all(bytes.as_ref()).map_err(Into::into)
    })
}

/// As [`write_atomic`], with the content produced by `fill` writing into the temporary file.
/// On any error the temporary file is removed and `path` is untouched.
pub fn write_atomic_with(path: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    let tmp = temporary_path(path);
    let result = (|| -> Result<()> {
        let mut file =
            File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        fill(&mut file)?;
        file.sync_all()?;
        Ok(())
    })();
    finish(result, &tmp, path)
}

/// Moves a finished temporary file `tmp` into place as `path` (rename and folder `fsync`) when
/// `result` is Ok; removes `tmp` otherwise. For writers that need the temporary path itself.
pub fn finish(result: Result<()>, tmp: &Path, path: &Path) -> Result<()> {
    match result {
        Ok(()) => {
            sync_file(tmp)?;
            std::fs::rename(tmp, path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            sync_dir(path.parent().unwrap_or(Path::new(".")))
        }
        Err(e) => {
            let _ = std::fs::remove_file(tmp);
            Err(e.context(format!("cannot write {}", path.display())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        write_atomic(&path, "old").unwrap();
        let err = write_atomic_with(&path, |f| {
            f.write_all(b"half")?;
            anyhow::bail!("disk full")
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("disk full"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old");
        assert!(!temporary_path(&path).exists());
        write_atomic(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    }
}

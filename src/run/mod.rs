//! A run folder: its files, its checkpoints, its metrics log, and loading the model it holds.
//!
//! ```text
//! RUN/config.json        the run's configuration, written before step 0; rules on --resume
//! RUN/metrics.jsonl      one JSON line per logged step (train) and per evaluation (eval)
//! RUN/checkpoint/        model.bpk, optim.bpk, state.json (see [`checkpoint`])
//! RUN/eval.json          the report of `hgn eval`
//! RUN/plots/             the pictures of `hgn plot`
//! ```
//!
//! The HGN's and the flow's training loops both keep their runs this way; every write goes through
//! [`fs::write_atomic`] or a checkpoint swap, so a kill at any instant leaves a resumable run.

pub mod checkpoint;
pub mod fs;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::Device;

pub use checkpoint::{
    CHECKPOINT, find_checkpoint, load_optimizer, load_weights, read_state, restore_checkpoint,
    save_checkpoint,
};
pub use fs::write_atomic;

use crate::model::Hgn;
use crate::train::RunConfig;

/// The configuration file of a run.
pub const CONFIG_FILE: &str = "config.json";
/// The metrics log of a run.
pub const METRICS_FILE: &str = "metrics.jsonl";
/// The evaluation report of a run.
pub const EVAL_FILE: &str = "eval.json";
/// The folder of a run's plots.
pub const PLOTS_DIR: &str = "plots";

/// A run folder (it need not exist yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run folder at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { root: path.into() }
    }

    /// The folder itself.
    pub fn path(&self) -> &Path {
        &self.root
    }

    /// `RUN/config.json`.
    pub fn config_file(&self) -> PathBuf {
        self.root.join(CONFIG_FILE)
    }

    /// `RUN/metrics.jsonl`.
    pub fn metrics_file(&self) -> PathBuf {
        self.root.join(METRICS_FILE)
    }

    /// `RUN/eval.json`.
    pub fn eval_file(&self) -> PathBuf {
        self.root.join(EVAL_FILE)
    }

    /// `RUN/plots/`.
    pub fn plots_dir(&self) -> PathBuf {
        self.root.join(PLOTS_DIR)
    }

    /// Where a resumed run continues: puts the newest complete checkpoint back in place
    /// ([`restore_checkpoint`]) and drops the metric lines past it. `None` (all lines dropped)
    /// when the run was killed before its first checkpoint and starts again from its seed.
    pub fn resume_point(&self) -> Result<Option<usize>> {
        let step = restore_checkpoint(&self.root)?;
        self.truncate_metrics(step.unwrap_or(0))?;
        Ok(step)
    }

    /// `RUN/checkpoint/`.
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.root.join(CHECKPOINT)
    }

    /// The step of the newest complete checkpoint.
    pub fn checkpoint_step(&self) -> Result<usize> {
        find_checkpoint(&self.root)
            .map(|(_, s)| s)
            .with_context(|| {
                format!(
                    "{} has no checkpoint yet (no complete {CHECKPOINT}/)",
                    self.root.display()
                )
            })
    }

    /// The run's configuration.
    pub fn config(&self) -> Result<RunConfig> {
        ensure!(
            self.config_file().is_file(),
            "{} is not a training run (no {CONFIG_FILE})",
            self.root.display()
        );
        RunConfig::load(&self.config_file())
    }

    /// The run's configuration and the model of its newest complete checkpoint, on `device`.
    pub fn load(&self, device: &Device) -> Result<(RunConfig, Hgn)> {
        let config = self.config()?;
        config.validate()?;
        let (dir, _) = find_checkpoint(&self.root).with_context(|| {
            format!(
                "{} has no checkpoint yet (no complete {CHECKPOINT}/)",
                self.root.display()
            )
        })?;
        let model = load_weights(&dir, config.model.init(device))?;
        Ok((config, model))
    }

    /// The metrics log, opened for appending (created if missing).
    pub fn open_metrics(&self) -> Result<std::fs::File> {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.metrics_file())
            .with_context(|| format!("cannot open {}", self.metrics_file().display()))
    }

    /// Keeps only the metric lines of steps up to `step` (a resumed run rewrites the rest).
    pub fn truncate_metrics(&self, step: usize) -> Result<()> {
        let path = self.metrics_file();
        if !path.is_file() {
            return Ok(());
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let kept: String = text
            .lines()
            .filter(|line| {
                serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|m| m["step"].as_u64())
                    .is_some_and(|s| s as usize <= step)
            })
            .map(|line| format!("{line}\n"))
            .collect();
        write_atomic(&path, kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_the_lines_up_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        run.truncate_metrics(5).unwrap();
        assert!(!run.metrics_file().exists(), "nothing to truncate");
        {
            use std::io::Write;
            let mut f = run.open_metrics().unwrap();
            for step in [1, 10, 20, 30] {
                writeln!(f, "{{\"step\":{step},\"kind\":\"train\"}}").unwrap();
            }
            write!(f, "{{\"step\":40,\"ki").unwrap();
        }
        run.truncate_metrics(20).unwrap();
        let text = std::fs::read_to_string(run.metrics_file()).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.ends_with("{\"step\":20,\"kind\":\"train\"}\n"));
    }
}

//! Loading a trained flow run: its config, the newest complete checkpoint's weights and its
//! training bookkeeping.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;

use super::config::{FlowRunConfig, validate};
use super::net::FlowNet;
use super::train::{EarlyStop, FlowCheckpointState};

/// The newest complete checkpoint folder of a flow run and its step.
pub(super) fn newest_checkpoint(run: &Path) -> Result<(PathBuf, usize)> {
    crate::run::find_checkpoint(run)
        .with_context(|| format!("{} has no checkpoint yet", run.display()))
}

/// A trained flow with its configuration and training bookkeeping.
pub struct LoadedFlow {
    /// The configuration.
    pub config: FlowRunConfig,
    /// The network.
    pub model: FlowNet,
    /// Steps trained.
    pub step: usize,
    /// Seconds of training.
    pub seconds: f64,
    /// Early stopping's state (runs with a patience).
    pub early_stop: Option<EarlyStop>,
}

/// Early stopping's state in a flow run's newest complete checkpoint (`None` without a
/// patience).
pub fn early_stop_of(run: &Path) -> Result<Option<EarlyStop>> {
    let (dir, _) = newest_checkpoint(run)?;
    let state: FlowCheckpointState = crate::run::read_state(&dir)?;
    Ok(state.early_stop)
}

/// Loads a flow run onto `device`.
pub fn load_flow(run: &Path, device: &Device) -> Result<LoadedFlow> {
    let config = FlowRunConfig::load(run)?;
    validate(&config)?;
    let (dir, _) = newest_checkpoint(run)?;
    let model = crate::run::load_weights(&dir, FlowNet::init(&config, device))?;
    let state: FlowCheckpointState = crate::run::read_state(&dir)?;
    Ok(LoadedFlow {
        config,
        model,
        step: state.step,
        seconds: state.seconds,
        early_stop: state.early_stop,
    })
}

//! `hgn flow plot`: the target density beside the learned one, samples, and the NHF's learned
//! potentials `V_k(q)` (the paper's interpretable energy landscapes), as PNG files.
//!
//! Writes into `RUN/plots/` (or `--out`): `density.png` (target | learned density | samples,
//! each a heat map on the same square window) and, for an NHF, `potentials.png` (`V_k` of every
//! stage on that window, in the data's coordinates). Two-dimensional data only.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::{Tensor, TensorData};

use super::targets;
use super::train::{FlowData, LoadedFlow, draw_samples, load_flow, log_likelihoods, read_points};
use crate::device::DeviceChoice;
use crate::rng::{Stream, stream_rng};
use crate::viz::canvas::WHITE;
use crate::viz::heatmap::{grid_points, histogram};
use crate::viz::{Canvas, Heatmap};

/// Grid cells per side.
const GRID: usize = 96;
/// Panel size in pixels.
const PANEL: usize = 300;

/// The pictures of one flow: target, learned density, samples (and potentials for the NHF).
pub struct FlowPictures {
    /// The square window `[x0, x1, y0, y1]`.
    pub extent: [f64; 4],
    /// Density of the target (histogram of its points).
    pub target: Heatmap,
    /// The flow's density on the grid.
    pub learned: Heatmap,
    /// Histogram of the flow's samples.
    pub samples: Heatmap,
    /// `V_k(q)` of each NHF stage.
    pub potentials: Vec<Heatmap>,
}

/// Points of the target: fresh draws of a built-in target, or the user's whole file.
fn target_points(flow: &LoadedFlow) -> Result<Vec<f64>> {
    match &flow.config.data {
        FlowData::Target(name) => {
            let mut rng = stream_rng(flow.config.train.seed, Stream::FlowPlotTarget, 0);
            targets::sample(name, 200_000, &mut rng).context("unknown target")
        }
        FlowData::File(path) => Ok(read_points(path)?.0),
    }
}

/// A square window around the bulk of the points (0.5–99.5 % quantiles, 10 % margin).
fn window(points: &[f64]) -> [f64; 4] {
    let q = |axis: usize| {
        let mut v: Vec<f64> = points.iter().skip(axis).step_by(2).copied().collect();
        v.sort_by(f64::total_cmp);
        let lo = v[(v.len() as f64 * 0.005) as usize];
        let hi = v[((v.len() as f64 * 0.995) as usize).min(v.len() - 1)];
        (lo, hi)
    };
    let ((x0, x1), (y0, y1)) = (q(0), q(1));
    let half = 0.55 * (x1 - x0).max(y1 - y0).max(1e-6);
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    [cx - half, cx + half, cy - half, cy + half]
}

/// Computes the pictures of a 2-D flow run.
pub fn flow_pictures(run: &Path) -> Result<FlowPictures> {
    let device = DeviceChoice::Cpu.device()?;
    let flow = load_flow(run, &device)?;
    let config = &flow.config;
    ensure!(
        config.dim() == 2,
        "flow plots are for 2-D data (this run models {} dimensions)",
        config.dim()
    );
    let points = target_points(&flow)?;
    let extent = window(&points);
    let grid: Vec<f64> = grid_points(GRID, GRID, extent)
        .into_iter()
        .flatten()
        .collect();
    let (ll, _) = log_likelihoods(&flow.model, config, &grid, 16, &device);
    let kind = config
        .kind
        .name()
        .to_uppercase()
        .replace("REALNVP", "RealNVP");
    let learned = Heatmap {
        title: format!("{kind} density"),
        nx: GRID,
        ny: GRID,
        values: ll.iter().map(|v| v.exp()).collect(),
        extent,
    };
    let target = Heatmap {
        title: "target".into(),
        nx: GRID,
        ny: GRID,
        values: histogram(&points, GRID, GRID, extent),
        extent,
    };
    let drawn = draw_samples(&flow.model, config, 200_000, 1, &device);
    let samples = Heatmap {
        title: format!("{kind} samples"),
        nx: GRID,
        ny: GRID,
        values: histogram(&drawn, GRID, GRID, extent),
        extent,
    };
    let mut potentials = vec![];
    if let Some(nhf) = &flow.model.nhf {
        let q = Tensor::<2>::from_data(
            TensorData::new(config.standardise(&grid), [GRID * GRID, 2]),
            &device,
        );
        for (k, stage) in nhf.stages.iter().enumerate() {
            let v = stage
                .potential
                .energy(q.clone())
                .into_data()
                .convert::<f64>()
                .try_to_vec::<f64>()
                .unwrap_or_default();
            potentials.push(Heatmap {
                title: format!("potential V{} (q)", k + 1),
                nx: GRID,
                ny: GRID,
                values: v,
                extent,
            });
        }
    }
    Ok(FlowPictures {
        extent,
        target,
        learned,
        samples,
        potentials,
    })
}

/// Lays heat maps side by side.
pub fn row(maps: &[&Heatmap]) -> Canvas {
    let mut out = Canvas::new(maps.len() * PANEL, PANEL, WHITE);
    for (i, m) in maps.iter().enumerate() {
        out.blit((i * PANEL) as i64, 0, &m.render(PANEL, PANEL));
    }
    out
}

/// Writes the plots of a flow run and returns their paths.
pub fn write_flow_plots(run: &Path, out: Option<&Path>) -> Result<Vec<PathBuf>> {
    let pictures = flow_pictures(run)?;
    let dir = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| run.join("plots"));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = vec![];
    let path = dir.join("density.png");
    row(&[&pictures.target, &pictures.learned, &pictures.samples]).save_png(&path)?;
    written.push(path);
    if !pictures.potentials.is_empty() {
        let path = dir.join("potentials.png");
        let maps: Vec<&Heatmap> = pictures.potentials.iter().collect();
        row(&maps).save_png(&path)?;
        written.push(path);
    }
    Ok(written)
}

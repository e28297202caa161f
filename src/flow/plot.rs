//! `hgn flow plot`: the target density beside the learned one, samples, and the NHF's learned
//! potentials `V_k(q)` (the paper's interpretable energy landscapes), as PNG files.
//!
//! Writes into `RUN/plots/` (or `--out`): `density.png` (target | learned density | samples,
//! each a heat map on the same square window) and, for an NHF, `potentials.png` (`V_k` of every
//! stage on that window, in the data's coordinates), `kinetic.png` (each stage's kinetic
//! energy `K_k(p)`, the network plus `½|p|²` where the stage has both, on `[−3, 3]²` of the
//! standardised momentum; only when the stages learn one) and `paths.png` (the positions of a few base draws after every leapfrog step of
//! every stage, drawn over the target: how the flow carries the Gaussian onto the data).
//! Two-dimensional data only.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::tensor::{Tensor, TensorData};

use super::config::FlowData;
use super::eval::{draw_samples, log_likelihoods, to_f64};
use super::load::{LoadedFlow, load_flow};
use super::points::read_points;
use super::targets;
use crate::device::DeviceChoice;
use crate::rng::{Stream, stream_rng};
use crate::viz::canvas::{BLACK, PALETTE, WHITE};
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
    /// `K_k(p)` of each NHF stage with a learned kinetic energy (empty without one).
    pub kinetics: Vec<Heatmap>,
    /// Paths of NHF base draws through the flow, in data coordinates: one `[x, y]` per state
    /// (see [`crate::flow::nhf::Nhf::forward_path`]).
    pub paths: Vec<Vec<[f64; 2]>>,
}

/// Base draws whose paths `paths.png` shows.
const PATHS: usize = 12;
/// Half-width of the standardised momentum window of `kinetic.png`.
const MOMENTUM_WINDOW: f64 = 3.0;

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
    let (mut potentials, mut kinetics, mut paths) = (vec![], vec![], vec![]);
    if let Some(nhf) = &flow.model.nhf {
        (potentials, kinetics) = stage_energies(nhf, config, &grid, extent, &device);
        paths = flow_paths(nhf, config, &device);
    }
    Ok(FlowPictures {
        extent,
        target,
        learned,
        samples,
        potentials,
        kinetics,
        paths,
    })
}

/// Each NHF stage's potential V_k(q) on `grid` ([`GRID`]² points of the data window, x and y
/// interleaved, in data coordinates), and its kinetic energy K_k(p) (network plus ½|p|² where
/// the stage has both) on a grid of the momentum window.
fn stage_energies(
    nhf: &super::nhf::Nhf,
    config: &super::config::FlowRunConfig,
    grid: &[f64],
    extent: [f64; 4],
    device: &burn::tensor::Device,
) -> (Vec<Heatmap>, Vec<Heatmap>) {
    let (mut potentials, mut kinetics) = (vec![], vec![]);
    let q = Tensor::<2>::from_data(
        TensorData::new(config.standardise(grid), [GRID * GRID, 2]),
        device,
    );
    let m = MOMENTUM_WINDOW;
    let momenta_f64: Vec<f64> = grid_points(GRID, GRID, [-m, m, -m, m])
        .into_iter()
        .flatten()
        .collect();
    let momenta: Vec<f32> = momenta_f64.iter().map(|&v| v as f32).collect();
    let p = Tensor::<2>::from_data(TensorData::new(momenta, [GRID * GRID, 2]), device);
    for (k, stage) in nhf.stages.iter().enumerate() {
        potentials.push(Heatmap {
            title: format!("potential V{} (q)", k + 1),
            nx: GRID,
            ny: GRID,
            values: to_f64(stage.potential.energy(q.clone())),
            extent,
        });
        if let Some(net) = &stage.kinetic {
            let mut values = to_f64(net.energy(p.clone()));
            if stage.quadratic_kinetic {
                for (v, row) in values.iter_mut().zip(momenta_f64.chunks_exact(2)) {
                    *v += 0.5 * (row[0] * row[0] + row[1] * row[1]);
                }
            }
            kinetics.push(Heatmap {
                title: format!("kinetic K{} (p)", k + 1),
                nx: GRID,
                ny: GRID,
                values,
                extent: [-m, m, -m, m],
            });
        }
    }
    (potentials, kinetics)
}

/// The positions of [`PATHS`] base draws (seeded) after every leapfrog step, in data
/// coordinates.
fn flow_paths(
    nhf: &super::nhf::Nhf,
    config: &super::config::FlowRunConfig,
    device: &burn::tensor::Device,
) -> Vec<Vec<[f64; 2]>> {
    let mut rng = stream_rng(config.train.seed, Stream::FlowPlotTarget, 1);
    let mut draw = || -> Tensor<2> {
        let v: Vec<f32> = (0..PATHS * 2)
            .map(|_| crate::physics::sampling::standard_normal(&mut rng) as f32)
            .collect();
        Tensor::<2>::from_data(TensorData::new(v, [PATHS, 2]), device)
    };
    let (q, p) = (draw(), draw());
    let states: Vec<Vec<f64>> = nhf
        .forward_path(q, p)
        .into_iter()
        .map(|(q, _)| {
            let values: Vec<f32> = to_f64(q).into_iter().map(|v| v as f32).collect();
            config.unstandardise(&values)
        })
        .collect();
    (0..PATHS)
        .map(|i| states.iter().map(|s| [s[2 * i], s[2 * i + 1]]).collect())
        .collect()
}

/// `paths.png`: the paths over the target's histogram, each in its own colour, a black dot at
/// the base draw and a coloured one where the flow leaves it.
fn paths_picture(pictures: &FlowPictures) -> Canvas {
    let mut map = pictures.target.clone();
    map.title = "paths of base draws through the flow".into();
    let size = 2 * PANEL;
    let mut c = map.render(size, size);
    for (i, path) in pictures.paths.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points: Vec<(f64, f64)> = path
            .iter()
            .map(|&[x, y]| map.to_canvas(x, y, size, size))
            .collect();
        for w in points.windows(2) {
            c.line(w[0].0, w[0].1, w[1].0, w[1].1, color, 2);
        }
        if let (Some(first), Some(last)) = (points.first(), points.last()) {
            c.dot(first.0, first.1, BLACK, 6);
            c.dot(last.0, last.1, color, 8);
        }
    }
    c
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
    if !pictures.kinetics.is_empty() {
        let path = dir.join("kinetic.png");
        let maps: Vec<&Heatmap> = pictures.kinetics.iter().collect();
        row(&maps).save_png(&path)?;
        written.push(path);
    }
    if !pictures.paths.is_empty() {
        let path = dir.join("paths.png");
        paths_picture(&pictures).save_png(&path)?;
        written.push(path);
    }
    Ok(written)
}

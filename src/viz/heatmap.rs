//! Heat maps of a function on a 2-D grid (densities, potentials), viridis-coloured, with axes.

use super::canvas::{BLACK, Canvas, GREY, Rgb, WHITE, hex_colors, text_width};
use super::chart::{format_tick, linear_ticks};

/// Values on a regular grid over `[x0, x1] × [y0, y1]`.
#[derive(Debug, Clone)]
pub struct Heatmap {
    /// Title above the map.
    pub title: String,
    /// Columns.
    pub nx: usize,
    /// Rows.
    pub ny: usize,
    /// Row-major values, row 0 at `y0` (the bottom).
    pub values: Vec<f64>,
    /// `[x0, x1, y0, y1]`.
    pub extent: [f64; 4],
}

/// Viridis, sampled at nine points.
const VIRIDIS: [Rgb; 9] = hex_colors([
    0x440154, 0x472C7A, 0x3B518B, 0x2C718E, 0x21908D, 0x27AD81, 0x5CC863, 0xAADC32, 0xFDE725,
]);

/// The viridis colour at `t ∈ [0, 1]`.
pub fn viridis(t: f64) -> Rgb {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (VIRIDIS.len() - 1) as f64;
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    [0, 1, 2].map(|c| (a[c] as f64 + f * (b[c] as f64 - a[c] as f64)).round() as u8)
}

/// The grid points' centres: `(x, y)` for each cell, row-major from the bottom row.
pub fn grid_points(nx: usize, ny: usize, extent: [f64; 4]) -> Vec<[f64; 2]> {
    let [x0, x1, y0, y1] = extent;
    (0..ny)
        .flat_map(|r| {
            (0..nx).map(move |c| {
                [
                    x0 + (c as f64 + 0.5) / nx as f64 * (x1 - x0),
                    y0 + (r as f64 + 0.5) / ny as f64 * (y1 - y0),
                ]
            })
        })
        .collect()
}

/// A normalised 2-D histogram of row-major 2-D `points` on the grid (a density estimate).
pub fn histogram(points: &[f64], nx: usize, ny: usize, extent: [f64; 4]) -> Vec<f64> {
    let [x0, x1, y0, y1] = extent;
    let mut counts = vec![0.0; nx * ny];
    let n = points.len() / 2;
    for p in points.chunks_exact(2) {
        let c = ((p[0] - x0) / (x1 - x0) * nx as f64).floor();
        let r = ((p[1] - y0) / (y1 - y0) * ny as f64).floor();
        if c >= 0.0 && r >= 0.0 && (c as usize) < nx && (r as usize) < ny {
            counts[r as usize * nx + c as usize] += 1.0;
        }
    }
    let cell = (x1 - x0) * (y1 - y0) / (nx * ny) as f64;
    counts.iter().map(|k| k / (n as f64 * cell)).collect()
}

const LEFT: usize = 52;
const TOP: usize = 24;
const BOTTOM: usize = 26;

impl Heatmap {
    /// Where the point `(x, y)` (data coordinates) lands on the canvas that [`Self::render`]
    /// draws at `width × height`, for drawing over the map.
    pub fn to_canvas(&self, x: f64, y: f64, width: usize, height: usize) -> (f64, f64) {
        let side = (width.saturating_sub(LEFT + 8)).min(height.saturating_sub(TOP + BOTTOM));
        let [x0, x1, y0, y1] = self.extent;
        (
            LEFT as f64 + (x - x0) / (x1 - x0) * side as f64,
            TOP as f64 + side as f64 - (y - y0) / (y1 - y0) * side as f64,
        )
    }

    /// Draws the map (colours spread from the smallest to the largest finite value) on a
    /// `width × height` canvas.
    pub fn render(&self, width: usize, height: usize) -> Canvas {
        let mut c = Canvas::new(width, height, WHITE);
        c.text_centred(width as i64 / 2, 6, &self.title, BLACK, 1);
        let side = (width.saturating_sub(LEFT + 8)).min(height.saturating_sub(TOP + BOTTOM));
        let (px, py) = (LEFT as i64, TOP as i64);
        let finite = self.values.iter().copied().filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let span = if hi > lo { hi - lo } else { 1.0 };
        for yy in 0..side {
            // Screen row 0 is the top: grid row ny − 1.
            let r = (self.ny - 1) - (yy * self.ny / side).min(self.ny - 1);
            for xx in 0..side {
                let col = (xx * self.nx / side).min(self.nx - 1);
                let v = self.values[r * self.nx + col];
                let color = if v.is_finite() {
                    viridis((v - lo) / span)
                } else {
                    [160, 160, 160]
                };
                c.put(px + xx as i64, py + yy as i64, color);
            }
        }
        let [x0, x1, y0, y1] = self.extent;
        for t in linear_ticks(x0, x1) {
            let x = px as f64 + (t - x0) / (x1 - x0) * side as f64;
            c.line(
                x,
                (py + side as i64) as f64,
                x,
                (py + side as i64 + 3) as f64,
                GREY,
                1,
            );
            c.text_centred(x as i64, py + side as i64 + 6, &format_tick(t), GREY, 1);
        }
        for t in linear_ticks(y0, y1) {
            let y = py as f64 + side as f64 - (t - y0) / (y1 - y0) * side as f64;
            c.line(px as f64 - 3.0, y, px as f64, y, GREY, 1);
            let label = format_tick(t);
            c.text(
                px - 6 - text_width(&label, 1) as i64,
                y as i64 - 4,
                &label,
                GREY,
                1,
            );
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_integrates_to_one_inside_the_extent() {
        let points: Vec<f64> = (0..1000)
            .flat_map(|i| {
                [
                    (i % 10) as f64 / 10.0 + 0.05,
                    (i / 100) as f64 / 10.0 + 0.05,
                ]
            })
            .collect();
        let h = histogram(&points, 10, 10, [0.0, 1.0, 0.0, 1.0]);
        let total: f64 = h.iter().sum::<f64>() * 0.01;
        assert!((total - 1.0).abs() < 1e-12);
        assert!(h.iter().all(|v| (v - 1.0).abs() < 1e-12));
    }

    #[test]
    fn viridis_runs_from_purple_to_yellow() {
        assert_eq!(viridis(0.0), [68, 1, 84]);
        assert_eq!(viridis(1.0), [253, 231, 37]);
        assert_eq!(viridis(f64::NAN), [68, 1, 84]);
    }

    #[test]
    fn the_top_row_of_the_grid_is_drawn_at_the_top() {
        // Values rise with y: the top of the picture is yellow, the bottom purple.
        let map = Heatmap {
            title: String::new(),
            nx: 2,
            ny: 2,
            values: vec![0.0, 0.0, 1.0, 1.0],
            extent: [0.0, 1.0, 0.0, 1.0],
        };
        let c = map.render(200, 200);
        let side = (200 - LEFT - 8).min(200 - TOP - BOTTOM);
        assert_eq!(c.get(LEFT + 10, TOP + 2), [253, 231, 37]);
        assert_eq!(c.get(LEFT + 10, TOP + side - 2), [68, 1, 84]);
        // Outside the square map the canvas stays white.
        assert_eq!(c.get(LEFT + 10, TOP + side + 1), WHITE);
    }
}

//! Line and scatter charts: title, axes with "nice" ticks (linear or logarithmic y), grid,
//! legend. Non-finite points (and non-positive ones on a log axis) are skipped, and a line is
//! broken where they occur.

use super::canvas::{BLACK, Canvas, GREY, GRID, PALETTE, Rgb, WHITE, text_width};

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeriesStyle {
    /// Connected line.
    Line,
    /// Unconnected dots.
    Dots,
}

/// One named set of points.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text (empty: not in the legend).
    pub label: String,
    /// `(x, y)` points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Colour.
    pub color: Rgb,
    /// Line or dots.
    pub style: SeriesStyle,
}

impl Series {
    /// A line series coloured by its position `index` in the palette.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>, index: usize) -> Self {
        Self {
            label: label.into(),
            points,
            color: PALETTE[index % PALETTE.len()],
            style: SeriesStyle::Line,
        }
    }

    /// A dot series coloured by its position `index` in the palette.
    pub fn dots(label: impl Into<String>, points: Vec<(f64, f64)>, index: usize) -> Self {
        Self {
            style: SeriesStyle::Dots,
            ..Self::line(label, points, index)
        }
    }
}

/// A chart.
#[derive(Debug, Clone, Default)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label above the y axis.
    pub y_label: String,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// The data.
    pub series: Vec<Series>,
}

const LEFT: usize = 78;
const RIGHT: usize = 16;
const TOP: usize = 44;
const BOTTOM: usize = 44;

impl Chart {
    /// A chart with a title and axis labels, no data yet.
    pub fn new(title: &str, x_label: &str, y_label: &str) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Self::default()
        }
    }

    /// The points that can be drawn (finite; positive y on a log axis).
    fn usable(&self, (x, y): (f64, f64)) -> bool {
        x.is_finite() && y.is_finite() && (!self.log_y || y > 0.0)
    }

    /// Draws the chart on a `width × height` canvas.
    pub fn render(&self, width: usize, height: usize) -> Canvas {
        let mut c = Canvas::new(width, height, WHITE);
        c.text_centred(width as i64 / 2, 8, &self.title, BLACK, 1);
        let points: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|&p| self.usable(p))
            .collect();
        if points.is_empty() {
            c.text_centred(width as i64 / 2, height as i64 / 2, "no data", GREY, 1);
            return c;
        }
        let (xlo, xhi) = padded_range(points.iter().map(|p| p.0), false);
        let (ylo, yhi) = padded_range(points.iter().map(|p| p.1), self.log_y);
        let area = PlotArea {
            x0: LEFT as f64,
            y0: TOP as f64,
            pw: width.saturating_sub(LEFT + RIGHT).max(10) as f64,
            ph: height.saturating_sub(TOP + BOTTOM).max(10) as f64,
            x_range: (xlo, xhi),
            y_range: (ylo, yhi),
            log_y: self.log_y,
        };
        self.draw_axes(&mut c, &area);
        self.draw_series(&mut c, &area);
        self.draw_legend(&mut c, &area);
        c
    }

    /// Grid, ticks, tick labels, axes and axis labels.
    fn draw_axes(&self, c: &mut Canvas, a: &PlotArea) {
        let (x0, y0, pw, ph) = (a.x0, a.y0, a.pw, a.ph);
        let ((xlo, xhi), (ylo, yhi)) = (a.x_range, a.y_range);
        for t in linear_ticks(xlo, xhi) {
            let x = a.sx(t);
            c.line(x, y0, x, y0 + ph, GRID, 1);
            c.line(x, y0 + ph, x, y0 + ph + 4.0, GREY, 1);
            c.text_centred(x as i64, (y0 + ph + 8.0) as i64, &format_tick(t), GREY, 1);
        }
        let yticks = if self.log_y {
            log_ticks(ylo, yhi)
        } else {
            linear_ticks(ylo, yhi)
        };
        for t in yticks {
            let y = a.sy(t);
            c.line(x0, y, x0 + pw, y, GRID, 1);
            c.line(x0 - 4.0, y, x0, y, GREY, 1);
            let label = format_tick(t);
            c.text(
                (x0 - 8.0) as i64 - text_width(&label, 1) as i64,
                y as i64 - 4,
                &label,
                GREY,
                1,
            );
        }
        c.line(x0, y0, x0, y0 + ph, BLACK, 1);
        c.line(x0, y0 + ph, x0 + pw, y0 + ph, BLACK, 1);
        c.text_centred(
            (x0 + pw / 2.0) as i64,
            (y0 + ph + 24.0) as i64,
            &self.x_label,
            BLACK,
            1,
        );
        c.text(4, 26, &self.y_label, BLACK, 1);
    }

    /// Each series as a line (broken where a point is not drawable) or dots.
    fn draw_series(&self, c: &mut Canvas, a: &PlotArea) {
        for s in &self.series {
            let mut last: Option<(f64, f64)> = None;
            for &p in &s.points {
                if !self.usable(p) {
                    last = None;
                    continue;
                }
                let (x, y) = (a.sx(p.0), a.sy(p.1));
                match s.style {
                    SeriesStyle::Line => {
                        if let Some((lx, ly)) = last {
                            c.line(lx, ly, x, y, s.color, 2);
                        } else {
                            c.dot(x, y, s.color, 2);
                        }
                    }
                    SeriesStyle::Dots => c.dot(x, y, s.color, 3),
                }
                last = Some((x, y));
            }
        }
    }

    /// The legend of the labelled series, top right inside the plot.
    fn draw_legend(&self, c: &mut Canvas, a: &PlotArea) {
        let labelled: Vec<&Series> = self.series.iter().filter(|s| !s.label.is_empty()).collect();
        if labelled.is_empty() {
            return;
        }
        let w = labelled
            .iter()
            .map(|s| text_width(&s.label, 1))
            .max()
            .unwrap_or(0)
            + 30;
        let h = 12 * labelled.len() + 6;
        let lx = (a.x0 + a.pw) as i64 - w as i64 - 4;
        let ly = a.y0 as i64 + 4;
        c.fill_rect(lx, ly, w, h, WHITE);
        for (i, s) in labelled.iter().enumerate() {
            let y = ly + 4 + 12 * i as i64;
            c.fill_rect(lx + 4, y + 2, 16, 4, s.color);
            c.text(lx + 24, y, &s.label, BLACK, 1);
        }
    }
}

/// The plot area of a chart in pixels (`x0`, `y0`: top left; `pw × ph`) and the data ranges it
/// shows, `y` on a log scale when `log_y`.
struct PlotArea {
    x0: f64,
    y0: f64,
    pw: f64,
    ph: f64,
    x_range: (f64, f64),
    y_range: (f64, f64),
    log_y: bool,
}

impl PlotArea {
    fn ty(&self, y: f64) -> f64 {
        if self.log_y { y.log10() } else { y }
    }

    /// Pixel column of data `x`.
    fn sx(&self, x: f64) -> f64 {
        let (lo, hi) = self.x_range;
        self.x0 + (x - lo) / (hi - lo) * self.pw
    }

    /// Pixel row of data `y`.
    fn sy(&self, y: f64) -> f64 {
        let (lo, hi) = (self.ty(self.y_range.0), self.ty(self.y_range.1));
        self.y0 + self.ph - (self.ty(y) - lo) / (hi - lo) * self.ph
    }
}

/// Lays charts out in a grid of `cols` columns, each `w × h`.
pub fn grid(charts: &[Chart], cols: usize, w: usize, h: usize) -> Canvas {
    let cols = cols.max(1);
    let rows = charts.len().div_ceil(cols).max(1);
    let mut out = Canvas::new(cols * w, rows * h, WHITE);
    for (i, chart) in charts.iter().enumerate() {
        let panel = chart.render(w, h);
        out.blit(((i % cols) * w) as i64, ((i / cols) * h) as i64, &panel);
    }
    out
}

/// The data range widened by 4 % (a decade fraction on a log axis), never empty.
fn padded_range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values {
        let v = if log { v.log10() } else { v };
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if hi - lo < 1e-12 * (1.0 + lo.abs()) {
        let pad = if log { 0.5 } else { 0.5 * lo.abs().max(1e-12) };
        lo -= pad;
        hi += pad;
    }
    let pad = 0.04 * (hi - lo);
    let (lo, hi) = (lo - pad, hi + pad);
    if log {
        (10f64.powf(lo), 10f64.powf(hi))
    } else {
        (lo, hi)
    }
}

/// About five ticks at multiples of 1, 2 or 5 × 10^k inside `[lo, hi]`.
pub fn linear_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let raw = (hi - lo) / 5.0;
    if !(raw.is_finite() && raw > 0.0) {
        return vec![];
    }
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last)
        .map(|i| {
            let v = i as f64 * step;
            if v.abs() < step * 1e-9 { 0.0 } else { v }
        })
        .collect()
}

/// Powers of ten inside `[lo, hi]` (with 2× and 5× multiples when fewer than three decades
/// are shown; every other power when more than eight).
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let decades = b - a;
    let every = if decades > 8 { 2 } else { 1 };
    let mults: &[f64] = if decades < 3 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut ticks = vec![];
    for e in (a..=b).filter(|e| e.rem_euclid(every) == 0) {
        for m in mults {
            let v = m * 10f64.powi(e);
            if v >= lo && v <= hi {
                ticks.push(v);
            }
        }
    }
    ticks
}

/// A short tick label: `0`, `0.25`, `1200`, `2e-4`, `1.5e+05`.
pub fn format_tick(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        let s = format!("{v:.1e}");
        // 2.0e-4 → 2e-4
        return s.replace(".0e", "e");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert_eq!(linear_ticks(0.0, 10.0), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        // Range 0.6: a fifth is 0.12, rounded up to a step of 0.2.
        assert_eq!(linear_ticks(-0.3, 0.3), vec![-0.2, 0.0, 0.2]);
        assert_eq!(linear_ticks(-1.0, 3.0), vec![-1.0, 0.0, 1.0, 2.0, 3.0]);
        assert_eq!(log_ticks(1e-4, 1e-1), vec![1e-4, 1e-3, 1e-2, 1e-1]);
        assert_eq!(log_ticks(0.15, 0.9), vec![0.2, 0.5]);
        assert_eq!(format_tick(1200.0), "1200");
        assert_eq!(format_tick(0.25), "0.25");
        assert_eq!(format_tick(2e-4), "2e-4");
        assert_eq!(format_tick(-0.1), "-0.1");
    }

    #[test]
    fn a_rising_line_is_drawn_bottom_left_to_top_right() {
        let mut chart = Chart::new("t", "x", "y");
        chart
            .series
            .push(Series::line("a", vec![(0.0, 0.0), (1.0, 1.0)], 0));
        let c = chart.render(300, 200);
        let color = PALETTE[0];
        let hits: Vec<(usize, usize)> = (0..200)
            .flat_map(|y| (0..300).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == color)
            .collect();
        // Excluding the legend swatch (top right), the line's leftmost pixel is its lowest.
        let line: Vec<_> = hits.iter().filter(|p| p.1 > 60).collect();
        let left = line.iter().min_by_key(|p| p.0).unwrap();
        let right = line.iter().max_by_key(|p| p.0).unwrap();
        assert!(left.1 > right.1);
    }

    #[test]
    fn log_axes_skip_non_positive_points() {
        let mut chart = Chart::new("t", "x", "y");
        chart.log_y = true;
        chart
            .series
            .push(Series::line("", vec![(0.0, -1.0), (1.0, 0.0)], 0));
        let c = chart.render(200, 120);
        assert!(c.rgb.chunks(3).all(|p| p != PALETTE[0]));
    }
}

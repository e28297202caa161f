//! An RGB raster with the few drawing primitives the pictures need: rectangles, thick lines,
//! dots, 8×8 bitmap text (public-domain `font8x8`, ASCII) and upscaled model frames.

use std::path::Path;

use anyhow::{Context, Result};

/// An RGB colour.
pub type Rgb = [u8; 3];

/// White.
pub const WHITE: Rgb = [255, 255, 255];
/// Black.
pub const BLACK: Rgb = [0, 0, 0];
/// Light grey for grid lines.
pub const GRID: Rgb = [225, 225, 225];
/// Mid grey for axes and secondary text.
pub const GREY: Rgb = [110, 110, 110];
/// A colour-blind-safe palette (Okabe–Ito), for series.
pub const PALETTE: [Rgb; 8] = hex_colors([
    0x0072B2, 0xD55E00, 0x009E73, 0xCC79A7, 0xE69F00, 0x56B4E9, 0xF0E442, 0x000000,
]);

/// Colours written as `0xRRGGBB`.
pub const fn hex_colors<const N: usize>(hex: [u32; N]) -> [Rgb; N] {
    let mut out = [[0; 3]; N];
    let mut i = 0;
    while i < N {
        let [_, r, g, b] = hex[i].to_be_bytes();
        out[i] = [r, g, b];
        i += 1;
    }
    out
}

/// Width in pixels of `text` drawn at `scale`.
pub fn text_width(text: &str, scale: usize) -> usize {
    text.chars().count() * 8 * scale
}

/// An RGB image, row-major, 3 bytes per pixel.
#[derive(Debug, Clone, PartialEq)]
pub struct Canvas {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Pixels, `[height][width][3]`.
    pub rgb: Vec<u8>,
}

impl Canvas {
    /// A canvas filled with `background`.
    pub fn new(width: usize, height: usize, background: Rgb) -> Self {
        Self {
            width,
            height,
            rgb: background.repeat(width * height),
        }
    }

    /// Sets one pixel; coordinates outside the canvas are ignored.
    pub fn put(&mut self, x: i64, y: i64, color: Rgb) {
        if x >= 0 && y >= 0 && (x as usize) < self.width && (y as usize) < self.height {
            let i = 3 * (y as usize * self.width + x as usize);
            self.rgb[i..i + 3].copy_from_slice(&color);
        }
    }

    /// The colour at `(x, y)`.
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = 3 * (y * self.width + x);
        [self.rgb[i], self.rgb[i + 1], self.rgb[i + 2]]
    }

    /// Fills the rectangle with corner `(x, y)` and size `w × h` (clipped).
    pub fn fill_rect(&mut self, x: i64, y: i64, w: usize, h: usize, color: Rgb) {
        for yy in y..y + h as i64 {
            for xx in x..x + w as i64 {
                self.put(xx, yy, color);
            }
        }
    }

    /// Fills cell `(col, row)` of a grid of `scale`×`scale` cells whose corner is `(x, y)`.
    fn fill_cell(&mut self, x: i64, y: i64, col: usize, row: usize, scale: usize, color: Rgb) {
        let (cx, cy) = (x + (col * scale) as i64, y + (row * scale) as i64);
        self.fill_rect(cx, cy, scale, scale, color);
    }

    /// A line from `(x0, y0)` to `(x1, y1)`, `thickness` pixels wide.
    pub fn line(&mut self, x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb, thickness: usize) {
        if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
            return;
        }
        let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
        let r = thickness as i64 / 2;
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let x = (x0 + t * (x1 - x0)).round() as i64;
            let y = (y0 + t * (y1 - y0)).round() as i64;
            self.fill_rect(x - r, y - r, thickness.max(1), thickness.max(1), color);
        }
    }

    /// A filled square dot of `size` pixels centred on `(x, y)`.
    pub fn dot(&mut self, x: f64, y: f64, color: Rgb, size: usize) {
        if x.is_finite() && y.is_finite() {
            let r = size as i64 / 2;
            self.fill_rect(
                x.round() as i64 - r,
                y.round() as i64 - r,
                size,
                size,
                color,
            );
        }
    }

    /// ASCII `text` with its top-left corner at `(x, y)`, each font pixel `scale`×`scale`.
    /// Characters outside ASCII are drawn as `?`.
    pub fn text(&mut self, x: i64, y: i64, text: &str, color: Rgb, scale: usize) {
        for (n, ch) in text.chars().enumerate() {
            let code = if ch.is_ascii() {
                ch as usize
            } else {
                b'?' as usize
            };
            let glyph = font8x8::legacy::BASIC_LEGACY[code];
            let ox = x + (n * 8 * scale) as i64;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        self.fill_cell(ox, y, col, row, scale, color);
                    }
                }
            }
        }
    }

    /// Text centred horizontally on `cx`.
    pub fn text_centred(&mut self, cx: i64, y: i64, text: &str, color: Rgb, scale: usize) {
        let w = text_width(text, scale) as i64;
        self.text(cx - w / 2, y, text, color, scale);
    }

    /// A model frame (`[3, S, S]` channels-first values in [0, 1]) upscaled `scale` times with
    /// nearest-neighbour pixels, top-left at `(x, y)`.
    pub fn frame(&mut self, x: i64, y: i64, chw: &[f32], size: usize, scale: usize) {
        let plane = size * size;
        for row in 0..size {
            for col in 0..size {
                let i = row * size + col;
                let px = |c: usize| (chw[c * plane + i].clamp(0.0, 1.0) * 255.0).round() as u8;
                let color = [px(0), px(1), px(2)];
                self.fill_cell(x, y, col, row, scale, color);
            }
        }
    }

    /// Copies `other` with its top-left corner at `(x, y)` (clipped).
    pub fn blit(&mut self, x: i64, y: i64, other: &Canvas) {
        for yy in 0..other.height {
            for xx in 0..other.width {
                self.put(x + xx as i64, y + yy as i64, other.get(xx, yy));
            }
        }
    }

    /// Writes the canvas as a PNG, through a temporary file and a rename.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let tmp = crate::run::fs::temporary_path(path);
        let file = std::fs::File::create(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let result = (|| -> Result<()> {
            let mut encoder = png::Encoder::new(
                std::io::BufWriter::new(file),
                self.width as u32,
                self.height as u32,
            );
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&self.rgb)?;
            writer.finish()?;
            Ok(())
        })();
        crate::run::fs::finish(result, &tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_colours_read_as_red_green_blue() {
        assert_eq!(
            hex_colors([0x0072B2, 0xFDE725]),
            [[0, 114, 178], [253, 231, 37]]
        );
        assert_eq!(PALETTE[1], [213, 94, 0]);
    }

    #[test]
    fn text_draws_inside_its_box() {
        let mut c = Canvas::new(40, 12, WHITE);
        c.text(2, 2, "Hi", BLACK, 1);
        let dark: Vec<(usize, usize)> = (0..12)
            .flat_map(|y| (0..40).map(move |x| (x, y)))
            .filter(|&(x, y)| c.get(x, y) == BLACK)
            .collect();
        assert!(!dark.is_empty());
        assert!(
            dark.iter()
                .all(|&(x, y)| (2..18).contains(&x) && (2..10).contains(&y))
        );
    }

    #[test]
    fn frames_are_upscaled_exactly() {
        // A 2×2 frame: red, green / blue, white.
        let chw = [1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0];
        let mut c = Canvas::new(4, 4, BLACK);
        c.frame(0, 0, &chw, 2, 2);
        assert_eq!(c.get(1, 1), [255, 0, 0]);
        assert_eq!(c.get(2, 0), [0, 255, 0]);
        assert_eq!(c.get(0, 3), [0, 0, 255]);
        assert_eq!(c.get(3, 3), WHITE);
    }

    #[test]
    fn lines_reach_both_ends() {
        let mut c = Canvas::new(10, 10, WHITE);
        c.line(1.0, 1.0, 8.0, 6.0, BLACK, 1);
        assert_eq!(c.get(1, 1), BLACK);
        assert_eq!(c.get(8, 6), BLACK);
        c.line(f64::NAN, 0.0, 1.0, 1.0, [1, 2, 3], 1);
        assert!(c.rgb.chunks(3).all(|p| p != [1, 2, 3]));
    }
}

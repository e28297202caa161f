//! DeepMind's anti-aliased soft-disc renderer (`dm_hamiltonian_dynamics_suite`, `utils.py`,
//! `render_particles_trajectory`), reference §9.3.
//!
//! Each body is a disc whose opacity at unit-canvas distance `d` from its centre is
//! `1 / (1 + exp(80·(d − r)))`, with `r = √(m/π)` divided by the canvas width. Discs are composited
//! front to back (body 0 on top) over the background (0.321, 0.349, 0.368). Pixel `i` of a row
//! samples the canvas at `i / (size − 1)`, as DeepMind's `linspace(0, 1, size)` grid does.
//!
//! One deliberate difference: world `y` points up and image rows go down, so a pendulum hangs
//! down in the pictures (DeepMind's images show it upside down).

/// Background colour in linear RGB, from DeepMind's renderer. A black background is known to
/// hamper training (comment in the suite's `utils.py`).
pub const BACKGROUND: [f64; 3] = [0.321, 0.349, 0.368];

/// Sharpness of the disc edge in unit-canvas coordinates (DeepMind's `temperature`).
pub const TEMPERATURE: f64 = 80.0;

/// The square region of the world that an image shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    /// World coordinates of the centre of the image.
    pub center: [f64; 2],
    /// Half the width (and height) of the region shown, in world units.
    pub half_size: f64,
}

impl Viewport {
    /// Continuous pixel coordinates `(column, row)` of a world point for an image of `size`
    /// pixels: the canvas edges map to the centres of the first and last pixels.
    pub fn to_pixel(&self, point: [f64; 2], size: usize) -> [f64; 2] {
        let scale = (size - 1) as f64 / (2.0 * self.half_size);
        let col = (point[0] - (self.center[0] - self.half_size)) * scale;
        let row = ((self.center[1] + self.half_size) - point[1]) * scale;
        [col, row]
    }
}

/// One disc to draw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Disc {
    /// Centre in world coordinates.
    pub position: [f64; 2],
    /// Radius in world units.
    pub radius: f64,
    /// Colour in RGB, each channel in [0, 1].
    pub color: [f64; 3],
}

/// The fully saturated, full-value colour of hue `h ∈ [0, 1)` (HSV → RGB with S = V = 1), as
/// DeepMind's palette: hue `k / num_colors` for colour index `k`.
pub fn hue_to_rgb(hue: f64) -> [f64; 3] {
    let h6 = hue * 6.0;
    let sector = h6.floor();
    let f = h6 - sector;
    let (q, t) = (1.0 - f, f);
    match (sector as i64).rem_euclid(6) {
        0 => [1.0, t, 0.0],
        1 => [q, 1.0, 0.0],
        2 => [0.0, 1.0, t],
        3 => [0.0, q, 1.0],
        4 => [t, 0.0, 1.0],
        _ => [1.0, 0.0, q],
    }
}

/// Renders `discs` (front to back) into `out`, an RGB image `[size, size, 3]` of `u8`.
pub fn render_frame(discs: &[Disc], canvas: &Viewport, size: usize, out: &mut [u8]) {
    assert_eq!(
        out.len(),
        size * size * 3,
        "output buffer must hold size × size × 3 bytes"
    );
    let width = 2.0 * canvas.half_size;
    let step = 1.0 / (size - 1) as f64;
    // Unit-canvas centres and radii, with the row axis pointing down.
    let unit: Vec<([f64; 2], f64)> = discs
        .iter()
        .map(|d| {
            let u = (d.position[0] - (canvas.center[0] - canvas.half_size)) / width;
            let v = ((canvas.center[1] + canvas.half_size) - d.position[1]) / width;
            ([u, v], d.radius / width)
        })
        .collect();
    // Beyond this distance past the rim the opacity is below e^-18 ≈ 1.5e-8, under 4e-6 of one
    // u8 level: skipping those pixels changes no stored byte in practice and makes rendering
    // several times faster.
    let cutoff = 18.0 / TEMPERATURE;
    let mut masks = vec![0.0; discs.len()];
    for row in 0..size {
        let y = row as f64 * step;
        for col in 0..size {
            let x = col as f64 * step;
            for (mask, (centre, radius)) in masks.iter_mut().zip(&unit) {
                let dy = y - centre[1];
                let dx = x - centre[0];
                let reach = radius + cutoff;
                *mask = if dy.abs() > reach || dx.abs() > reach {
                    0.0
                } else {
                    let d = (dx * dx + dy * dy).sqrt();
                    1.0 / (1.0 + (TEMPERATURE * (d - radius)).exp())
                };
            }
            let mut pixel = [0.0; 3];
            let mut transmit = 1.0;
            for (disc, mask) in discs.iter().zip(&masks) {
                for c in 0..3 {
                    pixel[c] += transmit * mask * disc.color[c];
                }
                transmit *= 1.0 - mask;
            }
            let base = (row * size + col) * 3;
            for c in 0..3 {
                let value = pixel[c] + transmit * BACKGROUND[c];
                out[base + c] = (value.clamp(0.0, 1.0) * 255.0).round() as u8;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Intensity-weighted centroid `(column, row)` of the difference from the background.
    pub(crate) fn centroid(image: &[u8], size: usize) -> [f64; 2] {
        let bg: Vec<f64> = BACKGROUND.iter().map(|b| (b * 255.0_f64).round()).collect();
        let (mut sw, mut sc, mut sr) = (0.0, 0.0, 0.0);
        for row in 0..size {
            for col in 0..size {
                let base = (row * size + col) * 3;
                let w: f64 = (0..3).map(|c| (image[base + c] as f64 - bg[c]).abs()).sum();
                sw += w;
                sc += w * col as f64;
                sr += w * row as f64;
            }
        }
        [sc / sw, sr / sw]
    }

    /// The square `[-1, 1]²`.
    const UNIT: Viewport = Viewport {
        center: [0.0, 0.0],
        half_size: 1.0,
    };

    /// A disc of radius 0.3 at the origin.
    fn centred(color: [f64; 3]) -> Disc {
        Disc {
            position: [0.0, 0.0],
            radius: 0.3,
            color,
        }
    }

    #[test]
    fn palette_matches_hsv() {
        assert_eq!(hue_to_rgb(0.0), [1.0, 0.0, 0.0]);
        assert_eq!(hue_to_rgb(1.0 / 3.0), [0.0, 1.0, 0.0]);
        assert_eq!(hue_to_rgb(2.0 / 3.0), [0.0, 0.0, 1.0]);
        assert_eq!(hue_to_rgb(0.5), [0.0, 1.0, 1.0]);
    }

    #[test]
    fn empty_canvas_is_background() {
        let mut img = vec![0u8; 8 * 8 * 3];
        render_frame(&[], &UNIT, 8, &mut img);
        assert!(img.chunks(3).all(|p| p == [82, 89, 94]));
    }

    #[test]
    fn disc_centroid_is_at_its_projected_position() {
        let canvas = Viewport {
            center: [0.2, -0.1],
            half_size: 1.4,
        };
        for size in [32, 48, 64] {
            for &(x, y) in &[(0.0, 0.0), (0.5, -0.3), (-0.6, 0.7), (0.31, 0.27)] {
                let disc = Disc {
                    position: [x, y],
                    radius: 0.4,
                    color: hue_to_rgb(0.0),
                };
                let mut img = vec![0u8; size * size * 3];
                render_frame(&[disc], &canvas, size, &mut img);
                let [c, r] = centroid(&img, size);
                let [ec, er] = canvas.to_pixel([x, y], size);
                assert!(
                    (c - ec).abs() < 0.5 && (r - er).abs() < 0.5,
                    "size {size}: {c},{r} vs {ec},{er}"
                );
            }
        }
    }

    #[test]
    fn world_up_is_image_up() {
        let disc = Disc {
            position: [0.0, 0.6],
            radius: 0.2,
            color: [1.0, 1.0, 1.0],
        };
        let mut img = vec![0u8; 32 * 32 * 3];
        render_frame(&[disc], &UNIT, 32, &mut img);
        let [_, row] = centroid(&img, 32);
        assert!(
            row < 10.0,
            "a disc above the centre must be in the top rows, got row {row}"
        );
    }

    #[test]
    fn front_disc_hides_the_one_behind() {
        let (front, back) = (centred([1.0, 0.0, 0.0]), centred([0.0, 0.0, 1.0]));
        let mut img = vec![0u8; 33 * 33 * 3];
        render_frame(&[front, back], &UNIT, 33, &mut img);
        let centre = (16 * 33 + 16) * 3;
        assert_eq!(&img[centre..centre + 3], &[255, 0, 0]);
    }
}

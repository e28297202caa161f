//! Pictures: a small raster canvas with bitmap text, line and scatter charts, and PNG / animated
//! GIF writers. No system fonts or plotting libraries: everything is drawn here, so the
//! pictures look the same on every machine.
//!
//! - [`canvas`]: the RGB raster and its primitives;
//! - [`chart`]: line and scatter charts with axes, ticks (linear or log) and legends;
//! - [`write_gif`]: an animation of equally sized canvases.
//!
//! Every file is written to a temporary name beside its target and renamed into place.

pub mod canvas;
pub mod chart;
pub mod heatmap;

use std::path::Path;

use anyhow::{Context, Result, ensure};

pub use canvas::Canvas;
pub use chart::{Chart, Series, SeriesStyle};
pub use heatmap::Heatmap;

/// Writes `frames` (all the same size) as a looping animated GIF, `delay_cs` hundredths of a
/// second per frame. Colours are quantised per frame (NeuQuant).
pub fn write_gif(path: &Path, frames: &[Canvas], delay_cs: u16) -> Result<()> {
    ensure!(!frames.is_empty(), "no frames to write");
    let (w, h) = (frames[0].width, frames[0].height);
    ensure!(
        frames.iter().all(|f| f.width == w && f.height == h),
        "GIF frames differ in size"
    );
    ensure!(
        w <= u16::MAX as usize && h <= u16::MAX as usize,
        "a {w}×{h} picture is too large for a GIF"
    );
    let tmp = crate::run::fs::temporary_path(path);
    let file =
        std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
    let result = (|| -> Result<()> {
        let mut encoder =
            gif::Encoder::new(std::io::BufWriter::new(file), w as u16, h as u16, &[])?;
        encoder.set_repeat(gif::Repeat::Infinite)?;
        for canvas in frames {
            let mut frame = gif::Frame::from_rgb_speed(w as u16, h as u16, &canvas.rgb, 10);
            frame.delay = delay_cs;
            encoder.write_frame(&frame)?;
        }
        Ok(())
    })();
    crate::run::fs::finish(result, &tmp, path)
}

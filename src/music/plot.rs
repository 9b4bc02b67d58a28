//! A piano-roll picture of a seed and its continuation (PNG).

use std::path::Path;

use plotters::prelude::*;

use super::continuation::Continuation;
use super::seed::Seed;

/// Why the picture could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the piano roll: {0}")]
pub struct PlotError(String);

/// Draws seed notes (blue) and continuation notes (orange) over bar lines (grey), with a red
/// line where the continuation starts; pitch upwards, time to the right.
pub fn piano_roll(seed: &Seed, cont: &Continuation, path: &Path) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError(e.to_string());
    let notes = seed.notes.iter().chain(&cont.notes);
    let (lo, hi) = notes
        .clone()
        .fold((127u8, 0u8), |(lo, hi), n| (lo.min(n.key), hi.max(n.key)));
    let (lo, hi) = if lo > hi {
        (48, 84)
    } else {
        (lo.saturating_sub(2), (hi + 2).min(127))
    };
    let end = cont.end_tick.max(1);
    let (width, height) = (1200u32, 12 * (hi - lo + 1) as u32 + 20);
    let root = BitMapBackend::new(path, (width, height.clamp(200, 1600))).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let area = root.margin(10, 10, 10, 10);
    let (w, h) = area.dim_in_pixel();
    let x = |tick: u64| (tick as f64 / end as f64 * w as f64) as i32;
    let y = |key: u8| ((hi - key) as f64 / (hi - lo + 1) as f64 * h as f64) as i32;
    let row = (h as f64 / (hi - lo + 1) as f64).max(1.0) as i32;
    let bar = seed.bar_ticks().max(1);
    let grey = RGBColor(220, 220, 220);
    for b in 0..=end / bar {
        let px = x(b * bar);
        area.draw(&PathElement::new([(px, 0), (px, h as i32)], grey))
            .map_err(|e| err(&e))?;
    }
    for (list, colour) in [
        (&seed.notes, RGBColor(40, 90, 200)),
        (&cont.notes, RGBColor(235, 130, 20)),
    ] {
        for n in list {
            let rect = Rectangle::new(
                [
                    (x(n.start), y(n.key)),
                    ((x(n.end) - 1).max(x(n.start) + 1), y(n.key) + row - 1),
                ],
                colour.filled(),
            );
            area.draw(&rect).map_err(|e| err(&e))?;
        }
    }
    let px = x(cont.start_tick);
    area.draw(&PathElement::new(
        [(px, 0), (px, h as i32)],
        RED.stroke_width(2),
    ))
    .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

//! A piano-roll picture of a seed and its continuation (PNG): pitch upwards with note names on
//! the left, time to the right with numbered bars along the top, the black keys' rows shaded,
//! and a legend.

use std::path::Path;

use plotters::prelude::*;

use super::continuation::Continuation;
use super::seed::Seed;

/// Why the picture could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the piano roll: {0}")]
pub struct PlotError(String);

const SEED: RGBColor = RGBColor(40, 90, 200);
const CONTINUATION: RGBColor = RGBColor(235, 130, 20);
const TEXT: RGBColor = RGBColor(40, 40, 40);
/// Pixels of the 8×8 glyphs.
const GLYPH: i32 = 8;
const NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// The name of a MIDI key with its octave, middle C being C4.
pub fn note_name(key: u8) -> String {
    format!("{}{}", NAMES[key as usize % 12], key as i32 / 12 - 1)
}

fn is_black(key: u8) -> bool {
    matches!(key % 12, 1 | 3 | 6 | 8 | 10)
}

/// Draws `text` with its top-left corner at (x, y) in a built-in 8×8 font.
fn text<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    x: i32,
    y: i32,
    text: &str,
    colour: RGBColor,
) -> Result<(), PlotError> {
    for (i, c) in text.chars().enumerate() {
        let Some(rows) = font8x8::legacy::BASIC_LEGACY.get(c as usize) else {
            continue;
        };
        for (dy, bits) in rows.iter().enumerate() {
            for dx in 0..8 {
                if bits >> dx & 1 == 1 {
                    area.draw_pixel((x + i as i32 * GLYPH + dx, y + dy as i32), &colour)
                        .map_err(|e| PlotError(e.to_string()))?;
                }
            }
        }
    }
    Ok(())
}

/// Draws seed notes (blue) and continuation notes (orange) over bar lines (grey, numbered from
/// 1), with a red line where the continuation starts.
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
    let keys = (hi - lo + 1) as u32;
    let row = (720 / keys).clamp(6, 14) as i32;
    let (left, top, bottom) = (5 * GLYPH + 8, 3 * GLYPH + 12, GLYPH + 8);
    let (width, height) = (1280u32, keys * row as u32 + (top + bottom) as u32);
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (w, h) = (width as i32 - left - 10, keys as i32 * row);
    let area = root.margin(top as u32, bottom as u32, left as u32, 10);
    let end = cont.end_tick.max(1);
    let x = |tick: u64| (tick as f64 / end as f64 * w as f64) as i32;
    let y = |key: u8| (hi - key) as i32 * row;

    // Rows: black keys shaded, a line under every C and its name on the left.
    for key in lo..=hi {
        if is_black(key) {
            area.draw(&Rectangle::new(
                [(0, y(key)), (w, y(key) + row)],
                RGBColor(243, 243, 246).filled(),
            ))
            .map_err(|e| err(&e))?;
        }
        if key % 12 == 0 || key == lo || key == hi {
            if key % 12 == 0 {
                area.draw(&PathElement::new(
                    [(0, y(key) + row), (w, y(key) + row)],
                    RGBColor(200, 200, 210),
                ))
                .map_err(|e| err(&e))?;
            }
            let name = note_name(key);
            let ty = top + y(key) + (row - GLYPH) / 2;
            text(&root, left - 4 - GLYPH * name.len() as i32, ty, &name, TEXT)?;
        }
    }
    // Bar lines, numbered along the top (every bar, or every few when they are narrow).
    let bar = seed.bar_ticks().max(1);
    let bars = end.div_ceil(bar);
    let every = (3 * GLYPH as u64 * bars / w.max(1) as u64 + 1).max(1);
    for b in 0..=bars {
        let px = x(b * bar);
        area.draw(&PathElement::new(
            [(px, 0), (px, h)],
            RGBColor(190, 190, 190),
        ))
        .map_err(|e| err(&e))?;
        if b < bars && b % every == 0 {
            text(
                &root,
                left + px + 3,
                top - GLYPH - 4,
                &(b + 1).to_string(),
                TEXT,
            )?;
        }
    }
    for (list, colour) in [(&seed.notes, SEED), (&cont.notes, CONTINUATION)] {
        for n in list {
            let rect = Rectangle::new(
                [
                    (x(n.start), y(n.key) + 1),
                    ((x(n.end) - 1).max(x(n.start) + 1), y(n.key) + row - 1),
                ],
                colour.filled(),
            );
            area.draw(&rect).map_err(|e| err(&e))?;
        }
    }
    let px = x(cont.start_tick);
    area.draw(&PathElement::new([(px, 0), (px, h)], RED.stroke_width(2)))
        .map_err(|e| err(&e))?;
    // Legend, top left: what the colours mean and what the numbers count.
    let mut lx = left;
    for (label, colour) in [
        ("seed", SEED),
        ("continuation", CONTINUATION),
        ("join", RED),
    ] {
        root.draw(&Rectangle::new(
            [(lx, 6), (lx + 14, 6 + GLYPH)],
            colour.filled(),
        ))
        .map_err(|e| err(&e))?;
        text(&root, lx + 18, 6, label, TEXT)?;
        lx += 18 + GLYPH * label.len() as i32 + 16;
    }
    text(&root, lx + 16, 6, "bars numbered from 1", TEXT)?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_names_count_octaves_from_middle_c_as_c4() {
        assert_eq!(note_name(60), "C4");
        assert_eq!(note_name(61), "C#4");
        assert_eq!(note_name(21), "A0");
        assert_eq!(note_name(108), "C8");
    }
}

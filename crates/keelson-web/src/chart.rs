//! The trend chart both sites draw: server-rendered SVG, no script.

use chrono::DateTime;
use keelson_store::Series;
use maud::{Markup, html};
use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const PAD_LEFT: f64 = 64.0;
const PAD_BOTTOM: f64 = 24.0;

/// Draws the series as an SVG line of values (means for rollups) over a
/// band from min to max, at most one column per pixel so the page stays
/// small whatever the number of points.
pub fn trend(series: &Series, from_ms: i64, to_ms: i64) -> Markup {
    let plot_w = WIDTH - PAD_LEFT;
    let plot_h = HEIGHT - PAD_BOTTOM;
    // Each pixel column keeps the mean of its values and the extremes.
    let columns = plot_w as usize;
    let mut cols: Vec<Option<(f64, f64, f64, u32)>> = vec![None; columns];
    let span = (to_ms - from_ms).max(1) as f64;
    for p in &series.points {
        let (Some(v), Some(lo), Some(hi)) = (p.value, p.min, p.max) else {
            continue;
        };
        let x = (((p.ts_ms - from_ms) as f64 / span) * columns as f64) as usize;
        let c = &mut cols[x.min(columns - 1)];
        *c = Some(match *c {
            None => (v, lo, hi, 1),
            Some((sum, l, h, n)) => (sum + v, l.min(lo), h.max(hi), n + 1),
        });
    }
    let present: Vec<(usize, f64, f64, f64)> = cols
        .iter()
        .enumerate()
        .filter_map(|(x, c)| c.map(|(sum, lo, hi, n)| (x, sum / f64::from(n), lo, hi)))
        .collect();
    if present.is_empty() {
        return html! { p.muted { "No samples in this range." } };
    }
    let mut lo = present.iter().map(|c| c.2).fold(f64::INFINITY, f64::min);
    let mut hi = present
        .iter()
        .map(|c| c.3)
        .fold(f64::NEG_INFINITY, f64::max);
    if hi - lo < 1e-9 {
        lo -= 1.0;
        hi += 1.0;
    }
    let y = |v: f64| plot_h - (v - lo) / (hi - lo) * (plot_h - 8.0) - 4.0;
    let mut line = String::new();
    let mut band = String::new();
    for (x, mean, _, top) in &present {
        let _ = write!(line, "{:.1},{:.1} ", PAD_LEFT + *x as f64, y(*mean));
        let _ = write!(band, "{:.1},{:.1} ", PAD_LEFT + *x as f64, y(*top));
    }
    for (x, _, bottom, _) in present.iter().rev() {
        let _ = write!(band, "{:.1},{:.1} ", PAD_LEFT + *x as f64, y(*bottom));
    }
    let fmt_t = |ms: i64| {
        DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%m-%d %H:%M").to_string())
            .unwrap_or_default()
    };
    html! {
        svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } width="100%"
            role="img" aria-label="Trend chart" {
            rect x=(PAD_LEFT) y="0" width=(plot_w) height=(plot_h) fill="#fff" stroke="#d5dde5" {}
            polygon points=(band) fill="#0b5cad" fill-opacity="0.18" stroke="none" {}
            polyline points=(line) fill="none" stroke="#0b5cad" stroke-width="1.5" {}
            text x=(PAD_LEFT - 4.0) y="12" text-anchor="end" font-size="11" { (format_num(hi)) }
            text x=(PAD_LEFT - 4.0) y=(plot_h - 2.0) text-anchor="end" font-size="11" { (format_num(lo)) }
            text x=(PAD_LEFT) y=(HEIGHT - 6.0) font-size="11" { (fmt_t(from_ms)) }
            text x=(WIDTH) y=(HEIGHT - 6.0) text-anchor="end" font-size="11" { (fmt_t(to_ms)) }
        }
    }
}

fn format_num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

//! The tag page (a server-rendered SVG trend with a range selector) and the
//! dashboard's storage card. No script and no external request: the chart
//! is plain SVG drawn from whichever tier the range calls for.

use crate::EdgeState;
use crate::api::{load_series, parse_resolution};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Duration, Utc};
use keelson_store::{Series, StorageUsage};
use keelson_web::PageUser;
use keelson_web::layout::page;
use keelson_web::session::page_error;
use maud::{Markup, html};
use serde::Deserialize;
use std::fmt::Write;

/// The ranges the selector offers: label and length in hours.
const RANGES: &[(&str, i64)] = &[
    ("1h", 1),
    ("6h", 6),
    ("24h", 24),
    ("7d", 7 * 24),
    ("30d", 30 * 24),
    ("45d", 45 * 24),
];
const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const PAD_LEFT: f64 = 64.0;
const PAD_BOTTOM: f64 = 24.0;

/// The page routes.
pub fn router() -> Router<EdgeState> {
    Router::new().route("/tags/{name}", get(tag_page))
}

#[derive(Deserialize)]
struct TagQuery {
    range: Option<String>,
    to: Option<DateTime<Utc>>,
    resolution: Option<String>,
}

async fn tag_page(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(name): Path<String>,
    Query(q): Query<TagQuery>,
) -> Response {
    let range = q.range.as_deref().unwrap_or("1h");
    let Some(&(range, hours)) = RANGES.iter().find(|(l, _)| *l == range) else {
        return page_error(
            &state.site,
            Some(&user),
            keelson_web::AppError::BadRequest(format!("unknown range `{range}`")),
        );
    };
    let to = q.to.unwrap_or_else(Utc::now);
    let from = to - Duration::hours(hours);
    let loaded = match parse_resolution(q.resolution.as_deref()) {
        Ok(resolution) => load_series(&state, name.clone(), from, to, resolution, 200_000).await,
        Err(e) => Err(e),
    };
    let series = match loaded {
        Ok(s) => s,
        Err(e) => return page_error(&state.site, Some(&user), e),
    };
    let to_param = q.to.map(|t| {
        format!(
            "&to={}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    });
    let body = html! {
        h1 { (name) }
        nav.card aria-label="Range" {
            "Range: "
            @for (label, _) in RANGES {
                @if *label == range {
                    strong { (label) } " "
                } @else {
                    a href={ "/tags/" (name) "?range=" (label) (to_param.as_deref().unwrap_or("")) } { (label) } " "
                }
            }
        }
        div.card {
            (chart(&series, from.timestamp_millis(), to.timestamp_millis()))
            p.muted {
                (series.points.len()) " points, "
                @match series.resolution {
                    keelson_store::Resolution::Raw => "every sample",
                    keelson_store::Resolution::Minute => "1-minute rollups (line: mean; band: min to max)",
                    keelson_store::Resolution::Hour => "hourly rollups (line: mean; band: min to max)",
                }
                ", " (from.format("%Y-%m-%d %H:%M")) " to " (to.format("%Y-%m-%d %H:%M")) " UTC."
            }
        }
    };
    Html(page(&state.site, &name, Some(&user), body).into_string()).into_response()
}

/// Draws the series as an SVG line of values (means for rollups) over a
/// band from min to max, at most one column per pixel so the page stays
/// small whatever the number of points.
fn chart(series: &Series, from_ms: i64, to_ms: i64) -> Markup {
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

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The dashboard's storage card: disk use per tier and the headroom.
pub fn storage_card(usage: Option<&StorageUsage>) -> Markup {
    html! {
        h2 { "Storage" }
        div.card {
            @match usage {
                None => { "Not measured yet; the first compaction pass runs at start." }
                Some(u) => {
                    table {
                        tr { th { "Tier" } th { "On disk" } }
                        tr { td { "Recent samples (rows)" } td { (mib(u.rows_bytes)) } }
                        tr { td { "Compressed samples" } td { (mib(u.raw_block_bytes)) } }
                        tr { td { "1-minute rollups" } td { (mib(u.minute_bytes)) } }
                        tr { td { "Hourly rollups" } td { (mib(u.hour_bytes)) } }
                        tr { td { "Records, change log, other" } td { (mib(u.other_bytes)) } }
                    }
                    p {
                        "In use: " (mib(u.used_bytes)) " of a " (mib(u.budget_bytes)) " budget. "
                        @match u.headroom_days {
                            Some(d) => { "Headroom: about " (format!("{d:.0}")) " days at the recent rate." }
                            None => { "Headroom: not known until a day of data is compacted." }
                        }
                    }
                }
            }
        }
    }
}

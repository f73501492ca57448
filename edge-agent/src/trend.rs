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
use keelson_store::StorageUsage;
use keelson_web::PageUser;
use keelson_web::layout::page;
use keelson_web::session::page_error;
use maud::{Markup, html};
use serde::Deserialize;

/// The ranges the selector offers: label and length in hours.
const RANGES: &[(&str, i64)] = &[
    ("1h", 1),
    ("6h", 6),
    ("24h", 24),
    ("7d", 7 * 24),
    ("30d", 30 * 24),
    ("45d", 45 * 24),
];

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
            (keelson_web::chart::trend(&series, from.timestamp_millis(), to.timestamp_millis()))
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

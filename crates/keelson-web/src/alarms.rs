//! What the ship and the shore show alike of alarms: an entry of the alarm
//! history as the APIs answer it, the names of kinds and states as people
//! read them, and the history table.
//!
//! Stable hooks for browser tests: history rows are `id="alarm-event-<id>"`
//! with the classes `alarm-event` and `event-<event>`.

use chrono::{DateTime, Utc};
use keelson_store::AlarmEventRow;
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

/// One entry of an alarm history, as the APIs show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventView {
    /// The entry's id on board.
    pub id: i64,
    /// The alarm it belongs to on board.
    pub alarm_id: Option<i64>,
    /// The rule's tag.
    pub tag: String,
    /// The alarm's kind.
    pub kind: String,
    /// `raised`, `acknowledged`, `returned`, `cleared` or `fault_logged`.
    pub event: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The tag's value then.
    pub value: Option<f64>,
    /// Who acted, if somebody did.
    pub by: Option<String>,
    /// The fault logged, for `fault_logged`.
    pub fault_id: Option<String>,
}

impl From<AlarmEventRow> for EventView {
    fn from(e: AlarmEventRow) -> EventView {
        EventView {
            id: e.id,
            alarm_id: e.alarm_id,
            tag: e.tag,
            kind: e.kind,
            event: e.event,
            at: time(e.at_ms),
            value: e.value,
            by: e.by,
            fault_id: e.fault_id,
        }
    }
}

/// A page of an alarm history, newest first.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryPage {
    /// The entries.
    pub events: Vec<EventView>,
    /// How many entries there are in all (of the one alarm, if asked).
    pub total: u64,
}

/// A time in ms since the epoch; the epoch itself for one out of range.
pub fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A time to the second, as the alarm pages show it.
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// A kind's name as people read it; an unknown one as it is.
pub fn kind_label(kind: &str) -> &str {
    match kind {
        "high_high" => "High-high",
        "high" => "High",
        "low" => "Low",
        "low_low" => "Low-low",
        "stale" => "Stale",
        "bad_quality" => "Bad quality",
        other => other,
    }
}

/// A state's name as people read it; an unknown one as it is.
pub fn state_label(state: &str) -> &str {
    match state {
        "active_unacknowledged" => "Active, unacknowledged",
        "active_acknowledged" => "Active, acknowledged",
        "returned_unacknowledged" => "Returned, unacknowledged",
        other => other,
    }
}

/// A value with its unit, or a dash.
pub fn number(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v} {unit}"))
}

/// The history table (`#alarm-history`), or a line saying it is empty;
/// `fault_href` links a logged fault where its page is.
pub fn history_table(events: &[EventView], fault_href: impl Fn(&str) -> String) -> Markup {
    html! {
        @if events.is_empty() {
            p.muted { "Nothing has happened yet." }
        } @else {
            table #alarm-history {
                thead { tr {
                    th { "When" } th { "Alarm" } th { "Tag" } th { "Level" } th { "Event" }
                    th { "Value" } th { "By" }
                } }
                tbody {
                    @for e in events {
                        tr id={ "alarm-event-" (e.id) } class={ "alarm-event event-" (e.event) } {
                            td { (when(e.at)) }
                            td { @if let Some(id) = e.alarm_id { (id) } }
                            td { (e.tag) }
                            td { (kind_label(&e.kind)) }
                            td.event {
                                (e.event.replace('_', " "))
                                @if let Some(f) = &e.fault_id { " " a href=(fault_href(f.as_str())) { "fault" } }
                            }
                            td { (number(e.value, "")) }
                            td.by { (e.by.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_rows_carry_their_hooks_and_links() {
        let row = AlarmEventRow {
            id: 7,
            alarm_id: Some(2),
            tag: "me.rpm".into(),
            kind: "high_high".into(),
            event: "fault_logged".into(),
            at_ms: 1_767_225_600_000,
            value: Some(101.5),
            by: Some("anna".into()),
            fault_id: Some("f-1".into()),
        };
        let html = history_table(&[row.into()], |f| format!("/faults/{f}")).into_string();
        assert!(html.contains("id=\"alarm-event-7\""), "{html}");
        assert!(html.contains("event-fault_logged"));
        assert!(html.contains("href=\"/faults/f-1\""));
        assert!(html.contains("High-high"));
        assert!(html.contains("2026-01-01 00:00:00 UTC"));
        assert!(
            history_table(&[], |f| f.to_owned())
                .into_string()
                .contains("Nothing")
        );
        assert_eq!(kind_label("shelved"), "shelved");
        assert_eq!(state_label("active_acknowledged"), "Active, acknowledged");
    }
}

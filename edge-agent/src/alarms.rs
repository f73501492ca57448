//! Alarms on board: the task that feeds the alarm engine, and the REST API
//! of the alarm list and its history.
//!
//! The engine ([`keelson_ingest::alarms::Engine`]) is pure; this module owns
//! it behind a mutex, together with the store. Every engine step (a change
//! of values, a clock tick, an acknowledgement) runs under that mutex and
//! writes its transitions in one transaction before the next step starts,
//! so the `alarms` table always matches the engine and the history is in
//! the order things happened. After a restart the engine is restored from
//! the `alarms` table.

use crate::{EdgeState, actor_of, api::log_fault};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use keelson_ingest::LatestValues;
use keelson_ingest::alarms::{
    Alarm, AlarmError, AlarmKind, AlarmState, AlarmsConfig, Engine, Transition,
};
use keelson_model::{Fault, NewFault, Quality, Severity};
use keelson_store::{AlarmRow, AlarmWrite, Db, NewAlarmRow, StoreError, now_ms};
use keelson_web::alarms::{EventView, HistoryPage, kind_label, time};
use keelson_web::{ApiJson, ApiPath, ApiQuery, AppError, CurrentUser, blocking};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The alarm engine and the store it writes to. Clones share both.
#[derive(Clone)]
pub struct Alarms {
    engine: Arc<Mutex<Engine>>,
    db: Db,
}

impl std::fmt::Debug for Alarms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alarms").finish_non_exhaustive()
    }
}

impl Alarms {
    /// An engine for `config`, restored from the alarms stored in `db`.
    /// Stored alarms whose rule is gone, or that this build cannot read,
    /// are cleared with a history entry.
    pub fn restore(db: Db, config: &AlarmsConfig) -> Result<Alarms, StoreError> {
        let now = now_ms();
        let mut engine = Engine::new(config, now);
        let mut stored = Vec::new();
        let mut unreadable = Vec::new();
        for row in db.alarms()? {
            match alarm_of(&row) {
                Ok(alarm) => stored.push(alarm),
                Err(e) => {
                    tracing::warn!(alarm = row.id, error = %e, "clearing a stored alarm this build cannot read");
                    unreadable.push(AlarmWrite {
                        tag: row.tag,
                        kind: row.kind,
                        event: "cleared".into(),
                        at_ms: now,
                        value: None,
                        by: None,
                        row: None,
                    });
                }
            }
        }
        let restored = stored.len();
        let gone = engine.restore(stored, now);
        let mut writes: Vec<AlarmWrite> = gone.iter().map(write_of).collect();
        writes.extend(unreadable);
        db.write_alarm_transitions(&writes)?;
        if restored > 0 || !writes.is_empty() {
            tracing::info!(
                restored = restored - gone.len(),
                cleared = writes.len(),
                "alarm list restored"
            );
        }
        Ok(Alarms {
            engine: Arc::new(Mutex::new(engine)),
            db,
        })
    }

    /// Runs one engine step under the lock and stores its transitions.
    fn step<T>(
        &self,
        f: impl FnOnce(&mut Engine) -> Result<(Vec<Transition>, T), AppError>,
    ) -> Result<T, AppError> {
        // A panic while the engine was locked leaves it poisoned; the engine
        // only changes through whole calls, so its state is still sound.
        let mut engine = self
            .engine
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The step runs on a copy that replaces the engine only once its
        // transitions are stored: a failed write (a full disk) leaves the
        // engine as the table says, and the next step tries again.
        let mut next = engine.clone();
        let (transitions, out) = f(&mut next)?;
        let writes: Vec<AlarmWrite> = transitions.iter().map(write_of).collect();
        self.db.write_alarm_transitions(&writes)?;
        *engine = next;
        for t in &transitions {
            tracing::info!(tag = %t.tag, kind = %t.kind, event = t.event.as_str(), value = ?t.value, by = ?t.by, "alarm");
        }
        Ok(out)
    }

    /// Feeds new readings: `(tag, value, quality, taken at ms)`.
    fn update(&self, readings: &[(String, Option<f64>, Quality, i64)]) -> Result<(), AppError> {
        let now = now_ms();
        self.step(|e| {
            let mut all = Vec::new();
            for (tag, value, quality, ts) in readings {
                all.extend(e.update(tag, *value, *quality, *ts, now));
            }
            Ok((all, ()))
        })
    }

    fn tick(&self) -> Result<(), AppError> {
        let now = now_ms();
        self.step(|e| Ok((e.tick(now), ())))
    }

    /// Acknowledges the alarm `id` as `by`; returns its state afterwards,
    /// `None` when it left the list.
    pub fn acknowledge(&self, id: i64, by: &str) -> Result<Option<AlarmState>, AppError> {
        let now = now_ms();
        self.step(|e| {
            // Looked up under the engine's lock, so the row is the alarm the
            // engine holds now.
            let row = self
                .db
                .alarm(id)?
                .ok_or_else(|| AppError::NotFound(format!("alarm {id} is not in the list")))?;
            let kind: AlarmKind = row.kind.parse().map_err(internal)?;
            let transitions = e
                .acknowledge(&row.tag, kind, by, now)
                .map_err(|err| match err {
                    AlarmError::AlreadyAcknowledged { .. } => {
                        AppError::Conflict(format!("alarm {id} is already acknowledged"))
                    }
                    other => AppError::NotFound(other.to_string()),
                })?;
            let state = transitions
                .last()
                .and_then(|t| t.alarm.as_ref())
                .map(|a| a.state);
            Ok((transitions, state))
        })
    }

    /// The alarm list from the store, most urgent first, then oldest.
    pub fn list(&self) -> Result<Vec<AlarmRow>, StoreError> {
        let mut rows = self.db.alarms()?;
        rows.sort_by_key(|r| (std::cmp::Reverse(priority(&r.kind)), r.raised_ms, r.id));
        Ok(rows)
    }
}

fn internal(e: AlarmError) -> AppError {
    AppError::internal(e.to_string())
}

fn priority(kind: &str) -> u8 {
    kind.parse::<AlarmKind>().map_or(0, AlarmKind::priority)
}

fn alarm_of(row: &AlarmRow) -> Result<Alarm, AlarmError> {
    Ok(Alarm {
        tag: row.tag.clone(),
        kind: row.kind.parse()?,
        state: row.state.parse()?,
        limit: row.limit,
        value: row.value,
        raised_ms: row.raised_ms,
        changed_ms: row.changed_ms,
    })
}

fn write_of(t: &Transition) -> AlarmWrite {
    AlarmWrite {
        tag: t.tag.clone(),
        kind: t.kind.as_str().to_owned(),
        event: t.event.as_str().to_owned(),
        at_ms: t.at_ms,
        value: t.value,
        by: t.by.clone(),
        row: t.alarm.as_ref().map(|a| NewAlarmRow {
            state: a.state.as_str().to_owned(),
            limit: a.limit,
            value: a.value,
            raised_ms: a.raised_ms,
            changed_ms: a.changed_ms,
        }),
    }
}

/// Feeds the engine every change of the latest values and a tick each
/// second, until `cancel` fires.
pub async fn run(alarms: Alarms, latest: LatestValues, cancel: CancellationToken) {
    let mut changes = latest.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // What was last fed per tag, so only changed readings go in. Quality is
    // part of it because the stale rule turns a value uncertain without a
    // new timestamp.
    let mut fed: HashMap<String, (i64, Quality)> = HashMap::new();
    let mut values_open = true;
    loop {
        let is_tick = tokio::select! {
            () = cancel.cancelled() => return,
            changed = changes.changed(), if values_open => {
                // The sender lives as long as ingest; once it is gone only
                // ticks remain.
                values_open = changed.is_ok();
                false
            }
            _ = tick.tick() => true,
        };
        let a = alarms.clone();
        let done = if is_tick {
            tokio::task::spawn_blocking(move || a.tick()).await
        } else {
            let mut readings = Vec::new();
            {
                let engine = alarms
                    .engine
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for v in latest.snapshot() {
                    let Some(ts) = v.ts else { continue };
                    if !engine.has_rule(&v.name) {
                        continue;
                    }
                    let key = (ts.timestamp_millis(), v.quality);
                    if fed.get(&v.name) == Some(&key) {
                        continue;
                    }
                    fed.insert(v.name.clone(), key);
                    readings.push((v.name, v.value, v.quality, key.0));
                }
            }
            if readings.is_empty() {
                continue;
            }
            tokio::task::spawn_blocking(move || a.update(&readings)).await
        };
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "storing alarm transitions failed"),
            Err(e) => tracing::error!(error = %e, "the alarm step failed"),
        }
    }
}

/// The alarm routes of the REST API.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/api/v1/alarms", get(list))
        .route("/api/v1/alarms/history", get(history))
        .route("/api/v1/alarms/{id}/ack", post(ack))
        .route("/api/v1/alarms/{id}/fault", post(fault))
}

/// An alarm in the list, as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct AlarmView {
    /// The alarm's id.
    pub id: i64,
    /// The rule's tag.
    pub tag: String,
    /// `high_high`, `high`, `low`, `low_low`, `stale` or `bad_quality`.
    pub kind: String,
    /// 3 for high-high and low-low, 2 for high and low, 1 otherwise.
    pub priority: u8,
    /// `active_unacknowledged`, `active_acknowledged` or
    /// `returned_unacknowledged`.
    pub state: String,
    /// The limit crossed (seconds for a stale alarm).
    pub limit: Option<f64>,
    /// The value that raised it.
    pub value: Option<f64>,
    /// The tag's value now.
    pub current: Option<f64>,
    /// The tag's unit.
    pub unit: String,
    /// When it raised.
    pub raised_at: DateTime<Utc>,
    /// When its state last changed.
    pub changed_at: DateTime<Utc>,
    /// The fault logged from it, if any.
    pub fault_id: Option<String>,
}

/// The views of the alarm list, with the tags' current values.
pub fn views(state: &EdgeState, rows: Vec<AlarmRow>) -> Vec<AlarmView> {
    rows.into_iter()
        .map(|r| {
            let latest = state.latest.get(&r.tag);
            AlarmView {
                priority: priority(&r.kind),
                current: latest.as_ref().and_then(|v| v.value),
                unit: latest.map(|v| v.unit).unwrap_or_default(),
                raised_at: time(r.raised_ms),
                changed_at: time(r.changed_ms),
                id: r.id,
                tag: r.tag,
                kind: r.kind,
                state: r.state,
                limit: r.limit,
                value: r.value,
                fault_id: r.fault_id,
            }
        })
        .collect()
}

/// Reads the alarm list.
pub async fn list_views(state: &EdgeState) -> Result<Vec<AlarmView>, AppError> {
    let s = state.clone();
    let rows = blocking(move || Ok(s.alarms.list()?)).await?;
    Ok(views(state, rows))
}

async fn list(
    State(state): State<EdgeState>,
    _user: CurrentUser,
) -> Result<Json<Vec<AlarmView>>, AppError> {
    Ok(Json(list_views(&state).await?))
}

/// Query of `GET /api/v1/alarms/history`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this alarm's entries.
    pub alarm_id: Option<i64>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

/// Reads a page of the alarm history.
pub async fn history_page(state: &EdgeState, q: HistoryQuery) -> Result<HistoryPage, AppError> {
    let s = state.clone();
    blocking(move || {
        let limit = q.limit.unwrap_or(100).clamp(1, 1000);
        let events =
            s.db.alarm_events(q.alarm_id, limit, q.offset.unwrap_or(0))?;
        Ok(HistoryPage {
            events: events.into_iter().map(EventView::from).collect(),
            total: s.db.alarm_event_count(q.alarm_id)?,
        })
    })
    .await
}

async fn history(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryPage>, AppError> {
    Ok(Json(history_page(&state, q).await?))
}

/// The answer to an acknowledgement.
#[derive(Debug, Serialize, Deserialize)]
pub struct AckResult {
    /// The alarm's id.
    pub id: i64,
    /// Its state now, or `cleared` when it left the list.
    pub state: String,
}

/// Acknowledges an alarm as `user` (any role on board); shared by the API
/// and the form.
pub async fn acknowledge(
    state: &EdgeState,
    user: &CurrentUser,
    id: i64,
) -> Result<AckResult, AppError> {
    let actor = actor_of(user)?;
    let alarms = state.alarms.clone();
    let after = blocking(move || alarms.acknowledge(id, &actor.name)).await?;
    Ok(AckResult {
        id,
        state: after.map_or("cleared", AlarmState::as_str).to_owned(),
    })
}

async fn ack(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
) -> Result<Json<AckResult>, AppError> {
    Ok(Json(acknowledge(&state, &user, id).await?))
}

/// `POST /api/v1/alarms/{id}/fault` body: what to change of the pre-filled
/// fault.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultFromAlarm {
    /// A title instead of the one made from the alarm.
    #[serde(default)]
    pub title: Option<String>,
    /// What was seen, added to the description.
    #[serde(default)]
    pub description: Option<String>,
}

/// The severity of a fault logged from an alarm of `kind`: high-high and
/// low-low are high, high and low are medium, stale and bad quality low.
/// Critical stays a person's call.
pub fn severity_of(kind: &str) -> Severity {
    match priority(kind) {
        3 => Severity::High,
        2 => Severity::Medium,
        _ => Severity::Low,
    }
}

/// Logs a fault from the alarm `id` as `user` and links it to the alarm:
/// title, severity, equipment (the one the tag is linked to, if any) and
/// description come from the alarm.
pub async fn log_fault_from_alarm(
    state: &EdgeState,
    user: &CurrentUser,
    id: i64,
    extra: FaultFromAlarm,
) -> Result<Fault, AppError> {
    actor_of(user)?;
    let s = state.clone();
    let (row, equipment) = blocking(move || {
        let row =
            s.db.alarm(id)?
                .ok_or_else(|| AppError::NotFound(format!("alarm {id} is not in the list")))?;
        if let Some(fault) = &row.fault_id {
            return Err(AppError::Conflict(format!(
                "fault {fault} was already logged from alarm {id}"
            )));
        }
        let equipment =
            s.db.list_equipment(Some(&s.config.vessel.id))?
                .into_iter()
                .find(|e| e.tags.contains(&row.tag))
                .map(|e| format!("{} {}", e.code, e.name));
        Ok((row, equipment))
    })
    .await?;
    let unit = state
        .latest
        .get(&row.tag)
        .map(|v| v.unit)
        .unwrap_or_default();
    let label = kind_label(&row.kind);
    let reading =
        |v: Option<f64>| v.map_or_else(|| "no value".to_owned(), |v| format!("{v} {unit}"));
    let mut description = format!(
        "Logged from alarm {id}: {} alarm on {}, raised at {} with {}",
        label.to_lowercase(),
        row.tag,
        time(row.raised_ms).to_rfc3339(),
        reading(row.value),
    );
    if let Some(limit) = row.limit {
        description.push_str(&format!(" (limit {limit})"));
    }
    description.push('.');
    if let Some(more) = extra.description.filter(|d| !d.trim().is_empty()) {
        description.push_str("\n\n");
        description.push_str(more.trim());
    }
    let title = extra
        .title
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| format!("{label} alarm: {}", row.tag));
    let new = NewFault {
        title,
        description,
        equipment: equipment.unwrap_or_default(),
        severity: severity_of(&row.kind),
    };
    let fault = log_fault(state, user, new).await?;
    let (s, fault_id, by) = (state.clone(), fault.id.clone(), user.username.clone());
    blocking(
        move || match s.db.link_alarm_fault(id, &fault_id, &by, now_ms()) {
            // The alarm cleared while the fault was being logged: the fault
            // stands on its own, and says which alarm it came from.
            Err(StoreError::NotFound) => Ok(()),
            other => Ok(other?),
        },
    )
    .await?;
    Ok(fault)
}

async fn fault(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<i64>,
    ApiJson(extra): ApiJson<FaultFromAlarm>,
) -> Result<(StatusCode, Json<Fault>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(log_fault_from_alarm(&state, &user, id, extra).await?),
    ))
}

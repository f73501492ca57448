//! The running-hours task: feeds counters that have a sensor rule
//! ("running while tag > X") from the tags' latest values.
//!
//! Every [`CHECK_INTERVAL`] the task adds, for each such counter, the time
//! since its previous check when the tag's latest value is good, fresh and
//! above the threshold (the arithmetic is
//! [`keelson_model::counter::running_hours`]). The running time gathered in
//! memory is written as one sensor reading (the counter's total plus the
//! time gathered) at most every `counters.sensor_reading_minutes`, so a
//! counter's change log grows per interval, not per sample. Time gathered
//! since the last reading is lost when the agent stops; that is at most one
//! interval, and stopping the agent stops the count anyway.

use crate::EdgeState;
use chrono::{DateTime, Utc};
use keelson_model::Quality;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the latest values are checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The author of sensor readings.
pub const SENSOR_AUTHOR: &str = "sensor";

/// A value older than this says nothing about the last interval.
const MAX_AGE_SECS: i64 = 60;

#[derive(Debug)]
struct Pending {
    last_check: DateTime<Utc>,
    last_write: DateTime<Utc>,
    hours: f64,
}

/// Runs until `cancel` fires.
pub async fn run(state: EdgeState, cancel: CancellationToken) {
    let every = chrono::Duration::minutes(
        i64::try_from(state.config.counters.sensor_reading_minutes).unwrap_or(15),
    );
    let mut pending: HashMap<String, Pending> = HashMap::new();
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = check(&state, &mut pending, every).await {
            tracing::warn!(error = %e, "running-hours check failed");
        }
    }
}

async fn check(
    state: &EdgeState,
    pending: &mut HashMap<String, Pending>,
    every: chrono::Duration,
) -> Result<(), keelson_web::AppError> {
    let db = state.db.clone();
    let counters = keelson_web::blocking(move || Ok(db.sensor_counters()?)).await?;
    let now = Utc::now();
    pending.retain(|id, _| counters.iter().any(|c| &c.id == id));
    let mut wrote = false;
    for counter in counters {
        let Some(rule) = &counter.sensor else {
            continue;
        };
        let entry = pending.entry(counter.id.clone()).or_insert(Pending {
            last_check: now,
            last_write: now,
            hours: 0.0,
        });
        let latest = state
            .latest
            .get(&rule.tag)
            .and_then(|v| Some((v.value?, v.quality == Quality::Good, v.ts?)));
        entry.hours += keelson_model::counter::running_hours(
            entry.last_check,
            now,
            latest,
            rule.threshold,
            chrono::Duration::seconds(MAX_AGE_SECS),
        );
        entry.last_check = now;
        if entry.hours <= 0.0 || now - entry.last_write < every {
            continue;
        }
        let (db, id) = (state.db.clone(), counter.id.clone());
        let value = counter.total + entry.hours;
        let written = keelson_web::blocking(move || {
            Ok(keelson_records::record_sensor_reading(
                &db,
                &id,
                value,
                SENSOR_AUTHOR,
                now,
            )?)
        })
        .await;
        match written {
            Ok(c) => {
                tracing::debug!(counter = %c.id, total = c.total, "sensor reading written");
                entry.hours = 0.0;
                entry.last_write = now;
                wrote = true;
            }
            Err(e) => {
                tracing::warn!(counter = %counter.id, error = %e, "writing a sensor reading failed")
            }
        }
    }
    if wrote {
        crate::plans_api::run_planner_pass(state).await;
        state.sync.trigger();
    }
    Ok(())
}

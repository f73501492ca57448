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
use keelson_ingest::LatestValues;
use keelson_model::Quality;
use keelson_records::RecordError;
use keelson_store::Db;
use std::collections::HashMap;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the latest values are checked.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// The author of sensor readings.
pub const SENSOR_AUTHOR: &str = "sensor";

/// A value older than this says nothing about the last interval.
const MAX_AGE_SECS: i64 = 60;

/// Running time gathered for one counter since its last sensor reading.
#[derive(Debug)]
pub struct Pending {
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
        let (db, latest) = (state.db.clone(), state.latest.clone());
        // The check reads and writes the database, so it runs off the
        // async workers; the gathered time travels with it and back.
        let joined = tokio::task::spawn_blocking(move || {
            let result = check(&db, &latest, &mut pending, every, Utc::now());
            (pending, result)
        })
        .await;
        let wrote = match joined {
            Ok((back, result)) => {
                pending = back;
                match result {
                    Ok(wrote) => wrote,
                    Err(e) => {
                        tracing::warn!(error = %e, "running-hours check failed");
                        false
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "running-hours check stopped");
                pending = HashMap::new();
                false
            }
        };
        if wrote {
            crate::plans_api::run_planner_pass(&state).await;
            state.sync.trigger();
        }
    }
}

/// One check at `now`: adds the running time of every counter with a
/// sensor rule and writes a sensor reading for those whose interval has
/// passed. Returns whether it wrote any. A counter seen for the first time
/// starts counting from `now`.
pub fn check(
    db: &Db,
    latest: &LatestValues,
    pending: &mut HashMap<String, Pending>,
    every: chrono::Duration,
    now: DateTime<Utc>,
) -> Result<bool, RecordError> {
    let counters = db.sensor_counters()?;
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
        let value = latest
            .get(&rule.tag)
            .and_then(|v| Some((v.value?, v.quality == Quality::Good, v.ts?)));
        entry.hours += keelson_model::counter::running_hours(
            entry.last_check,
            now,
            value,
            rule.threshold,
            chrono::Duration::seconds(MAX_AGE_SECS),
        );
        entry.last_check = now;
        if entry.hours <= 0.0 || now - entry.last_write < every {
            continue;
        }
        match keelson_records::record_sensor_reading(
            db,
            &counter.id,
            counter.total + entry.hours,
            SENSOR_AUTHOR,
            now,
        ) {
            Ok(c) => {
                tracing::debug!(counter = %c.id, total = c.total, "sensor reading written");
                entry.hours = 0.0;
                entry.last_write = now;
                wrote = true;
            }
            // One counter's failure must not stop the others; the time
            // stays gathered and the next check tries again.
            Err(e) => {
                tracing::warn!(counter = %counter.id, error = %e, "writing a sensor reading failed");
            }
        }
    }
    Ok(wrote)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keelson_model::{Criticality, Level, NewCounter, NewEquipment, Role, Sample, SensorRule};
    use keelson_records::Actor;
    use keelson_store::Site;

    #[test]
    fn running_time_is_written_once_per_interval() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let chief = Actor {
            name: "chief".into(),
            role: Role::ChiefEngineer,
        };
        let eq = keelson_records::create_equipment(
            &db,
            "v1",
            NewEquipment {
                code: "6".into(),
                name: "Main engine".into(),
                level: Level::System,
                criticality: Criticality::Critical,
                maker: String::new(),
                model: String::new(),
                serial: String::new(),
                tags: vec![],
            },
            &chief,
        )
        .unwrap();
        let counter = keelson_records::create_counter(
            &db,
            "v1",
            NewCounter {
                equipment_id: eq.id,
                name: String::new(),
                unit: String::new(),
                start_total: 100.0,
                sensor: Some(SensorRule {
                    tag: "me_rpm".into(),
                    threshold: 30.0,
                }),
            },
            &chief,
        )
        .unwrap();
        let latest = LatestValues::new([("me_rpm", "rpm")]);
        let every = chrono::Duration::minutes(15);
        let t0 = Utc::now();
        let at = |mins: i64| t0 + chrono::Duration::minutes(mins);
        let mut pending = HashMap::new();
        let sample = |ts, value, quality| Sample {
            tag: "me_rpm".into(),
            ts,
            value: Some(value),
            quality,
            text: None,
        };

        // Running: each check adds the time since the last one, but the
        // first write waits for the interval.
        assert!(!check(&db, &latest, &mut pending, every, at(0)).unwrap());
        for m in 1..15 {
            latest.update(&sample(at(m), 80.0, Quality::Good));
            assert!(!check(&db, &latest, &mut pending, every, at(m)).unwrap());
        }
        latest.update(&sample(at(15), 80.0, Quality::Good));
        assert!(check(&db, &latest, &mut pending, every, at(15)).unwrap());
        let c = db.counter(&counter.id).unwrap().unwrap();
        assert!((c.total - 100.25).abs() < 1e-6, "{}", c.total);
        assert_eq!(c.readings.len(), 1);
        assert_eq!(c.readings[0].by, SENSOR_AUTHOR);

        // Stopped, bad or stale: nothing is added and nothing written.
        latest.update(&sample(at(20), 10.0, Quality::Good));
        assert!(!check(&db, &latest, &mut pending, every, at(20)).unwrap());
        latest.update(&sample(at(40), 80.0, Quality::Bad));
        assert!(!check(&db, &latest, &mut pending, every, at(40)).unwrap());
        assert!(!check(&db, &latest, &mut pending, every, at(60)).unwrap());
        assert_eq!(db.counter(&counter.id).unwrap().unwrap().readings.len(), 1);
    }
}

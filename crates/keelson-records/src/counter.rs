//! Counter records (running hours): the chief engineer creates counters and
//! corrects their totals; everyone on board records readings; a reading
//! never goes below the current total.

use crate::{
    Actor, COUNTER, EQUIPMENT, RecordError, forbid_unless, load_kind, write_local, write_new,
};
use chrono::{DateTime, Utc};
use keelson_model::counter::reading_allowed;
use keelson_model::{Counter, NewCorrection, NewCounter, ReadingSource, Record};
use keelson_store::{Db, RecordTx};
use keelson_sync::record::RecordDoc;

/// Creates a counter on a piece of equipment of `vessel_id`.
pub fn create_counter(
    db: &Db,
    vessel_id: &str,
    new: NewCounter,
    actor: &Actor,
) -> Result<Counter, RecordError> {
    forbid_unless(
        actor.role.may_manage_counters(),
        "creating a counter needs the chief engineer",
    )?;
    let new = new.validated()?;
    db.transact(|tx| {
        check_equipment(tx, vessel_id, &new.equipment_id)?;
        as_counter(write_new(
            tx,
            RecordDoc::create_counter_as,
            vessel_id,
            &new,
            &actor.name,
            Utc::now(),
        )?)
    })
}

/// Records a reading typed in by `actor`. A value below the current total
/// is a conflict: only a correction may go back.
pub fn record_reading(
    db: &Db,
    id: &str,
    value: f64,
    actor: &Actor,
) -> Result<Counter, RecordError> {
    forbid_unless(
        actor.role.may_record_readings(),
        "recording a reading needs a user on board",
    )?;
    append_reading(
        db,
        id,
        value,
        ReadingSource::Manual,
        &actor.name,
        Utc::now(),
    )
}

/// Records a reading accumulated from the counter's sensor rule, as
/// `author` (the agent's own name). The same rule applies: a sensor
/// reading never goes below the current total.
pub fn record_sensor_reading(
    db: &Db,
    id: &str,
    value: f64,
    author: &str,
    now: DateTime<Utc>,
) -> Result<Counter, RecordError> {
    append_reading(db, id, value, ReadingSource::Sensor, author, now)
}

fn append_reading(
    db: &Db,
    id: &str,
    value: f64,
    source: ReadingSource,
    author: &str,
    now: DateTime<Utc>,
) -> Result<Counter, RecordError> {
    keelson_model::counter::validate_total("value", value)?;
    db.transact(|tx| {
        let (mut doc, current) = load_kind(tx, id, COUNTER)?;
        let current = as_counter(current)?;
        if !reading_allowed(current.total, value) {
            return Err(RecordError::Conflict(format!(
                "a reading of {value} is below the current total of {} {}: a reading never goes back; the chief engineer may correct the total instead",
                current.total, current.unit
            )));
        }
        let reading_id = uuid::Uuid::new_v4().to_string();
        let change = doc
            .add_reading(&reading_id, value, source, author, now)
            .map_err(RecordError::from_codec)?;
        as_counter(write_local(tx, id, &mut doc, vec![change])?)
    })
}

/// Corrects a counter's total (the chief engineer only; a reason is
/// required). A correction may go below the last reading.
pub fn correct_counter(
    db: &Db,
    id: &str,
    correction: NewCorrection,
    actor: &Actor,
) -> Result<Counter, RecordError> {
    forbid_unless(
        actor.role.may_manage_counters(),
        "correcting a counter needs the chief engineer",
    )?;
    let correction = correction.validated()?;
    db.transact(|tx| {
        let (mut doc, _) = load_kind(tx, id, COUNTER)?;
        let correction_id = uuid::Uuid::new_v4().to_string();
        let change = doc
            .add_correction(&correction_id, &correction, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?;
        as_counter(write_local(tx, id, &mut doc, vec![change])?)
    })
}

/// The equipment a new counter or plan names must exist on the vessel.
pub(crate) fn check_equipment(
    tx: &RecordTx<'_>,
    vessel_id: &str,
    equipment_id: &str,
) -> Result<(), RecordError> {
    match tx.load(equipment_id)? {
        Some(r) if r.kind == EQUIPMENT && r.vessel_id == vessel_id => Ok(()),
        _ => Err(RecordError::Conflict(format!(
            "no equipment {equipment_id} on this vessel"
        ))),
    }
}

fn as_counter(r: Record) -> Result<Counter, RecordError> {
    match r {
        Record::Counter(c) => Ok(c),
        _ => Err(RecordError::NotFound),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::{actor, main_engine};
    use crate::{IncomingChange, Sender, apply_remote};
    use keelson_model::Role;
    use keelson_store::Site;

    fn setup(db: &Db) -> Counter {
        let chief = actor("chief", Role::ChiefEngineer);
        let eq = main_engine(db);
        create_counter(
            db,
            "v1",
            NewCounter {
                equipment_id: eq.id,
                name: String::new(),
                unit: String::new(),
                start_total: 1000.0,
                sensor: None,
            },
            &chief,
        )
        .unwrap()
    }

    #[test]
    fn readings_never_go_back_and_only_the_chief_corrects() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let c = setup(&db);
        assert_eq!(c.total, 1000.0);
        let crew = actor("crew1", Role::Crew);
        let engineer = actor("second", Role::Engineer);
        let chief = actor("chief", Role::ChiefEngineer);
        assert!(matches!(
            create_counter(
                &db,
                "v1",
                NewCounter {
                    equipment_id: c.equipment_id.clone(),
                    name: String::new(),
                    unit: String::new(),
                    start_total: 0.0,
                    sensor: None,
                },
                &engineer
            ),
            Err(RecordError::Forbidden(_))
        ));
        assert!(matches!(
            create_counter(
                &db,
                "v1",
                NewCounter {
                    equipment_id: "nope".into(),
                    name: String::new(),
                    unit: String::new(),
                    start_total: 0.0,
                    sensor: None,
                },
                &chief
            ),
            Err(RecordError::Conflict(_))
        ));
        let c = record_reading(&db, &c.id, 1010.0, &crew).unwrap();
        assert_eq!(c.total, 1010.0);
        assert!(matches!(
            record_reading(&db, &c.id, 1009.0, &crew),
            Err(RecordError::Conflict(_))
        ));
        assert!(matches!(
            record_reading(&db, &c.id, -1.0, &crew),
            Err(RecordError::Invalid(_))
        ));
        let fix = NewCorrection {
            value: 1005.0,
            reason: "reading mistyped".into(),
        };
        assert!(matches!(
            correct_counter(&db, &c.id, fix.clone(), &engineer),
            Err(RecordError::Forbidden(_))
        ));
        assert!(matches!(
            correct_counter(
                &db,
                &c.id,
                NewCorrection {
                    value: 1.0,
                    reason: String::new()
                },
                &chief
            ),
            Err(RecordError::Invalid(_))
        ));
        let c = correct_counter(&db, &c.id, fix, &chief).unwrap();
        assert_eq!(c.total, 1005.0);
        assert_eq!(db.counter(&c.id).unwrap().unwrap().total, 1005.0);
        assert_eq!(
            db.list_counters(None, Some(&c.equipment_id)).unwrap().len(),
            1
        );
        // After the correction, readings count from the corrected total.
        assert_eq!(
            record_reading(&db, &c.id, 1006.0, &crew).unwrap().total,
            1006.0
        );
    }

    #[test]
    fn nobody_removes_a_reading_through_sync() {
        let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
        let ship = Db::open(dirs[0].path(), Site::Edge).unwrap();
        let shore = Db::open(dirs[1].path(), Site::Shore).unwrap();
        let c = setup(&ship);
        let c = record_reading(&ship, &c.id, 1010.0, &actor("crew1", Role::Crew)).unwrap();
        let rows = ship.outbound_changes("v1", 0, usize::MAX).unwrap();
        let batch: Vec<IncomingChange> = rows.into_iter().map(IncomingChange::from).collect();
        apply_remote(&shore, "v1", Sender::Vessel, &batch, |_| Ok(())).unwrap();
        assert_eq!(shore.counter(&c.id).unwrap().unwrap(), c);
        let mut after = c.clone();
        after.readings.clear();
        let err = crate::check_edit(
            Sender::Vessel,
            Some(&Record::Counter(c)),
            &Record::Counter(after),
        )
        .unwrap_err();
        assert!(matches!(err, RecordError::Forbidden(_)), "{err}");
    }
}

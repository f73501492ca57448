//! Maintenance plans: the chief engineer creates, edits and postpones them;
//! the agent opens a work order when a plan falls due and has none open;
//! signing that work order off records the job as done on the plan, in the
//! same transaction as the sign-off, so the next due point moves at once
//! and no crash can leave a signed-off job the plan does not know of.

use crate::counter::check_equipment;
use crate::{Actor, COUNTER, PLAN, RecordError, forbid_unless, load_kind, write_local, write_new};
use chrono::{DateTime, Utc};
use keelson_model::{
    NewPlan, NewPostponement, NewWorkOrder, Plan, PlanPatch, PlanState, Record, Schedule,
    WorkOrder, schedule,
};
use keelson_store::{Db, RecordTx};
use keelson_sync::record::RecordDoc;
use serde::{Deserialize, Serialize};

const NEEDS_CHIEF: &str = "managing maintenance plans needs the chief engineer";

/// The author of the work orders the agent opens for plans that fall due.
pub const PLANNER: &str = "planner";

/// A plan with its schedule, as lists and the due list show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduledPlan {
    /// The plan.
    #[serde(flatten)]
    pub plan: Plan,
    /// When it is due and how it stands now.
    pub schedule: Schedule,
}

/// Creates a plan on a piece of equipment of `vessel_id`. An hours plan's
/// counter must belong to the same equipment; its last-done total is the
/// counter's current total unless given.
pub fn create_plan(
    db: &Db,
    vessel_id: &str,
    mut new: NewPlan,
    actor: &Actor,
) -> Result<Plan, RecordError> {
    forbid_unless(actor.role.may_manage_plans(), NEEDS_CHIEF)?;
    new = new.validated()?;
    db.transact(|tx| {
        check_equipment(tx, vessel_id, &new.equipment_id)?;
        if let Some(counter_id) = &new.counter_id {
            let counter = tx
                .counter(counter_id)?
                .filter(|c| c.vessel_id == vessel_id)
                .ok_or_else(|| {
                    RecordError::Conflict(format!("no counter {counter_id} on this vessel"))
                })?;
            if counter.equipment_id != new.equipment_id {
                return Err(RecordError::Conflict(format!(
                    "counter {counter_id} counts for other equipment"
                )));
            }
            if new.last_done_hours.is_none() {
                new.last_done_hours = Some(counter.total);
            }
        }
        as_plan(write_new(
            tx,
            RecordDoc::create_plan_as,
            vessel_id,
            &new,
            &actor.name,
            Utc::now(),
        )?)
    })
}

/// Edits a plan's title, instructions, intervals or tolerances.
pub fn patch_plan(db: &Db, id: &str, patch: PlanPatch, actor: &Actor) -> Result<Plan, RecordError> {
    forbid_unless(actor.role.may_manage_plans(), NEEDS_CHIEF)?;
    let patch = patch.validated()?;
    db.transact(|tx| {
        let (mut doc, current) = load_kind(tx, id, PLAN)?;
        match doc
            .patch_plan(&patch, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?
        {
            Some(change) => as_plan(write_local(tx, id, &mut doc, vec![change])?),
            None => as_plan(current),
        }
    })
}

/// Postpones a plan's next due point, with a reason.
pub fn postpone_plan(
    db: &Db,
    id: &str,
    postponement: NewPostponement,
    actor: &Actor,
) -> Result<Plan, RecordError> {
    forbid_unless(actor.role.may_manage_plans(), NEEDS_CHIEF)?;
    let postponement = postponement.validated()?;
    db.transact(|tx| {
        let (mut doc, _) = load_kind(tx, id, PLAN)?;
        let postponement_id = uuid::Uuid::new_v4().to_string();
        let change = doc
            .postpone_plan(&postponement_id, &postponement, &actor.name, Utc::now())
            .map_err(RecordError::from_codec)?;
        as_plan(write_local(tx, id, &mut doc, vec![change])?)
    })
}

/// Every plan of the vessel (or all) with its schedule at `now`, the most
/// urgent first: overdue, then due, then ok, each by due date.
pub fn scheduled_plans(
    db: &Db,
    vessel_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<ScheduledPlan>, RecordError> {
    let plans = db.list_plans(vessel_id)?;
    // One read of every counter rather than one query per hours plan: a
    // vessel has a few hundred counters and thousands of plans on them.
    let totals: std::collections::HashMap<String, f64> = db
        .list_counters(vessel_id, None)?
        .into_iter()
        .map(|c| (c.id, c.total))
        .collect();
    let mut out = Vec::with_capacity(plans.len());
    for plan in plans {
        let total = plan
            .counter_id
            .as_ref()
            .and_then(|c| totals.get(c).copied());
        let schedule = schedule(&plan, total, now);
        out.push(ScheduledPlan { plan, schedule });
    }
    out.sort_by(|a, b| {
        b.schedule
            .state
            .cmp(&a.schedule.state)
            .then_with(|| a.schedule.due_at.cmp(&b.schedule.due_at))
            .then_with(|| a.plan.title.cmp(&b.plan.title))
    });
    Ok(out)
}

/// Opens a work order for every plan of `vessel_id` that is due or
/// overdue at `now` and has no work order open, and returns them. Each
/// plan is checked and its work order written in one transaction, so two
/// passes at once cannot open two work orders for the same plan.
pub fn open_due_work_orders(
    db: &Db,
    vessel_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<WorkOrder>, RecordError> {
    let mut opened = Vec::new();
    for plan in db.list_plans(Some(vessel_id))? {
        let made = db.transact(|tx| {
            let (_, record) = load_kind(tx, &plan.id, PLAN)?;
            let plan = as_plan(record)?;
            let total = match &plan.counter_id {
                Some(c) => tx.counter(c)?.map(|c| c.total),
                None => None,
            };
            if schedule(&plan, total, now).state == PlanState::Ok
                || tx.plan_has_open_work_order(&plan.id)?
            {
                return Ok(None);
            }
            let new = NewWorkOrder {
                title: plan.title.clone(),
                equipment_id: plan.equipment_id.clone(),
                description: plan.instructions.clone(),
                assignee: String::new(),
                plan_id: Some(plan.id.clone()),
            }
            .validated()?;
            match write_new(
                tx,
                RecordDoc::create_work_order_as,
                vessel_id,
                &new,
                PLANNER,
                now,
            )? {
                Record::WorkOrder(w) => Ok(Some(w)),
                _ => Err(RecordError::NotFound),
            }
        })?;
        if let Some(w) = made {
            tracing::info!(plan = %plan.id, work_order = %w.id, "plan fell due: work order opened");
            opened.push(w);
        }
    }
    Ok(opened)
}

/// Records on a plan that its job was done at `at`, with its counter's
/// current total; called inside the sign-off's transaction.
pub(crate) fn mark_done(
    tx: &mut RecordTx<'_>,
    plan_id: &str,
    at: DateTime<Utc>,
    author: &str,
) -> Result<(), RecordError> {
    let (mut doc, record) = match load_kind(tx, plan_id, PLAN) {
        Ok(found) => found,
        // A plan the vessel does not hold (not yet synced back, say) has
        // nothing to move; the sign-off itself stands.
        Err(RecordError::NotFound) => return Ok(()),
        Err(e) => return Err(e),
    };
    let plan = as_plan(record)?;
    let hours = match &plan.counter_id {
        Some(c) => match load_kind(tx, c, COUNTER) {
            Ok((_, Record::Counter(c))) => Some(c.total),
            _ => None,
        },
        None => None,
    };
    let change = doc
        .set_plan_done(at, hours, author, at)
        .map_err(RecordError::from_codec)?;
    write_local(tx, plan_id, &mut doc, vec![change])?;
    Ok(())
}

fn as_plan(r: Record) -> Result<Plan, RecordError> {
    match r {
        Record::Plan(p) => Ok(p),
        _ => Err(RecordError::NotFound),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::{actor, main_engine};
    use crate::{
        correct_counter, create_counter, patch_work_order, record_reading, sign_off_work_order,
    };
    use keelson_model::{NewCorrection, NewCounter, NewSignOff, Role, WorkOrderPatch, WorkStatus};
    use keelson_store::Site;

    #[test]
    fn an_hours_plan_falls_due_opens_one_work_order_and_moves_on_sign_off() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), Site::Edge).unwrap();
        let chief = actor("chief", Role::ChiefEngineer);
        let crew = actor("crew1", Role::Crew);
        let eq = main_engine(&db);
        let counter = create_counter(
            &db,
            "v1",
            NewCounter {
                equipment_id: eq.id.clone(),
                name: String::new(),
                unit: String::new(),
                start_total: 1000.0,
                sensor: None,
            },
            &chief,
        )
        .unwrap();
        let new = NewPlan {
            equipment_id: eq.id.clone(),
            title: "Change LO filter".into(),
            instructions: "Drain and change".into(),
            interval_days: None,
            interval_hours: Some(500.0),
            counter_id: Some(counter.id.clone()),
            tolerance_days: 0,
            tolerance_hours: 20.0,
            last_done_at: None,
            last_done_hours: None,
        };
        assert!(matches!(
            create_plan(&db, "v1", new.clone(), &actor("second", Role::Engineer)),
            Err(RecordError::Forbidden(_))
        ));
        let plan = create_plan(&db, "v1", new, &chief).unwrap();
        assert_eq!(plan.last_done_hours, Some(1000.0));
        let now = Utc::now();
        assert!(open_due_work_orders(&db, "v1", now).unwrap().is_empty());

        record_reading(&db, &counter.id, 1490.0, &crew).unwrap();
        let listed = scheduled_plans(&db, None, now).unwrap();
        assert_eq!(listed[0].schedule.state, PlanState::Due);
        let opened = open_due_work_orders(&db, "v1", now).unwrap();
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].plan_id.as_deref(), Some(plan.id.as_str()));
        assert_eq!(opened[0].created_by, PLANNER);
        // One open work order per plan, however often the pass runs.
        assert!(open_due_work_orders(&db, "v1", now).unwrap().is_empty());

        // A correction moves the counter back and the plan with it.
        correct_counter(
            &db,
            &counter.id,
            NewCorrection {
                value: 1400.0,
                reason: "Reading mistyped".into(),
            },
            &chief,
        )
        .unwrap();
        let listed = scheduled_plans(&db, None, now).unwrap();
        assert_eq!(listed[0].schedule.state, PlanState::Ok);
        record_reading(&db, &counter.id, 1530.0, &crew).unwrap();

        let engineer = actor("second", Role::Engineer);
        let wo = &opened[0].id;
        for s in [WorkStatus::InProgress, WorkStatus::Done] {
            let patch = WorkOrderPatch {
                status: Some(s),
                ..WorkOrderPatch::default()
            };
            patch_work_order(&db, wo, patch, &engineer).unwrap();
        }
        sign_off_work_order(&db, wo, NewSignOff::default(), &chief).unwrap();
        let plan = db.plan(&plan.id).unwrap().unwrap();
        assert_eq!(plan.last_done_hours, Some(1530.0));
        let s = schedule(&plan, Some(1530.0), Utc::now());
        assert_eq!((s.due_hours, s.state), (Some(2030.0), PlanState::Ok));
        assert!(
            open_due_work_orders(&db, "v1", Utc::now())
                .unwrap()
                .is_empty()
        );
    }
}

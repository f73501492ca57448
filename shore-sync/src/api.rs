//! The shore's REST API under `/api/v1`.

use crate::{ShoreState, role_of};
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use keelson_model::{
    Counter, Equipment, Fault, HistoryEntry, Part, PlanState, Requisition, WorkOrder,
};
use keelson_records::comment_fault;
use keelson_store::block::Rollup;
use keelson_store::{FaultFilter, PartFilter, RequisitionFilter, Resolution, WorkOrderFilter};
use keelson_web::alarms::{EventView, HistoryPage, time};
use keelson_web::session::WebState;
use keelson_web::{ApiJson, ApiPath, ApiQuery, AppError, CurrentUser, blocking};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The API routes.
pub fn router() -> Router<ShoreState> {
    Router::new()
        .merge(keelson_web::session::router::<ShoreState>())
        .route("/api/v1/vessels", get(vessels))
        .route("/api/v1/vessels/{id}/faults", get(vessel_faults))
        .route("/api/v1/vessels/{id}/faults/{fault_id}", get(vessel_fault))
        .route(
            "/api/v1/vessels/{id}/faults/{fault_id}/comments",
            post(comment),
        )
        .route("/api/v1/vessels/{id}/equipment", get(vessel_equipment))
        .route("/api/v1/vessels/{id}/counters", get(vessel_counters))
        .route(
            "/api/v1/vessels/{id}/plans",
            get(vessel_plans).post(new_vessel_plan),
        )
        .route(
            "/api/v1/vessels/{id}/plans/{plan_id}",
            axum::routing::patch(change_vessel_plan),
        )
        .route(
            "/api/v1/vessels/{id}/work-orders",
            get(vessel_work_orders).post(new_vessel_work_order),
        )
        .route("/api/v1/vessels/{id}/parts", get(vessel_parts))
        .route(
            "/api/v1/vessels/{id}/requisitions",
            get(vessel_requisitions),
        )
        .route(
            "/api/v1/vessels/{id}/requisitions/{requisition_id}/decision",
            post(new_decision),
        )
        .route(
            "/api/v1/vessels/{id}/work-orders/{work_order_id}",
            get(vessel_work_order),
        )
        .route(
            "/api/v1/vessels/{id}/work-orders/{work_order_id}/comments",
            post(work_order_comment),
        )
        .route(
            "/api/v1/vessels/{id}/records/{record_id}/history",
            get(vessel_record_history),
        )
        .route("/api/v1/quarantine", get(quarantine))
        .route("/api/v1/vessels/{id}/alarms", get(vessel_alarms))
        .route("/api/v1/vessels/{id}/tags", get(vessel_tags))
        .route("/api/v1/vessels/{id}/tags/{tag}/rollups", get(tag_rollups))
}

/// A sensor rollup as the shore serves it.
#[derive(Debug, Serialize, Deserialize)]
pub struct RollupOut {
    /// Start of the interval, RFC 3339.
    pub start: String,
    /// Mean of the values, absent when no sample had one.
    pub mean: Option<f64>,
    /// Smallest value.
    pub min: Option<f64>,
    /// Largest value.
    pub max: Option<f64>,
    /// The last value in time.
    pub last: Option<f64>,
    /// Samples in the interval.
    pub count: u32,
    /// Good-quality samples in the interval.
    pub good: u32,
}

impl From<&Rollup> for RollupOut {
    fn from(r: &Rollup) -> RollupOut {
        RollupOut {
            start: DateTime::from_timestamp_millis(r.start_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            mean: r.mean,
            min: r.min,
            max: r.max,
            last: r.last,
            count: r.count,
            good: r.good,
        }
    }
}

/// A tag a vessel sends rollups for, with its latest hourly rollup.
#[derive(Debug, Serialize, Deserialize)]
pub struct VesselTag {
    /// The tag's name.
    pub tag: String,
    /// Its latest hourly rollup.
    pub latest: RollupOut,
}

/// The tags of a vessel the user can see, with their latest hourly rollups.
pub fn tags_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
) -> Result<Vec<(String, Rollup)>, AppError> {
    vessel_of(state, user, vessel_id)?;
    Ok(state.db.vessel_tags(vessel_id)?)
}

/// A tag's rollups of one width over `[from_ms, to_ms]`, at most 100,000.
pub fn rollups_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
    tag: &str,
    width: Resolution,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Rollup>, AppError> {
    vessel_of(state, user, vessel_id)?;
    if from_ms > to_ms {
        return Err(AppError::BadRequest("`from` must not be after `to`".into()));
    }
    Ok(state
        .db
        .vessel_rollups(vessel_id, tag, width, from_ms, to_ms, 100_000)?)
}

async fn vessel_tags(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<VesselTag>>, AppError> {
    role_of(&user)?;
    let tags = blocking(move || tags_of(&state, &user, &id)).await?;
    Ok(Json(
        tags.iter()
            .map(|(tag, r)| VesselTag {
                tag: tag.clone(),
                latest: r.into(),
            })
            .collect(),
    ))
}

/// Query of `GET /api/v1/vessels/{id}/tags/{tag}/rollups`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollupQuery {
    /// `hour` (the default) or `minute`.
    pub width: Option<String>,
    /// Start of the range, RFC 3339 (default: 30 days before `to`).
    pub from: Option<DateTime<Utc>>,
    /// End of the range, RFC 3339 (default: now).
    pub to: Option<DateTime<Utc>>,
}

/// The width a query names, hourly when it names none.
pub fn parse_width(width: Option<&str>) -> Result<Resolution, AppError> {
    match width {
        None | Some("hour") => Ok(Resolution::Hour),
        Some("minute") => Ok(Resolution::Minute),
        Some(other) => Err(AppError::BadRequest(format!(
            "`width` must be hour or minute, not `{other}`"
        ))),
    }
}

async fn tag_rollups(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath((id, tag)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<RollupQuery>,
) -> Result<Json<Vec<RollupOut>>, AppError> {
    role_of(&user)?;
    let width = parse_width(q.width.as_deref())?;
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - chrono::Duration::days(30));
    let rollups = blocking(move || {
        rollups_of(
            &state,
            &user,
            &id,
            &tag,
            width,
            from.timestamp_millis(),
            to.timestamp_millis(),
        )
    })
    .await?;
    Ok(Json(rollups.iter().map(RollupOut::from).collect()))
}

/// An active alarm of a vessel, as the shore serves it.
#[derive(Debug, Serialize, Deserialize)]
pub struct ActiveAlarm {
    /// The alarm's id on board.
    pub alarm_id: Option<i64>,
    /// The rule's tag.
    pub tag: String,
    /// `high_high`, `high`, `low`, `low_low`, `stale` or `bad_quality`.
    pub kind: String,
    /// `active_unacknowledged`, `active_acknowledged` or
    /// `returned_unacknowledged`.
    pub state: String,
    /// Whether somebody on board acknowledged it.
    pub acknowledged: bool,
    /// Who did.
    pub acknowledged_by: Option<String>,
    /// The value that raised it.
    pub value: Option<f64>,
    /// When it raised on board.
    pub raised_at: DateTime<Utc>,
    /// When its state last changed on board.
    pub changed_at: DateTime<Utc>,
    /// The fault logged from it on board, if any.
    pub fault_id: Option<String>,
}

impl From<keelson_store::VesselAlarm> for ActiveAlarm {
    fn from(a: keelson_store::VesselAlarm) -> ActiveAlarm {
        ActiveAlarm {
            acknowledged: !a.is_unacknowledged(),
            alarm_id: a.alarm_id,
            tag: a.tag,
            kind: a.kind,
            state: a.state,
            acknowledged_by: a.acknowledged_by,
            value: a.value,
            raised_at: time(a.raised_ms),
            changed_at: time(a.changed_ms),
            fault_id: a.fault_id,
        }
    }
}

/// A vessel's alarms as last synced: `GET /api/v1/vessels/{id}/alarms`.
#[derive(Debug, Serialize, Deserialize)]
pub struct VesselAlarms {
    /// The alarms active on board, oldest first.
    pub active: Vec<ActiveAlarm>,
    /// How many of them nobody has acknowledged.
    pub unacknowledged: u64,
    /// A page of the alarm history, newest first.
    pub history: HistoryPage,
}

/// Query of `GET /api/v1/vessels/{id}/alarms`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmsQuery {
    /// History entries to return (default 50, at most 1000).
    pub limit: Option<u32>,
    /// History entries to skip.
    pub offset: Option<u32>,
}

/// A vessel's active alarms and a page of its alarm history, or 404 when
/// the user cannot see the vessel.
pub fn alarms_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
    q: &AlarmsQuery,
) -> Result<VesselAlarms, AppError> {
    vessel_of(state, user, vessel_id)?;
    let active: Vec<ActiveAlarm> = state
        .db
        .vessel_alarms(vessel_id)?
        .into_iter()
        .map(ActiveAlarm::from)
        .collect();
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    let events = state
        .db
        .vessel_alarm_events(vessel_id, limit, q.offset.unwrap_or(0))?;
    Ok(VesselAlarms {
        unacknowledged: active.iter().filter(|a| !a.acknowledged).count() as u64,
        active,
        history: HistoryPage {
            events: events.into_iter().map(EventView::from).collect(),
            total: state.db.vessel_alarm_event_count(vessel_id)?,
        },
    })
}

async fn vessel_alarms(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<AlarmsQuery>,
) -> Result<Json<VesselAlarms>, AppError> {
    role_of(&user)?;
    Ok(Json(
        blocking(move || alarms_of(&state, &user, &id, &q)).await?,
    ))
}

/// A refused sync batch as fleet admins see it.
#[derive(Debug, Serialize, Deserialize)]
pub struct QuarantinedBatch {
    /// Its id.
    pub id: i64,
    /// The vessel that sent it.
    pub vessel_id: String,
    /// When it arrived, RFC 3339.
    pub received_at: String,
    /// Why it was refused.
    pub reason: String,
    /// Its size in bytes.
    pub size: u64,
}

/// The refused batches of the user's organization; fleet admins only.
pub fn quarantined(
    state: &ShoreState,
    user: &CurrentUser,
) -> Result<Vec<QuarantinedBatch>, AppError> {
    if role_of(user)? != keelson_model::ShoreRole::FleetAdmin {
        return Err(AppError::Forbidden(
            "the quarantine is for fleet admins".into(),
        ));
    }
    let org = org_of(state, user)?;
    Ok(state
        .db
        .quarantined(&org, 500)?
        .into_iter()
        .map(|q| QuarantinedBatch {
            id: q.id,
            vessel_id: q.vessel_id,
            received_at: chrono::DateTime::from_timestamp_millis(q.received_at_ms)
                .map(|t| t.to_rfc3339())
                .unwrap_or_default(),
            reason: q.reason,
            size: q.size,
        })
        .collect())
}

async fn quarantine(
    State(state): State<ShoreState>,
    user: CurrentUser,
) -> Result<Json<Vec<QuarantinedBatch>>, AppError> {
    Ok(Json(blocking(move || quarantined(&state, &user)).await?))
}

impl WebState for ShoreState {
    fn site(&self) -> &keelson_web::layout::Site {
        &self.site
    }
    fn secure_cookies(&self) -> bool {
        // A shore that serves HTTPS itself is only reached over HTTPS.
        self.config.http.secure_cookies || self.config.http.tls_files().is_some()
    }
}

/// A vessel as the fleet list shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct VesselSummary {
    /// The vessel's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// When it last synced, RFC 3339.
    pub last_sync: Option<String>,
    /// Highest vessel change sequence number received.
    pub records_received: u64,
    /// Open faults by severity.
    pub open_faults: BTreeMap<String, u64>,
    /// Bytes the vessel reported waiting on board at its last sync.
    pub pending_bytes: u64,
    /// The vessel's estimate of the time to send them, in seconds.
    pub eta_secs: Option<u64>,
    /// The end of the newest hour of sensor data received, RFC 3339.
    pub sensor_data_until: Option<String>,
    /// Maintenance plans overdue, from the counters as last synced.
    pub plans_overdue: u64,
    /// Maintenance plans in their tolerance window.
    pub plans_due: u64,
    /// Alarms active on board as the synced alarm history says (raised
    /// and not cleared).
    pub active_alarms: u64,
    /// Of those, the ones nobody on board has acknowledged.
    pub unacknowledged_alarms: u64,
    /// Alarm history entries the vessel reported waiting on board.
    pub pending_alarm_events: u64,
}

/// The organization whose vessels `user` may see.
pub fn org_of(state: &ShoreState, user: &CurrentUser) -> Result<String, AppError> {
    Ok(state.db.user_org(&user.username)?)
}

/// Every vessel of `org` with its sync state and open faults.
pub fn vessel_summaries(state: &ShoreState, org: &str) -> Result<Vec<VesselSummary>, AppError> {
    let vessels = state.db.vessels(Some(org))?;
    vessels
        .into_iter()
        .map(|v| {
            let open = state.db.open_fault_counts(Some(&v.id))?;
            let data_until = state.db.vessel_data_until(&v.id)?;
            let plans = keelson_records::scheduled_plans(&state.db, Some(&v.id), Utc::now())?;
            let (active_alarms, unacknowledged_alarms) = state.db.vessel_alarm_counts(&v.id)?;
            let count = |wanted: PlanState| {
                plans.iter().filter(|p| p.schedule.state == wanted).count() as u64
            };
            Ok(VesselSummary {
                plans_overdue: count(PlanState::Overdue),
                plans_due: count(PlanState::Due),
                active_alarms,
                unacknowledged_alarms,
                pending_alarm_events: v.pending_alarm_events,
                sensor_data_until: data_until
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.to_rfc3339()),
                last_sync: v
                    .last_sync_ms
                    .and_then(chrono::DateTime::from_timestamp_millis)
                    .map(|t| t.to_rfc3339()),
                id: v.id,
                name: v.name,
                records_received: v.records_acked,
                pending_bytes: v.pending_bytes,
                eta_secs: v.eta_secs,
                open_faults: open.into_iter().collect(),
            })
        })
        .collect()
}

async fn vessels(
    State(state): State<ShoreState>,
    user: CurrentUser,
) -> Result<Json<Vec<VesselSummary>>, AppError> {
    role_of(&user)?;
    Ok(Json(
        blocking(move || vessel_summaries(&state, &org_of(&state, &user)?)).await?,
    ))
}

/// A vessel of the user's organization, or 404: a vessel of another
/// organization does not exist as far as the user can tell.
pub fn vessel_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
) -> Result<keelson_store::VesselRow, AppError> {
    let org = org_of(state, user)?;
    match state.db.vessel(vessel_id)? {
        Some(v) if v.org_id == org => Ok(v),
        _ => Err(AppError::NotFound(format!("no vessel `{vessel_id}`"))),
    }
}

/// A vessel's faults, or 404 when the user cannot see the vessel.
pub fn faults_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
) -> Result<Vec<Fault>, AppError> {
    vessel_of(state, user, vessel_id)?;
    Ok(state.db.list_faults(&FaultFilter {
        vessel_id: Some(vessel_id.to_owned()),
        ..FaultFilter::default()
    })?)
}

/// One fault of a vessel, or 404.
pub fn fault_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
    fault_id: &str,
) -> Result<Fault, AppError> {
    vessel_of(state, user, vessel_id)?;
    match state.db.fault(fault_id)? {
        Some(f) if f.vessel_id == vessel_id => Ok(f),
        _ => Err(AppError::NotFound(format!(
            "no fault `{fault_id}` on vessel `{vessel_id}`"
        ))),
    }
}

async fn vessel_faults(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<Fault>>, AppError> {
    role_of(&user)?;
    Ok(Json(blocking(move || faults_of(&state, &user, &id)).await?))
}

async fn vessel_fault(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath((id, fault_id)): ApiPath<(String, String)>,
) -> Result<Json<Fault>, AppError> {
    role_of(&user)?;
    Ok(Json(
        blocking(move || fault_of(&state, &user, &id, &fault_id)).await?,
    ))
}

/// `POST .../comments` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The comment.
    pub text: String,
}

/// Adds a shore comment to a vessel's fault; it reaches the vessel on its
/// next sync.
pub fn add_shore_comment(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
    fault_id: &str,
    text: &str,
) -> Result<Fault, AppError> {
    if !role_of(user)?.may_comment() {
        return Err(AppError::Forbidden(
            "commenting needs the superintendent role".into(),
        ));
    }
    fault_of(state, user, vessel_id, fault_id)?;
    let author = format!("{}@shore", user.username);
    Ok(comment_fault(&state.db, fault_id, &author, text)?)
}

async fn comment(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath((id, fault_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<NewComment>,
) -> Result<(axum::http::StatusCode, Json<Fault>), AppError> {
    let fault =
        blocking(move || add_shore_comment(&state, &user, &id, &fault_id, &body.text)).await?;
    Ok((axum::http::StatusCode::CREATED, Json(fault)))
}

/// A vessel's equipment in tree order, or 404 when the user cannot see the
/// vessel.
pub fn equipment_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
) -> Result<Vec<Equipment>, AppError> {
    vessel_of(state, user, vessel_id)?;
    Ok(state.db.list_equipment(Some(vessel_id))?)
}

/// A vessel's work orders, most recently changed first (up to 500), or 404.
pub fn work_orders_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
) -> Result<Vec<WorkOrder>, AppError> {
    vessel_of(state, user, vessel_id)?;
    Ok(state
        .db
        .list_work_orders(&WorkOrderFilter {
            vessel_id: Some(vessel_id.to_owned()),
            ..WorkOrderFilter::default()
        })?
        .0)
}

/// One work order of a vessel, or 404.
pub fn work_order_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
    work_order_id: &str,
) -> Result<WorkOrder, AppError> {
    vessel_of(state, user, vessel_id)?;
    match state.db.work_order(work_order_id)? {
        Some(w) if w.vessel_id == vessel_id => Ok(w),
        _ => Err(AppError::NotFound(format!(
            "no work order `{work_order_id}` on vessel `{vessel_id}`"
        ))),
    }
}

/// A vessel's counters as last synced, or 404.
pub fn counters_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
) -> Result<Vec<Counter>, AppError> {
    vessel_of(state, user, vessel_id)?;
    Ok(state.db.list_counters(Some(vessel_id), None)?)
}

/// A vessel's plans with their schedules, most urgent first, or 404. The
/// state is computed now from the counters as last synced, so a vessel
/// that has not synced for a while may be further along than it shows.
pub fn plans_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
) -> Result<Vec<keelson_records::ScheduledPlan>, AppError> {
    vessel_of(state, user, vessel_id)?;
    Ok(keelson_records::scheduled_plans(
        &state.db,
        Some(vessel_id),
        Utc::now(),
    )?)
}

/// A vessel's spare parts by part number (up to 500), as last synced, or
/// 404.
pub fn parts_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
) -> Result<Vec<Part>, AppError> {
    vessel_of(state, user, vessel_id)?;
    Ok(state
        .db
        .list_parts(&PartFilter {
            vessel_id: Some(vessel_id.to_owned()),
            ..PartFilter::default()
        })?
        .0)
}

/// A vessel's requisitions, most recently changed first (up to 500), or
/// 404.
pub fn requisitions_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
) -> Result<Vec<Requisition>, AppError> {
    vessel_of(state, user, vessel_id)?;
    Ok(state
        .db
        .list_requisitions(&RequisitionFilter {
            vessel_id: Some(vessel_id.to_owned()),
            ..RequisitionFilter::default()
        })?
        .0)
}

/// Answers a request for one of a vessel's lists: the user must have a
/// shore role, and `list` reads the list of a vessel they may see.
async fn vessel_list<T: Send + 'static>(
    state: ShoreState,
    user: CurrentUser,
    id: String,
    list: fn(&ShoreState, &CurrentUser, &str) -> Result<T, AppError>,
) -> Result<Json<T>, AppError> {
    role_of(&user)?;
    Ok(Json(blocking(move || list(&state, &user, &id)).await?))
}

async fn vessel_counters(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<Counter>>, AppError> {
    vessel_list(state, user, id, counters_of).await
}

async fn vessel_plans(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<keelson_records::ScheduledPlan>>, AppError> {
    vessel_list(state, user, id, plans_of).await
}

/// The office user as the author of a record operation: signed as the
/// shore's, with the authority over plans and work orders the operations
/// ask for, after checking the user's shore role and that the vessel is
/// theirs to see. The vessel accepts only the fields the shore may write
/// (`keelson_records::check_edit`), whatever authority is used here.
fn office_planner(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
) -> Result<keelson_records::Actor, AppError> {
    if !role_of(user)?.may_plan_maintenance() {
        return Err(AppError::Forbidden(
            "planning a vessel's maintenance or deciding on its requisitions needs the superintendent role".into(),
        ));
    }
    vessel_of(state, user, vessel_id)?;
    Ok(keelson_records::Actor {
        name: format!("{}{}", user.username, keelson_records::SHORE_AUTHOR_SUFFIX),
        role: keelson_model::Role::ChiefEngineer,
    })
}

/// Adds a plan for a vessel from the office; it reaches the vessel on its
/// next sync, where the planner opens its work orders.
pub fn add_vessel_plan(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
    new: keelson_model::NewPlan,
) -> Result<keelson_model::Plan, AppError> {
    let actor = office_planner(state, user, vessel_id)?;
    Ok(keelson_records::create_plan(
        &state.db, vessel_id, new, &actor,
    )?)
}

/// Opens a work order for a vessel from the office.
pub fn add_vessel_work_order(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
    new: keelson_model::NewWorkOrder,
) -> Result<WorkOrder, AppError> {
    let actor = office_planner(state, user, vessel_id)?;
    Ok(keelson_records::create_work_order(
        &state.db, vessel_id, new, &actor,
    )?)
}

async fn new_vessel_plan(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(new): ApiJson<keelson_model::NewPlan>,
) -> Result<(axum::http::StatusCode, Json<keelson_model::Plan>), AppError> {
    let plan = blocking(move || add_vessel_plan(&state, &user, &id, new)).await?;
    Ok((axum::http::StatusCode::CREATED, Json(plan)))
}

async fn change_vessel_plan(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath((id, plan_id)): ApiPath<(String, String)>,
    ApiJson(patch): ApiJson<keelson_model::PlanPatch>,
) -> Result<Json<keelson_model::Plan>, AppError> {
    let plan = blocking(move || {
        let actor = office_planner(&state, &user, &id)?;
        match state.db.plan(&plan_id)? {
            Some(p) if p.vessel_id == id => {}
            _ => return Err(AppError::NotFound("no such plan".into())),
        }
        Ok(keelson_records::patch_plan(
            &state.db, &plan_id, patch, &actor,
        )?)
    })
    .await?;
    Ok(Json(plan))
}

/// Records the office's decision on a vessel's submitted requisition; it
/// reaches the vessel on its next sync.
pub fn decide_on_requisition(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
    requisition_id: &str,
    decision: keelson_model::NewDecision,
) -> Result<Requisition, AppError> {
    let actor = office_planner(state, user, vessel_id)?;
    match state.db.requisition(requisition_id)? {
        Some(r) if r.vessel_id == vessel_id => {}
        _ => return Err(AppError::NotFound("no such requisition".into())),
    }
    Ok(keelson_records::decide_requisition(
        &state.db,
        requisition_id,
        decision,
        &actor,
    )?)
}

async fn new_decision(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath((id, requisition_id)): ApiPath<(String, String)>,
    ApiJson(decision): ApiJson<keelson_model::NewDecision>,
) -> Result<(axum::http::StatusCode, Json<Requisition>), AppError> {
    let r = blocking(move || decide_on_requisition(&state, &user, &id, &requisition_id, decision))
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(r)))
}

async fn new_vessel_work_order(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(new): ApiJson<keelson_model::NewWorkOrder>,
) -> Result<(axum::http::StatusCode, Json<WorkOrder>), AppError> {
    let wo = blocking(move || add_vessel_work_order(&state, &user, &id, new)).await?;
    Ok((axum::http::StatusCode::CREATED, Json(wo)))
}

async fn vessel_equipment(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<Equipment>>, AppError> {
    vessel_list(state, user, id, equipment_of).await
}

async fn vessel_work_orders(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<WorkOrder>>, AppError> {
    vessel_list(state, user, id, work_orders_of).await
}

async fn vessel_parts(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<Part>>, AppError> {
    vessel_list(state, user, id, parts_of).await
}

async fn vessel_requisitions(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<Requisition>>, AppError> {
    vessel_list(state, user, id, requisitions_of).await
}

async fn vessel_work_order(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath((id, work_order_id)): ApiPath<(String, String)>,
) -> Result<Json<WorkOrder>, AppError> {
    role_of(&user)?;
    Ok(Json(
        blocking(move || work_order_of(&state, &user, &id, &work_order_id)).await?,
    ))
}

/// Adds a shore comment to a vessel's work order, signed off or not; it
/// reaches the vessel on its next sync.
pub fn add_shore_work_order_comment(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
    work_order_id: &str,
    text: &str,
) -> Result<WorkOrder, AppError> {
    if !role_of(user)?.may_comment() {
        return Err(AppError::Forbidden(
            "commenting needs the superintendent role".into(),
        ));
    }
    work_order_of(state, user, vessel_id, work_order_id)?;
    let author = format!("{}@shore", user.username);
    Ok(keelson_records::comment_work_order(
        &state.db,
        work_order_id,
        &author,
        text,
    )?)
}

async fn work_order_comment(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath((id, work_order_id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<NewComment>,
) -> Result<(axum::http::StatusCode, Json<WorkOrder>), AppError> {
    let w = blocking(move || {
        add_shore_work_order_comment(&state, &user, &id, &work_order_id, &body.text)
    })
    .await?;
    Ok((axum::http::StatusCode::CREATED, Json(w)))
}

/// A record's audit trail as the API returns it.
#[derive(Debug, Serialize, Deserialize)]
pub struct History {
    /// The record's id.
    pub id: String,
    /// Its kind: fault, equipment, work_order, counter or plan.
    pub kind: String,
    /// Every change, oldest first.
    pub changes: Vec<HistoryEntry>,
}

/// The audit trail of one of a vessel's records, or 404.
pub fn history_of(
    state: &ShoreState,
    user: &CurrentUser,
    vessel_id: &str,
    record_id: &str,
) -> Result<History, AppError> {
    vessel_of(state, user, vessel_id)?;
    let not_found =
        || AppError::NotFound(format!("no record `{record_id}` on vessel `{vessel_id}`"));
    match state.db.record(record_id)? {
        Some(r) if r.vessel_id == vessel_id => {}
        _ => return Err(not_found()),
    }
    let (kind, changes) = keelson_records::history(&state.db, record_id)?;
    Ok(History {
        id: record_id.to_owned(),
        kind,
        changes,
    })
}

async fn vessel_record_history(
    State(state): State<ShoreState>,
    user: CurrentUser,
    ApiPath((id, record_id)): ApiPath<(String, String)>,
) -> Result<Json<History>, AppError> {
    role_of(&user)?;
    Ok(Json(
        blocking(move || history_of(&state, &user, &id, &record_id)).await?,
    ))
}

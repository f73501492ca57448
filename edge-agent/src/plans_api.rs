//! The ship's REST API for maintenance plans and the due list under
//! `/api/v1`, and the planner: the pass that opens a work order for every
//! plan that falls due. The pass runs every minute and right after each
//! write that can make a plan due (a reading, a correction, a new or
//! edited plan), so a reading that crosses the due point opens the work
//! order before the request returns.

use crate::{EdgeState, write_record};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use keelson_model::{NewPlan, NewPostponement, Plan, PlanPatch, PlanState};
use keelson_records::ScheduledPlan;
use keelson_web::{ApiJson, ApiPath, ApiQuery, AppError, CurrentUser, blocking};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the planner looks for plans that fell due by the calendar.
pub const PLANNER_INTERVAL: Duration = Duration::from_secs(60);

/// The routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/api/v1/plans", get(list_plans).post(new_plan))
        .route("/api/v1/plans/{id}", get(get_plan).patch(update_plan))
        .route("/api/v1/plans/{id}/postpone", post(new_postponement))
        .route("/api/v1/due", get(due_list))
}

/// Opens the work orders of plans that are due; a failure is logged, not
/// returned, because the write that triggered the pass has already
/// succeeded and the next pass tries again.
pub async fn run_planner_pass(state: &EdgeState) {
    let s = state.clone();
    let result = blocking(move || {
        Ok(keelson_records::open_due_work_orders(
            &s.db,
            &s.config.vessel.id,
            Utc::now(),
        )?)
    })
    .await;
    match result {
        Ok(opened) if !opened.is_empty() => state.sync.trigger(),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "planner pass failed"),
    }
}

/// Runs the planner every [`PLANNER_INTERVAL`] until `cancel` fires.
pub async fn run_planner(state: EdgeState, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(PLANNER_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => run_planner_pass(&state).await,
        }
    }
}

/// Creates a plan as `user`; shared by the API and the form.
pub async fn add_plan(
    state: &EdgeState,
    user: &CurrentUser,
    new: NewPlan,
) -> Result<Plan, AppError> {
    let p = write_record(state, user, move |db, vessel, actor| {
        keelson_records::create_plan(db, vessel, new, actor)
    })
    .await?;
    tracing::info!(plan = %p.id, equipment = %p.equipment_id, author = %user.username, "plan created");
    run_planner_pass(state).await;
    Ok(p)
}

/// Edits a plan as `user`; shared by the API and the form.
pub async fn edit_plan(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    patch: PlanPatch,
) -> Result<Plan, AppError> {
    if patch.is_empty() {
        return Err(crate::maintenance_api::nothing_to_change());
    }
    let p = write_record(state, user, move |db, _, actor| {
        keelson_records::patch_plan(db, &id, patch, actor)
    })
    .await?;
    run_planner_pass(state).await;
    Ok(p)
}

/// Postpones a plan as `user`; shared by the API and the form.
pub async fn postpone(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    body: NewPostponement,
) -> Result<Plan, AppError> {
    let p = write_record(state, user, move |db, _, actor| {
        keelson_records::postpone_plan(db, &id, body, actor)
    })
    .await?;
    tracing::info!(plan = %p.id, author = %user.username, "plan postponed");
    Ok(p)
}

/// Query of `GET /api/v1/plans`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// Only plans whose title contains this, in any case.
    pub q: Option<String>,
    /// Only plans in this state.
    pub state: Option<PlanState>,
    /// Only plans of this equipment record.
    pub equipment_id: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

/// One page of plans.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlanPage {
    /// The plans, most urgent first: overdue, due, then ok, by due date.
    pub items: Vec<ScheduledPlan>,
    /// How many match in all.
    pub total: u64,
    /// The page size used.
    pub limit: u32,
    /// How many were skipped.
    pub offset: u32,
}

/// Lists a page of plans with their schedules; shared by the API and the
/// pages.
pub async fn plan_page(state: &EdgeState, q: PlanQuery) -> Result<PlanPage, AppError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let offset = q.offset.unwrap_or(0);
    let db = state.db.clone();
    let all =
        blocking(move || Ok(keelson_records::scheduled_plans(&db, None, Utc::now())?)).await?;
    let search =
        q.q.as_deref()
            .map(|t| t.trim().to_lowercase())
            .filter(|t| !t.is_empty());
    let matching: Vec<ScheduledPlan> = all
        .into_iter()
        .filter(|p| q.state.is_none_or(|s| p.schedule.state == s))
        .filter(|p| {
            search
                .as_deref()
                .is_none_or(|t| p.plan.title.to_lowercase().contains(t))
        })
        .filter(|p| {
            q.equipment_id
                .as_deref()
                .is_none_or(|e| p.plan.equipment_id == e)
        })
        .collect();
    let total = matching.len() as u64;
    let items = matching
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    Ok(PlanPage {
        items,
        total,
        limit,
        offset,
    })
}

/// The due list: every plan due or overdue, overdue first, then by due
/// date; shared by the API and the pages.
pub async fn due_plans(state: &EdgeState) -> Result<Vec<ScheduledPlan>, AppError> {
    let db = state.db.clone();
    let all =
        blocking(move || Ok(keelson_records::scheduled_plans(&db, None, Utc::now())?)).await?;
    Ok(all
        .into_iter()
        .filter(|p| p.schedule.state != PlanState::Ok)
        .collect())
}

async fn list_plans(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<PlanQuery>,
) -> Result<Json<PlanPage>, AppError> {
    Ok(Json(plan_page(&state, q).await?))
}

async fn new_plan(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiJson(new): ApiJson<NewPlan>,
) -> Result<(StatusCode, Json<Plan>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(add_plan(&state, &user, new).await?),
    ))
}

/// Finds one plan with its schedule; shared by the API and the pages.
pub async fn scheduled_plan(state: &EdgeState, id: String) -> Result<ScheduledPlan, AppError> {
    let db = state.db.clone();
    blocking(move || {
        let Some(plan) = db.plan(&id)? else {
            return Ok(None);
        };
        let total = match &plan.counter_id {
            Some(c) => db.counter(c)?.map(|c| c.total),
            None => None,
        };
        let schedule = keelson_model::schedule(&plan, total, Utc::now());
        Ok(Some(ScheduledPlan { plan, schedule }))
    })
    .await?
    .ok_or_else(|| AppError::NotFound("no such plan".into()))
}

async fn get_plan(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ScheduledPlan>, AppError> {
    Ok(Json(scheduled_plan(&state, id).await?))
}

async fn update_plan(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<PlanPatch>,
) -> Result<Json<Plan>, AppError> {
    Ok(Json(edit_plan(&state, &user, id, patch).await?))
}

async fn new_postponement(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewPostponement>,
) -> Result<(StatusCode, Json<Plan>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(postpone(&state, &user, id, body).await?),
    ))
}

async fn due_list(
    State(state): State<EdgeState>,
    _user: CurrentUser,
) -> Result<Json<Vec<ScheduledPlan>>, AppError> {
    Ok(Json(due_plans(&state).await?))
}

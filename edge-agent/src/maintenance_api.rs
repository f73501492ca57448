//! The ship's REST API for equipment, work orders and every record's audit
//! trail, under `/api/v1`. The functions shared with the pages check the
//! user's role before anything else, so a request the role does not allow
//! is refused the same way whatever it names.

use crate::{EdgeState, write_record};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keelson_model::{
    Equipment, EquipmentPatch, HistoryEntry, NewEquipment, NewSignOff, NewWorkEntry, NewWorkOrder,
    WorkOrder, WorkOrderPatch, WorkStatus,
};
use keelson_store::WorkOrderFilter;
use keelson_web::{ApiJson, ApiPath, ApiQuery, AppError, CurrentUser, blocking};
use serde::{Deserialize, Serialize};

/// The routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/api/v1/equipment", get(list_equipment).post(new_equipment))
        .route(
            "/api/v1/equipment/{id}",
            get(get_equipment).patch(update_equipment),
        )
        .route(
            "/api/v1/work-orders",
            get(list_work_orders).post(new_work_order),
        )
        .route(
            "/api/v1/work-orders/{id}",
            get(get_work_order).patch(update_work_order),
        )
        .route("/api/v1/work-orders/{id}/entries", post(new_entry))
        .route("/api/v1/work-orders/{id}/sign-off", post(new_sign_off))
        .route("/api/v1/work-orders/{id}/comments", post(new_comment))
        .route("/api/v1/records/{id}/history", get(get_history))
}

/// Adds equipment as `user`; shared by the API and the form.
pub async fn add_equipment(
    state: &EdgeState,
    user: &CurrentUser,
    new: NewEquipment,
) -> Result<Equipment, AppError> {
    let e = write_record(state, user, move |db, vessel, actor| {
        keelson_records::create_equipment(db, vessel, new, actor)
    })
    .await?;
    tracing::info!(equipment = %e.id, code = %e.code, author = %user.username, "equipment added");
    Ok(e)
}

/// Edits equipment as `user`; shared by the API and the form.
pub async fn edit_equipment(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    patch: EquipmentPatch,
) -> Result<Equipment, AppError> {
    if patch.is_empty() {
        return Err(nothing_to_change());
    }
    write_record(state, user, move |db, _, actor| {
        keelson_records::patch_equipment(db, &id, patch, actor)
    })
    .await
}

/// Opens a work order as `user`; shared by the API and the form.
pub async fn open_work_order(
    state: &EdgeState,
    user: &CurrentUser,
    new: NewWorkOrder,
) -> Result<WorkOrder, AppError> {
    let w = write_record(state, user, move |db, vessel, actor| {
        keelson_records::create_work_order(db, vessel, new, actor)
    })
    .await?;
    tracing::info!(work_order = %w.id, equipment = %w.equipment_id, author = %user.username, "work order opened");
    Ok(w)
}

/// Edits a work order as `user`; shared by the API and the forms.
pub async fn edit_work_order(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    patch: WorkOrderPatch,
) -> Result<WorkOrder, AppError> {
    if patch.is_empty() {
        return Err(nothing_to_change());
    }
    write_record(state, user, move |db, _, actor| {
        keelson_records::patch_work_order(db, &id, patch, actor)
    })
    .await
}

/// Records work on a work order as `user`; shared by the API and the form.
pub async fn record_work(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    entry: NewWorkEntry,
) -> Result<WorkOrder, AppError> {
    write_record(state, user, move |db, _, actor| {
        keelson_records::add_work_entry(db, &id, entry, actor)
    })
    .await
}

/// Signs a work order off as `user`; shared by the API and the form.
pub async fn sign_off(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    body: NewSignOff,
) -> Result<WorkOrder, AppError> {
    let w = write_record(state, user, move |db, _, actor| {
        keelson_records::sign_off_work_order(db, &id, body, actor)
    })
    .await?;
    tracing::info!(work_order = %w.id, author = %user.username, "work order signed off");
    Ok(w)
}

/// Comments on a work order as `user`; shared by the API and the form.
pub async fn comment_work_order(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    text: String,
) -> Result<WorkOrder, AppError> {
    write_record(state, user, move |db, _, actor| {
        keelson_records::comment_work_order(db, &id, &actor.name, &text)
    })
    .await
}

/// The answer to an edit that names no field.
pub fn nothing_to_change() -> AppError {
    AppError::BadRequest("nothing to change: give at least one field".into())
}

/// A record's audit trail; shared by the API and the pages.
pub async fn record_history(
    state: &EdgeState,
    id: String,
) -> Result<(String, Vec<HistoryEntry>), AppError> {
    let s = state.clone();
    blocking(move || Ok(keelson_records::history(&s.db, &id)?)).await
}

async fn list_equipment(
    State(state): State<EdgeState>,
    _user: CurrentUser,
) -> Result<Json<Vec<Equipment>>, AppError> {
    Ok(Json(
        blocking(move || Ok(state.db.list_equipment(None)?)).await?,
    ))
}

async fn new_equipment(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiJson(new): ApiJson<NewEquipment>,
) -> Result<(StatusCode, Json<Equipment>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(add_equipment(&state, &user, new).await?),
    ))
}

async fn get_equipment(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Equipment>, AppError> {
    blocking(move || Ok(state.db.equipment(&id)?))
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound("no such equipment".into()))
}

async fn update_equipment(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<EquipmentPatch>,
) -> Result<Json<Equipment>, AppError> {
    Ok(Json(edit_equipment(&state, &user, id, patch).await?))
}

/// Query of `GET /api/v1/work-orders`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkOrderQuery {
    /// Only work orders whose title, assignee or id contains this.
    pub q: Option<String>,
    /// Only work orders in this status.
    pub status: Option<WorkStatus>,
    /// Only work orders on this equipment record.
    pub equipment_id: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

/// One page of work orders.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkOrderPage {
    /// The work orders, most recently changed first.
    pub items: Vec<WorkOrder>,
    /// How many match in all.
    pub total: u64,
    /// The page size used.
    pub limit: u32,
    /// How many were skipped.
    pub offset: u32,
}

/// Lists a page of work orders; shared by the API and the pages.
pub async fn work_order_page(
    state: &EdgeState,
    q: WorkOrderQuery,
) -> Result<WorkOrderPage, AppError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let offset = q.offset.unwrap_or(0);
    let filter = WorkOrderFilter {
        vessel_id: None,
        search: q.q,
        status: q.status.map(|s| s.as_str().to_owned()),
        equipment_id: q.equipment_id,
        limit,
        offset,
    };
    let db = state.db.clone();
    let (items, total) = blocking(move || Ok(db.list_work_orders(&filter)?)).await?;
    Ok(WorkOrderPage {
        items,
        total,
        limit,
        offset,
    })
}

async fn list_work_orders(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<WorkOrderQuery>,
) -> Result<Json<WorkOrderPage>, AppError> {
    Ok(Json(work_order_page(&state, q).await?))
}

async fn new_work_order(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiJson(new): ApiJson<NewWorkOrder>,
) -> Result<(StatusCode, Json<WorkOrder>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(open_work_order(&state, &user, new).await?),
    ))
}

async fn get_work_order(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<WorkOrder>, AppError> {
    blocking(move || Ok(state.db.work_order(&id)?))
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound("no such work order".into()))
}

async fn update_work_order(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<WorkOrderPatch>,
) -> Result<Json<WorkOrder>, AppError> {
    Ok(Json(edit_work_order(&state, &user, id, patch).await?))
}

async fn new_entry(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(entry): ApiJson<NewWorkEntry>,
) -> Result<(StatusCode, Json<WorkOrder>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(record_work(&state, &user, id, entry).await?),
    ))
}

async fn new_sign_off(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewSignOff>,
) -> Result<(StatusCode, Json<WorkOrder>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(sign_off(&state, &user, id, body).await?),
    ))
}

async fn new_comment(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<crate::api::NewComment>,
) -> Result<(StatusCode, Json<WorkOrder>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(comment_work_order(&state, &user, id, body.text).await?),
    ))
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

async fn get_history(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<History>, AppError> {
    let (kind, changes) = record_history(&state, id.clone()).await?;
    Ok(Json(History { id, kind, changes }))
}

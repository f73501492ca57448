//! The ship's REST API for spare parts and requisitions under `/api/v1`.
//! Like the other record kinds, the functions shared with the pages check
//! the user's role before anything else and tell the sync client about
//! every write.

use crate::{EdgeState, write_record};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keelson_model::{
    NewMovement, NewPart, NewRequisition, Part, PartPatch, Requisition, RequisitionPatch,
    RequisitionStatus,
};
use keelson_store::{PartFilter, RequisitionFilter};
use keelson_web::{ApiJson, ApiPath, ApiQuery, AppError, CurrentUser, blocking};
use serde::{Deserialize, Serialize};

/// The routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/api/v1/parts", get(list_parts).post(new_part))
        .route("/api/v1/parts/{id}", get(get_part).patch(update_part))
        .route("/api/v1/parts/{id}/movements", post(new_movement))
        .route(
            "/api/v1/requisitions",
            get(list_requisitions).post(new_requisition),
        )
        .route(
            "/api/v1/requisitions/draft-from-minimum",
            post(new_draft_from_minimum),
        )
        .route(
            "/api/v1/requisitions/{id}",
            get(get_requisition).patch(update_requisition),
        )
        .route("/api/v1/requisitions/{id}/submit", post(new_submission))
}

/// Creates a part as `user`; shared by the API and the form.
pub async fn add_part(
    state: &EdgeState,
    user: &CurrentUser,
    new: NewPart,
) -> Result<Part, AppError> {
    let p = write_record(state, user, move |db, vessel, actor| {
        keelson_records::create_part(db, vessel, new, actor)
    })
    .await?;
    tracing::info!(part = %p.id, number = %p.number, author = %user.username, "spare part created");
    Ok(p)
}

/// Edits a part as `user`; shared by the API and the form.
pub async fn edit_part(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    patch: PartPatch,
) -> Result<Part, AppError> {
    if patch.is_empty() {
        return Err(crate::maintenance_api::nothing_to_change());
    }
    write_record(state, user, move |db, _, actor| {
        keelson_records::patch_part(db, &id, patch, actor)
    })
    .await
}

/// Records a stock movement as `user`; shared by the API and the forms.
pub async fn move_stock(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    movement: NewMovement,
) -> Result<Part, AppError> {
    let kind = movement.kind;
    let p = write_record(state, user, move |db, _, actor| {
        keelson_records::record_movement(db, &id, movement, actor)
    })
    .await?;
    tracing::info!(part = %p.id, %kind, total = p.total, author = %user.username, "stock moved");
    Ok(p)
}

/// Drafts a requisition as `user`; shared by the API and the form.
pub async fn add_requisition(
    state: &EdgeState,
    user: &CurrentUser,
    new: NewRequisition,
) -> Result<Requisition, AppError> {
    write_record(state, user, move |db, vessel, actor| {
        keelson_records::create_requisition(db, vessel, new, actor)
    })
    .await
}

/// Drafts a requisition of every part below its minimum stock as `user`;
/// shared by the API and the form.
pub async fn draft_from_minimum(
    state: &EdgeState,
    user: &CurrentUser,
) -> Result<Requisition, AppError> {
    let r = write_record(state, user, move |db, vessel, actor| {
        keelson_records::draft_from_minimum(db, vessel, actor)
    })
    .await?;
    tracing::info!(requisition = %r.id, lines = r.lines.len(), author = %user.username, "requisition drafted from minimum stock");
    Ok(r)
}

/// Edits a draft requisition as `user`; shared by the API and the form.
pub async fn edit_requisition(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    patch: RequisitionPatch,
) -> Result<Requisition, AppError> {
    if patch.is_empty() {
        return Err(crate::maintenance_api::nothing_to_change());
    }
    write_record(state, user, move |db, _, actor| {
        keelson_records::patch_requisition(db, &id, patch, actor)
    })
    .await
}

/// Submits a requisition as `user`; shared by the API and the form.
pub async fn submit(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
) -> Result<Requisition, AppError> {
    let r = write_record(state, user, move |db, _, actor| {
        keelson_records::submit_requisition(db, &id, actor)
    })
    .await?;
    tracing::info!(requisition = %r.id, author = %user.username, "requisition submitted");
    Ok(r)
}

/// Query of `GET /api/v1/parts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartQuery {
    /// Only parts whose number, name, maker or maker's reference contains
    /// this (any case).
    pub q: Option<String>,
    /// Only parts below their minimum stock.
    #[serde(default)]
    pub below_minimum: bool,
    /// Only parts that fit this equipment record.
    pub equipment_id: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

/// One page of a list.
#[derive(Debug, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many match in all.
    pub total: u64,
    /// The page size used.
    pub limit: u32,
    /// How many were skipped.
    pub offset: u32,
}

/// The page size and offset a query asks for, within bounds.
fn paging(limit: Option<u32>, offset: Option<u32>) -> (u32, u32) {
    (limit.unwrap_or(50).clamp(1, 500), offset.unwrap_or(0))
}

/// Lists a page of parts by part number; shared by the API and the pages.
pub async fn part_page(state: &EdgeState, q: PartQuery) -> Result<Page<Part>, AppError> {
    let (limit, offset) = paging(q.limit, q.offset);
    let filter = PartFilter {
        vessel_id: None,
        search: q.q.filter(|s| !s.trim().is_empty()),
        below_minimum: q.below_minimum,
        equipment_id: q.equipment_id,
        limit,
        offset,
    };
    let db = state.db.clone();
    let (items, total) = blocking(move || Ok(db.list_parts(&filter)?)).await?;
    Ok(Page {
        items,
        total,
        limit,
        offset,
    })
}

/// Query of `GET /api/v1/requisitions`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequisitionQuery {
    /// Only requisitions in this status.
    pub status: Option<RequisitionStatus>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

/// Lists a page of requisitions, most recently changed first; shared by
/// the API and the pages.
pub async fn requisition_page(
    state: &EdgeState,
    q: RequisitionQuery,
) -> Result<Page<Requisition>, AppError> {
    let (limit, offset) = paging(q.limit, q.offset);
    let filter = RequisitionFilter {
        vessel_id: None,
        status: q.status.map(|s| s.as_str().to_owned()),
        limit,
        offset,
    };
    let db = state.db.clone();
    let (items, total) = blocking(move || Ok(db.list_requisitions(&filter)?)).await?;
    Ok(Page {
        items,
        total,
        limit,
        offset,
    })
}

/// One part; shared by the API and the pages.
pub async fn part(state: &EdgeState, id: String) -> Result<Part, AppError> {
    let db = state.db.clone();
    blocking(move || Ok(db.part(&id)?))
        .await?
        .ok_or_else(|| AppError::NotFound("no such spare part".into()))
}

/// One requisition; shared by the API and the pages.
pub async fn requisition(state: &EdgeState, id: String) -> Result<Requisition, AppError> {
    let db = state.db.clone();
    blocking(move || Ok(db.requisition(&id)?))
        .await?
        .ok_or_else(|| AppError::NotFound("no such requisition".into()))
}

async fn list_parts(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<PartQuery>,
) -> Result<Json<Page<Part>>, AppError> {
    Ok(Json(part_page(&state, q).await?))
}

async fn new_part(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiJson(new): ApiJson<NewPart>,
) -> Result<(StatusCode, Json<Part>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(add_part(&state, &user, new).await?),
    ))
}

async fn get_part(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Part>, AppError> {
    Ok(Json(part(&state, id).await?))
}

async fn update_part(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<PartPatch>,
) -> Result<Json<Part>, AppError> {
    Ok(Json(edit_part(&state, &user, id, patch).await?))
}

async fn new_movement(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewMovement>,
) -> Result<(StatusCode, Json<Part>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(move_stock(&state, &user, id, body).await?),
    ))
}

async fn list_requisitions(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<RequisitionQuery>,
) -> Result<Json<Page<Requisition>>, AppError> {
    Ok(Json(requisition_page(&state, q).await?))
}

async fn new_requisition(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiJson(new): ApiJson<NewRequisition>,
) -> Result<(StatusCode, Json<Requisition>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(add_requisition(&state, &user, new).await?),
    ))
}

async fn new_draft_from_minimum(
    State(state): State<EdgeState>,
    user: CurrentUser,
) -> Result<(StatusCode, Json<Requisition>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(draft_from_minimum(&state, &user).await?),
    ))
}

async fn get_requisition(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Requisition>, AppError> {
    Ok(Json(requisition(&state, id).await?))
}

async fn update_requisition(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<RequisitionPatch>,
) -> Result<Json<Requisition>, AppError> {
    Ok(Json(edit_requisition(&state, &user, id, patch).await?))
}

async fn new_submission(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<Requisition>), AppError> {
    Ok((StatusCode::CREATED, Json(submit(&state, &user, id).await?)))
}

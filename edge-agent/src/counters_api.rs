//! The ship's REST API for counters (running hours) under `/api/v1`. The
//! functions shared with the pages check the user's role before anything
//! else, like the other record kinds.

use crate::{EdgeState, write_record};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use keelson_model::{Counter, NewCorrection, NewCounter, NewReading};
use keelson_web::{ApiJson, ApiPath, ApiQuery, AppError, CurrentUser, blocking};
use serde::Deserialize;

/// The routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/api/v1/counters", get(list_counters).post(new_counter))
        .route("/api/v1/counters/{id}", get(get_counter))
        .route("/api/v1/counters/{id}/readings", post(new_reading))
        .route("/api/v1/counters/{id}/corrections", post(new_correction))
}

/// Creates a counter as `user`; shared by the API and the form.
pub async fn add_counter(
    state: &EdgeState,
    user: &CurrentUser,
    new: NewCounter,
) -> Result<Counter, AppError> {
    let c = write_record(state, user, move |db, vessel, actor| {
        keelson_records::create_counter(db, vessel, new, actor)
    })
    .await?;
    tracing::info!(counter = %c.id, equipment = %c.equipment_id, author = %user.username, "counter created");
    Ok(c)
}

/// Records a reading as `user`; shared by the API and the form.
pub async fn add_reading(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    value: f64,
) -> Result<Counter, AppError> {
    let c = write_record(state, user, move |db, _, actor| {
        keelson_records::record_reading(db, &id, value, actor)
    })
    .await?;
    crate::plans_api::run_planner_pass(state).await;
    Ok(c)
}

/// Corrects a counter's total as `user`; shared by the API and the form.
pub async fn add_correction(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    correction: NewCorrection,
) -> Result<Counter, AppError> {
    let c = write_record(state, user, move |db, _, actor| {
        keelson_records::correct_counter(db, &id, correction, actor)
    })
    .await?;
    tracing::info!(counter = %c.id, total = c.total, author = %user.username, "counter corrected");
    crate::plans_api::run_planner_pass(state).await;
    Ok(c)
}

/// Query of `GET /api/v1/counters`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CounterQuery {
    /// Only the counters of this equipment record.
    pub equipment_id: Option<String>,
}

async fn list_counters(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<CounterQuery>,
) -> Result<Json<Vec<Counter>>, AppError> {
    Ok(Json(
        blocking(move || Ok(state.db.list_counters(None, q.equipment_id.as_deref())?)).await?,
    ))
}

async fn new_counter(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiJson(new): ApiJson<NewCounter>,
) -> Result<(StatusCode, Json<Counter>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(add_counter(&state, &user, new).await?),
    ))
}

async fn get_counter(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Counter>, AppError> {
    blocking(move || Ok(state.db.counter(&id)?))
        .await?
        .map(Json)
        .ok_or_else(|| AppError::NotFound("no such counter".into()))
}

async fn new_reading(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewReading>,
) -> Result<(StatusCode, Json<Counter>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(add_reading(&state, &user, id, body.value).await?),
    ))
}

async fn new_correction(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewCorrection>,
) -> Result<(StatusCode, Json<Counter>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(add_correction(&state, &user, id, body).await?),
    ))
}

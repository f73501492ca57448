//! The ship's REST API under `/api/v1`.

use crate::{EdgeState, role_of, sync_client, write_record};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use keelson_model::{Fault, FaultPatch, NewFault, Quality, Severity, Status, TagValue};
use keelson_records::{comment_fault, patch_fault};
use keelson_store::{FaultFilter, Resolution, Series};
use keelson_web::{ApiJson, ApiPath, ApiQuery, AppError, CurrentUser, blocking};
use serde::{Deserialize, Serialize};

/// The API routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .merge(keelson_web::session::router::<EdgeState>())
        .route("/api/v1/faults", get(list_faults).post(new_fault))
        .route("/api/v1/faults/{id}", get(get_fault).patch(update_fault))
        .route("/api/v1/faults/{id}/comments", post(add_comment))
        .route("/api/v1/tags", get(tags))
        .route("/api/v1/tags/{name}/samples", get(samples))
        .route("/api/v1/tags/{name}/texts", get(texts))
        .route("/api/v1/sync/status", get(sync_status))
        .route("/api/v1/sync/now", post(sync_now))
}

/// Query of `GET /api/v1/faults`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultQuery {
    /// Only faults in this status.
    pub status: Option<Status>,
    /// Only faults of this severity.
    pub severity: Option<Severity>,
    /// Only faults whose title, equipment, reporter or id contains this.
    pub q: Option<String>,
    /// At most this many (default 500, at most 1000).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: Option<u32>,
}

async fn list_faults(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiQuery(q): ApiQuery<FaultQuery>,
) -> Result<Json<Vec<Fault>>, AppError> {
    let filter = FaultFilter {
        vessel_id: None,
        status: q.status.map(|s| s.as_str().to_owned()),
        severity: q.severity.map(|s| s.as_str().to_owned()),
        search: q.q,
        limit: q.limit.unwrap_or(500).clamp(1, 1000),
        offset: q.offset.unwrap_or(0),
    };
    Ok(Json(
        blocking(move || Ok(state.db.list_faults(&filter)?)).await?,
    ))
}

/// Logs a fault as `user`; shared by the API and the form.
pub async fn log_fault(
    state: &EdgeState,
    user: &CurrentUser,
    new: NewFault,
) -> Result<Fault, AppError> {
    log_fault_with(state, user, new, None).await
}

/// Logs a new fault, with its first photo or file when one is given (its
/// bytes already stored), in one write.
pub async fn log_fault_with(
    state: &EdgeState,
    user: &CurrentUser,
    new: NewFault,
    photo: Option<keelson_model::NewAttachment>,
) -> Result<Fault, AppError> {
    let fault = write_record(state, user, move |db, vessel, actor| {
        keelson_records::attachment::create_fault_with(db, vessel, new, &actor.name, photo)
    })
    .await?;
    tracing::info!(
        fault = %fault.id,
        reporter = %fault.reporter,
        severity = %fault.severity,
        attachments = fault.attachments.len(),
        "fault logged"
    );
    Ok(fault)
}

async fn new_fault(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiJson(new): ApiJson<NewFault>,
) -> Result<(StatusCode, Json<Fault>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(log_fault(&state, &user, new).await?),
    ))
}

async fn get_fault(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Fault>, AppError> {
    let f = blocking(move || Ok(state.db.fault(&id)?)).await?;
    f.map(Json)
        .ok_or_else(|| AppError::NotFound("no such fault".into()))
}

/// Changes a fault as `user`; shared by the API and the forms.
pub async fn change_fault(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    patch: FaultPatch,
) -> Result<Fault, AppError> {
    if patch.is_empty() {
        return Err(crate::maintenance_api::nothing_to_change());
    }
    write_record(state, user, move |db, _, actor| {
        patch_fault(db, &id, patch, actor)
    })
    .await
}

async fn update_fault(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(patch): ApiJson<FaultPatch>,
) -> Result<Json<Fault>, AppError> {
    Ok(Json(change_fault(&state, &user, id, patch).await?))
}

/// `POST /api/v1/faults/{id}/comments` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewComment {
    /// The comment.
    pub text: String,
}

/// Comments on a fault as `user`; shared by the API and the form.
pub async fn comment(
    state: &EdgeState,
    user: &CurrentUser,
    id: String,
    text: String,
) -> Result<Fault, AppError> {
    write_record(state, user, move |db, _, actor| {
        comment_fault(db, &id, &actor.name, &text)
    })
    .await
}

async fn add_comment(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<NewComment>,
) -> Result<(StatusCode, Json<Fault>), AppError> {
    Ok((
        StatusCode::CREATED,
        Json(comment(&state, &user, id, body.text).await?),
    ))
}

async fn tags(State(state): State<EdgeState>, _user: CurrentUser) -> Json<Vec<TagValue>> {
    Json(state.latest.snapshot())
}

/// Query of `GET /api/v1/tags/{name}/samples`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplesQuery {
    /// Start of the range, RFC 3339 (default: an hour before `to`).
    pub from: Option<DateTime<Utc>>,
    /// End of the range, RFC 3339 (default: now).
    pub to: Option<DateTime<Utc>>,
    /// At most this many points (default and maximum 100,000).
    pub limit: Option<u32>,
    /// `raw`, `minute`, `hour`, or `auto` (the default): raw up to 6 hours,
    /// 1-minute rollups up to a week, hourly rollups beyond.
    pub resolution: Option<String>,
}

/// One point as the API returns it: a sample, or a rollup of the interval
/// starting at `ts`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SampleOut {
    /// When it was taken (a rollup: the start of its interval), RFC 3339.
    pub ts: DateTime<Utc>,
    /// The value (a rollup: the mean), absent when there was none.
    pub value: Option<f64>,
    /// Its quality (a rollup: good when every sample was).
    pub quality: Quality,
    /// For a rollup, `minute` or `hour`; absent for a sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// For a rollup, the smallest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// For a rollup, the largest value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// For a rollup, the last value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<f64>,
    /// For a rollup, how many samples it covers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// For a rollup, how many of them were good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub good: Option<u32>,
}

/// Reads a tag's series for the API and the UI, mapping an unknown tag to 404.
pub async fn load_series(
    state: &EdgeState,
    name: String,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    resolution: Option<Resolution>,
    limit: usize,
) -> Result<Series, AppError> {
    if from > to {
        return Err(AppError::BadRequest("`from` must not be after `to`".into()));
    }
    let db = state.db.clone();
    blocking(move || {
        db.series(
            &name,
            from.timestamp_millis(),
            to.timestamp_millis(),
            resolution,
            limit,
        )
        .map_err(|e| match e {
            keelson_store::StoreError::NotFound => AppError::NotFound(format!("no tag `{name}`")),
            other => other.into(),
        })
    })
    .await
}

/// Parses a `resolution` parameter; `auto` and absence mean "from the span".
pub fn parse_resolution(r: Option<&str>) -> Result<Option<Resolution>, AppError> {
    match r {
        None | Some("auto") => Ok(None),
        Some(name) => Resolution::parse(name).map(Some).ok_or_else(|| {
            AppError::BadRequest(format!(
                "`resolution` must be auto, raw, minute or hour, not `{name}`"
            ))
        }),
    }
}

async fn samples(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<SamplesQuery>,
) -> Result<Json<Vec<SampleOut>>, AppError> {
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - Duration::hours(1));
    let resolution = parse_resolution(q.resolution.as_deref())?;
    let limit = q.limit.unwrap_or(100_000).clamp(1, 100_000) as usize;
    let series = load_series(&state, name, from, to, resolution, limit).await?;
    let rollup = series.resolution != Resolution::Raw;
    let when = |v: u32| rollup.then_some(v);
    Ok(Json(
        series
            .points
            .into_iter()
            .map(|p| SampleOut {
                ts: DateTime::from_timestamp_millis(p.ts_ms).unwrap_or_default(),
                value: p.value,
                quality: p.quality,
                resolution: rollup.then(|| series.resolution.as_str().to_owned()),
                min: p.min.filter(|_| rollup),
                max: p.max.filter(|_| rollup),
                last: p.last.filter(|_| rollup),
                count: when(p.count),
                good: when(p.good),
            })
            .collect(),
    ))
}

/// One change of a text tag's text.
#[derive(Debug, Serialize, Deserialize)]
pub struct TextOut {
    /// When the tag first read this text, RFC 3339.
    pub ts: DateTime<Utc>,
    /// The text.
    pub text: String,
}

/// What a text tag read over a range: each change, starting with the text
/// it read when the range began (`from`, `to` and `limit` as for samples).
async fn texts(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<SamplesQuery>,
) -> Result<Json<Vec<TextOut>>, AppError> {
    if q.resolution.is_some() {
        return Err(AppError::BadRequest(
            "texts have no resolution; leave `resolution` out".into(),
        ));
    }
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - Duration::hours(24));
    if from > to {
        return Err(AppError::BadRequest("`from` must not be after `to`".into()));
    }
    let limit = q.limit.unwrap_or(10_000).clamp(1, 100_000);
    let db = state.db.clone();
    let rows = blocking(move || match db.tag_texts(&name, from, to, limit) {
        Err(keelson_store::StoreError::NotFound) => {
            Err(AppError::NotFound(format!("no tag `{name}`")))
        }
        other => Ok(other?),
    })
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|(ts, text)| TextOut { ts, text })
            .collect(),
    ))
}

async fn sync_status(
    State(state): State<EdgeState>,
    _user: CurrentUser,
) -> Result<Json<sync_client::SyncStatus>, AppError> {
    Ok(Json(
        blocking(move || Ok(sync_client::status(&state)?)).await?,
    ))
}

/// Starts a sync session now; needs the engineer role, since the link
/// may be expensive.
pub fn request_sync(state: &EdgeState, user: &CurrentUser) -> Result<(), AppError> {
    if !role_of(user)?.may_work_faults() {
        return Err(AppError::Forbidden(
            "starting a sync needs the engineer role".into(),
        ));
    }
    if !state.config.sync.enabled {
        return Err(AppError::Conflict(
            "sync is not enabled in the configuration".into(),
        ));
    }
    state.sync.trigger();
    Ok(())
}

async fn sync_now(
    State(state): State<EdgeState>,
    user: CurrentUser,
) -> Result<(StatusCode, Json<serde_json::Value>), AppError> {
    request_sync(&state, &user)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "started": true })),
    ))
}

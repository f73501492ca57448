//! Photos and files attached to faults and work orders on board: the API
//! (`POST /api/v1/faults/{id}/attachments`,
//! `POST /api/v1/work-orders/{id}/attachments`, multipart with a `file`
//! field and an optional `caption`), the same through plain HTML forms on
//! the pages, logging a new fault with a photo in one form, and serving the
//! files (`GET /api/v1/attachments/{sha256}`) to logged-in users.
//!
//! An upload is checked in this order: the user (401), the role (403), the
//! record (404) and its state (409: a signed-off work order) before any of
//! the body is read; then the size, both by
//! a body limit on these routes only and exactly while the file is read
//! (413); then the content, whose leading bytes must be an allowed type and
//! the type it was sent as (415). Only then is the file stored (temporary
//! file, flush, rename: see `keelson_store::files`) and its metadata
//! appended to the record in one transaction. A refused upload stores
//! nothing. The file is held in memory while it is checked; the size limit
//! bounds that.

use crate::{EdgeState, actor_of, ui};
use axum::Router;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keelson_model::{Attachment, NewAttachment, NewFault, Severity, check_content};
use keelson_model::{ContentError, Fault};
use keelson_records::{FAULT, WORK_ORDER};
use keelson_web::extract::ApiPath;
use keelson_web::layout::{human_bytes, page};
use keelson_web::session::page_error;
use keelson_web::{AppError, CurrentUser, PageUser, blocking};

/// The folder of attachment files in the data directory.
pub const ATTACHMENTS_DIR: &str = "attachments";

/// Room in an upload's body for the form's other fields and the multipart
/// framing, beyond the file itself.
const FORM_OVERHEAD: u64 = 64 * 1024;

/// The routes that take uploads, each behind a body limit of the
/// configured file size (plus the form around it) instead of the
/// agent's general 1 MiB. The page routes answer an oversized upload with
/// a page, the API routes with the JSON error.
pub fn upload_router(state: &EdgeState) -> Router<EdgeState> {
    let limit =
        usize::try_from(state.config.attachments.max_bytes + FORM_OVERHEAD).unwrap_or(usize::MAX);
    // The API routes are spelled out, not built in a loop, so the OpenAPI
    // test's reading of the source finds them.
    let api = Router::new()
        .route(
            "/api/v1/faults/{id}/attachments",
            post(
                |s: State<EdgeState>, u: CurrentUser, p: ApiPath<String>, f: Multipart| {
                    api_attach(FAULT, s, u, p, f)
                },
            ),
        )
        .route(
            "/api/v1/work-orders/{id}/attachments",
            post(
                |s: State<EdgeState>, u: CurrentUser, p: ApiPath<String>, f: Multipart| {
                    api_attach(WORK_ORDER, s, u, p, f)
                },
            ),
        );
    let mut pages = Router::new().route("/faults", post(page_new_fault));
    for (kind, plural) in [(FAULT, "faults"), (WORK_ORDER, "work-orders")] {
        pages = pages.route(
            &format!("/{plural}/{{id}}/attachments"),
            post(
                move |s: State<EdgeState>, u: PageUser, p: Path<String>, f: Multipart| {
                    page_attach(kind, plural, s, u, p, f)
                },
            ),
        );
    }
    let api = api
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limit));
    let pages = pages
        .layer(DefaultBodyLimit::disable())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(limit))
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            too_large_page,
        ));
    api.merge(pages)
}

/// The routes that serve files.
pub fn router() -> Router<EdgeState> {
    Router::new().route("/api/v1/attachments/{sha256}", get(serve))
}

/// The body limit's plain answer to an oversized form, as a page that
/// says what the limit is.
async fn too_large_page(State(state): State<EdgeState>, response: Response) -> Response {
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_none_or(|t| t.as_bytes().starts_with(b"text/plain"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && plain {
        page_error(&state.site, None, too_large(&state))
    } else {
        response
    }
}

fn too_large(state: &EdgeState) -> AppError {
    let max = state.config.attachments.max_bytes;
    AppError::FileTooLarge(format!(
        "the file is larger than the {} ({max} bytes) an attachment may be",
        human_bytes(max)
    ))
}

/// A multipart form as read: its file, if one was chosen, and its other
/// fields.
#[derive(Default)]
struct Upload {
    file: Option<UploadedFile>,
    fields: Vec<(String, String)>,
}

struct UploadedFile {
    name: String,
    declared: Option<String>,
    bytes: Vec<u8>,
}

impl Upload {
    fn field(&self, name: &str) -> String {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}

fn multipart_error(state: &EdgeState, e: MultipartError) -> AppError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(state)
    } else {
        AppError::BadRequest(format!("malformed form: {}", e.body_text()))
    }
}

/// Reads a multipart form, keeping the `file` field's bytes up to the
/// configured limit and refusing the upload as soon as it goes past it.
async fn read_upload(state: &EdgeState, mut form: Multipart) -> Result<Upload, AppError> {
    let max = state.config.attachments.max_bytes;
    let mut upload = Upload::default();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| multipart_error(state, e))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            let file_name = field.file_name().unwrap_or_default().to_owned();
            let declared = field.content_type().map(str::to_owned);
            let bytes = read_field(state, field, max).await?;
            // A form sent without choosing a file has an empty file part.
            if !(file_name.is_empty() && bytes.is_empty()) {
                upload.file = Some(UploadedFile {
                    name: file_name,
                    declared,
                    bytes,
                });
            }
        } else {
            let bytes = read_field(state, field, FORM_OVERHEAD).await?;
            let text = String::from_utf8(bytes)
                .map_err(|_| AppError::BadRequest(format!("field `{name}` is not UTF-8 text")))?;
            upload.fields.push((name, text));
        }
    }
    Ok(upload)
}

async fn read_field(
    state: &EdgeState,
    mut field: Field<'_>,
    max: u64,
) -> Result<Vec<u8>, AppError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(state, e))? {
        if (bytes.len() + chunk.len()) as u64 > max {
            return Err(too_large(state));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Checks a file's content and stores it; returns the attachment to
/// record.
async fn store_file(
    state: &EdgeState,
    file: UploadedFile,
    caption: String,
) -> Result<NewAttachment, AppError> {
    let content_type =
        check_content(file.declared.as_deref(), &file.bytes).map_err(|e| match e {
            ContentError::Empty => AppError::BadRequest("the file is empty".into()),
            other => AppError::UnsupportedMediaType(other.to_string()),
        })?;
    let new = NewAttachment {
        file_name: file.name,
        content_type,
        size: file.bytes.len() as u64,
        sha256: String::new(),
        caption,
    };
    // The caption is checked before the file is written, so a refused form
    // stores nothing.
    keelson_model::attachment::validate_caption(&new.caption)?;
    let files = state.files.clone();
    let stored = blocking(move || Ok(files.put(&file.bytes)?)).await?;
    Ok(NewAttachment {
        sha256: stored.sha256,
        ..new
    })
}

/// Attaches the form's file to the record `id` of `kind`.
async fn attach(
    state: &EdgeState,
    user: &CurrentUser,
    kind: &'static str,
    id: String,
    form: Multipart,
) -> Result<Attachment, AppError> {
    let actor = actor_of(user)?;
    let (db, rid, a) = (state.db.clone(), id.clone(), actor.clone());
    blocking(move || Ok(keelson_records::check_attach(&db, &rid, kind, &a)?)).await?;
    let mut upload = read_upload(state, form).await?;
    let caption = upload.field("caption");
    let file = upload
        .file
        .take()
        .ok_or_else(|| AppError::BadRequest("no file: send it in the form field `file`".into()))?;
    let new = store_file(state, file, caption).await?;
    let db = state.db.clone();
    let (_, attachment) =
        blocking(move || Ok(keelson_records::attach(&db, &id, kind, new, &actor)?)).await?;
    tracing::info!(
        sha256 = %attachment.sha256,
        size = attachment.size,
        content_type = %attachment.content_type,
        author = %attachment.author,
        "file attached"
    );
    state.sync.trigger();
    Ok(attachment)
}

/// `POST /api/v1/{faults,work-orders}/{id}/attachments`.
async fn api_attach(
    kind: &'static str,
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(id): ApiPath<String>,
    form: Multipart,
) -> Result<(StatusCode, axum::Json<Attachment>), AppError> {
    let a = attach(&state, &user, kind, id, form).await?;
    Ok((StatusCode::CREATED, axum::Json(a)))
}

/// The upload form of a fault's or a work order's page; back to the page
/// when done.
async fn page_attach(
    kind: &'static str,
    plural: &'static str,
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    form: Multipart,
) -> Response {
    let page = format!("/{plural}/{id}");
    match attach(&state, &user, kind, id, form).await {
        Ok(_) => Redirect::to(&page).into_response(),
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}

/// The new-fault form, with its optional photo: the fault and its first
/// attachment are one change, so a fault logged with a photo is never seen
/// without it.
async fn page_new_fault(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    form: Multipart,
) -> Response {
    let mut entered = None;
    match new_fault(&state, &user, form, &mut entered).await {
        Ok(f) => Redirect::to(&format!("/faults/{}", f.id)).into_response(),
        Err(
            e @ (AppError::BadRequest(_)
            | AppError::FileTooLarge(_)
            | AppError::UnsupportedMediaType(_)),
        ) => {
            let status = e.status();
            let body = ui::fault_form(Some(&e.public_detail()), entered.as_ref());
            let mut resp = Html(page(&state.site, "Log a fault", Some(&user), body).into_string())
                .into_response();
            *resp.status_mut() = status;
            resp
        }
        Err(e) => page_error(&state.site, Some(&user), e),
    }
}

async fn new_fault(
    state: &EdgeState,
    user: &CurrentUser,
    form: Multipart,
    entered: &mut Option<NewFault>,
) -> Result<Fault, AppError> {
    actor_of(user)?;
    let mut upload = read_upload(state, form).await?;
    let severity = upload.field("severity");
    let new = NewFault {
        title: upload.field("title"),
        description: upload.field("description"),
        equipment: upload.field("equipment"),
        severity: severity.parse::<Severity>().unwrap_or(Severity::Medium),
    };
    *entered = Some(new.clone());
    severity.parse::<Severity>()?;
    let new = new.validated()?;
    let caption = upload.field("caption");
    let photo = match upload.file.take() {
        Some(file) => Some(store_file(state, file, caption).await?),
        None => None,
    };
    crate::api::log_fault_with(state, user, new, photo).await
}

/// Serves an attachment file to any logged-in user.
async fn serve(
    State(state): State<EdgeState>,
    _user: CurrentUser,
    ApiPath(sha256): ApiPath<String>,
) -> Result<Response, AppError> {
    keelson_model::attachment::validate_sha256(&sha256)?;
    let s = state.clone();
    let found = blocking(move || {
        let Some(meta) = s.db.attachment_file(&s.config.vessel.id, &sha256)? else {
            return Ok(None);
        };
        Ok(s.files.read(&sha256)?.map(|bytes| (meta, bytes)))
    })
    .await?;
    let (meta, bytes) = found.ok_or_else(|| AppError::NotFound("no such file".into()))?;
    Ok(keelson_web::attachments::file_response(&meta, bytes))
}

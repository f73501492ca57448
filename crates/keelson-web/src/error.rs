//! The error every handler returns. Its response is JSON
//! `{"error": "...", "detail": "..."}` with the matching status; an internal
//! failure is logged with its cause and answered with a generic message, so
//! no internal detail ever reaches a client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use keelson_model::ValidationError;
use keelson_records::RecordError;
use keelson_store::StoreError;
use serde::Serialize;

/// An error a handler can return.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or fails validation (400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No valid credentials were presented (401).
    #[error("authentication required")]
    Unauthorized,
    /// Credentials were presented and refused, for a stated reason (401).
    #[error("refused: {0}")]
    Unauthenticated(String),
    /// The user is known but may not do this (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The thing asked for does not exist (404).
    #[error("not found: {0}")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The body is larger than this endpoint accepts (413).
    #[error("payload too large")]
    PayloadTooLarge,
    /// An uploaded file is larger than allowed (413), with the limit.
    #[error("file too large: {0}")]
    FileTooLarge(String),
    /// An uploaded file is of a type not accepted, or not the type it was
    /// sent as (415).
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// Something failed on our side (500); the cause is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    detail: String,
}

impl AppError {
    /// An internal error with a cause to log.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AppError::Internal(cause.to_string())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Unauthorized | AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::PayloadTooLarge | AppError::FileTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short machine-readable code for the `error` field.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadRequest(_) => "bad_request",
            AppError::Unauthorized | AppError::Unauthenticated(_) => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound(_) => "not_found",
            AppError::Conflict(_) => "conflict",
            AppError::PayloadTooLarge | AppError::FileTooLarge(_) => "payload_too_large",
            AppError::UnsupportedMediaType(_) => "unsupported_media_type",
            AppError::Internal(_) => "internal",
        }
    }

    /// What a client may be told about this error.
    pub fn public_detail(&self) -> String {
        match self {
            AppError::BadRequest(d)
            | AppError::Unauthenticated(d)
            | AppError::Forbidden(d)
            | AppError::NotFound(d)
            | AppError::Conflict(d)
            | AppError::FileTooLarge(d)
            | AppError::UnsupportedMediaType(d) => d.clone(),
            AppError::Unauthorized => {
                "log in first: POST /api/v1/session, then send `Authorization: Bearer <token>`"
                    .into()
            }
            AppError::PayloadTooLarge => {
                "the request body is larger than this endpoint accepts".into()
            }
            AppError::Internal(_) => {
                "something went wrong on the server; it has been logged".into()
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(cause) = &self {
            tracing::error!(error = %cause, "request failed");
        }
        let body = Body {
            error: self.code(),
            detail: self.public_detail(),
        };
        (self.status(), Json(body)).into_response()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound("no such item".into()),
            StoreError::Conflict(d) => AppError::Conflict(d),
            other => AppError::internal(other),
        }
    }
}

impl From<ValidationError> for AppError {
    fn from(e: ValidationError) -> Self {
        AppError::BadRequest(e.to_string())
    }
}

impl From<RecordError> for AppError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Store(s) => s.into(),
            RecordError::Invalid(v) => v.into(),
            RecordError::NotFound => AppError::NotFound("no such record".into()),
            RecordError::Forbidden(d) => AppError::Forbidden(d),
            RecordError::Conflict(d) => AppError::Conflict(d),
            e @ RecordError::WrongVessel { .. } => AppError::Forbidden(e.to_string()),
            RecordError::Sync(e) => AppError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak() {
        let e = AppError::internal("disk I/O error at /var/lib/keelson/keelson.db");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.public_detail().contains("/var/lib"));
    }
}

//! Login and logout, shared by the ship and the shore: the JSON endpoint
//! `POST /api/v1/session` and the UI's login form.

use crate::auth::{self, CurrentUser, HasDb};
use crate::layout::{self, Site};
use crate::{ApiJson, AppError, blocking};
use axum::Form;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

/// State of a server with a web UI.
pub trait WebState: HasDb + Clone + Send + Sync + 'static {
    /// The page shell's settings.
    fn site(&self) -> &Site;
    /// Whether the session cookie is marked `Secure`.
    fn secure_cookies(&self) -> bool;
}

/// `POST /api/v1/session` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `POST /api/v1/session` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The bearer token for `Authorization: Bearer <token>`.
    pub token: String,
    /// The user's role.
    pub role: String,
}

/// Routes: `POST/DELETE /api/v1/session`, `GET/POST /login`, `POST /logout`.
pub fn router<S: WebState>() -> Router<S> {
    Router::new()
        .route(
            "/api/v1/session",
            post(api_login::<S>).delete(api_logout::<S>),
        )
        .route("/login", get(login_form::<S>).post(login_submit::<S>))
        .route("/logout", post(logout::<S>))
}

async fn api_login<S: WebState>(
    State(state): State<S>,
    ApiJson(c): ApiJson<Credentials>,
) -> Result<Json<TokenResponse>, AppError> {
    let (token, role) = auth::login(state.db().clone(), c.username, c.password)
        .await
        .map_err(|e| match e {
            AppError::Unauthorized => {
                AppError::Unauthenticated("wrong user name or password".into())
            }
            other => other,
        })?;
    Ok(Json(TokenResponse { token, role }))
}

async fn api_logout<S: WebState>(
    State(state): State<S>,
    user: CurrentUser,
) -> Result<Json<serde_json::Value>, AppError> {
    let db = state.db().clone();
    blocking(move || Ok(db.delete_session(&user.token_hash)?)).await?;
    Ok(Json(serde_json::json!({ "logged_out": true })))
}

async fn login_form<S: WebState>(State(state): State<S>) -> Html<String> {
    Html(layout::login_page(state.site(), None).into_string())
}

async fn login_submit<S: WebState>(State(state): State<S>, Form(c): Form<Credentials>) -> Response {
    match auth::login(state.db().clone(), c.username, c.password).await {
        Ok((token, _)) => (
            [(
                SET_COOKIE,
                auth::session_cookie(&token, state.secure_cookies()),
            )],
            Redirect::to("/"),
        )
            .into_response(),
        Err(AppError::Unauthorized) => (
            axum::http::StatusCode::UNAUTHORIZED,
            Html(
                layout::login_page(state.site(), Some("Wrong user name or password."))
                    .into_string(),
            ),
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn logout<S: WebState>(State(state): State<S>, user: Option<CurrentUser>) -> Response {
    if let Some(u) = user {
        let db = state.db().clone();
        if let Err(e) = blocking(move || Ok(db.delete_session(&u.token_hash)?)).await {
            return e.into_response();
        }
    }
    ([(SET_COOKIE, auth::clear_cookie())], Redirect::to("/login")).into_response()
}

/// Renders an error as an HTML page with its status, for UI handlers.
pub fn page_error(site: &Site, user: Option<&CurrentUser>, e: AppError) -> Response {
    let status = e.status();
    if let AppError::Internal(cause) = &e {
        tracing::error!(error = %cause, "page failed");
    }
    (
        status,
        Html(layout::error_page(site, user, status.as_u16(), &e.public_detail()).into_string()),
    )
        .into_response()
}

//! User administration on board, for the master: the user list, adding a
//! user, changing a role or a password, and removing a user, through
//! `/api/v1/users` and the `/users` page (plain forms, no JavaScript).
//!
//! No master can remove or demote themselves, so the vessel always keeps a
//! master to manage its users.

use crate::{EdgeState, add_user, role_of};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use keelson_model::Role;
use keelson_store::UserSummary;
use keelson_web::layout::page;
use keelson_web::session::page_error;
use keelson_web::{ApiJson, ApiPath, AppError, CurrentUser, PageUser, blocking};
use maud::html;
use serde::Deserialize;

/// The API and page routes.
pub fn router() -> Router<EdgeState> {
    Router::new()
        .route("/api/v1/users", get(list).post(create))
        .route(
            "/api/v1/users/{username}",
            axum::routing::patch(change).delete(remove),
        )
        .route("/users", get(users_page).post(create_form))
        .route("/users/{username}/edit", post(change_form))
        .route("/users/{username}/delete", post(remove_form))
}

/// A new user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Role on board.
    pub role: Role,
    /// Password (at least the minimum length).
    pub password: String,
}

/// A change to a user; only the fields given change.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// A new role.
    pub role: Option<Role>,
    /// A new password.
    pub password: Option<String>,
}

fn require_master(user: &CurrentUser) -> Result<(), AppError> {
    if role_of(user)?.may_manage_users() {
        Ok(())
    } else {
        Err(AppError::Forbidden(
            "managing users needs the master".into(),
        ))
    }
}

/// Finds the user a master is about to change or remove, refusing to
/// remove or demote the acting master: since only a master manages users,
/// that alone keeps at least one master on board.
fn check_keeps_a_master(
    state: &EdgeState,
    actor: &CurrentUser,
    username: &str,
    new_role: Option<Role>,
) -> Result<UserSummary, AppError> {
    if username == actor.username && new_role != Some(Role::Master) {
        return Err(AppError::Conflict(
            "you cannot remove or demote yourself; ask another master".into(),
        ));
    }
    state
        .db
        .list_users()?
        .into_iter()
        .find(|u| u.username == username)
        .ok_or_else(|| AppError::NotFound(format!("no user {username}")))
}

async fn list_users(state: &EdgeState, user: &CurrentUser) -> Result<Vec<UserSummary>, AppError> {
    require_master(user)?;
    let s = state.clone();
    blocking(move || Ok(s.db.list_users()?)).await
}

async fn add(state: &EdgeState, user: &CurrentUser, new: NewUser) -> Result<UserSummary, AppError> {
    require_master(user)?;
    let s = state.clone();
    let added = blocking(move || {
        if s.db.user(&new.username)?.is_some() {
            return Err(AppError::Conflict(format!(
                "user {} already exists",
                new.username
            )));
        }
        add_user(&s.db, &new.username, new.role, &new.password)?;
        s.db.list_users()?
            .into_iter()
            .find(|u| u.username == new.username)
            .ok_or_else(|| AppError::internal("the new user was not stored"))
    })
    .await?;
    tracing::info!(user = %added.username, role = %added.role, by = %user.username, "user added");
    Ok(added)
}

async fn patch(
    state: &EdgeState,
    user: &CurrentUser,
    username: String,
    patch: UserPatch,
) -> Result<UserSummary, AppError> {
    require_master(user)?;
    let (s, actor) = (state.clone(), user.clone());
    let changed = blocking(move || {
        // A password change alone keeps the role, so it is never a
        // demotion.
        let keep = patch.role.or(Some(Role::Master));
        let target = check_keeps_a_master(&s, &actor, &username, keep)?;
        let role = patch
            .role
            .map_or(target.role.clone(), |r| r.as_str().to_owned());
        match &patch.password {
            // A new password goes through the same checks and hashing as
            // a new user; it ends the user's sessions too.
            Some(password) => {
                let role: Role = role
                    .parse()
                    .map_err(|_| AppError::Conflict(format!("{username} has no ship role")))?;
                add_user(&s.db, &username, role, password)?;
            }
            None => {
                s.db.set_user_role(&username, &role)?;
            }
        }
        Ok(UserSummary { role, ..target })
    })
    .await?;
    tracing::info!(user = %changed.username, role = %changed.role, by = %user.username, "user changed");
    Ok(changed)
}

async fn delete(state: &EdgeState, user: &CurrentUser, username: String) -> Result<(), AppError> {
    require_master(user)?;
    let (s, actor) = (state.clone(), user.clone());
    let name = username.clone();
    blocking(move || {
        check_keeps_a_master(&s, &actor, &name, None)?;
        s.db.delete_user(&name)?;
        Ok(())
    })
    .await?;
    tracing::info!(user = %username, by = %user.username, "user removed");
    Ok(())
}

async fn list(
    State(state): State<EdgeState>,
    user: CurrentUser,
) -> Result<Json<Vec<UserSummary>>, AppError> {
    Ok(Json(list_users(&state, &user).await?))
}

async fn create(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiJson(new): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserSummary>), AppError> {
    Ok((StatusCode::CREATED, Json(add(&state, &user, new).await?)))
}

async fn change(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(username): ApiPath<String>,
    ApiJson(body): ApiJson<UserPatch>,
) -> Result<Json<UserSummary>, AppError> {
    Ok(Json(patch(&state, &user, username, body).await?))
}

async fn remove(
    State(state): State<EdgeState>,
    user: CurrentUser,
    ApiPath(username): ApiPath<String>,
) -> Result<StatusCode, AppError> {
    delete(&state, &user, username).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn fail(state: &EdgeState, user: &CurrentUser, e: AppError) -> Response {
    page_error(&state.site, Some(user), e)
}

async fn users_page(State(state): State<EdgeState>, PageUser(user): PageUser) -> Response {
    let users = match list_users(&state, &user).await {
        Ok(u) => u,
        Err(e) => return fail(&state, &user, e),
    };
    let role_select = |current: Option<&str>| {
        html! {
            select name="role" {
                @for r in Role::ALL {
                    option value=(r.as_str()) selected[current == Some(r.as_str())] { (r.label()) }
                }
            }
        }
    };
    let body = html! {
        h1 { "Users" }
        table #users {
            thead { tr { th { "User" } th { "Role" } th { "Change" } } }
            tbody {
                @for u in &users {
                    tr {
                        td { (u.username) }
                        td {
                            @match u.role.parse::<Role>() {
                                Ok(r) => (r.label()),
                                Err(_) => (u.role),
                            }
                        }
                        td {
                            form.row method="post" action={ "/users/" (u.username) "/edit" } {
                                label { "Role" (role_select(Some(&u.role))) }
                                label { "New password"
                                    input type="password" name="password" autocomplete="new-password";
                                }
                                button.secondary type="submit" { "Save" }
                            }
                            @if u.username != user.username {
                                form method="post" action={ "/users/" (u.username) "/delete" } {
                                    button.secondary type="submit" { "Remove " (u.username) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Add a user" }
        form.stack method="post" action="/users" {
            label { "User name" input name="username" required autocomplete="off"; }
            label { "Role" (role_select(Some(Role::Crew.as_str()))) }
            label { "Password"
                input type="password" name="password" required autocomplete="new-password"
                    minlength=(keelson_web::auth::MIN_PASSWORD_LEN);
            }
            div { button type="submit" { "Add user" } }
        }
    };
    Html(page(&state.site, "Users", Some(&user), body).into_string()).into_response()
}

#[derive(Debug, Deserialize)]
struct UserForm {
    username: String,
    role: String,
    password: String,
}

#[derive(Debug, Deserialize)]
struct EditForm {
    role: String,
    #[serde(default)]
    password: String,
}

fn parse_role(role: &str) -> Result<Role, AppError> {
    role.parse()
        .map_err(|_| AppError::BadRequest(format!("role: no role `{role}`")))
}

async fn create_form(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Form(f): Form<UserForm>,
) -> Response {
    let new = match parse_role(&f.role) {
        Ok(role) => NewUser {
            username: f.username.trim().to_owned(),
            role,
            password: f.password,
        },
        Err(e) => return fail(&state, &user, e),
    };
    match add(&state, &user, new).await {
        Ok(_) => Redirect::to("/users").into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

async fn change_form(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(username): Path<String>,
    Form(f): Form<EditForm>,
) -> Response {
    let body = match parse_role(&f.role) {
        Ok(role) => UserPatch {
            role: Some(role),
            password: Some(f.password).filter(|p| !p.is_empty()),
        },
        Err(e) => return fail(&state, &user, e),
    };
    match patch(&state, &user, username, body).await {
        Ok(_) => Redirect::to("/users").into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

async fn remove_form(
    State(state): State<EdgeState>,
    PageUser(user): PageUser,
    Path(username): Path<String>,
) -> Response {
    match delete(&state, &user, username).await {
        Ok(()) => Redirect::to("/users").into_response(),
        Err(e) => fail(&state, &user, e),
    }
}

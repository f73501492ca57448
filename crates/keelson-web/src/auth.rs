//! Authentication: argon2id password hashes, random session tokens stored
//! only as their SHA-256, and extractors that find the user behind a bearer
//! token or the session cookie.

use crate::{AppError, blocking};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use keelson_store::Db;
use ring::rand::{SecureRandom, SystemRandom};

/// Name of the session cookie of the web UI.
pub const SESSION_COOKIE: &str = "keelson_session";

/// How long a session lasts: a long watch plus handover.
pub const SESSION_TTL_SECS: i64 = 14 * 3600;

/// Shortest password accepted when adding a user.
pub const MIN_PASSWORD_LEN: usize = 4;

/// State that gives access to the site's database.
pub trait HasDb {
    /// The database holding users and sessions.
    fn db(&self) -> &Db;
}

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentUser {
    /// Login name.
    pub username: String,
    /// Role name, as the site's role type spells it.
    pub role: String,
    /// SHA-256 of the session token, for logout.
    pub token_hash: String,
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, AppError> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| AppError::internal("system random source failed"))?;
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(AppError::internal)?
        .to_string())
}

/// Checks a password against a stored PHC hash.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new random session token (256 bits, hex).
pub fn new_token() -> Result<String, AppError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| AppError::internal("system random source failed"))?;
    Ok(hex::encode(bytes))
}

/// The form a token is stored in: its SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

/// Checks a user's password and opens a session. Returns the token and the
/// user's role. Unknown users cost the same time as a wrong password, so the
/// answer does not reveal which names exist.
pub async fn login(
    db: Db,
    username: String,
    password: String,
) -> Result<(String, String), AppError> {
    blocking(move || {
        let user = db.user(&username)?;
        let (hash, role) = match &user {
            Some(u) => (u.password_hash.as_str(), u.role.clone()),
            None => (DUMMY_HASH, String::new()),
        };
        if !verify_password(hash, &password) || user.is_none() {
            return Err(AppError::Unauthorized);
        }
        let token = new_token()?;
        let expires = chrono::Utc::now().timestamp_millis() + SESSION_TTL_SECS * 1000;
        db.create_session(&token_hash(&token), &username, expires)?;
        Ok((token, role))
    })
    .await
}

/// An argon2id hash of a random password, verified against when the user
/// does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2yhH7fL1vCm3eKc5TmrmJcZ4S6ojP6dW6fOqS9rRUBc";

/// The `Set-Cookie` value that stores a session token.
pub fn session_cookie(token: &str, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={token}; Path=/; Max-Age={SESSION_TTL_SECS}; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// The session token of a request: the bearer token, else the cookie.
fn request_token(parts: &Parts) -> Option<String> {
    if let Some(v) = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim().to_owned());
        }
    }
    parts
        .headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
}

async fn resolve<S: HasDb>(parts: &Parts, state: &S) -> Result<Option<CurrentUser>, AppError> {
    let Some(token) = request_token(parts) else {
        return Ok(None);
    };
    // Tokens are 64 hex characters; anything else cannot be a session and
    // is not worth a database look-up.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let hash = token_hash(&token);
    let db = state.db().clone();
    let h = hash.clone();
    let user = blocking(move || Ok(db.session_user(&h)?)).await?;
    Ok(user.map(|u| CurrentUser {
        username: u.username,
        role: u.role,
        token_hash: hash,
    }))
}

impl<S: HasDb + Send + Sync> FromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        resolve(parts, state).await?.ok_or(AppError::Unauthorized)
    }
}

impl<S: HasDb + Send + Sync> axum::extract::OptionalFromRequestParts<S> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        resolve(parts, state).await
    }
}

/// The authenticated user of a page request; without one the browser is
/// sent to the login page.
#[derive(Debug, Clone)]
pub struct PageUser(pub CurrentUser);

/// Why a page request has no user.
#[derive(Debug)]
pub enum PageRejection {
    /// Not logged in: go to the login page.
    Login,
    /// The look-up failed.
    Error(AppError),
}

impl IntoResponse for PageRejection {
    fn into_response(self) -> Response {
        match self {
            PageRejection::Login => Redirect::to("/login").into_response(),
            PageRejection::Error(e) => e.into_response(),
        }
    }
}

impl<S: HasDb + Send + Sync> FromRequestParts<S> for PageUser {
    type Rejection = PageRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match resolve(parts, state).await {
            Ok(Some(u)) => Ok(PageUser(u)),
            Ok(None) => Err(PageRejection::Login),
            Err(e) => Err(PageRejection::Error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("s3cret").expect("hash");
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "s3cret"));
        assert!(!verify_password(&h, "wrong"));
        assert!(!verify_password("not a hash", "s3cret"));
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[test]
    fn cookie_is_http_only_and_strict() {
        let c = session_cookie("abc", false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert!(session_cookie("abc", true).contains("Secure"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let a = new_token().expect("token");
        let b = new_token().expect("token");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}

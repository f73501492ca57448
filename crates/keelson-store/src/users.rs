//! Users and login sessions. Password hashing and token generation happen in
//! the web layer; this module stores only their results (a PHC hash string
//! and the SHA-256 of each bearer token).

use crate::{Db, StoreError, now_ms};
use rusqlite::{OptionalExtension, params};

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Login name.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role name, as the site's role type spells it.
    pub role: String,
}

/// A user as the user list shows them: no password hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserSummary {
    /// Login name.
    pub username: String,
    /// Role name.
    pub role: String,
    /// When the user was added, ms since the epoch.
    pub created_at_ms: i64,
}

/// The user behind a live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// Login name.
    pub username: String,
    /// Role name.
    pub role: String,
}

impl Db {
    /// Adds a user, or replaces the password and role of an existing one.
    /// Replacing also ends the user's sessions, so a changed password or a
    /// lowered role takes effect at once.
    pub fn upsert_user(
        &self,
        username: &str,
        password_hash: &str,
        role: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO users (username, password_hash, role, created_at_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(username) DO UPDATE SET password_hash = excluded.password_hash, role = excluded.role",
            params![username, password_hash, role, now_ms()],
        )?;
        tx.execute("DELETE FROM sessions WHERE username = ?1", [username])?;
        tx.commit()?;
        Ok(())
    }

    /// Looks a user up by name.
    pub fn user(&self, username: &str) -> Result<Option<UserRow>, StoreError> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT username, password_hash, role FROM users WHERE username = ?1",
                [username],
                |r| {
                    Ok(UserRow {
                        username: r.get(0)?,
                        password_hash: r.get(1)?,
                        role: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// How many users exist.
    pub fn user_count(&self) -> Result<u64, StoreError> {
        let conn = self.reader()?;
        Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))?)
    }

    /// Every user with their role and when they were added, by name.
    pub fn list_users(&self) -> Result<Vec<UserSummary>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn
            .prepare_cached("SELECT username, role, created_at_ms FROM users ORDER BY username")?;
        let rows = stmt.query_map([], |r| {
            Ok(UserSummary {
                username: r.get(0)?,
                role: r.get(1)?,
                created_at_ms: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Gives a user another role and ends their sessions, so the new role
    /// takes effect at their next login. False if there is no such user.
    pub fn set_user_role(&self, username: &str, role: &str) -> Result<bool, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        let changed = tx.execute(
            "UPDATE users SET role = ?2 WHERE username = ?1",
            params![username, role],
        )?;
        tx.execute("DELETE FROM sessions WHERE username = ?1", [username])?;
        tx.commit()?;
        Ok(changed > 0)
    }

    /// Removes a user and their sessions. False if there is no such user.
    pub fn delete_user(&self, username: &str) -> Result<bool, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM sessions WHERE username = ?1", [username])?;
        let deleted = tx.execute("DELETE FROM users WHERE username = ?1", [username])?;
        tx.commit()?;
        Ok(deleted > 0)
    }

    /// Records a new session for `username`, valid until `expires_at_ms`.
    pub fn create_session(
        &self,
        token_hash: &str,
        username: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let conn = self.writer()?;
        let now = now_ms();
        // Expired sessions are swept here, on the rare login path, rather
        // than by a timer.
        conn.execute("DELETE FROM sessions WHERE expires_at_ms < ?1", [now])?;
        conn.execute(
            "INSERT INTO sessions (token_hash, username, created_at_ms, expires_at_ms) VALUES (?1, ?2, ?3, ?4)",
            params![token_hash, username, now, expires_at_ms],
        )?;
        Ok(())
    }

    /// The user behind a session token hash, if the session is live.
    pub fn session_user(&self, token_hash: &str) -> Result<Option<SessionUser>, StoreError> {
        let conn = self.reader()?;
        Ok(conn
            .query_row(
                "SELECT u.username, u.role FROM sessions s JOIN users u ON u.username = s.username
                 WHERE s.token_hash = ?1 AND s.expires_at_ms > ?2",
                params![token_hash, now_ms()],
                |r| {
                    Ok(SessionUser {
                        username: r.get(0)?,
                        role: r.get(1)?,
                    })
                },
            )
            .optional()?)
    }

    /// Ends a session (logout).
    pub fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::{Site, now_ms, test_util::open};

    #[test]
    fn sessions_follow_users() {
        let (_dir, db) = open(Site::Edge);
        db.upsert_user("chief", "hash1", "chief_engineer")
            .expect("user");
        db.create_session("t1", "chief", now_ms() + 60_000)
            .expect("session");
        db.create_session("old", "chief", now_ms() - 1)
            .expect("session");
        assert_eq!(
            db.session_user("t1").expect("q").map(|u| u.role),
            Some("chief_engineer".into())
        );
        assert_eq!(db.session_user("old").expect("q"), None);
        // A password change ends existing sessions.
        db.upsert_user("chief", "hash2", "chief_engineer")
            .expect("user");
        assert_eq!(db.session_user("t1").expect("q"), None);
        assert_eq!(
            db.user("chief").expect("q").map(|u| u.password_hash),
            Some("hash2".into())
        );
        // So do a new role and removal.
        db.create_session("t2", "chief", now_ms() + 60_000)
            .expect("session");
        assert!(db.set_user_role("chief", "engineer").expect("role"));
        assert_eq!(db.session_user("t2").expect("q"), None);
        assert_eq!(db.list_users().expect("list")[0].role, "engineer");
        db.create_session("t3", "chief", now_ms() + 60_000)
            .expect("session");
        assert!(db.delete_user("chief").expect("delete"));
        assert!(!db.delete_user("chief").expect("delete"));
        assert_eq!(db.session_user("t3").expect("q"), None);
        assert!(db.list_users().expect("list").is_empty());
    }
}

//! stentor-store: durable state — accounts, sessions, Spaces, roles and removals.
//!
//! The default backend is an embedded SQLite file, so a single node needs no external
//! service. Queries use `$n` parameters and portable SQL, so a PostgreSQL backend can be added
//! behind the same [`Store`] methods without touching callers.

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;

/// An error from the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique value (a handle, a Space id) is taken.
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The database URL names a backend this build does not support.
    #[error("unsupported database URL {0:?}: use sqlite://PATH (PostgreSQL support is planned)")]
    Unsupported(String),
    /// The schema could not be brought up to date.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Creates `path` empty and 0600 when it is missing, and tightens it (and SQLite's `-wal` and
/// `-shm` files beside it) to 0600 when it is looser; SQLite gives the files it creates later
/// the database file's permissions.
fn private_file(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        options.open(path)?;
        for suffix in ["", "-wal", "-shm"] {
            let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(meta) = std::fs::metadata(&file)
                && meta.permissions().mode() & 0o077 != 0
            {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    options.open(path)?;
    Ok(())
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Numeric id (never reused).
    pub id: u64,
    /// Unique handle.
    pub handle: String,
}

/// A Space as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceRecord {
    /// Public id (used in URLs).
    pub id: String,
    /// The host's user id.
    pub host_id: u64,
    /// Title.
    pub title: String,
    /// `scheduled`, `live` or `ended`.
    pub state: String,
    /// Announced start (Unix seconds), if scheduled.
    pub starts_at: Option<i64>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
}

/// Handle to the database.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the SQLite database `stentor.db` in `data_dir` and migrates it.
    /// The file and the journal SQLite keeps beside it are private to the server's user (0600).
    pub async fn open_dir(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("stentor.db");
        private_file(&path).map_err(|e| StoreError::Database(e.into()))?;
        let url = format!("sqlite://{}", path.display());
        Self::open(&url).await
    }

    /// Opens a database by URL (`sqlite://path` or `sqlite::memory:`) and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Unsupported(url.to_owned()));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:");
        let pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { 4 })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Creates an account.
    pub async fn create_user(
        &self,
        handle: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<User, StoreError> {
        let row = sqlx::query(
            "INSERT INTO users (handle, password_hash, created_at) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(handle)
        .bind(password_hash)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| conflict(e, "handle"))?;
        Ok(User {
            id: row.get::<i64, _>(0) as u64,
            handle: handle.to_owned(),
        })
    }

    /// An account and its password hash, by handle.
    pub async fn user_with_hash(&self, handle: &str) -> Result<Option<(User, String)>, StoreError> {
        let row = sqlx::query("SELECT id, handle, password_hash FROM users WHERE handle = $1")
            .bind(handle)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (user_from(&r), r.get(2))))
    }

    /// An account by id.
    pub async fn user(&self, id: u64) -> Result<Option<User>, StoreError> {
        let row = sqlx::query("SELECT id, handle FROM users WHERE id = $1")
            .bind(id as i64)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(user_from))
    }

    /// Stores a session (by the hash of its token).
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: u64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(user_id as i64)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The user of an unexpired session.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.handle FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(user_from))
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Creates a Space.
    pub async fn create_space(&self, space: &SpaceRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO spaces (id, host_id, title, state, starts_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&space.id)
        .bind(space.host_id as i64)
        .bind(&space.title)
        .bind(&space.state)
        .bind(space.starts_at)
        .bind(space.created_at)
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, "space"))?;
        Ok(())
    }

    /// A Space by id.
    pub async fn space(&self, id: &str) -> Result<Option<SpaceRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, host_id, title, state, starts_at, created_at FROM spaces WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(space_from))
    }

    /// Spaces that are not ended, newest first, at most `limit`, with their host's handle.
    pub async fn open_spaces(&self, limit: u32) -> Result<Vec<(SpaceRecord, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id, s.host_id, s.title, s.state, s.starts_at, s.created_at, u.handle \
             FROM spaces s JOIN users u ON u.id = s.host_id \
             WHERE s.state <> 'ended' ORDER BY s.created_at DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (space_from(r), r.get(6))).collect())
    }

    /// Spaces hosted by `host`, newest first, at most `limit`.
    pub async fn hosted_spaces(
        &self,
        host: u64,
        limit: u32,
    ) -> Result<Vec<SpaceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, host_id, title, state, starts_at, created_at FROM spaces \
             WHERE host_id = $1 ORDER BY created_at DESC LIMIT $2",
        )
        .bind(host as i64)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(space_from).collect())
    }

    /// How many Spaces `host` hosts in `state` (`scheduled`, `live`, `ended`).
    pub async fn count_hosted(&self, host: u64, state: &str) -> Result<u64, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM spaces WHERE host_id = $1 AND state = $2")
            .bind(host as i64)
            .bind(state)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.get::<i64, _>(0) as u64)
    }

    /// Records a lifecycle change (`live` or `ended`) at `now`.
    pub async fn set_space_state(&self, id: &str, state: &str, now: i64) -> Result<(), StoreError> {
        let column = if state == "live" {
            "started_at"
        } else {
            "ended_at"
        };
        sqlx::query(&format!(
            "UPDATE spaces SET state = $1, {column} = $2 WHERE id = $3"
        ))
        .bind(state)
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a user's role in a Space; `None` (back to the audience) deletes it, with the
    /// mute and the invitation that went with it, in one transaction.
    pub async fn set_role(
        &self,
        space: &str,
        user: u64,
        role: Option<&str>,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        match role {
            Some(role) => {
                sqlx::query(
                    "INSERT INTO space_roles (space_id, user_id, role) VALUES ($1, $2, $3) \
                     ON CONFLICT (space_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .bind(space)
                .bind(user as i64)
                .bind(role)
                .execute(&mut *tx)
                .await?;
                // On stage, an invitation is spent.
                forget(&mut tx, "space_invites", space, user).await?;
            }
            None => {
                forget(&mut tx, "space_roles", space, user).await?;
                forget(&mut tx, "space_mutes", space, user).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records whether a person on stage is muted.
    pub async fn set_muted(&self, space: &str, user: u64, muted: bool) -> Result<(), StoreError> {
        self.set_listed("space_mutes", space, user, muted).await
    }

    /// Records an open invitation to speak (`true`) or its end.
    pub async fn set_invited(&self, space: &str, user: u64, open: bool) -> Result<(), StoreError> {
        self.set_listed("space_invites", space, user, open).await
    }

    /// Lists `user` in one of a Space's per-user tables, or takes them off it.
    async fn set_listed(
        &self,
        table: &str,
        space: &str,
        user: u64,
        listed: bool,
    ) -> Result<(), StoreError> {
        let query = if listed {
            format!(
                "INSERT INTO {table} (space_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
            )
        } else {
            format!("DELETE FROM {table} WHERE space_id = $1 AND user_id = $2")
        };
        sqlx::query(&query)
            .bind(space)
            .bind(user as i64)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes a user from a Space for good: their role, mute and invitation go and the
    /// removal is recorded, all in one transaction.
    pub async fn remove_participant(&self, space: &str, user: u64) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for table in ["space_roles", "space_mutes", "space_invites"] {
            forget(&mut tx, table, space, user).await?;
        }
        sqlx::query(
            "INSERT INTO space_removed (space_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(space)
        .bind(user as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Users of a Space listed in one of its per-user tables (`space_mutes`, `space_invites`,
    /// `space_removed`).
    async fn users_in(&self, table: &str, space: &str) -> Result<Vec<u64>, StoreError> {
        let rows = sqlx::query(&format!("SELECT user_id FROM {table} WHERE space_id = $1"))
            .bind(space)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get::<i64, _>(0) as u64).collect())
    }

    /// People on stage who are muted.
    pub async fn muted(&self, space: &str) -> Result<Vec<u64>, StoreError> {
        self.users_in("space_mutes", space).await
    }

    /// Open invitations to speak.
    pub async fn invited(&self, space: &str) -> Result<Vec<u64>, StoreError> {
        self.users_in("space_invites", space).await
    }

    /// Stored roles of a Space.
    pub async fn roles(&self, space: &str) -> Result<Vec<(u64, String)>, StoreError> {
        let rows = sqlx::query("SELECT user_id, role FROM space_roles WHERE space_id = $1")
            .bind(space)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<i64, _>(0) as u64, r.get(1)))
            .collect())
    }

    /// Users removed from a Space.
    pub async fn removed(&self, space: &str) -> Result<Vec<u64>, StoreError> {
        self.users_in("space_removed", space).await
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Deletes `user`'s row of `table` for `space` within a transaction.
async fn forget(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    table: &str,
    space: &str,
    user: u64,
) -> Result<(), StoreError> {
    sqlx::query(&format!(
        "DELETE FROM {table} WHERE space_id = $1 AND user_id = $2"
    ))
    .bind(space)
    .bind(user as i64)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn user_from(row: &sqlx::sqlite::SqliteRow) -> User {
    User {
        id: row.get::<i64, _>(0) as u64,
        handle: row.get(1),
    }
}

fn space_from(row: &sqlx::sqlite::SqliteRow) -> SpaceRecord {
    SpaceRecord {
        id: row.get(0),
        host_id: row.get::<i64, _>(1) as u64,
        title: row.get(2),
        state: row.get(3),
        starts_at: row.get(4),
        created_at: row.get(5),
    }
}

fn conflict(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}

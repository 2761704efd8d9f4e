//! stentor-store: durable state — accounts, sessions, Spaces, roles and removals.
//!
//! One API, two backends: an embedded SQLite file (the default, so that a single node needs
//! no external service) and PostgreSQL (the state the nodes of a cluster share). Every query
//! is written once, in portable SQL with `$n` parameters, and compiled for each backend's
//! pool; each backend has migrations of its own (`migrations/sqlite`, `migrations/postgres`).

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

#[doc(hidden)]
pub mod testing;

pub use alerts::{Campaign, PushSubscription};
pub use moderation::{Export, ExportCounts, Restriction};
pub use social::{Job, NewPost, Notification, PostFilter, PostRow, Profile, Relation};

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
    #[error(
        "unsupported database URL {0:?}: use sqlite://PATH or postgres://USER@HOST:PORT/DATABASE"
    )]
    Unsupported(String),
    /// The database server could not be reached (or refused the connection) at start.
    #[error("cannot reach the database at {at}: {source}")]
    Unreachable {
        /// Host, port and database (never the password).
        at: String,
        /// Why.
        source: sqlx::Error,
    },
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
    pool: Pool,
}

/// The pool of one backend or the other.
#[derive(Debug, Clone)]
enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the store's pool, whichever backend it is: the same
/// query text, compiled once for each.
macro_rules! on {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            Pool::Sqlite($pool) => $body,
            Pool::Postgres($pool) => $body,
        }
    };
}

/// Pooled connections to a SQLite file unless configured (writes are serialised by SQLite).
const SQLITE_CONNECTIONS: u32 = 4;
/// Pooled connections to PostgreSQL unless configured.
pub const POSTGRES_CONNECTIONS: u32 = 10;
/// How long a query waits for a pooled connection before it fails.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

impl Store {
    /// Opens (creating if needed) the SQLite database `stentor.db` in `data_dir` and migrates it.
    /// The file and the journal SQLite keeps beside it are private to the server's user (0600).
    pub async fn open_dir(data_dir: &Path) -> Result<Self, StoreError> {
        let path = data_dir.join("stentor.db");
        private_file(&path).map_err(|e| StoreError::Database(e.into()))?;
        let url = format!("sqlite://{}", path.display());
        Self::open(&url).await
    }

    /// Opens a database by URL (`sqlite://PATH`, `sqlite::memory:` or
    /// `postgres://USER@HOST:PORT/DATABASE`) with the default pool, and migrates it.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::connect(url, None).await
    }

    /// Opens a database by URL with at most `connections` pooled connections (by default 4
    /// for a SQLite file, [`POSTGRES_CONNECTIONS`] for PostgreSQL), and migrates it.
    pub async fn connect(url: &str, connections: Option<u32>) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true);
            // An in-memory database lives in its one connection.
            let most = if url.contains(":memory:") {
                1
            } else {
                connections.unwrap_or(SQLITE_CONNECTIONS)
            };
            let pool = SqlitePoolOptions::new()
                .max_connections(most.max(1))
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
            Ok(Self {
                pool: Pool::Sqlite(pool),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let at = format!(
                "{}:{}/{}",
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or("(default)")
            );
            let pool = PgPoolOptions::new()
                .max_connections(connections.unwrap_or(POSTGRES_CONNECTIONS).max(1))
                .acquire_timeout(ACQUIRE_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(|source| StoreError::Unreachable { at, source })?;
            // Nodes starting together take turns: the migrator holds an advisory lock.
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Ok(Self {
                pool: Pool::Postgres(pool),
            })
        } else {
            Err(StoreError::Unsupported(url.to_owned()))
        }
    }

    /// Which backend this is: `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    /// Creates an account.
    pub async fn create_user(
        &self,
        handle: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<User, StoreError> {
        let id = on!(self, |pool| {
            sqlx::query(
                "INSERT INTO users (handle, password_hash, created_at) VALUES ($1, $2, $3) \
                 RETURNING id",
            )
            .bind(handle)
            .bind(password_hash)
            .bind(now)
            .fetch_one(pool)
            .await
            .map(|row| row.int(0))
        })
        .map_err(|e| conflict(e, "handle"))?;
        Ok(User {
            id: id as u64,
            handle: handle.to_owned(),
        })
    }

    /// An account and its password hash, by handle.
    pub async fn user_with_hash(&self, handle: &str) -> Result<Option<(User, String)>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query("SELECT id, handle, password_hash FROM users WHERE handle = $1")
                .bind(handle)
                .fetch_optional(pool)
                .await?
                .map(|row| (user_from(&row), row.text(2)))
        }))
    }

    /// An account by id.
    pub async fn user(&self, id: u64) -> Result<Option<User>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query("SELECT id, handle FROM users WHERE id = $1")
                .bind(id as i64)
                .fetch_optional(pool)
                .await?
                .map(|row| user_from(&row))
        }))
    }

    /// Stores a session (by the hash of its token).
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: u64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
            )
            .bind(token_hash)
            .bind(user_id as i64)
            .bind(expires_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The user of an unexpired session.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<User>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT u.id, u.handle FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await?
            .map(|row| user_from(&row))
        }))
    }

    /// The users of the unexpired sessions among `token_hashes`, each with its hash, read in
    /// one statement (unknown and expired ones are left out).
    pub async fn session_users(
        &self,
        token_hashes: &[String],
        now: i64,
    ) -> Result<Vec<(String, User)>, StoreError> {
        const COLUMNS: &str = "SELECT u.id, u.handle, s.token_hash FROM sessions s \
                               JOIN users u ON u.id = s.user_id WHERE s.expires_at > $1 AND ";
        let rows = match &self.pool {
            Pool::Postgres(pool) => sqlx::query(&format!("{COLUMNS}s.token_hash = ANY($2)"))
                .bind(now)
                .bind(token_hashes)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| (row.text(2), user_from(row)))
                .collect(),
            Pool::Sqlite(pool) => {
                let list = serde_json::to_string(token_hashes).expect("strings serialize");
                sqlx::query(&format!(
                    "{COLUMNS}s.token_hash IN (SELECT value FROM json_each($2))"
                ))
                .bind(now)
                .bind(list)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| (row.text(2), user_from(row)))
                .collect()
            }
        };
        Ok(rows)
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Creates a Space; one with an announced start gets its reminders queued (30 minutes
    /// before, when that is still ahead, and at the start), in the same transaction.
    pub async fn create_space(&self, space: &SpaceRecord) -> Result<(), StoreError> {
        on!(self, |pool| {
            let mut tx = pool.begin().await?;
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
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict(e, "space"))?;
            if let Some(at) = space.starts_at {
                let soon = at - alerts::SOON_SECS;
                let mut jobs = vec![("start", at)];
                if soon > space.created_at {
                    jobs.push(("soon", soon));
                }
                for (kind, run_at) in jobs {
                    sqlx::query(
                        "INSERT INTO jobs (kind, subject, run_at) VALUES ('alert', $1, $2) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(format!("{}:{kind}", space.id))
                    .bind(run_at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// A Space by id.
    pub async fn space(&self, id: &str) -> Result<Option<SpaceRecord>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT id, host_id, title, state, starts_at, created_at FROM spaces \
                 WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
            .map(|row| space_from(&row))
        }))
    }

    /// Spaces that are not ended, newest first, at most `limit`, with their host's handle.
    pub async fn open_spaces(&self, limit: u32) -> Result<Vec<(SpaceRecord, String)>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT s.id, s.host_id, s.title, s.state, s.starts_at, s.created_at, u.handle \
                 FROM spaces s JOIN users u ON u.id = s.host_id \
                 WHERE s.state <> 'ended' AND NOT s.demoted \
                 ORDER BY COALESCE(s.started_at, s.created_at) DESC, s.created_at DESC LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| (space_from(row), row.text(6)))
            .collect()
        }))
    }

    /// When Space `id` went live (Unix seconds), if it did.
    pub async fn space_started_at(&self, id: &str) -> Result<Option<i64>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query("SELECT started_at FROM spaces WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
                .and_then(|row| row.maybe_int(0))
        }))
    }

    /// Spaces hosted by `host`, newest first, at most `limit`.
    pub async fn hosted_spaces(
        &self,
        host: u64,
        limit: u32,
    ) -> Result<Vec<SpaceRecord>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT id, host_id, title, state, starts_at, created_at FROM spaces \
                 WHERE host_id = $1 ORDER BY created_at DESC LIMIT $2",
            )
            .bind(host as i64)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
            .iter()
            .map(space_from)
            .collect()
        }))
    }

    /// How many Spaces `host` hosts in `state` (`scheduled`, `live`, `ended`).
    pub async fn count_hosted(&self, host: u64, state: &str) -> Result<u64, StoreError> {
        let n = on!(self, |pool| {
            sqlx::query("SELECT COUNT(*) FROM spaces WHERE host_id = $1 AND state = $2")
                .bind(host as i64)
                .bind(state)
                .fetch_one(pool)
                .await?
                .int(0)
        });
        Ok(n as u64)
    }

    /// Records a lifecycle change (`live` or `ended`) at `now`. Going live queues the alert
    /// campaign to the host's followers in the same transaction.
    pub async fn set_space_state(&self, id: &str, state: &str, now: i64) -> Result<(), StoreError> {
        let column = if state == "live" {
            "started_at"
        } else {
            "ended_at"
        };
        let query = format!("UPDATE spaces SET state = $1, {column} = $2 WHERE id = $3");
        on!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(&query)
                .bind(state)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            if state == "live" {
                sqlx::query(
                    "INSERT INTO jobs (kind, subject, run_at) VALUES ('alert', $1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(format!("{id}:live"))
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
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
        let user = user as i64;
        on!(self, |pool| {
            let mut tx = pool.begin().await?;
            match role {
                Some(role) => {
                    sqlx::query(
                        "INSERT INTO space_roles (space_id, user_id, role) VALUES ($1, $2, $3) \
                         ON CONFLICT (space_id, user_id) DO UPDATE SET role = excluded.role",
                    )
                    .bind(space)
                    .bind(user)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
                    // On stage, an invitation is spent.
                    sqlx::query(&forget("space_invites"))
                        .bind(space)
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                }
                None => {
                    for table in ["space_roles", "space_mutes"] {
                        sqlx::query(&forget(table))
                            .bind(space)
                            .bind(user)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Whether Space `id` is recorded (`true` unless its host turned it off).
    pub async fn recording(&self, id: &str) -> Result<bool, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query_scalar::<_, bool>("SELECT recording FROM spaces WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
                .unwrap_or(true)
        }))
    }

    /// Records whether Space `id` is recorded.
    pub async fn set_recording(&self, id: &str, on: bool) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query("UPDATE spaces SET recording = $1 WHERE id = $2")
                .bind(on)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records whether a person on stage is muted.
    pub async fn set_muted(&self, space: &str, user: u64, muted: bool) -> Result<(), StoreError> {
        self.set_listed("space_mutes", space, user, muted).await
    }

    /// Records whether the platform's moderators hold a speaker muted.
    pub async fn set_held(&self, space: &str, user: u64, held: bool) -> Result<(), StoreError> {
        self.set_listed("space_holds", space, user, held).await
    }

    /// Speakers the platform's moderators hold muted.
    pub async fn held(&self, space: &str) -> Result<Vec<u64>, StoreError> {
        self.users_in("space_holds", space).await
    }

    /// Lets a removed participant back (the platform's removal was reversed).
    pub async fn readmit(&self, space: &str, user: u64) -> Result<(), StoreError> {
        self.set_listed("space_removed", space, user, false).await
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
            forget(table)
        };
        on!(self, |pool| {
            sqlx::query(&query)
                .bind(space)
                .bind(user as i64)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Removes a user from a Space for good: their role, mute and invitation go and the
    /// removal is recorded, all in one transaction.
    pub async fn remove_participant(&self, space: &str, user: u64) -> Result<(), StoreError> {
        let user = user as i64;
        on!(self, |pool| {
            let mut tx = pool.begin().await?;
            for table in ["space_roles", "space_mutes", "space_invites"] {
                sqlx::query(&forget(table))
                    .bind(space)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO space_removed (space_id, user_id) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(space)
            .bind(user)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Users of a Space listed in one of its per-user tables (`space_mutes`, `space_invites`,
    /// `space_removed`), in the order of their ids.
    async fn users_in(&self, table: &str, space: &str) -> Result<Vec<u64>, StoreError> {
        let query = format!("SELECT user_id FROM {table} WHERE space_id = $1 ORDER BY user_id");
        Ok(on!(self, |pool| {
            sqlx::query(&query)
                .bind(space)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| row.int(0) as u64)
                .collect()
        }))
    }

    /// People on stage who are muted.
    pub async fn muted(&self, space: &str) -> Result<Vec<u64>, StoreError> {
        self.users_in("space_mutes", space).await
    }

    /// Open invitations to speak.
    pub async fn invited(&self, space: &str) -> Result<Vec<u64>, StoreError> {
        self.users_in("space_invites", space).await
    }

    /// Stored roles of a Space, in the order of the users' ids.
    pub async fn roles(&self, space: &str) -> Result<Vec<(u64, String)>, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT user_id, role FROM space_roles WHERE space_id = $1 ORDER BY user_id",
            )
            .bind(space)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| (row.int(0) as u64, row.text(1)))
            .collect()
        }))
    }

    /// Users removed from a Space.
    pub async fn removed(&self, space: &str) -> Result<Vec<u64>, StoreError> {
        self.users_in("space_removed", space).await
    }

    /// Closes every connection.
    pub async fn close(&self) {
        on!(self, |pool| pool.close().await);
    }
}

/// The statement that deletes a user's row of a Space's per-user `table` (`$1` the Space,
/// `$2` the user).
fn forget(table: &str) -> String {
    format!("DELETE FROM {table} WHERE space_id = $1 AND user_id = $2")
}

/// The columns of a row of either backend, by position (the schema is the store's own, so
/// a type that does not match is a bug here, not bad input).
trait Columns {
    fn int(&self, i: usize) -> i64;
    fn maybe_int(&self, i: usize) -> Option<i64>;
    fn text(&self, i: usize) -> String;
    fn maybe_text(&self, i: usize) -> Option<String>;
    fn flag(&self, i: usize) -> bool;
}

macro_rules! columns {
    ($($row:ty),*) => {$(
        impl Columns for $row {
            fn int(&self, i: usize) -> i64 {
                self.get(i)
            }
            fn maybe_int(&self, i: usize) -> Option<i64> {
                self.get(i)
            }
            fn text(&self, i: usize) -> String {
                self.get(i)
            }
            fn maybe_text(&self, i: usize) -> Option<String> {
                self.get(i)
            }
            fn flag(&self, i: usize) -> bool {
                self.get(i)
            }
        }
    )*};
}
columns!(sqlx::sqlite::SqliteRow, sqlx::postgres::PgRow);

fn user_from(row: &impl Columns) -> User {
    User {
        id: row.int(0) as u64,
        handle: row.text(1),
    }
}

fn space_from(row: &impl Columns) -> SpaceRecord {
    SpaceRecord {
        id: row.text(0),
        host_id: row.int(1) as u64,
        title: row.text(2),
        state: row.text(3),
        starts_at: row.maybe_int(4),
        created_at: row.int(5),
    }
}

fn conflict(e: sqlx::Error, what: &'static str) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what),
        _ => StoreError::Database(e),
    }
}

// Declared after the macros and helpers above, which they use.
mod alerts;
mod moderation;
mod social;

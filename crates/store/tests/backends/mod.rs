//! The backends the store's tests run against: a SQLite file always, and PostgreSQL when
//! `STENTOR_TEST_DATABASE_URL` names a server (`.ci/run` sets it). Each test gets a fresh,
//! empty database of its own; a PostgreSQL server that is named but cannot be reached fails
//! the test, never skips it.

use std::path::PathBuf;
use stentor_store::testing;

/// Where a test's database lives.
pub enum Fresh {
    /// A SQLite file in a directory of its own.
    Sqlite(PathBuf),
    /// A PostgreSQL database of its own.
    Postgres {
        url: String,
        admin: String,
        tag: String,
    },
}

impl Fresh {
    /// The URL to open the store with.
    pub fn url(&self) -> String {
        match self {
            Fresh::Sqlite(dir) => format!("sqlite://{}", dir.join("stentor.db").display()),
            Fresh::Postgres { url, .. } => url.clone(),
        }
    }

    /// Which backend this is, as the store names it.
    pub fn backend(&self) -> &'static str {
        match self {
            Fresh::Sqlite(_) => "sqlite",
            Fresh::Postgres { .. } => "postgres",
        }
    }

    /// Removes the database.
    pub async fn remove(self) {
        match self {
            Fresh::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Fresh::Postgres { admin, tag, .. } => {
                testing::drop_postgres(&admin, &tag).await.unwrap();
            }
        }
    }
}

/// A fresh database of every backend under test, for the test `name`.
pub async fn fresh(name: &str) -> Vec<Fresh> {
    let tag = format!("{name}_{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("stentor-store-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut all = vec![Fresh::Sqlite(dir)];
    if let Ok(admin) = std::env::var(testing::DATABASE_URL_VAR) {
        let url = testing::fresh_postgres(&admin, &tag)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{} is set but its server cannot be used: {e}",
                    testing::DATABASE_URL_VAR
                )
            });
        all.push(Fresh::Postgres { url, admin, tag });
    }
    all
}

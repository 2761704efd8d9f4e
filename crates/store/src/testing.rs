//! Databases for tests: a fresh PostgreSQL database of a test's own on the server that
//! `STENTOR_TEST_DATABASE_URL` names, and its removal. Not for production use.

use sqlx::Connection;

/// The variable that names a PostgreSQL server to test against (a URL with a database the
/// tests may connect to, e.g. `postgres://postgres@127.0.0.1:5432/test`).
pub const DATABASE_URL_VAR: &str = "STENTOR_TEST_DATABASE_URL";

/// A fresh, empty database named `stentor_{tag}` on the server of `admin` (dropped first if
/// a run before left it), and its URL.
pub async fn fresh_postgres(admin: &str, tag: &str) -> Result<String, sqlx::Error> {
    let name = database_name(tag);
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(&statement).execute(&mut conn).await?;
    }
    let (base, query) = admin.split_once('?').unwrap_or((admin, ""));
    let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
    Ok(if query.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{query}")
    })
}

/// Drops the database [`fresh_postgres`] made for `tag`.
pub async fn drop_postgres(admin: &str, tag: &str) -> Result<(), sqlx::Error> {
    let mut conn = sqlx::PgConnection::connect(admin).await?;
    let name = database_name(tag);
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await?;
    Ok(())
}

/// A database name from `tag`: lower-case letters, digits and underscores only.
fn database_name(tag: &str) -> String {
    let clean: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("stentor_{clean}")
}

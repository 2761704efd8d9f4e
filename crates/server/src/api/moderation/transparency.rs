//! The public transparency exports: the Transparency Database payloads a page at a time, the
//! report per category and ground (within a budget), and the exporter's progress for moderators.

use super::{PAGE, bad, event_of, moderator, now_ms};
use crate::api::Json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use stentor_moderation::log::Event;
use stentor_moderation::statement::{self};

/// `GET /api/v1/transparency/statements` query.
#[derive(Deserialize)]
pub struct StatementsQuery {
    /// After this decision (the `next` of the page before) [default: from the first].
    after: Option<u64>,
    /// At most this many, 1 to 1000 [default: 1000].
    limit: Option<u32>,
}

/// `GET /api/v1/transparency/statements`: the statements as the Transparency Database takes
/// them, without personal data, `puid` stable, a page at a time, oldest first.
pub async fn transparency_statements(
    State(state): State<AppState>,
    Query(q): Query<StatementsQuery>,
) -> Result<Json<Value>, ApiError> {
    let platform = state.config.platform();
    let limit = q.limit.unwrap_or(PAGE).clamp(1, PAGE);
    let entries = state
        .store
        .moderation_decisions(q.after.unwrap_or(0), limit)
        .await?;
    let mut statements = Vec::with_capacity(entries.len());
    for e in &entries {
        if let Event::Decision(d) = event_of(e)? {
            statements.push(statement::tdb_payload(&platform, e.seq, e.at_ms, &d));
        }
    }
    let next = entries
        .last()
        .filter(|_| entries.len() == limit as usize)
        .map(|e| e.seq);
    Ok(Json(
        serde_json::json!({ "statements": statements, "next": next }),
    ))
}

/// `GET /api/v1/transparency/report` query.
#[derive(Deserialize)]
pub struct ReportQuery {
    /// From this day (`Y-m-d`, UTC), inclusive [default: the first of this month].
    from: Option<String>,
    /// To this day, exclusive [default: tomorrow].
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

fn day_ms(text: &str) -> Result<i64, ApiError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).map_err(|_| bad("dates are YYYY-MM-DD"))?;
    Ok(date.midnight().assume_utc().unix_timestamp() * 1000)
}

/// `GET /api/v1/transparency/report`: per category and ground over a period, recomputed from
/// the log: notices, decisions by type, automated share, median time to decision, appeals,
/// reversals and their rate; JSON or CSV.
pub async fn transparency_report(
    State(state): State<AppState>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let today = stentor_moderation::tdb::ymd(now);
    let from = q.from.unwrap_or_else(|| format!("{}-01", &today[..7]));
    let to =
        q.to.unwrap_or_else(|| stentor_moderation::tdb::ymd(now + 86_400_000));
    let (from_ms, to_ms) = (day_ms(&from)?, day_ms(&to)?);
    if to_ms <= from_ms {
        return Err(bad("the period ends before it starts"));
    }
    let rows = state
        .reports
        .report(&state.store, from_ms, to_ms)
        .await
        .map_err(|e| match e {
            crate::transparency::ReportError::Busy => ApiError::Overloaded {
                reason: "report_busy",
                retry_after: 5,
            },
            crate::transparency::ReportError::Store(e) => e.into(),
            e @ crate::transparency::ReportError::Unreadable(..) => {
                ApiError::Internal(e.to_string())
            }
        })?;
    let rows: &[stentor_moderation::report::Row] = &rows;
    match q.format.as_deref() {
        Some("csv") => Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"transparency-report.csv\"",
                ),
            ],
            stentor_moderation::report::csv(rows, &from, &to),
        )
            .into_response()),
        None | Some("json") => Ok(axum::Json(serde_json::json!({
            "from": from, "to": to, "rows": rows,
        }))
        .into_response()),
        Some(_) => Err(bad("format: json or csv")),
    }
}

/// `GET /api/v1/moderation/exports`: how far the submission to the Transparency Database has
/// come, and the statements it refused with the reasons.
pub async fn exports(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    moderator(&state, caller).await?;
    let counts = state.store.tdb_counts().await?;
    let refused = state.store.tdb_refused(100).await?;
    Ok(Json(serde_json::json!({
        "endpoint": state.config.moderation.tdb_url.as_ref().filter(|_| !state.config.small_enterprise()),
        "sent": counts.sent,
        "existing": counts.existing,
        "invalid": counts.invalid,
        "pending": counts.pending,
        "refused": refused.iter().map(|e| serde_json::json!({
            "decision": e.decision, "puid": e.puid, "at": e.at_ms, "reason": e.detail,
        })).collect::<Vec<_>>(),
    })))
}

//! Alerts: who listened to whose Spaces (to ask the likeliest first), reminders, the alert
//! campaigns of Spaces going live or about to start, their paced sending, and Web Push
//! subscriptions.
//!
//! A campaign's recipients are listed once, in one transaction; each send marks its
//! recipients sent and adds their notifications in one transaction, so a worker killed at any
//! moment leaves every alert either sent once or still to send.

use super::social::id_list;
use super::{Columns, Pool, Store, StoreError};

/// An alert campaign: a Space, a kind (`live`, `soon`, `start`) and its listed recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// The Space.
    pub space_id: String,
    /// `live` (the host went live), `soon` (30 minutes before the announced start) or
    /// `start` (the announced start).
    pub kind: String,
    /// The host.
    pub host_id: u64,
    /// Recipients listed.
    pub total: u64,
}

/// A browser's Web Push subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSubscription {
    /// The push service's endpoint for this browser.
    pub endpoint: String,
    /// Its account.
    pub user_id: u64,
    /// The browser's P-256 public key (base64url).
    pub p256dh: String,
    /// The browser's authentication secret (base64url).
    pub auth: String,
}

/// Seconds before an announced start that the `soon` reminder goes out.
pub const SOON_SECS: i64 = 30 * 60;

impl Store {
    /// Remembers that each `(listener, host)` listened to a Space of the host at `now`.
    pub async fn record_listens(&self, listens: &[(u64, u64)], now: i64) -> Result<(), StoreError> {
        on!(self, |pool| {
            let mut tx = pool.begin().await?;
            for &(user, host) in listens {
                sqlx::query(
                    "INSERT INTO listens (user_id, host_id, last_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, host_id) DO UPDATE SET last_at = excluded.last_at",
                )
                .bind(user as i64)
                .bind(host as i64)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// "Remind me" (`on`) or not for `user` on `space`.
    pub async fn set_reminder(
        &self,
        space: &str,
        user: u64,
        on: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        on!(self, |pool| {
            if on {
                sqlx::query(
                    "INSERT INTO reminders (space_id, user_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(space)
                .bind(user as i64)
                .bind(now)
                .execute(pool)
                .await?;
            } else {
                sqlx::query("DELETE FROM reminders WHERE space_id = $1 AND user_id = $2")
                    .bind(space)
                    .bind(user as i64)
                    .execute(pool)
                    .await?;
            }
        });
        Ok(())
    }

    /// Whether `user` asked to be reminded of `space`.
    pub async fn has_reminder(&self, space: &str, user: u64) -> Result<bool, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT EXISTS (SELECT 1 FROM reminders WHERE space_id = $1 AND user_id = $2)",
            )
            .bind(space)
            .bind(user as i64)
            .fetch_one(pool)
            .await?
            .flag(0)
        }))
    }

    /// The campaign of `kind` for `space`, listing its recipients first if nobody has: for
    /// `live`, the host's followers who asked for its live alerts, as far as the host lets
    /// them (followers, mutuals, nobody); for `soon` and `start`, those who asked to be
    /// reminded. Ranked by when they last listened to the host (the likeliest to come
    /// first). `None` when the Space is gone or ended.
    pub async fn list_campaign(
        &self,
        space: &str,
        kind: &str,
        now: i64,
    ) -> Result<Option<Campaign>, StoreError> {
        on!(self, |pool| {
            let mut tx = pool.begin().await?;
            let listed = sqlx::query(
                "SELECT host_id, total FROM campaigns WHERE space_id = $1 AND kind = $2",
            )
            .bind(space)
            .bind(kind)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = listed {
                return Ok(Some(Campaign {
                    space_id: space.to_owned(),
                    kind: kind.to_owned(),
                    host_id: row.int(0) as u64,
                    total: row.int(1) as u64,
                }));
            }
            let found = sqlx::query(
                "SELECT s.host_id, s.state, u.alerts_from FROM spaces s \
                 JOIN users u ON u.id = s.host_id WHERE s.id = $1",
            )
            .bind(space)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(found) = found else { return Ok(None) };
            let (host, state, audience) = (found.int(0), found.text(1), found.text(2));
            if state == "ended" {
                return Ok(None);
            }
            let recipients = if kind == "live" {
                let back = match audience.as_str() {
                    "followers" => "TRUE",
                    "mutuals" => {
                        "EXISTS (SELECT 1 FROM follows b WHERE b.follower_id = f.followee_id \
                         AND b.followee_id = f.follower_id)"
                    }
                    _ => "FALSE",
                };
                format!(
                    "SELECT $1, $2, f.follower_id, COALESCE(l.last_at, 0) FROM follows f \
                     LEFT JOIN listens l ON l.user_id = f.follower_id AND l.host_id = $3 \
                     WHERE f.followee_id = $3 AND f.alerts AND {back}"
                )
            } else {
                "SELECT $1, $2, r.user_id, COALESCE(l.last_at, 0) FROM reminders r \
                 LEFT JOIN listens l ON l.user_id = r.user_id AND l.host_id = $3 \
                 WHERE r.space_id = $1"
                    .to_owned()
            };
            let total = sqlx::query(&format!(
                "INSERT INTO alerts (space_id, kind, user_id, rank) {recipients} \
                 ON CONFLICT DO NOTHING"
            ))
            .bind(space)
            .bind(kind)
            .bind(host)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                "INSERT INTO campaigns (space_id, kind, host_id, listed_at, total) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(space)
            .bind(kind)
            .bind(host)
            .bind(now)
            .bind(total as i64)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(Campaign {
                space_id: space.to_owned(),
                kind: kind.to_owned(),
                host_id: host as u64,
                total,
            }))
        })
    }

    /// Sends up to `most` of a campaign's alerts, the likeliest recipients first: marks them
    /// sent and adds each recipient's notification, in one transaction. Answers the
    /// recipients. On PostgreSQL, workers on several nodes never take the same ones.
    pub async fn send_alerts(
        &self,
        campaign: &Campaign,
        most: u32,
        now_ms: i64,
    ) -> Result<Vec<u64>, StoreError> {
        if most == 0 {
            return Ok(Vec::new());
        }
        let lock = match self.pool {
            Pool::Postgres(_) => "FOR UPDATE SKIP LOCKED",
            Pool::Sqlite(_) => "",
        };
        let pick = format!(
            "UPDATE alerts SET sent_at = $4 WHERE space_id = $1 AND kind = $2 AND user_id IN \
             (SELECT user_id FROM alerts WHERE space_id = $1 AND kind = $2 AND sent_at IS NULL \
              ORDER BY rank DESC, user_id LIMIT $3 {lock}) RETURNING user_id"
        );
        let (notice_kind, group) = if campaign.kind == "live" {
            ("live", format!("live:{}", campaign.space_id))
        } else {
            (
                "reminder",
                format!("reminder:{}:{}", campaign.space_id, campaign.kind),
            )
        };
        let sent: Vec<u64> = on!(self, |pool| {
            let mut tx = pool.begin().await?;
            let sent: Vec<i64> = sqlx::query_scalar(&pick)
                .bind(&campaign.space_id)
                .bind(&campaign.kind)
                .bind(i64::from(most))
                .bind(now_ms)
                .fetch_all(&mut *tx)
                .await?;
            let mut sent: Vec<u64> = sent.into_iter().map(|u| u as u64).collect();
            sent.sort_unstable();
            if !sent.is_empty() {
                let insert = format!(
                    "INSERT INTO notifications \
                     (user_id, group_key, kind, actor_id, post_id, space_id, count, at_ms, read) \
                     SELECT u.id, $1, $2, $3, NULL, $4, 1, $5, FALSE FROM users u \
                     WHERE u.id IN ({}) \
                     ON CONFLICT (user_id, group_key) DO UPDATE SET at_ms = excluded.at_ms, \
                     read = FALSE",
                    id_list(&sent)
                );
                sqlx::query(&insert)
                    .bind(&group)
                    .bind(notice_kind)
                    .bind(campaign.host_id as i64)
                    .bind(&campaign.space_id)
                    .bind(now_ms)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            sent
        });
        Ok(sent)
    }

    /// A campaign's alerts not sent yet.
    pub async fn alerts_left(&self, campaign: &Campaign) -> Result<u64, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT COUNT(*) FROM alerts WHERE space_id = $1 AND kind = $2 \
                 AND sent_at IS NULL",
            )
            .bind(&campaign.space_id)
            .bind(&campaign.kind)
            .fetch_one(pool)
            .await?
            .int(0) as u64
        }))
    }

    /// Alerts of a campaign sent to `user` (0 or 1: what the tests of exactly-once read).
    pub async fn alerts_sent_to(&self, space: &str, user: u64) -> Result<u64, StoreError> {
        Ok(on!(self, |pool| {
            sqlx::query(
                "SELECT COUNT(*) FROM alerts WHERE space_id = $1 AND user_id = $2 \
                 AND sent_at IS NOT NULL",
            )
            .bind(space)
            .bind(user as i64)
            .fetch_one(pool)
            .await?
            .int(0) as u64
        }))
    }

    /// Keeps a job leased to its worker until `lease_until`.
    pub async fn renew_job(&self, id: u64, lease_until: i64) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query("UPDATE jobs SET lease_until = $1 WHERE id = $2")
                .bind(lease_until)
                .bind(id as i64)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Ends a job.
    pub async fn finish_job(&self, id: u64) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query("DELETE FROM jobs WHERE id = $1")
                .bind(id as i64)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Adds a job to do at `run_at` unless one of that kind and subject waits already.
    pub async fn add_job(&self, kind: &str, subject: &str, run_at: i64) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query(
                "INSERT INTO jobs (kind, subject, run_at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(kind)
            .bind(subject)
            .bind(run_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Stores (or renews) a browser's push subscription for `user`.
    pub async fn add_push_subscription(
        &self,
        sub: &PushSubscription,
        now: i64,
    ) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query(
                "INSERT INTO push_subscriptions (endpoint, user_id, p256dh, auth, created_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (endpoint) DO UPDATE SET \
                 user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth",
            )
            .bind(&sub.endpoint)
            .bind(sub.user_id as i64)
            .bind(&sub.p256dh)
            .bind(&sub.auth)
            .bind(now)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// Forgets a push subscription (the browser left, or its push service said it is gone).
    pub async fn remove_push_subscription(&self, endpoint: &str) -> Result<(), StoreError> {
        on!(self, |pool| {
            sqlx::query("DELETE FROM push_subscriptions WHERE endpoint = $1")
                .bind(endpoint)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The push subscriptions of `users`.
    pub async fn push_subscriptions(
        &self,
        users: &[u64],
    ) -> Result<Vec<PushSubscription>, StoreError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let query = format!(
            "SELECT endpoint, user_id, p256dh, auth FROM push_subscriptions \
             WHERE user_id IN ({})",
            id_list(users)
        );
        Ok(on!(self, |pool| {
            sqlx::query(&query)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| PushSubscription {
                    endpoint: row.text(0),
                    user_id: row.int(1) as u64,
                    p256dh: row.text(2),
                    auth: row.text(3),
                })
                .collect()
        }))
    }
}

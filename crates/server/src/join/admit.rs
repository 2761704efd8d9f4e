//! Admission of a listener or a person on stage to a Space's media: the ticket, the Space's
//! rules, shedding, the listener budget, proof of work; the same for the door and the HTTP
//! server.

use crate::clock::unix_now;
use crate::error::ApiError;
use crate::listen::sink::Place;
use crate::origin::LiveSpace;
use crate::state::AppState;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use stentor_gate::capacity::Slot;
use stentor_gate::shed::{Class, retry_after};
use stentor_gate::ticket::Ticket;
use stentor_space::{Lifecycle, Role, UserId};
use stentor_store::User;

/// The one door to a Space's media: a valid ticket for this Space, held by someone who may
/// join it. Needs no database read when the Space is loaded.
pub async fn admit(
    state: &AppState,
    space: &str,
    ticket: Option<&str>,
) -> Result<(Ticket, Arc<LiveSpace>), ApiError> {
    let token = ticket.ok_or_else(|| ApiError::Unauthorized("a join ticket is required".into()))?;
    let ticket = state.tickets.verify(token, space, unix_now())?;
    state
        .revocations
        .lock()
        .check(&ticket, state.config.ticket_ttl_secs())?;
    let live = state.spaces.get(space).await?;
    let role = live.with_domain(|d| d.may_join(ticket.user).map(|()| d.role_of(ticket.user)))?;
    shed_join(state, role)?;
    Ok((ticket, live))
}

/// Refuses a listener's join while joins are shed; people on stage are never refused.
pub fn shed_join(state: &AppState, role: Role) -> Result<(), ApiError> {
    if role.is_speaker() || !state.overload.sheds(Class::Join) {
        return Ok(());
    }
    Err(ApiError::Overloaded {
        reason: "shed_joins",
        retry_after: retry_after(Class::Join, rand::random()),
    })
}

/// A place for a media connection: a listener gets a counted slot while the budget lasts;
/// people on stage are never refused and need none (the reserve covers them).
pub fn slot(
    state: &AppState,
    space: &LiveSpace,
    user: Option<u64>,
) -> Result<Option<Slot>, ApiError> {
    let on_stage = user.is_some_and(|u| space.with_domain(|d| d.role_of(u).is_speaker()));
    if on_stage {
        return Ok(None);
    }
    match state.capacity.try_acquire() {
        Some(slot) => Ok(Some(slot)),
        None => Err(ApiError::Unavailable {
            retry_after: 2 + rand::random::<u64>() % 8,
        }),
    }
}

/// The place of an admitted connection: its slot, and for a moderator listening unseen, its
/// mark off the Space's count.
fn place(
    state: &AppState,
    space: &LiveSpace,
    user: Option<u64>,
    unseen: bool,
) -> Result<Place, ApiError> {
    Ok(Place {
        slot: slot(state, space, user)?,
        unseen: unseen.then(|| space.unseen()),
    })
}

/// Counts a media connection as a join on `transport`, or a rejection by reason.
pub fn count<T>(state: &AppState, transport: &'static str, result: &Result<T, ApiError>) {
    match result {
        Ok(_) => state.metrics.join(transport),
        Err(e) => state.metrics.reject(e.reason()),
    }
}

/// Admits a WebSocket: a valid ticket, then a place in the budget (always for the stage).
pub async fn admit_websocket(
    state: &AppState,
    space: &str,
    ticket: Option<&str>,
) -> Result<(UserId, Arc<LiveSpace>, Place), ApiError> {
    let (ticket, space) = admit(state, space, ticket).await?;
    let place = place(state, &space, Some(ticket.user), ticket.unseen)?;
    Ok((ticket.user, space, place))
}

/// Admits an Ogg listener: a ticket, or nothing where anonymous listening is on (players
/// cannot fetch tickets, so there the URL alone will do); then a slot in the budget.
pub async fn admit_listener(
    state: &AppState,
    id: &str,
    ticket: Option<&str>,
) -> Result<(Arc<LiveSpace>, Option<UserId>, Place), ApiError> {
    let (space, user, unseen) = if ticket.is_none() && state.config.allow_anonymous() {
        let space = state.spaces.get(id).await?;
        if space.with_domain(|d| d.lifecycle()) == Lifecycle::Ended {
            return Err(ApiError::Gone);
        }
        (space, None, false)
    } else {
        let (ticket, space) = admit(state, id, ticket).await?;
        (space, Some(ticket.user), ticket.unseen)
    };
    let place = place(state, &space, user, unseen)?;
    Ok((space, user, place))
}

/// A join ticket as issued.
#[derive(Serialize)]
pub struct TicketView {
    /// The signed ticket.
    pub ticket: String,
    /// The holder.
    pub user: UserId,
    /// The holder's role.
    pub role: Role,
    /// Expiry, Unix seconds.
    pub expires_at: u64,
}

/// A proof of work sent with a ticket request, if any.
#[derive(Debug, Default, Deserialize)]
pub struct WorkQuery {
    challenge: Option<String>,
    nonce: Option<u64>,
}

impl WorkQuery {
    /// The solution, when both parts are there.
    pub fn work(self) -> Option<stentor_gate::pow::Work> {
        Some(stentor_gate::pow::Work {
            challenge: self.challenge?,
            nonce: self.nonce?,
        })
    }
}

/// A join ticket for `caller` (an anonymous listener when `None`) in Space `id`; in
/// under-attack mode a listener's costs the proof of `work`. `unseen`: a platform moderator
/// listening in, whose listening is not recorded.
pub fn grant(
    state: &AppState,
    space: &LiveSpace,
    id: &str,
    caller: Option<&User>,
    work: Option<&stentor_gate::pow::Work>,
    unseen: bool,
) -> Result<TicketView, ApiError> {
    let user = match caller {
        Some(u) => {
            space.remember_name(u.id, &u.handle);
            // Who listens to whom: their live alerts go out first.
            let host = space.with_domain(|d| d.host());
            if host != u.id && !unseen {
                state.social.engagement.listened(u.id, host);
            }
            u.id
        }
        None if state.config.allow_anonymous() => anonymous_id(),
        None => return Err(ApiError::Unauthorized("sign in to listen".into())),
    };
    let role = space.with_domain(|d| d.may_join(user).map(|()| d.role_of(user)))?;
    shed_join(state, role)?;
    if !role.is_speaker() && state.overload.under_attack() {
        state
            .proofs
            .demand(
                &state.tickets,
                id,
                state.overload.pressure(),
                work,
                unix_now(),
            )
            .map_err(ApiError::WorkRequired)?;
    }
    let mut ticket = state.issue_ticket(id, user, role);
    ticket.unseen = unseen;
    Ok(TicketView {
        ticket: state.tickets.sign(&ticket),
        user,
        role,
        expires_at: ticket.exp,
    })
}

/// Anonymous listeners get ids of 2^52 and above, so they never collide with accounts.
pub fn anonymous_id() -> UserId {
    // From 2^52 up to (not including) 2^53: exact as a JavaScript number, and far above
    // any account id.
    (rand::random::<u64>() >> 12) | (1 << 52)
}

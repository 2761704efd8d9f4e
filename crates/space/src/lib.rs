//! stentor-space: the state machine of one Space — lifecycle, roles, permissions, hands,
//! mutes and reactions — with no I/O and no clock.
//!
//! Driving contract (see [`Space`]): the shell feeds every participant command to
//! [`Space::handle`] with the current `now`; a refused command returns a typed [`Refusal`]
//! and changes nothing. Accepted commands queue [`Event`]s, which the shell drains with
//! [`Space::poll_event`] and sends to participants. Reactions are aggregated per window: the
//! shell calls [`Space::poll_event`] again at [`Space::poll_timeout`].

mod permissions;
mod reactions;
mod space;

pub use permissions::{Action, required_rank};
pub use reactions::{REACTIONS, ReactionWindow};
pub use space::{REACTION_WINDOW, Space, StageMember};

use serde::{Deserialize, Serialize};

/// Identifies a user (an account, or an anonymous listener).
pub type UserId = u64;

/// The platform's moderators acting on a Space (no account has this id): they may mute or
/// remove anyone but the host, end the Space, and lift their own measures ([`Command::Lift`]);
/// a speaker they muted cannot unmute until they lift it.
pub const PLATFORM: UserId = 0;

/// A participant's role. Everyone not on stage is a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Listens only (the default for everyone who joins).
    Listener,
    /// May publish audio.
    Speaker,
    /// A speaker who may also moderate.
    CoHost,
    /// Owns the Space; exactly one.
    Host,
}

impl Role {
    /// Whether this role may publish audio.
    pub fn is_speaker(self) -> bool {
        self >= Role::Speaker
    }
}

/// Where a Space is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Announced, not started: people may wait in the lobby.
    Scheduled,
    /// On air.
    Live,
    /// Over; nothing more happens.
    Ended,
}

/// Limits of one Space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Co-hosts besides the host (default 2).
    pub max_cohosts: usize,
    /// Speakers besides the host and co-hosts (default 10).
    pub max_speakers: usize,
    /// Reactions one user may send per window (default 5); more are dropped.
    pub reactions_per_user: u32,
    /// Raised hands waiting at once (default 100): every moderator sees them all, and a
    /// person joining is told them, so they are bounded; past it, a request is refused.
    pub max_hands: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_cohosts: 2,
            max_speakers: 10,
            reactions_per_user: 5,
            max_hands: 100,
        }
    }
}

/// A command from a participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Ask the moderators for the microphone.
    RequestToSpeak,
    /// Withdraw a request to speak.
    CancelRequest,
    /// Moderator: invite a listener to speak.
    Invite {
        /// The listener invited.
        user: UserId,
    },
    /// Accept an invitation to speak.
    AcceptInvite,
    /// Moderator: grant a request to speak.
    Approve {
        /// The listener whose request is granted.
        user: UserId,
    },
    /// Moderator: refuse a request to speak.
    Deny {
        /// The listener whose request is refused.
        user: UserId,
    },
    /// Move a speaker back to the audience (a moderator, or the speaker themself).
    MoveToListener {
        /// The speaker moved.
        user: UserId,
    },
    /// Mute one's own microphone.
    MuteSelf,
    /// Unmute one's own microphone.
    UnmuteSelf,
    /// Moderator: mute a speaker (only the speaker can unmute).
    Mute {
        /// The speaker muted.
        user: UserId,
    },
    /// Moderator: mute every speaker but oneself.
    MuteAll,
    /// Moderator: remove a participant, who cannot rejoin.
    Remove {
        /// The participant removed.
        user: UserId,
    },
    /// Host: make a speaker or listener a co-host.
    Promote {
        /// The user promoted.
        user: UserId,
    },
    /// Host: make a co-host a plain speaker.
    Demote {
        /// The co-host demoted.
        user: UserId,
    },
    /// Host: go live.
    Start,
    /// Host: end the Space.
    End,
    /// Host: turn the recording on or off (before the start or while live).
    Record {
        /// Record from now on?
        on: bool,
    },
    /// The platform only: lift its mute of a speaker, or its removal of a participant (after
    /// a reversal).
    Lift {
        /// Whose measure.
        user: UserId,
    },
    /// Send an emoji reaction.
    React {
        /// One of [`REACTIONS`].
        emoji: String,
    },
}

impl Command {
    /// The user a command acts on, if it names one.
    pub fn target(&self) -> Option<UserId> {
        match self {
            Command::Invite { user }
            | Command::Approve { user }
            | Command::Deny { user }
            | Command::MoveToListener { user }
            | Command::Mute { user }
            | Command::Remove { user }
            | Command::Promote { user }
            | Command::Demote { user }
            | Command::Lift { user } => Some(*user),
            _ => None,
        }
    }
}

/// Something that happened, to be told to participants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The Space went live.
    Started,
    /// The Space ended.
    Ended,
    /// A user's role changed (the shell issues them a new join ticket).
    RoleChanged {
        /// Whose role.
        user: UserId,
        /// The new role.
        role: Role,
    },
    /// A listener raised their hand.
    HandRaised {
        /// Who.
        user: UserId,
    },
    /// A hand was lowered (cancelled, denied or granted).
    HandLowered {
        /// Who.
        user: UserId,
    },
    /// A listener was invited to speak.
    Invited {
        /// Who.
        user: UserId,
        /// By whom.
        by: UserId,
    },
    /// A speaker's microphone was muted or unmuted.
    MuteChanged {
        /// Whose microphone.
        user: UserId,
        /// Muted now?
        muted: bool,
        /// Who did it.
        by: UserId,
    },
    /// A participant was removed and may not come back.
    Removed {
        /// Who.
        user: UserId,
    },
    /// The platform's moderators hold a speaker muted (they cannot unmute), or let go.
    Held {
        /// Whose microphone.
        user: UserId,
        /// Held now?
        held: bool,
    },
    /// A participant removed by the platform may come back (the removal was reversed).
    Readmitted {
        /// Who.
        user: UserId,
    },
    /// The host turned the recording on or off.
    RecordingChanged {
        /// Recording now?
        on: bool,
    },
    /// Reactions of the last window, counted per emoji.
    Reactions {
        /// (emoji, count), in the order of [`REACTIONS`].
        counts: Vec<(String, u64)>,
    },
}

/// Why a command was refused. Every refusal names its reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The actor's role does not allow this command.
    #[error("a {role:?} may not {action:?}")]
    NotPermitted {
        /// The actor's role.
        role: Role,
        /// What was attempted.
        action: Action,
    },
    /// The command needs the Space to be live.
    #[error("the space is not live")]
    NotLive,
    /// The Space has ended.
    #[error("the space has ended")]
    Ended,
    /// The Space is already live.
    #[error("the space is already live")]
    AlreadyLive,
    /// The actor was removed from this Space.
    #[error("removed from this space")]
    Removed,
    /// The target is not in a state the command applies to.
    #[error("the target is not {0}")]
    BadTarget(&'static str),
    /// The target outranks or equals the actor.
    #[error("cannot act on a participant of equal or higher rank")]
    Outranked,
    /// No room for another speaker.
    #[error("speaker limit reached ({0})")]
    SpeakerLimit(usize),
    /// No room for another co-host.
    #[error("co-host limit reached ({0})")]
    CoHostLimit(usize),
    /// Too many requests to speak are waiting.
    #[error("{0} requests to speak are waiting already; try again later")]
    HandLimit(usize),
    /// No pending request or invitation.
    #[error("no pending {0}")]
    NothingPending(&'static str),
    /// Unknown emoji.
    #[error("unknown reaction")]
    UnknownReaction,
    /// The platform's moderators muted this speaker; only they can lift it.
    #[error("muted by the platform's moderators: see the statement in your notifications")]
    HeldByModerators,
}

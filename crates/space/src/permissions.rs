//! The one permission table: which role may do what.

use crate::{Command, Role};
use serde::Serialize;

/// The kind of a command, for permission checks and refusal messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum Action {
    RequestToSpeak,
    CancelRequest,
    Invite,
    AcceptInvite,
    Approve,
    Deny,
    MoveToListener,
    MoveSelfToListener,
    MuteSelf,
    UnmuteSelf,
    Mute,
    MuteAll,
    Remove,
    Promote,
    Demote,
    Start,
    End,
    Record,
    React,
    Lift,
}

impl Action {
    /// The action a command performs when sent by `actor`.
    pub fn of(command: &Command, actor: crate::UserId) -> Self {
        match command {
            Command::RequestToSpeak => Self::RequestToSpeak,
            Command::CancelRequest => Self::CancelRequest,
            Command::Invite { .. } => Self::Invite,
            Command::AcceptInvite => Self::AcceptInvite,
            Command::Approve { .. } => Self::Approve,
            Command::Deny { .. } => Self::Deny,
            Command::MoveToListener { user } if *user == actor => Self::MoveSelfToListener,
            Command::MoveToListener { .. } => Self::MoveToListener,
            Command::MuteSelf => Self::MuteSelf,
            Command::UnmuteSelf => Self::UnmuteSelf,
            Command::Mute { .. } => Self::Mute,
            Command::MuteAll => Self::MuteAll,
            Command::Remove { .. } => Self::Remove,
            Command::Promote { .. } => Self::Promote,
            Command::Demote { .. } => Self::Demote,
            Command::Start => Self::Start,
            Command::End => Self::End,
            Command::Record { .. } => Self::Record,
            Command::React { .. } => Self::React,
            Command::Lift { .. } => Self::Lift,
        }
    }
}

/// The permission table: the lowest role allowed to perform `action`, and the highest
/// (for actions only the audience takes, such as raising a hand).
pub fn required_rank(action: Action) -> (Role, Role) {
    use Action::*;
    use Role::*;
    match action {
        RequestToSpeak | CancelRequest | AcceptInvite => (Listener, Listener),
        React => (Listener, Host),
        MuteSelf | UnmuteSelf => (Speaker, Host),
        MoveSelfToListener => (Speaker, CoHost),
        Invite | Approve | Deny | MoveToListener | Mute | MuteAll | Remove => (CoHost, Host),
        Promote | Demote | Start | End | Record => (Host, Host),
        // Nobody in the Space: only the platform (see [`platform_may`]).
        Lift => (Host, Listener),
    }
}

/// What the platform's moderators ([`crate::PLATFORM`]) may do in any Space, whatever its
/// host allows: mute, remove, end, and lift their own measures.
pub fn platform_may(action: Action) -> bool {
    matches!(
        action,
        Action::Mute | Action::Remove | Action::End | Action::Lift
    )
}

/// Whether `role` may perform `action`.
pub fn permits(role: Role, action: Action) -> bool {
    let (lowest, highest) = required_rank(action);
    role >= lowest && role <= highest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_host_starts_ends_and_promotes() {
        for action in [Action::Start, Action::End, Action::Promote, Action::Demote] {
            assert!(permits(Role::Host, action));
            assert!(!permits(Role::CoHost, action));
            assert!(!permits(Role::Listener, action));
        }
    }

    #[test]
    fn moderation_is_for_hosts_and_cohosts_only() {
        assert!(permits(Role::CoHost, Action::Mute));
        assert!(!permits(Role::Speaker, Action::Mute));
        assert!(!permits(Role::Listener, Action::Remove));
        assert!(!permits(Role::Host, Action::RequestToSpeak));
        assert!(!permits(Role::Host, Action::MoveSelfToListener));
    }
}

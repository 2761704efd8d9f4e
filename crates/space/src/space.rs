//! The Space state machine.

use crate::permissions::{Action, permits, platform_may};
use crate::reactions::ReactionWindow;
use crate::{Command, Event, Lifecycle, Limits, PLATFORM, Refusal, Role, UserId};
use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// A member of the stage (host, co-host or speaker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageMember {
    /// Host, co-host or speaker.
    pub role: Role,
    /// Whether their microphone is muted.
    pub muted: bool,
}

/// One Space: who is on stage, who asked to speak, who was removed, and where it is in its life.
///
/// Only the stage is stored per user: everyone else is a listener, so the state stays small
/// however large the audience. Driving contract:
/// 1. [`Space::handle`] for each command, with `now`. `Err` means nothing changed.
/// 2. [`Space::poll_event`] until `None`, sending the events to participants.
/// 3. Wake at [`Space::poll_timeout`] (reaction windows) and poll again.
///
/// Queries ([`Space::role_of`], [`Space::may_publish`], ...) can be made at any time.
#[derive(Debug)]
pub struct Space {
    host: UserId,
    lifecycle: Lifecycle,
    limits: Limits,
    stage: BTreeMap<UserId, StageMember>,
    hands: BTreeSet<UserId>,
    invited: BTreeSet<UserId>,
    removed: HashSet<UserId>,
    /// Speakers the platform's moderators hold muted.
    held: BTreeSet<UserId>,
    reactions: ReactionWindow,
    recording: bool,
    events: VecDeque<Event>,
}

/// Length of a reaction window.
pub const REACTION_WINDOW: Duration = Duration::from_millis(500);

impl Space {
    /// A scheduled Space owned by `host`.
    pub fn new(host: UserId, limits: Limits) -> Self {
        let mut stage = BTreeMap::new();
        stage.insert(
            host,
            StageMember {
                role: Role::Host,
                muted: false,
            },
        );
        Self {
            host,
            lifecycle: Lifecycle::Scheduled,
            limits,
            stage,
            hands: BTreeSet::new(),
            invited: BTreeSet::new(),
            removed: HashSet::new(),
            held: BTreeSet::new(),
            reactions: ReactionWindow::new(REACTION_WINDOW, limits.reactions_per_user),
            recording: true,
            events: VecDeque::new(),
        }
    }

    /// Rebuilds a Space from stored state: roles, who is muted, open invitations and
    /// removals as persisted. Hands are not: they come down when their owners' connections
    /// close, as every connection does when a node restarts.
    pub fn restore(
        host: UserId,
        limits: Limits,
        lifecycle: Lifecycle,
        stage: impl IntoIterator<Item = (UserId, Role, bool)>,
        invited: impl IntoIterator<Item = UserId>,
        removed: impl IntoIterator<Item = UserId>,
    ) -> Self {
        let mut space = Self::new(host, limits);
        space.lifecycle = lifecycle;
        for (user, role, muted) in stage {
            if user == host {
                if let Some(m) = space.stage.get_mut(&host) {
                    m.muted = muted;
                }
            } else if role.is_speaker() && role != Role::Host {
                space.stage.insert(user, StageMember { role, muted });
            }
        }
        space.removed.extend(removed);
        let removed = &space.removed;
        let invited: Vec<UserId> = invited
            .into_iter()
            .filter(|u| !removed.contains(u) && !space.stage.contains_key(u))
            .collect();
        space.invited.extend(invited);
        space
    }

    /// Takes the state of `newer`, a copy of this Space as its origin has it now (an edge
    /// keeping up with its origin), and keeps this one's open reaction window.
    pub fn resync(&mut self, newer: Space) {
        self.host = newer.host;
        self.lifecycle = newer.lifecycle;
        self.stage = newer.stage;
        self.hands = newer.hands;
        self.invited = newer.invited;
        self.removed = newer.removed;
        self.recording = newer.recording;
    }

    /// Whether the Space is recorded (on unless the host turned it off).
    pub fn recording(&self) -> bool {
        self.recording
    }

    /// Sets whether it is recorded, as stored or as its origin says (no event).
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Open invitations to speak.
    pub fn invited(&self) -> impl Iterator<Item = UserId> + '_ {
        self.invited.iter().copied()
    }

    /// Applies a command from `actor`.
    pub fn handle(&mut self, actor: UserId, command: Command, now: Instant) -> Result<(), Refusal> {
        if self.removed.contains(&actor) {
            return Err(Refusal::Removed);
        }
        let action = Action::of(&command, actor);
        if action != Action::Lift && command.target().is_some_and(|t| self.removed.contains(&t)) {
            return Err(Refusal::Removed);
        }
        if command.target() == Some(PLATFORM) {
            return Err(Refusal::BadTarget("a participant"));
        }
        let role = self.role_of(actor);
        let allowed = if actor == PLATFORM {
            platform_may(action)
        } else {
            permits(role, action)
        };
        if !allowed {
            return Err(Refusal::NotPermitted { role, action });
        }
        match self.lifecycle {
            Lifecycle::Ended => return Err(Refusal::Ended),
            Lifecycle::Scheduled
                if !matches!(action, Action::Start | Action::End | Action::Record) =>
            {
                return Err(Refusal::NotLive);
            }
            Lifecycle::Live if action == Action::Start => return Err(Refusal::AlreadyLive),
            _ => {}
        }
        match command {
            Command::Start => {
                self.lifecycle = Lifecycle::Live;
                self.events.push_back(Event::Started);
            }
            Command::End => {
                self.lifecycle = Lifecycle::Ended;
                self.events.push_back(Event::Ended);
            }
            Command::Record { on } => {
                if self.recording != on {
                    self.recording = on;
                    self.events.push_back(Event::RecordingChanged { on });
                }
            }
            Command::RequestToSpeak => {
                if !self.hands.contains(&actor) && self.hands.len() >= self.limits.max_hands {
                    return Err(Refusal::HandLimit(self.limits.max_hands));
                }
                if self.hands.insert(actor) {
                    self.events.push_back(Event::HandRaised { user: actor });
                }
            }
            Command::CancelRequest => self.lower_hand(actor, "request")?,
            Command::Invite { user } => {
                self.check_listener(user)?;
                self.invited.insert(user);
                self.events.push_back(Event::Invited { user, by: actor });
            }
            Command::AcceptInvite => {
                if !self.invited.contains(&actor) {
                    return Err(Refusal::NothingPending("invitation"));
                }
                self.add_speaker(actor)?;
                self.invited.remove(&actor);
            }
            Command::Approve { user } => {
                if !self.hands.contains(&user) {
                    return Err(Refusal::NothingPending("request"));
                }
                self.check_listener(user)?;
                self.add_speaker(user)?;
            }
            Command::Deny { user } => self.lower_hand(user, "request")?,
            Command::MoveToListener { user } => {
                self.check_outranked(actor, user)?;
                self.stage.remove(&user);
                self.events.push_back(Event::RoleChanged {
                    user,
                    role: Role::Listener,
                });
            }
            Command::MuteSelf => self.set_muted(actor, true, actor),
            Command::UnmuteSelf => {
                if self.held.contains(&actor) {
                    return Err(Refusal::HeldByModerators);
                }
                self.set_muted(actor, false, actor);
            }
            Command::Mute { user } => {
                let target = self
                    .stage
                    .get(&user)
                    .ok_or(Refusal::BadTarget("a speaker"))?;
                if actor == PLATFORM {
                    self.set_muted(user, true, actor);
                    if self.held.insert(user) {
                        self.events.push_back(Event::Held { user, held: true });
                    }
                    return Ok(());
                }
                if target.role == Role::Host && actor != self.host {
                    return Err(Refusal::Outranked);
                }
                self.set_muted(user, true, actor);
            }
            Command::Lift { user } => {
                let held = self.held.remove(&user);
                if held {
                    self.events.push_back(Event::Held { user, held: false });
                }
                let removed = self.removed.remove(&user);
                if removed {
                    self.events.push_back(Event::Readmitted { user });
                }
                if !held && !removed {
                    return Err(Refusal::NothingPending("measure of the moderators"));
                }
            }
            Command::MuteAll => {
                let targets: Vec<_> = self.stage.keys().copied().filter(|u| *u != actor).collect();
                for user in targets {
                    if self.stage[&user].role != Role::Host {
                        self.set_muted(user, true, actor);
                    }
                }
            }
            Command::Remove { user } => {
                if user == actor {
                    return Err(Refusal::BadTarget("someone else"));
                }
                if actor == PLATFORM {
                    if user == self.host {
                        // The host goes with the whole Space: the platform ends it instead.
                        return Err(Refusal::BadTarget("anyone but the host"));
                    }
                } else if self.role_of(user) >= self.role_of(actor) {
                    return Err(Refusal::Outranked);
                }
                self.stage.remove(&user);
                self.hands.remove(&user);
                self.invited.remove(&user);
                self.removed.insert(user);
                self.events.push_back(Event::Removed { user });
            }
            Command::Promote { user } => {
                if self.role_of(user) == Role::CoHost || user == self.host {
                    return Err(Refusal::BadTarget("a speaker or listener"));
                }
                if self.count(Role::CoHost) >= self.limits.max_cohosts {
                    return Err(Refusal::CoHostLimit(self.limits.max_cohosts));
                }
                let muted = self.stage.get(&user).is_some_and(|m| m.muted);
                self.stage.insert(
                    user,
                    StageMember {
                        role: Role::CoHost,
                        muted,
                    },
                );
                self.clear_pending(user);
                self.events.push_back(Event::RoleChanged {
                    user,
                    role: Role::CoHost,
                });
            }
            Command::Demote { user } => {
                if self.role_of(user) != Role::CoHost {
                    return Err(Refusal::BadTarget("a co-host"));
                }
                if self.count(Role::Speaker) >= self.limits.max_speakers {
                    self.stage.remove(&user);
                    self.events.push_back(Event::RoleChanged {
                        user,
                        role: Role::Listener,
                    });
                } else {
                    self.stage.get_mut(&user).expect("co-host on stage").role = Role::Speaker;
                    self.events.push_back(Event::RoleChanged {
                        user,
                        role: Role::Speaker,
                    });
                }
            }
            Command::React { emoji } => {
                if !self.reactions.add(actor, &emoji, now) {
                    return Err(Refusal::UnknownReaction);
                }
            }
        }
        Ok(())
    }

    /// Counts reactions an edge gathered over one of its windows; they go out with this
    /// Space's window. Unknown emoji are ignored.
    pub fn count_reactions(&mut self, counts: &[(String, u64)], now: Instant) {
        if self.lifecycle != Lifecycle::Live {
            return;
        }
        for (emoji, n) in counts {
            self.reactions.add_count(emoji, *n, now);
        }
    }

    /// The next event to send, including a closed reaction window once `now` reaches it.
    pub fn poll_event(&mut self, now: Instant) -> Option<Event> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        let counts = self.reactions.poll(now)?;
        Some(Event::Reactions { counts })
    }

    /// When to call [`Space::poll_event`] next for timed events.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.reactions.deadline()
    }

    /// A user's role: listener unless on stage.
    pub fn role_of(&self, user: UserId) -> Role {
        self.stage.get(&user).map_or(Role::Listener, |m| m.role)
    }

    /// Whether the user may join (was not removed and the Space has not ended).
    pub fn may_join(&self, user: UserId) -> Result<(), Refusal> {
        if self.removed.contains(&user) {
            Err(Refusal::Removed)
        } else if self.lifecycle == Lifecycle::Ended {
            Err(Refusal::Ended)
        } else {
            Ok(())
        }
    }

    /// Whether audio from `user` goes into the mix now: live, on stage, not muted.
    pub fn may_publish(&self, user: UserId) -> bool {
        self.lifecycle == Lifecycle::Live
            && !self.removed.contains(&user)
            && self.stage.get(&user).is_some_and(|m| !m.muted)
    }

    /// Whether the user is on stage and muted.
    pub fn is_muted(&self, user: UserId) -> bool {
        self.stage.get(&user).is_some_and(|m| m.muted)
    }

    /// Whether the platform's moderators hold the user muted.
    pub fn is_held(&self, user: UserId) -> bool {
        self.held.contains(&user)
    }

    /// Speakers the platform's moderators hold muted, in user order.
    pub fn held(&self) -> impl Iterator<Item = UserId> + '_ {
        self.held.iter().copied()
    }

    /// Restores the moderators' holds as stored (after [`Space::restore`]). A hold lasts as
    /// long as the Space unless lifted: a held speaker who comes back on stage comes muted.
    pub fn restore_held(&mut self, held: impl IntoIterator<Item = UserId>) {
        self.held.extend(held);
    }

    /// The stage, in user order.
    pub fn stage(&self) -> impl Iterator<Item = (UserId, StageMember)> + '_ {
        self.stage.iter().map(|(u, m)| (*u, *m))
    }

    /// Whether `user` has a hand raised.
    pub fn has_hand(&self, user: UserId) -> bool {
        self.hands.contains(&user)
    }

    /// Raised hands, in user order.
    pub fn hands(&self) -> impl Iterator<Item = UserId> + '_ {
        self.hands.iter().copied()
    }

    /// Whether `user` was removed.
    pub fn is_removed(&self, user: UserId) -> bool {
        self.removed.contains(&user)
    }

    /// Removed users.
    pub fn removed(&self) -> impl Iterator<Item = UserId> + '_ {
        self.removed.iter().copied()
    }

    /// The host.
    pub fn host(&self) -> UserId {
        self.host
    }

    /// The lifecycle state.
    pub fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn count(&self, role: Role) -> usize {
        self.stage.values().filter(|m| m.role == role).count()
    }

    fn check_listener(&self, user: UserId) -> Result<(), Refusal> {
        if self.removed.contains(&user) {
            return Err(Refusal::Removed);
        }
        if self.role_of(user) != Role::Listener {
            return Err(Refusal::BadTarget("a listener"));
        }
        Ok(())
    }

    fn check_outranked(&self, actor: UserId, user: UserId) -> Result<(), Refusal> {
        let target = self.role_of(user);
        if target == Role::Listener {
            return Err(Refusal::BadTarget("on stage"));
        }
        if user != actor && target >= self.role_of(actor) {
            return Err(Refusal::Outranked);
        }
        Ok(())
    }

    fn add_speaker(&mut self, user: UserId) -> Result<(), Refusal> {
        if self.count(Role::Speaker) >= self.limits.max_speakers {
            return Err(Refusal::SpeakerLimit(self.limits.max_speakers));
        }
        self.stage.insert(
            user,
            StageMember {
                role: Role::Speaker,
                muted: self.held.contains(&user),
            },
        );
        self.clear_pending(user);
        self.events.push_back(Event::RoleChanged {
            user,
            role: Role::Speaker,
        });
        Ok(())
    }

    fn clear_pending(&mut self, user: UserId) {
        self.invited.remove(&user);
        if self.hands.remove(&user) {
            self.events.push_back(Event::HandLowered { user });
        }
    }

    fn lower_hand(&mut self, user: UserId, what: &'static str) -> Result<(), Refusal> {
        if !self.hands.remove(&user) {
            return Err(Refusal::NothingPending(what));
        }
        self.events.push_back(Event::HandLowered { user });
        Ok(())
    }

    fn set_muted(&mut self, user: UserId, muted: bool, by: UserId) {
        if let Some(m) = self.stage.get_mut(&user)
            && m.muted != muted
        {
            m.muted = muted;
            self.events
                .push_back(Event::MuteChanged { user, muted, by });
        }
    }
}

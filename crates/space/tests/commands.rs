//! Scenario tests of the Space commands, each named for what it proves.

use std::time::Instant;
use stentor_space::{Action, Command, Event, Limits, PLATFORM, Refusal, Role, Space};

fn live() -> (Space, Instant) {
    let now = Instant::now();
    let mut s = Space::new(1, Limits::default());
    s.handle(1, Command::Start, now).unwrap();
    assert_eq!(s.poll_event(now), Some(Event::Started));
    (s, now)
}

fn drain(s: &mut Space, now: Instant) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event(now)).collect()
}

#[test]
fn a_listener_who_raises_a_hand_and_is_approved_becomes_a_speaker() {
    let (mut s, now) = live();
    s.handle(5, Command::RequestToSpeak, now).unwrap();
    s.handle(1, Command::Approve { user: 5 }, now).unwrap();
    assert_eq!(s.role_of(5), Role::Speaker);
    assert!(s.may_publish(5));
    let events = drain(&mut s, now);
    assert!(events.contains(&Event::RoleChanged {
        user: 5,
        role: Role::Speaker
    }));
    assert!(events.contains(&Event::HandLowered { user: 5 }));
}

#[test]
fn a_listener_cannot_publish_or_moderate() {
    let (mut s, now) = live();
    assert!(!s.may_publish(9));
    assert_eq!(
        s.handle(9, Command::Mute { user: 1 }, now),
        Err(Refusal::NotPermitted {
            role: Role::Listener,
            action: Action::Mute
        })
    );
}

#[test]
fn a_muted_speaker_stays_muted_until_they_unmute() {
    let (mut s, now) = live();
    s.handle(1, Command::Invite { user: 3 }, now).unwrap();
    s.handle(3, Command::AcceptInvite, now).unwrap();
    s.handle(1, Command::Mute { user: 3 }, now).unwrap();
    assert!(!s.may_publish(3));
    assert!(s.handle(1, Command::UnmuteSelf, now).is_ok()); // the host's own mic
    assert!(!s.may_publish(3));
    s.handle(3, Command::UnmuteSelf, now).unwrap();
    assert!(s.may_publish(3));
}

#[test]
fn a_removed_user_cannot_come_back() {
    let (mut s, now) = live();
    s.handle(1, Command::Remove { user: 4 }, now).unwrap();
    assert_eq!(s.may_join(4), Err(Refusal::Removed));
    assert_eq!(
        s.handle(4, Command::RequestToSpeak, now),
        Err(Refusal::Removed)
    );
    assert_eq!(
        s.handle(1, Command::Invite { user: 4 }, now),
        Err(Refusal::Removed)
    );
}

#[test]
fn a_cohost_cannot_remove_the_host_or_another_cohost() {
    let (mut s, now) = live();
    s.handle(1, Command::Promote { user: 2 }, now).unwrap();
    s.handle(1, Command::Promote { user: 3 }, now).unwrap();
    assert_eq!(
        s.handle(1, Command::Promote { user: 4 }, now),
        Err(Refusal::CoHostLimit(2))
    );
    assert_eq!(
        s.handle(2, Command::Remove { user: 1 }, now),
        Err(Refusal::Outranked)
    );
    assert_eq!(
        s.handle(2, Command::Remove { user: 3 }, now),
        Err(Refusal::Outranked)
    );
    assert_eq!(
        s.handle(2, Command::Mute { user: 1 }, now),
        Err(Refusal::Outranked)
    );
}

#[test]
fn the_speaker_limit_is_enforced() {
    let now = Instant::now();
    let mut s = Space::new(
        1,
        Limits {
            max_speakers: 1,
            ..Limits::default()
        },
    );
    s.handle(1, Command::Start, now).unwrap();
    s.handle(1, Command::Invite { user: 2 }, now).unwrap();
    s.handle(1, Command::Invite { user: 3 }, now).unwrap();
    s.handle(2, Command::AcceptInvite, now).unwrap();
    assert_eq!(
        s.handle(3, Command::AcceptInvite, now),
        Err(Refusal::SpeakerLimit(1))
    );
}

#[test]
fn nothing_but_start_happens_before_the_space_is_live_and_nothing_after_it_ends() {
    let now = Instant::now();
    let mut s = Space::new(1, Limits::default());
    assert_eq!(
        s.handle(2, Command::RequestToSpeak, now),
        Err(Refusal::NotLive)
    );
    s.handle(1, Command::Start, now).unwrap();
    assert_eq!(s.handle(1, Command::Start, now), Err(Refusal::AlreadyLive));
    s.handle(1, Command::End, now).unwrap();
    assert_eq!(s.handle(1, Command::MuteAll, now), Err(Refusal::Ended));
    assert_eq!(s.may_join(7), Err(Refusal::Ended));
}

#[test]
fn mute_all_spares_the_host_and_the_actor() {
    let (mut s, now) = live();
    for u in [2, 3] {
        s.handle(1, Command::Invite { user: u }, now).unwrap();
        s.handle(u, Command::AcceptInvite, now).unwrap();
    }
    s.handle(1, Command::Promote { user: 2 }, now).unwrap();
    s.handle(2, Command::MuteAll, now).unwrap();
    assert!(s.may_publish(1));
    assert!(s.may_publish(2));
    assert!(!s.may_publish(3));
}

#[test]
fn commands_read_as_json() {
    let cmd: Command = serde_json::from_str(r#"{"cmd":"mute","user":3}"#).unwrap();
    assert_eq!(cmd, Command::Mute { user: 3 });
    let e = serde_json::to_string(&Event::RoleChanged {
        user: 3,
        role: Role::CoHost,
    })
    .unwrap();
    assert_eq!(e, r#"{"event":"role_changed","user":3,"role":"co_host"}"#);
}

#[test]
fn raised_hands_are_bounded_and_a_lowered_one_makes_room() {
    let now = Instant::now();
    let mut s = Space::new(
        1,
        Limits {
            max_hands: 2,
            ..Limits::default()
        },
    );
    s.handle(1, Command::Start, now).unwrap();
    s.handle(2, Command::RequestToSpeak, now).unwrap();
    s.handle(3, Command::RequestToSpeak, now).unwrap();
    // Raising an already raised hand is not a new request.
    s.handle(3, Command::RequestToSpeak, now).unwrap();
    assert_eq!(
        s.handle(4, Command::RequestToSpeak, now),
        Err(Refusal::HandLimit(2))
    );
    assert!(s.has_hand(2) && !s.has_hand(4));
    s.handle(2, Command::CancelRequest, now).unwrap();
    s.handle(4, Command::RequestToSpeak, now).unwrap();
    assert_eq!(s.hands().collect::<Vec<_>>(), [3, 4]);
}

#[test]
fn an_edges_reaction_counts_join_the_origins_window_and_a_resync_keeps_the_edges_own() {
    use stentor_space::Lifecycle;
    use stentor_space::REACTION_WINDOW;
    // The origin: one local reaction, and an edge's window of 41 more.
    let (mut origin, now) = live();
    origin
        .handle(
            7,
            Command::React {
                emoji: "👏".into()
            },
            now,
        )
        .unwrap();
    origin.count_reactions(
        &[("👏".into(), 40), ("🔥".into(), 1), ("🦀".into(), 9)],
        now,
    );
    let counts = drain(&mut origin, now + REACTION_WINDOW);
    assert_eq!(
        counts,
        vec![Event::Reactions {
            counts: vec![("👏".into(), 41), ("🔥".into(), 1)]
        }]
    );

    // An edge's copy, counting reactions of its own, takes the origin's newer state without
    // losing them.
    let mut edge = Space::new(1, Limits::default());
    edge.resync(Space::restore(
        1,
        Limits::default(),
        Lifecycle::Live,
        [(5, Role::Speaker, true)],
        [],
        [9],
    ));
    edge.handle(
        8,
        Command::React {
            emoji: "🔥".into()
        },
        now,
    )
    .unwrap();
    edge.resync(Space::restore(
        1,
        Limits::default(),
        Lifecycle::Live,
        [(5, Role::Speaker, false)],
        [],
        [9],
    ));
    assert_eq!(edge.lifecycle(), Lifecycle::Live);
    assert_eq!(edge.role_of(5), Role::Speaker);
    assert!(!edge.is_muted(5));
    assert!(edge.is_removed(9));
    assert_eq!(
        drain(&mut edge, now + REACTION_WINDOW),
        vec![Event::Reactions {
            counts: vec![("🔥".into(), 1)]
        }]
    );
}

#[test]
fn only_the_host_turns_the_recording_off_before_or_during_the_space() {
    let now = Instant::now();
    let mut s = Space::new(1, Limits::default());
    assert!(s.recording(), "recorded unless the host says otherwise");
    s.handle(1, Command::Record { on: false }, now).unwrap();
    assert!(!s.recording());
    assert_eq!(
        s.poll_event(now),
        Some(Event::RecordingChanged { on: false })
    );
    s.handle(1, Command::Start, now).unwrap();
    s.handle(1, Command::Record { on: true }, now).unwrap();
    assert!(s.recording());
    s.handle(1, Command::Invite { user: 4 }, now).unwrap();
    s.handle(4, Command::AcceptInvite, now).unwrap();
    s.handle(1, Command::Promote { user: 4 }, now).unwrap();
    assert!(matches!(
        s.handle(4, Command::Record { on: false }, now),
        Err(Refusal::NotPermitted {
            action: Action::Record,
            ..
        })
    ));
    // The same state again: nothing to tell.
    drain(&mut s, now);
    s.handle(1, Command::Record { on: true }, now).unwrap();
    assert_eq!(s.poll_event(now), None);
    s.handle(1, Command::End, now).unwrap();
    assert_eq!(
        s.handle(1, Command::Record { on: false }, now),
        Err(Refusal::Ended)
    );
}

#[test]
fn the_platform_holds_a_speaker_muted_until_it_lifts_the_hold() {
    let (mut s, now) = live();
    s.handle(1, Command::Invite { user: 3 }, now).unwrap();
    s.handle(3, Command::AcceptInvite, now).unwrap();
    drain(&mut s, now);
    s.handle(PLATFORM, Command::Mute { user: 3 }, now).unwrap();
    assert_eq!(
        drain(&mut s, now),
        vec![
            Event::MuteChanged {
                user: 3,
                muted: true,
                by: PLATFORM
            },
            Event::Held {
                user: 3,
                held: true
            }
        ]
    );
    assert_eq!(
        s.handle(3, Command::UnmuteSelf, now),
        Err(Refusal::HeldByModerators)
    );
    // Off the stage and back: still muted.
    s.handle(3, Command::MoveToListener { user: 3 }, now)
        .unwrap();
    s.handle(1, Command::Invite { user: 3 }, now).unwrap();
    s.handle(3, Command::AcceptInvite, now).unwrap();
    assert!(s.is_muted(3) && !s.may_publish(3));
    drain(&mut s, now);
    s.handle(PLATFORM, Command::Lift { user: 3 }, now).unwrap();
    assert_eq!(
        drain(&mut s, now),
        vec![Event::Held {
            user: 3,
            held: false
        }]
    );
    s.handle(3, Command::UnmuteSelf, now).unwrap();
    assert!(s.may_publish(3));
}

#[test]
fn the_platform_mutes_even_the_host_and_removes_anyone_but_the_host() {
    let (mut s, now) = live();
    s.handle(PLATFORM, Command::Mute { user: 1 }, now).unwrap();
    assert!(!s.may_publish(1) && s.is_held(1));
    assert_eq!(
        s.handle(PLATFORM, Command::Remove { user: 1 }, now),
        Err(Refusal::BadTarget("anyone but the host"))
    );
    s.handle(1, Command::Promote { user: 4 }, now).unwrap();
    s.handle(PLATFORM, Command::Remove { user: 4 }, now)
        .unwrap();
    assert!(s.is_removed(4) && s.may_join(4).is_err());
    drain(&mut s, now);
    // A reversal lets them back.
    s.handle(PLATFORM, Command::Lift { user: 4 }, now).unwrap();
    assert_eq!(drain(&mut s, now), vec![Event::Readmitted { user: 4 }]);
    assert!(s.may_join(4).is_ok());
    s.handle(PLATFORM, Command::End, now).unwrap();
    assert_eq!(drain(&mut s, now), vec![Event::Ended]);
}

#[test]
fn only_the_platform_lifts_and_it_does_nothing_else() {
    let (mut s, now) = live();
    assert_eq!(
        s.handle(1, Command::Lift { user: 3 }, now),
        Err(Refusal::NotPermitted {
            role: Role::Host,
            action: Action::Lift
        })
    );
    assert!(
        s.handle(PLATFORM, Command::Promote { user: 3 }, now)
            .is_err()
    );
    assert!(
        s.handle(PLATFORM, Command::Record { on: false }, now)
            .is_err()
    );
    assert_eq!(
        s.handle(PLATFORM, Command::Lift { user: 3 }, now),
        Err(Refusal::NothingPending("measure of the moderators"))
    );
}

//! Property tests: the Space's invariants hold after any sequence of commands.

use proptest::prelude::*;
use std::time::Instant;
use stentor_space::{Command, Event, Lifecycle, Limits, PLATFORM, Role, Space, UserId};

/// The host; actor 0 is the platform's moderators ([`PLATFORM`]).
const HOST: UserId = 1;

fn command() -> impl Strategy<Value = Command> {
    let user = 0u64..8;
    prop_oneof![
        Just(Command::RequestToSpeak),
        Just(Command::CancelRequest),
        user.clone().prop_map(|user| Command::Invite { user }),
        Just(Command::AcceptInvite),
        user.clone().prop_map(|user| Command::Approve { user }),
        user.clone().prop_map(|user| Command::Deny { user }),
        user.clone()
            .prop_map(|user| Command::MoveToListener { user }),
        Just(Command::MuteSelf),
        Just(Command::UnmuteSelf),
        user.clone().prop_map(|user| Command::Mute { user }),
        Just(Command::MuteAll),
        user.clone().prop_map(|user| Command::Remove { user }),
        user.clone().prop_map(|user| Command::Promote { user }),
        user.clone().prop_map(|user| Command::Demote { user }),
        user.prop_map(|user| Command::Lift { user }),
        Just(Command::Start),
        Just(Command::End),
        Just(Command::React {
            emoji: "👏".into()
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn invariants_hold_after_any_command_sequence(
        steps in prop::collection::vec((0u64..8, command()), 0..200)
    ) {
        let limits = Limits { max_cohosts: 2, max_speakers: 3, reactions_per_user: 5, max_hands: 4 };
        let mut space = Space::new(HOST, limits);
        let now = Instant::now();
        space.handle(HOST, Command::Start, now).unwrap();
        let mut removed = std::collections::HashSet::new();
        for (actor, cmd) in steps {
            let was_removed = removed.contains(&actor);
            let before_role = space.role_of(actor);
            let result = space.handle(actor, cmd.clone(), now);
            if was_removed && actor != PLATFORM {
                prop_assert!(result.is_err(), "removed user {actor} ran {cmd:?}");
            }
            if result.is_err() {
                prop_assert_eq!(space.role_of(actor), before_role);
            }
            while let Some(e) = space.poll_event(now) {
                match e {
                    Event::Removed { user } => { removed.insert(user); }
                    Event::Readmitted { user } => { removed.remove(&user); }
                    _ => {}
                }
            }
            let hosts = space.stage().filter(|(_, m)| m.role == Role::Host).count();
            prop_assert_eq!(hosts, 1);
            prop_assert_eq!(space.role_of(HOST), Role::Host);
            let cohosts = space.stage().filter(|(_, m)| m.role == Role::CoHost).count();
            prop_assert!(cohosts <= limits.max_cohosts);
            let speakers = space.stage().filter(|(_, m)| m.role == Role::Speaker).count();
            prop_assert!(speakers <= limits.max_speakers);
            for user in &removed {
                prop_assert_eq!(space.role_of(*user), Role::Listener);
                prop_assert!(!space.may_publish(*user));
                prop_assert!(space.may_join(*user).is_err());
            }
            prop_assert!(space.may_join(PLATFORM).is_ok() || space.lifecycle() == Lifecycle::Ended);
            for user in 0..8 {
                if space.is_held(user) {
                    prop_assert!(!space.may_publish(user), "held {user} may publish");
                }
                if space.may_publish(user) {
                    prop_assert!(space.role_of(user).is_speaker());
                    prop_assert!(!space.is_muted(user));
                    prop_assert_eq!(space.lifecycle(), Lifecycle::Live);
                }
            }
        }
    }
}

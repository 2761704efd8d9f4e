//! The subjects of a live Space on the bus (sans-IO), and which Space ids can name one.

/// The subjects of one live Space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    /// Audio and events, from the origin to every edge, in order ([`crate::Envelope`]).
    pub media: String,
    /// Requests of an edge for the Space's state and the tail of its mix, answered by the
    /// origin.
    pub snapshot: String,
    /// Listeners' commands forwarded by an edge, answered by the origin.
    pub commands: String,
}

/// A Space id that cannot be a subject's token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("space id {0:?} cannot name a subject: 1 to 64 of A-Z a-z 0-9 _ -")]
pub struct BadSpaceId(pub String);

/// Most characters of a Space id on the bus.
const MAX_ID: usize = 64;

impl Subjects {
    /// The subjects of Space `id`.
    pub fn of(id: &str) -> Result<Self, BadSpaceId> {
        let fits = (1..=MAX_ID).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !fits {
            return Err(BadSpaceId(id.to_owned()));
        }
        Ok(Self {
            media: format!("stentor.space.{id}.media"),
            snapshot: format!("stentor.space.{id}.snapshot"),
            commands: format!("stentor.space.{id}.commands"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_space_id_names_its_subjects_and_wildcards_or_dots_do_not() {
        let s = Subjects::of("k3x9q2mzab").unwrap();
        assert_eq!(s.media, "stentor.space.k3x9q2mzab.media");
        assert_eq!(s.snapshot, "stentor.space.k3x9q2mzab.snapshot");
        assert_eq!(s.commands, "stentor.space.k3x9q2mzab.commands");
        for bad in ["", "a.b", "*", ">", "a b", "é", &"x".repeat(65)] {
            assert!(Subjects::of(bad).is_err(), "{bad:?}");
        }
    }
}

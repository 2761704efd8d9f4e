//! The subjects of a live Space on the bus (sans-IO), under the name of its cluster (so that
//! several clusters, or test runs, can share one NATS server), and which names can be used.

/// The subjects of one live Space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    /// The Space's id.
    pub id: String,
    /// Audio and events, from the origin to every edge, in order ([`crate::Envelope`]).
    pub media: String,
    /// Requests of an edge for the Space's state and the tail of its mix, answered by the
    /// origin.
    pub snapshot: String,
    /// Listeners' commands forwarded by an edge, answered by the origin.
    pub commands: String,
}

/// A cluster name or Space id that cannot be a subject's token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} cannot name a subject: 1 to 64 of A-Z a-z 0-9 _ -")]
pub struct BadSpaceId(pub String);

/// Most characters of a cluster name or a Space id on the bus.
const MAX_NAME: usize = 64;

/// The cluster name stentor uses unless told otherwise.
pub const DEFAULT_CLUSTER: &str = "stentor";

/// Whether `name` can be one token of a subject (and part of a bucket's name).
pub fn check_name(name: &str) -> Result<(), BadSpaceId> {
    let fits = (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if fits {
        Ok(())
    } else {
        Err(BadSpaceId(name.to_owned()))
    }
}

/// The subject on which an edge asks the cluster's origins to take up a Space nobody mixes
/// (one origin answers: they serve it as a queue group).
pub fn adopt(cluster: &str) -> String {
    format!("{cluster}.adopt")
}

impl Subjects {
    /// The subjects of Space `id` in cluster `cluster`.
    pub fn new(cluster: &str, id: &str) -> Result<Self, BadSpaceId> {
        check_name(cluster)?;
        check_name(id)?;
        Ok(Self {
            id: id.to_owned(),
            media: format!("{cluster}.space.{id}.media"),
            snapshot: format!("{cluster}.space.{id}.snapshot"),
            commands: format!("{cluster}.space.{id}.commands"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_space_id_names_its_subjects_and_wildcards_or_dots_do_not() {
        let s = Subjects::new("stentor", "k3x9q2mzab").unwrap();
        assert_eq!(s.media, "stentor.space.k3x9q2mzab.media");
        assert_eq!(s.snapshot, "stentor.space.k3x9q2mzab.snapshot");
        assert_eq!(s.commands, "stentor.space.k3x9q2mzab.commands");
        for bad in ["", "a.b", "*", ">", "a b", "é", &"x".repeat(65)] {
            assert!(Subjects::new("stentor", bad).is_err(), "{bad:?}");
            assert!(Subjects::new(bad, "k3x9q2mzab").is_err(), "{bad:?}");
        }
        let other = Subjects::new("staging", "k3x9q2mzab").unwrap();
        assert_eq!(other.media, "staging.space.k3x9q2mzab.media");
    }
}

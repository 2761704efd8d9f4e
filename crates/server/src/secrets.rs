//! Files that hold secrets (the ticket key, the embedded database): private to the server's
//! user (0600, the data directory 0700), written atomically, and never silently replaced.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Name of the ticket key file in the data directory.
pub const TICKET_KEY_FILE: &str = "ticket.key";
/// Name of the Web Push (VAPID) key file in the data directory.
pub const PUSH_KEY_FILE: &str = "vapid.key";

/// Why a key (the ticket key, the Web Push key) could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The file exists but could not be read.
    #[error(
        "cannot read the key {path}: {source} (fix its permissions or remove it to make a new key)"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The file is not a key.
    #[error(
        "the key {path} is {len} bytes, not 32: it is damaged (remove it to make a new key; what it signed becomes invalid)"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// Its length.
        len: usize,
    },
    /// A key file named in the configuration is not there: it is not made, since a node
    /// with a key of its own would refuse every other node's tickets.
    #[error(
        "the key {path} does not exist: give every node the same key (copy it from another node, or make one with `head -c 32 /dev/urandom > {path}` and copy that)"
    )]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A new key could not be written.
    #[error("cannot write a new key to {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// Makes the data directory if needed and makes it private (0700).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    restrict(dir, 0o700)
}

/// Tightens a file or directory to `mode` when it is looser (Unix only).
pub fn restrict(path: &Path, mode: u32) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let now = fs::metadata(path)?.permissions().mode() & 0o777;
        if now & !mode != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The ticket key at `path`: read when it exists, made (32 random bytes, written atomically,
/// 0600) when it does not. Any other trouble is an error: a new key would silently invalidate
/// every ticket in flight, and on a cluster would split the nodes.
pub fn ticket_key(path: &Path) -> Result<[u8; 32], KeyError> {
    read_key(path, true)
}

/// The ticket key the nodes of a cluster share, at `path` (`--ticket-key-file`): read, never
/// made.
pub fn shared_ticket_key(path: &Path) -> Result<[u8; 32], KeyError> {
    read_key(path, false)
}

fn read_key(path: &Path, make: bool) -> Result<[u8; 32], KeyError> {
    match fs::read(path) {
        Ok(bytes) => {
            let len = bytes.len();
            let key = bytes.try_into().map_err(|_| KeyError::Damaged {
                path: path.into(),
                len,
            })?;
            restrict(path, 0o600).map_err(|source| KeyError::Read {
                path: path.into(),
                source,
            })?;
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound && !make => {
            Err(KeyError::Missing { path: path.into() })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key: [u8; 32] = rand::random();
            write_atomically(path, &key).map_err(|source| KeyError::Write {
                path: path.into(),
                source,
            })?;
            Ok(key)
        }
        Err(source) => Err(KeyError::Read {
            path: path.into(),
            source,
        }),
    }
}

/// Writes `bytes` to `path` so that a reader sees the old file or the whole new one, never a
/// part: a private temporary file beside it, synced, then renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename itself lasts only once the directory is synced.
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("stentor-secrets-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        private_dir(&d).unwrap();
        d
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_key_is_private_and_read_back_unchanged() {
        let d = dir("new");
        let path = d.join(TICKET_KEY_FILE);
        let key = ticket_key(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&d), 0o700);
        assert_eq!(ticket_key(&path).unwrap(), key);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn a_shared_key_is_read_but_never_made() {
        let d = dir("shared");
        let path = d.join("cluster.key");
        let err = shared_ticket_key(&path).unwrap_err();
        assert!(matches!(err, KeyError::Missing { .. }), "{err}");
        assert!(err.to_string().contains("same key"), "{err}");
        assert!(!path.exists(), "no key is made for a node of a cluster");
        let made = ticket_key(&path).unwrap();
        assert_eq!(shared_ticket_key(&path).unwrap(), made);
    }

    #[test]
    fn a_damaged_key_is_an_error_not_a_new_key() {
        let d = dir("damaged");
        let path = d.join(TICKET_KEY_FILE);
        fs::write(&path, b"short").unwrap();
        let e = ticket_key(&path).unwrap_err();
        assert!(matches!(e, KeyError::Damaged { len: 5, .. }), "{e}");
        assert_eq!(
            fs::read(&path).unwrap(),
            b"short",
            "the file is left as it was"
        );
    }

    #[test]
    fn an_unreadable_key_is_an_error_not_a_new_key() {
        let d = dir("unreadable");
        let path = d.join(TICKET_KEY_FILE);
        // A directory where the key should be: reading fails with something else than
        // "not found", as a permission problem would (root reads any file).
        fs::create_dir(&path).unwrap();
        assert!(matches!(ticket_key(&path), Err(KeyError::Read { .. })));
    }

    #[test]
    fn a_loose_key_file_is_tightened() {
        let d = dir("loose");
        let path = d.join(TICKET_KEY_FILE);
        fs::write(&path, [7u8; 32]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(ticket_key(&path).unwrap(), [7u8; 32]);
        assert_eq!(mode(&path), 0o600);
    }
}

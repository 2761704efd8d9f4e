//! Where finished products of recordings are kept (replay files, clips): one small trait,
//! and the local filesystem as the default. An object store (S3 and compatible, through the
//! `object_store` crate) is the next backend; the live log itself stays on local disk, where
//! appends and syncs are cheap.

use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// A flat store of immutable-once-written objects under string keys (`a-z A-Z 0-9 . _ - /`).
pub trait Storage: Send + Sync + 'static {
    /// Writes `bytes` under `key`, whole: a reader sees the old object or the new one.
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()>;
    /// The object under `key`, if there is one.
    fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>>;
    /// Removes the object under `key` (no error if there is none).
    fn delete(&self, key: &str) -> io::Result<()>;
    /// When the object under `key` was written, if there is one.
    fn modified(&self, key: &str) -> io::Result<Option<SystemTime>>;
    /// Where the object is on this machine's disk, if the store is local (then it can be
    /// served with range requests straight from the file).
    fn local_path(&self, key: &str) -> Option<PathBuf>;
}

/// Whether `key` is one this crate writes: no way out of the store's root.
fn valid(key: &str) -> io::Result<()> {
    let ok = !key.is_empty()
        && key.len() <= 200
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
        && !key
            .split('/')
            .any(|part| part.is_empty() || part.starts_with('.'));
    if ok {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a bad storage key",
        ))
    }
}

/// Objects as files under a directory.
#[derive(Debug, Clone)]
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    /// A store rooted at `root` (made if missing).
    pub fn new(root: impl AsRef<Path>) -> io::Result<Self> {
        std::fs::create_dir_all(root.as_ref())?;
        Ok(Self {
            root: root.as_ref().to_owned(),
        })
    }

    fn path(&self, key: &str) -> io::Result<PathBuf> {
        valid(key)?;
        Ok(self.root.join(key))
    }
}

impl Storage for LocalDir {
    fn put(&self, key: &str, bytes: &[u8]) -> io::Result<()> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A temporary file of this write's own, synced, renamed over the old one.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut f, bytes)?;
            f.sync_data()?;
            std::fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    fn get(&self, key: &str) -> io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(key)?) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn delete(&self, key: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn modified(&self, key: &str) -> io::Result<Option<SystemTime>> {
        match std::fs::metadata(self.path(key)?) {
            Ok(m) => Ok(Some(m.modified()?)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.path(key).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_round_trip_and_keys_stay_inside() {
        let dir = std::env::temp_dir().join(format!("stentor-storage-{}", std::process::id()));
        let store = LocalDir::new(&dir).unwrap();
        store.put("clips/a1.ogg", b"one").unwrap();
        store.put("clips/a1.ogg", b"two").unwrap();
        assert_eq!(store.get("clips/a1.ogg").unwrap().unwrap(), b"two");
        assert!(store.modified("clips/a1.ogg").unwrap().is_some());
        store.delete("clips/a1.ogg").unwrap();
        store.delete("clips/a1.ogg").unwrap();
        assert!(store.get("clips/a1.ogg").unwrap().is_none());
        for bad in ["../x", "/etc/passwd", "a/../b", "", "a b", "clips/.hidden"] {
            assert!(store.put(bad, b"x").is_err(), "{bad}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

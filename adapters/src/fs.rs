//! Blobs as files in a directory: the compose profile's blob store, a volume shared by
//! the gateway and the workers (so workers need no database credentials).

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use codebox_core::Error;
use codebox_core::ports::BlobStore;

pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, key: &str) -> Result<PathBuf, Error> {
        if valid_key(key) {
            Ok(self.root.join(key))
        } else {
            Err(Error::Invalid(format!("invalid blob key {key:?}")))
        }
    }
}

/// Keys are made by codebox (`input/<uuid>.png`); anything that could leave a directory
/// or read oddly in a URL is refused rather than cleaned up.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
}

fn io(e: std::io::Error, what: &Path) -> Error {
    Error::Backend(anyhow::anyhow!("blob file {}: {e}", what.display()))
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), Error> {
        let path = self.path(key)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io(e, dir))?;
        }
        // Written aside, then renamed: a reader never sees half a file.
        let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(&tmp, bytes)
            .await
            .map_err(|e| io(e, &tmp))?;
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io(e, &path))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path(key)?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e, &path)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e, &path)),
        }
    }

    async fn delete_older_than(
        &self,
        prefix: &str,
        before: codebox_core::time::Timestamp,
    ) -> Result<Option<usize>, Error> {
        let dir = self.path(prefix.trim_end_matches('/'))?;
        let before = std::time::SystemTime::from(before);
        let deleted = tokio::task::spawn_blocking(move || delete_files_before(&dir, before))
            .await
            .map_err(|e| Error::Backend(e.into()))??;
        Ok(Some(deleted))
    }
}

/// Deletes the files under `dir` (not the one being written aside: they are renamed in
/// place within moments) modified before `before`, and the directories left empty.
fn delete_files_before(dir: &Path, before: std::time::SystemTime) -> Result<usize, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io(e, dir)),
    };
    let mut deleted = 0;
    for entry in entries {
        let entry = entry.map_err(|e| io(e, dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(|e| io(e, &path))?;
        if meta.is_dir() {
            deleted += delete_files_before(&path, before)?;
            // Only when empty; a blob written meanwhile keeps it.
            let _ = std::fs::remove_dir(&path);
        } else if meta.modified().is_ok_and(|m| m < before) {
            match std::fs::remove_file(&path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e, &path)),
            }
        }
    }
    Ok(deleted)
}

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
}

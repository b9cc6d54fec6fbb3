use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::error::Result;
use crate::ports::BlobStore;
use crate::time::{self, Timestamp};

/// Blobs with the time each was written.
#[derive(Default)]
pub struct MemoryBlobStore {
    inner: RwLock<HashMap<String, (Vec<u8>, Timestamp)>>,
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.inner
            .write()
            .insert(key.to_owned(), (bytes, time::now()));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.read().get(key).map(|(b, _)| b.clone()))
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.write().remove(key);
        Ok(())
    }

    async fn delete_older_than(&self, prefix: &str, before: Timestamp) -> Result<Option<usize>> {
        let mut inner = self.inner.write();
        let was = inner.len();
        inner.retain(|key, (_, at)| !(key.starts_with(prefix) && *at < before));
        Ok(Some(was - inner.len()))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        crate::conformance::blob_store(&super::MemoryBlobStore::default()).await;
    }
}

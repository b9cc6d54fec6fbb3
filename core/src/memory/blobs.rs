use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::error::Result;
use crate::ports::BlobStore;

#[derive(Default)]
pub struct MemoryBlobStore {
    inner: RwLock<HashMap<String, Vec<u8>>>,
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.inner.write().insert(key.to_owned(), bytes);
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.inner.read().get(key).cloned())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.write().remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        crate::conformance::blob_store(&super::MemoryBlobStore::default()).await;
    }
}

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::domain::Session;
use crate::error::Result;
use crate::ports::SessionStore;
use crate::time;

#[derive(Default)]
pub struct MemorySessionStore {
    inner: RwLock<HashMap<String, Session>>,
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn put(&self, session: &Session) -> Result<()> {
        let mut inner = self.inner.write();
        // Expired sessions are dropped as new ones arrive, so the map stays bounded by
        // the number of live sessions.
        if inner.len() > 1024 && inner.len().is_power_of_two() {
            let now = time::now();
            inner.retain(|_, s| s.expires_at > now);
        }
        inner.insert(session.jti.clone(), session.clone());
        Ok(())
    }

    async fn get(&self, jti: &str) -> Result<Option<Session>> {
        let now = time::now();
        Ok(self
            .inner
            .read()
            .get(jti)
            .filter(|s| s.expires_at > now)
            .cloned())
    }

    async fn revoke(&self, jti: &str) -> Result<()> {
        self.inner.write().remove(jti);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        crate::conformance::session_store(&super::MemorySessionStore::default()).await;
    }
}

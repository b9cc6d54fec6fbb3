use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::RwLock;

use crate::domain::{User, UserId};
use crate::error::{Error, Result};
use crate::ports::UserStore;

#[derive(Default)]
pub struct MemoryUserStore {
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<UserId, User>,
    by_name: HashMap<String, UserId>,
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn create(&self, user: &User) -> Result<()> {
        let mut inner = self.inner.write();
        if inner.by_name.contains_key(&user.username) {
            return Err(Error::Conflict(format!(
                "username {:?} is taken",
                user.username
            )));
        }
        if inner.by_id.contains_key(&user.id) {
            return Err(Error::Conflict(format!("user {} exists", user.id)));
        }
        inner.by_name.insert(user.username.clone(), user.id);
        inner.by_id.insert(user.id, user.clone());
        Ok(())
    }

    async fn get_by_username(&self, username: &str) -> Result<Option<User>> {
        let inner = self.inner.read();
        Ok(inner
            .by_name
            .get(username)
            .and_then(|id| inner.by_id.get(id))
            .cloned())
    }

    async fn get(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.inner.read().by_id.get(&id).cloned())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        crate::conformance::user_store(&super::MemoryUserStore::default()).await;
    }
}

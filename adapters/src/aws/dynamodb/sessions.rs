//! Sessions with a TTL attribute; expiry is also checked on read (TTL deletion is lazy).

use super::codec::*;
use super::*;

#[async_trait]
impl SessionStore for DynamoStore {
    async fn put(&self, session: &Session) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.tables.sessions)
            .item("jti", s(&session.jti))
            .item("user_id", s(session.user_id.to_string()))
            .item("expires_at_ms", n(ms(&session.expires_at)))
            // What DynamoDB's TTL reads: seconds since the epoch.
            .item("expires_at_epoch", n(session.expires_at.timestamp() + 1))
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        Ok(())
    }

    async fn get(&self, jti: &str) -> Result<Option<Session>, Error> {
        let Some(item) = self.item(&self.tables.sessions, "jti", jti).await? else {
            return Ok(None);
        };
        let expires_at = from_ms(opt_n(&item, "expires_at_ms")?.unwrap_or(0))?;
        // TTL deletes expired items eventually, not on time: check here.
        if expires_at <= time::now() {
            return Ok(None);
        }
        Ok(Some(Session {
            jti: get_s(&item, "jti")?.to_owned(),
            user_id: uuid_of(&item, "user_id")?,
            expires_at,
        }))
    }

    async fn revoke(&self, jti: &str) -> Result<(), Error> {
        self.client
            .delete_item()
            .table_name(&self.tables.sessions)
            .key("jti", s(jti))
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), Error> {
        self.item(&self.tables.sessions, "jti", "ping")
            .await
            .map(|_| ())
    }
}

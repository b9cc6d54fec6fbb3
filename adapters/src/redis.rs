//! Redis: sessions with a TTL (logout deletes the key). Expiry is also checked on read.

use async_trait::async_trait;
use codebox_core::Error;
use codebox_core::domain::Session;
use codebox_core::ports::SessionStore;
use codebox_core::time;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

#[derive(Clone)]
pub struct RedisSessionStore {
    conn: ConnectionManager,
    prefix: String,
}

fn unavailable(e: redis::RedisError) -> Error {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        Error::Unavailable("the session store".into())
    } else {
        Error::Backend(anyhow::Error::new(e).context("redis"))
    }
}

impl RedisSessionStore {
    /// Connects with automatic reconnection; keys are `<prefix>session:<jti>`.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(url).map_err(|e| anyhow::anyhow!("invalid Redis URL: {e}"))?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis: {e}"))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, jti: &str) -> String {
        format!("{}session:{jti}", self.prefix)
    }
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn put(&self, session: &Session) -> Result<(), Error> {
        let ttl_ms = (session.expires_at - time::now()).num_milliseconds();
        if ttl_ms <= 0 {
            return Ok(());
        }
        let value = serde_json::to_string(session).map_err(|e| Error::Backend(e.into()))?;
        let mut conn = self.conn.clone();
        let _: () = conn
            .pset_ex(self.key(&session.jti), value, ttl_ms as u64)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn get(&self, jti: &str) -> Result<Option<Session>, Error> {
        let mut conn = self.conn.clone();
        let value: Option<String> = conn.get(self.key(jti)).await.map_err(unavailable)?;
        let Some(value) = value else { return Ok(None) };
        let session: Session =
            serde_json::from_str(&value).map_err(|e| Error::Backend(e.into()))?;
        Ok((session.expires_at > time::now()).then_some(session))
    }

    async fn revoke(&self, jti: &str) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: () = conn.del(self.key(jti)).await.map_err(unavailable)?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

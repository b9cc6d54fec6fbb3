//! Redis: sessions with a TTL (logout deletes the key; expiry is also checked on read),
//! the rate limiter's counters, and live events between gateways ([`events`]).
//!
//! A gateway keeps the sessions it read (Redis's server-assisted client-side caching: the
//! sessions' own connection speaks RESP3 with key tracking). Redis tells every connection
//! that read a session when its key is deleted or expires, before it answers the `DEL`;
//! a lost connection forgets all it kept. So a logout holds at once in the gateway that
//! made it, and in every other as soon as Redis's message reaches it — while an
//! authenticated request costs no round trip to Redis for its session.

mod events;

pub use events::RedisEventBus;

use async_trait::async_trait;
use codebox_core::Error;
use codebox_core::domain::Session;
use codebox_core::ports::{RateDecision, RateLimiter, SessionStore, window_of};
use codebox_core::time;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;

#[derive(Clone)]
pub struct RedisSessionStore {
    /// The rate limiter's (and any other caller's) connection.
    conn: ConnectionManager,
    /// The sessions' own: RESP3, with the sessions it read kept until Redis says they
    /// changed.
    sessions: ConnectionManager,
    prefix: String,
}

/// Sessions a gateway keeps at most, and for how long at most without a word from Redis.
const SESSIONS_KEPT: usize = 50_000;
const SESSION_KEPT_FOR: std::time::Duration = std::time::Duration::from_secs(60);

pub(super) fn unavailable(e: redis::RedisError) -> Error {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        Error::Unavailable("the session store".into())
    } else {
        Error::Backend(anyhow::Error::new(e).context("redis"))
    }
}

/// How long a Redis reply and a (re)connection may take. The client's defaults (0.5 s and
/// 1 s) turn a moment of CPU starvation on a busy host — the gateway's own task polled
/// late, or Redis scheduled late — into a 503 for a request that would have passed;
/// a slow reply should make a request slower, not fail it. A Redis that is really gone
/// still fails fast: its connection is refused.
pub(super) fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_secs(5)))
        .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
}

impl RedisSessionStore {
    /// Connects with automatic reconnection; keys are `<prefix>session:<jti>`.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(url).map_err(|e| anyhow::anyhow!("invalid Redis URL: {e}"))?;
        let info = client.get_connection_info().clone();
        let conn = ConnectionManager::new_with_config(client, manager_config())
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis: {e}"))?;
        let resp3 = info.clone().set_redis_settings(
            info.redis_settings()
                .clone()
                .set_protocol(redis::ProtocolVersion::RESP3),
        );
        let kept = redis::caching::CacheConfig::new()
            .set_mode(redis::caching::CacheMode::OptIn)
            .set_size(
                std::num::NonZeroUsize::new(SESSIONS_KEPT).unwrap_or(std::num::NonZeroUsize::MIN),
            )
            .set_default_client_ttl(SESSION_KEPT_FOR);
        let sessions =
            redis::Client::open(resp3).map_err(|e| anyhow::anyhow!("invalid Redis URL: {e}"))?;
        let sessions =
            ConnectionManager::new_with_config(sessions, manager_config().set_cache_config(kept))
                .await
                .map_err(|e| {
                    anyhow::anyhow!("cannot connect to Redis with RESP3 (Redis 6 or later): {e}")
                })?;
        Ok(Self {
            conn,
            sessions,
            prefix: prefix.to_owned(),
        })
    }

    /// Reads of sessions answered from what this process keeps, and reads that went to
    /// Redis.
    pub fn sessions_kept(&self) -> (usize, usize) {
        self.sessions
            .get_cache_statistics()
            .map_or((0, 0), |s| (s.hit, s.miss))
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
        let mut conn = self.sessions.clone();
        let _: () = conn
            .pset_ex(self.key(&session.jti), value, ttl_ms as u64)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "sessions.get", skip_all)]
    async fn get(&self, jti: &str) -> Result<Option<Session>, Error> {
        let mut conn = self.sessions.clone();
        let mut get = redis::cmd("GET");
        get.arg(self.key(jti))
            .set_cache_config(redis::CommandCacheConfig::new());
        let value: Option<String> = get.query_async(&mut conn).await.map_err(unavailable)?;
        let Some(value) = value else { return Ok(None) };
        let session: Session =
            serde_json::from_str(&value).map_err(|e| Error::Backend(e.into()))?;
        Ok((session.expires_at > time::now()).then_some(session))
    }

    async fn revoke(&self, jti: &str) -> Result<(), Error> {
        let mut conn = self.sessions.clone();
        let _: () = conn.del(self.key(jti)).await.map_err(unavailable)?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), Error> {
        for mut conn in [self.conn.clone(), self.sessions.clone()] {
            let _: String = redis::cmd("PING")
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
}

/// Redis: fixed-window counters (`INCR` and a `PEXPIRE` set with the first hit, in one
/// transaction), shared by every gateway.
#[derive(Clone)]
pub struct RedisRateLimiter {
    conn: ConnectionManager,
    prefix: String,
}

impl RedisSessionStore {
    /// A limiter on the same connection; keys are `<prefix>rate:<key>:<window>`.
    pub fn rate_limiter(&self) -> RedisRateLimiter {
        RedisRateLimiter {
            conn: self.conn.clone(),
            prefix: self.prefix.clone(),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    #[tracing::instrument(level = "debug", name = "limits.hit", skip_all)]
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: std::time::Duration,
    ) -> Result<RateDecision, Error> {
        let (index, left) = window_of(time::now().timestamp_millis(), window);
        let k = format!("{}rate:{key}:{index}", self.prefix);
        // Kept a window past its end, so clock skew between gateways cannot reopen it.
        let keep_ms = u64::try_from(window.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(2);
        let mut conn = self.conn.clone();
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .incr(&k, 1)
            .cmd("PEXPIRE")
            .arg(&k)
            .arg(keep_ms)
            .arg("NX")
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        Ok(RateDecision::of(count, limit, left))
    }
}

//! Redis: sessions with a TTL (logout deletes the key; expiry is also checked on read),
//! and the rate limiter's counters.

use async_trait::async_trait;
use codebox_core::Error;
use codebox_core::domain::{Session, TaskEvent, TaskId};
use codebox_core::memory::MemoryEventBus;
use codebox_core::ports::{EventBus, RateDecision, RateLimiter, SessionStore, window_of};
use codebox_core::time;
use futures::StreamExt;
use futures::stream::BoxStream;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// How long a Redis reply and a (re)connection may take. The client's defaults (0.5 s and
/// 1 s) turn a moment of CPU starvation on a busy host — the gateway's own task polled
/// late, or Redis scheduled late — into a 503 for a request that would have passed;
/// a slow reply should make a request slower, not fail it. A Redis that is really gone
/// still fails fast: its connection is refused.
fn manager_config() -> redis::aio::ConnectionManagerConfig {
    redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(std::time::Duration::from_secs(5)))
        .set_connection_timeout(Some(std::time::Duration::from_secs(5)))
}

impl RedisSessionStore {
    /// Connects with automatic reconnection; keys are `<prefix>session:<jti>`.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(url).map_err(|e| anyhow::anyhow!("invalid Redis URL: {e}"))?;
        let conn = ConnectionManager::new_with_config(client, manager_config())
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

/// Live events between API processes (compose: several gateways): each task's events are
/// published on its own channel, `<prefix>events:<task>`, as one JSON array per call.
/// A process holds **one** pub/sub connection whatever the number of streams it serves:
/// it subscribes to a task's channel while someone here follows the task, and hands what
/// arrives to its local listeners (an in-process bus). A connection lost is made again on
/// the next subscription, with every channel still listened to.
#[derive(Clone)]
pub struct RedisEventBus {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    local: MemoryEventBus,
    hub: Arc<tokio::sync::Mutex<Option<Hub>>>,
}

/// The shared subscription: its command half, and whether its reader still runs.
struct Hub {
    sink: redis::aio::PubSubSink,
    alive: Arc<AtomicBool>,
    subscribed: HashSet<TaskId>,
}

impl RedisEventBus {
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client =
            redis::Client::open(url).map_err(|e| anyhow::anyhow!("invalid Redis URL: {e}"))?;
        let conn = ConnectionManager::new_with_config(client.clone(), manager_config())
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to Redis: {e}"))?;
        let bus = Self {
            client,
            conn,
            prefix: prefix.to_owned(),
            local: MemoryEventBus::default(),
            hub: Arc::default(),
        };
        // Streams still open when the subscription's connection is lost go on hearing
        // their tasks once it is back: checked every second while anyone listens here.
        let watched = bus.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RECONNECT_PAUSE).await;
                if watched.local.listened().is_empty() {
                    continue;
                }
                let mut slot = watched.hub.lock().await;
                if slot
                    .as_ref()
                    .is_some_and(|h| h.alive.load(Ordering::SeqCst))
                {
                    continue;
                }
                if let Err(e) = watched.hub(&mut slot).await {
                    tracing::warn!(error = %e, "Redis events: still unreachable");
                }
            }
        });
        Ok(bus)
    }

    fn channel(&self, id: TaskId) -> String {
        format!("{}events:{id}", self.prefix)
    }

    /// A live hub: the one there is, or a new connection subscribed to every task still
    /// listened to here (each Redis call bounded by [`HUB_CALL`]: the lock is held).
    async fn hub<'a>(&self, slot: &'a mut Option<Hub>) -> Result<&'a mut Hub, Error> {
        if slot
            .as_ref()
            .is_some_and(|h| !h.alive.load(Ordering::SeqCst))
        {
            *slot = None;
        }
        if slot.is_none() {
            let (mut sink, mut stream) = bounded(self.client.get_async_pubsub()).await?.split();
            let listened = self.local.listened();
            for id in &listened {
                bounded(sink.subscribe(self.channel(*id))).await?;
            }
            let alive = Arc::new(AtomicBool::new(true));
            let (local, prefix, flag) = (self.local.clone(), self.prefix.clone(), alive.clone());
            tokio::spawn(async move {
                let events_of = format!("{prefix}events:");
                while let Some(message) = stream.next().await {
                    let id = message
                        .get_channel_name()
                        .strip_prefix(&events_of)
                        .and_then(|id| id.parse::<TaskId>().ok());
                    let events: Vec<TaskEvent> = message
                        .get_payload::<String>()
                        .ok()
                        .and_then(|payload| serde_json::from_str(&payload).ok())
                        .unwrap_or_default();
                    if let Some(id) = id {
                        let _ = local.publish(id, &events).await;
                    }
                }
                flag.store(false, Ordering::SeqCst);
                tracing::warn!("the Redis event subscription ended; connecting again");
            });
            *slot = Some(Hub {
                sink,
                alive,
                subscribed: listened.into_iter().collect(),
            });
        }
        slot.as_mut()
            .ok_or_else(|| Error::Unavailable("the Redis event subscription".into()))
    }
}

/// The longest one Redis call of the shared subscription may take.
const HUB_CALL: std::time::Duration = std::time::Duration::from_secs(5);
/// How often a lost subscription is looked for and made again.
const RECONNECT_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

async fn bounded<T>(
    call: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, Error> {
    match tokio::time::timeout(HUB_CALL, call).await {
        Ok(answer) => answer.map_err(unavailable),
        Err(_) => Err(Error::Unavailable(format!(
            "Redis did not answer within {HUB_CALL:?}"
        ))),
    }
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, id: TaskId, events: &[TaskEvent]) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        let payload = serde_json::to_string(events).map_err(|e| Error::Backend(e.into()))?;
        let mut conn = self.conn.clone();
        let _: i64 = conn
            .publish(self.channel(id), payload)
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn subscribe(&self, id: TaskId) -> Result<BoxStream<'static, TaskEvent>, Error> {
        // Listening locally first: nothing that arrives once Redis confirms is missed.
        let stream = self.local.subscribe(id).await?;
        let mut slot = self.hub.lock().await;
        let hub = self.hub(&mut slot).await?;
        // Channels nobody here follows any more are left on the way.
        let listened: HashSet<TaskId> = self.local.listened().into_iter().collect();
        let stale: Vec<String> = hub
            .subscribed
            .difference(&listened)
            .map(|id| self.channel(*id))
            .collect();
        let outcome = async {
            if !stale.is_empty() {
                bounded(hub.sink.unsubscribe(&stale)).await?;
                hub.subscribed.retain(|id| listened.contains(id));
            }
            if !hub.subscribed.contains(&id) {
                bounded(hub.sink.subscribe(self.channel(id))).await?;
                hub.subscribed.insert(id);
            }
            Ok::<(), Error>(())
        }
        .await;
        if let Err(e) = outcome {
            // A connection that fails a call is made again by the next subscription.
            *slot = None;
            return Err(e);
        }
        Ok(stream)
    }
}

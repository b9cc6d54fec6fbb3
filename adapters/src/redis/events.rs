//! Live events between API processes (compose: several gateways), with each task's log.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use codebox_core::Error;
use codebox_core::domain::{TaskEvent, TaskId};
use codebox_core::memory::{Fanout, live_after};
use codebox_core::ports::{
    EventBus, LOG_BYTES, LOG_EVENTS, Logged, Subscription, ends_log, log_ttl,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use redis::aio::ConnectionManager;

use super::{manager_config, unavailable};

/// Numbers, keeps and publishes one call's events at once: each event that fits the log
/// (`KEYS[1]`, a list; its bytes in `KEYS[2]`) is appended and gets its place as its
/// number, 0 when it does not fit; the numbers and the events go to the channel as
/// `<n>,<n>,… <JSON array>`. ARGV: the channel, the log's time to live in seconds, its
/// bounds (events, bytes), the JSON array, whether these events end the task (`1`), then
/// each event's JSON and weight. An ended log (`KEYS[3]` set, as long as the log is kept)
/// is never kept longer by a later call.
const PUBLISH: &str = r#"
local n = redis.call('LLEN', KEYS[1])
local bytes = tonumber(redis.call('GET', KEYS[2]) or '0')
local ttl = tonumber(ARGV[2])
local left = redis.call('TTL', KEYS[3])
if left > 0 and left < ttl then ttl = left end
if ARGV[6] == '1' then redis.call('SET', KEYS[3], '1', 'EX', ttl, 'NX') end
local seqs = {}
for i = 7, #ARGV, 2 do
  local weight = tonumber(ARGV[i + 1])
  if n < tonumber(ARGV[3]) and bytes + weight <= tonumber(ARGV[4]) then
    n = redis.call('RPUSH', KEYS[1], ARGV[i])
    bytes = bytes + weight
    seqs[#seqs + 1] = n
  else
    seqs[#seqs + 1] = 0
  end
end
if n > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('SET', KEYS[2], bytes, 'EX', ttl)
end
redis.call('PUBLISH', ARGV[1], table.concat(seqs, ',') .. ' ' .. ARGV[5])
return n
"#;

/// Live events between API processes (compose: several gateways): each task's events are
/// kept in its log, `<prefix>events:{<task>}:log` (a list: an event's place is its
/// number), and published on its own channel, `<prefix>events:<task>`, both by one script.
/// A process holds **one** pub/sub connection whatever the number of streams it serves:
/// it subscribes to a task's channel while someone here follows the task, and hands what
/// arrives to its local listeners. A listener who comes late reads the log once
/// subscribed: what was published meanwhile is in both, and heard once. A connection lost
/// is made again on the next subscription, with every channel still listened to.
#[derive(Clone)]
pub struct RedisEventBus {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: String,
    local: Fanout,
    publish: Arc<redis::Script>,
    hub: Arc<tokio::sync::Mutex<Option<Hub>>>,
}

/// The shared subscription: its command half, and whether its reader still runs.
struct Hub {
    sink: redis::aio::PubSubSink,
    alive: Arc<AtomicBool>,
    subscribed: HashSet<TaskId>,
    /// Reads the subscription's messages; a hub replaced takes its connection with it (a
    /// reader left running would hand every message on twice).
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.reader.abort();
    }
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
            local: Fanout::default(),
            publish: Arc::new(redis::Script::new(PUBLISH)),
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

    /// The task's log, its size and its end mark, in one hash slot.
    fn log_keys(&self, id: TaskId) -> [String; 3] {
        let task = format!("{}events:{{{id}}}", self.prefix);
        [
            format!("{task}:log"),
            format!("{task}:bytes"),
            format!("{task}:ended"),
        ]
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
            let reader = tokio::spawn(async move {
                let events_of = format!("{prefix}events:");
                while let Some(message) = stream.next().await {
                    let id = message
                        .get_channel_name()
                        .strip_prefix(&events_of)
                        .and_then(|id| id.parse::<TaskId>().ok());
                    let logged = message
                        .get_payload::<String>()
                        .ok()
                        .and_then(|payload| numbered(&payload))
                        .unwrap_or_default();
                    if let Some(id) = id {
                        local.send(id, &logged);
                    }
                }
                flag.store(false, Ordering::SeqCst);
                tracing::warn!("the Redis event subscription ended; connecting again");
            });
            *slot = Some(Hub {
                sink,
                alive,
                subscribed: listened.into_iter().collect(),
                reader,
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

/// A published message as listeners get it: each event with its number (none for 0).
fn numbered(payload: &str) -> Option<Vec<Logged>> {
    let (seqs, events) = payload.split_once(' ')?;
    let events: Vec<TaskEvent> = serde_json::from_str(events).ok()?;
    let seqs = seqs.split(',').map(|n| n.parse::<u64>().ok());
    Some(
        seqs.zip(events)
            .map(|(seq, event)| Logged {
                seq: seq.filter(|&n| n > 0),
                event,
            })
            .collect(),
    )
}

#[async_trait]
impl EventBus for RedisEventBus {
    #[tracing::instrument(level = "debug", name = "bus.publish", skip_all)]
    async fn publish(&self, id: TaskId, events: &[TaskEvent]) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        let all = serde_json::to_string(events).map_err(|e| Error::Backend(e.into()))?;
        let [log, bytes, ended] = self.log_keys(id);
        let mut call = self.publish.key(log);
        call.key(bytes)
            .key(ended)
            .arg(self.channel(id))
            .arg(log_ttl(events).as_secs())
            .arg(LOG_EVENTS)
            .arg(LOG_BYTES)
            .arg(all)
            .arg(if ends_log(events) { "1" } else { "0" });
        for event in events {
            let one = serde_json::to_string(event).map_err(|e| Error::Backend(e.into()))?;
            call.arg(one).arg(event.weight());
        }
        let mut conn = self.conn.clone();
        let _: i64 = call.invoke_async(&mut conn).await.map_err(unavailable)?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", name = "bus.subscribe", skip_all)]
    async fn subscribe(&self, id: TaskId) -> Result<Subscription, Error> {
        let rx = self.local.listen(id);
        self.follow(id).await?;
        // Read once Redis confirmed the subscription: an event published since is heard
        // live, one before is in the log, one in between in both (and heard once).
        let [log, ..] = self.log_keys(id);
        let mut conn = self.conn.clone();
        let kept: Vec<String> = redis::cmd("LRANGE")
            .arg(log)
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        let mut past = Vec::with_capacity(kept.len());
        for (n, json) in (1u64..).zip(&kept) {
            // An event this process cannot read (one of a newer version's kinds, during
            // an upgrade) is left out, its number kept: the rest of the log still serves.
            match serde_json::from_str::<TaskEvent>(json) {
                Ok(event) => past.push(Logged {
                    seq: Some(n),
                    event,
                }),
                Err(e) => {
                    tracing::warn!(task_id = %id, seq = n, error = %e, "an event of the log was not read; left out")
                }
            }
        }
        let after = kept.len() as u64;
        Ok(Subscription {
            past,
            live: live_after(rx, after),
        })
    }

    async fn listen(&self, id: TaskId) -> Result<BoxStream<'static, Logged>, Error> {
        let rx = self.local.listen(id);
        self.follow(id).await?;
        Ok(live_after(rx, 0))
    }
}

impl RedisEventBus {
    /// Subscribes the shared connection to the task's channel, if it is not yet.
    async fn follow(&self, id: TaskId) -> Result<(), Error> {
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
        Ok(())
    }
}

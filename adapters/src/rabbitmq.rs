//! RabbitMQ (lapin): a durable quorum queue, persistent messages, publisher confirms,
//! manual acks, prefetch, and a dead-letter exchange that takes a message after
//! `max_deliveries` deliveries (the broker counts them: `x-delivery-limit`). A deferred
//! message waits in `<queue>.later` until its expiration moves it back to the task queue,
//! carrying the deliveries it had (`x-codebox-deliveries`). A lost connection is dropped
//! and made again on the next call, for publisher and consumer alike.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use codebox_core::Error;
use codebox_core::domain::TaskMessage;
use codebox_core::ports::{Delivery, QueueConsumer, Settle, TaskQueue};
use futures::StreamExt;
use lapin::Acker;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
pub struct RabbitConfig {
    pub url: String,
    /// The task queue; the dead letters go to `<queue>.dead` through `<queue>.dlx`,
    /// deferred messages wait in `<queue>.later`.
    pub queue: String,
    pub max_deliveries: u32,
    /// Unacked messages a consumer holds at once: the worker's concurrency.
    pub prefetch: u16,
    /// Delete the queues after this long unused (`x-expires`): for throwaway queues of
    /// tests and benchmarks. `None` in production.
    pub expires: Option<Duration>,
}

#[derive(Clone)]
pub struct RabbitQueue {
    inner: Arc<Inner>,
}

struct Inner {
    config: RabbitConfig,
    /// What `receive` reads: the task queue, or its dead letters.
    consume_from: String,
    publisher: Mutex<Option<(Connection, Channel)>>,
    consumer: Mutex<Option<(Connection, Channel, Consumer)>>,
}

fn unavailable(e: impl std::fmt::Display) -> Error {
    tracing::warn!(error = %e, "rabbitmq");
    Error::Unavailable("the task queue".into())
}

impl RabbitQueue {
    /// Connects once to check the broker and declare the queues.
    pub async fn connect(config: RabbitConfig) -> anyhow::Result<Self> {
        let queue = Self {
            inner: Arc::new(Inner {
                consume_from: config.queue.clone(),
                config,
                publisher: Mutex::new(None),
                consumer: Mutex::new(None),
            }),
        };
        let (conn, channel) = queue
            .inner
            .open_publisher()
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to RabbitMQ: {e}"))?;
        *queue.inner.publisher.lock().await = Some((conn, channel));
        Ok(queue)
    }

    /// A consumer of the dead-letter queue: messages the broker gave up on, whose tasks
    /// must still end `failed`.
    pub fn dead_letters(&self) -> Self {
        Self {
            inner: Arc::new(Inner {
                config: self.inner.config.clone(),
                consume_from: format!("{}.dead", self.inner.config.queue),
                publisher: Mutex::new(None),
                consumer: Mutex::new(None),
            }),
        }
    }

    /// Messages waiting in the dead-letter queue.
    pub async fn dead_letter_count(&self) -> Result<u32, Error> {
        let (_conn, channel) = self.inner.open().await.map_err(unavailable)?;
        let q = channel
            .queue_declare(
                format!("{}.dead", self.inner.config.queue).into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(unavailable)?;
        Ok(q.message_count())
    }
}

impl Inner {
    /// A connection and a channel with the topology declared (idempotent).
    async fn open(&self) -> Result<(Connection, Channel), lapin::Error> {
        let c = &self.config;
        let conn = Connection::connect(&c.url, ConnectionProperties::default()).await?;
        let channel = conn.create_channel().await?;
        let dlx = format!("{}.dlx", c.queue);
        let dead = format!("{}.dead", c.queue);
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                dlx.clone().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await?;
        let mut dead_args = FieldTable::default();
        if let Some(e) = c.expires {
            let ms = i64::try_from(e.as_millis()).unwrap_or(i64::MAX);
            dead_args.insert("x-expires".into(), AMQPValue::LongLongInt(ms));
        }
        channel
            .queue_declare(dead.clone().into(), durable, dead_args.clone())
            .await?;
        channel
            .queue_bind(
                dead.into(),
                dlx.clone().into(),
                c.queue.clone().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut args = FieldTable::default();
        args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        // Delivered at most max_deliveries times: the limit counts redeliveries.
        args.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(c.max_deliveries.max(1) - 1)),
        );
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(c.queue.clone().into()),
        );
        if let Some(expires) = dead_args.inner().get("x-expires").cloned() {
            args.insert("x-expires".into(), expires);
        }
        channel
            .queue_declare(c.queue.clone().into(), durable, args)
            .await?;
        // Deferred messages: each expires after its own delay into the task queue's tail.
        // A quorum queue, dead-lettering at least once: a classic queue's dead letters are
        // dropped when their target is not there to take them (a quorum queue still
        // electing its leader after a broker restart), and a deferred task with them.
        let mut later_args = dead_args;
        later_args.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
        later_args.insert(
            "x-dead-letter-strategy".into(),
            AMQPValue::LongString("at-least-once".into()),
        );
        later_args.insert(
            "x-overflow".into(),
            AMQPValue::LongString("reject-publish".into()),
        );
        later_args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        later_args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(c.queue.clone().into()),
        );
        channel
            .queue_declare(self.later().into(), durable, later_args)
            .await?;
        Ok((conn, channel))
    }

    /// One retry on a fresh connection: the old one may have died since the last use.
    async fn publish(
        &self,
        to: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), Error> {
        match self.publish_once(to, payload, properties.clone()).await {
            Err(Error::Unavailable(_)) => self.publish_once(to, payload, properties).await,
            other => other,
        }
    }

    fn later(&self) -> String {
        format!("{}.later", self.config.queue)
    }

    /// A channel in confirm mode: every publish is acknowledged by the broker.
    async fn open_publisher(&self) -> Result<(Connection, Channel), lapin::Error> {
        let (conn, channel) = self.open().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok((conn, channel))
    }

    async fn publish_once(
        &self,
        to: &str,
        payload: &[u8],
        properties: BasicProperties,
    ) -> Result<(), Error> {
        let mut guard = self.publisher.lock().await;
        if guard.is_none() {
            *guard = Some(self.open_publisher().await.map_err(unavailable)?);
        }
        let Some((_, channel)) = guard.as_ref() else {
            return Err(Error::Unavailable("the task queue".into()));
        };
        let sent = async {
            channel
                .basic_publish(
                    "".into(),
                    to.into(),
                    BasicPublishOptions::default(),
                    payload,
                    properties,
                )
                .await?
                .await
        };
        match tokio::time::timeout(Duration::from_secs(10), sent).await {
            Ok(Ok(confirmation)) if confirmation.is_ack() => Ok(()),
            Ok(Ok(_)) => Err(Error::Unavailable(
                "the task queue refused the message".into(),
            )),
            Ok(Err(e)) => {
                *guard = None;
                Err(unavailable(e))
            }
            Err(_) => {
                *guard = None;
                Err(unavailable("publisher confirm timed out"))
            }
        }
    }
}

#[async_trait]
impl TaskQueue for RabbitQueue {
    #[tracing::instrument(level = "debug", name = "queue.publish", skip_all)]
    async fn publish(&self, message: &TaskMessage) -> Result<(), Error> {
        let payload = serde_json::to_vec(message).map_err(|e| Error::Backend(e.into()))?;
        self.inner
            .publish(&self.inner.config.queue, &payload, persistent())
            .await
    }

    async fn ping(&self) -> Result<(), Error> {
        let mut guard = self.inner.publisher.lock().await;
        let alive = guard
            .as_ref()
            .is_some_and(|(conn, _)| conn.status().connected());
        if !alive {
            *guard = Some(self.inner.open_publisher().await.map_err(unavailable)?);
        }
        Ok(())
    }
}

#[async_trait]
impl QueueConsumer for RabbitQueue {
    async fn receive(&self, wait: Duration) -> Result<Option<Delivery>, Error> {
        let mut guard = self.inner.consumer.lock().await;
        if guard.is_none() {
            let (conn, channel) = self.inner.open().await.map_err(unavailable)?;
            channel
                .basic_qos(
                    self.inner.config.prefetch.max(1),
                    BasicQosOptions::default(),
                )
                .await
                .map_err(unavailable)?;
            let consumer = channel
                .basic_consume(
                    self.inner.consume_from.clone().into(),
                    format!("codebox-worker-{}", uuid::Uuid::new_v4().simple()).into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(unavailable)?;
            *guard = Some((conn, channel, consumer));
        }
        let Some((_, channel, consumer)) = guard.as_mut() else {
            return Err(Error::Unavailable("the task queue".into()));
        };
        let next = match tokio::time::timeout(wait, consumer.next()).await {
            Err(_) => return Ok(None),
            Ok(next) => next,
        };
        let delivery = match next {
            // A delivery buffered before its channel died is the broker's again (it hands
            // unsettled messages back): running it here too could run the task twice.
            Some(Ok(_)) if !channel.status().connected() => {
                *guard = None;
                return Err(unavailable("the channel closed"));
            }
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                *guard = None;
                return Err(unavailable(e));
            }
            None => {
                *guard = None;
                return Err(unavailable("the consumer was cancelled"));
            }
        };
        let deliveries = header_count(&delivery.properties, DEFERRED_DELIVERIES)
            .saturating_add(header_count(&delivery.properties, "x-delivery-count"));
        let deferrals = header_count(&delivery.properties, DEFERRALS);
        let acker = delivery.acker.clone();
        match serde_json::from_slice::<TaskMessage>(&delivery.data) {
            Ok(message) => Ok(Some(Delivery {
                message,
                attempt: deliveries.saturating_add(1),
                deferrals,
                settle: Box::new(RabbitSettle {
                    acker: std::sync::Mutex::new(Some(acker)),
                    queue: self.inner.clone(),
                    payload: delivery.data,
                    deliveries,
                    deferrals,
                }),
            })),
            Err(e) => {
                // Not a task message at all: straight to the dead letters, never retried.
                tracing::error!(error = %e, "undecodable message; dead-lettering it");
                bounded(acker.reject(BasicRejectOptions { requeue: false })).await?;
                Ok(None)
            }
        }
    }
}

/// Deliveries a deferred message had before it was deferred (its copy's own count starts
/// again at nothing).
const DEFERRED_DELIVERIES: &str = "x-codebox-deliveries";
/// How often a message was deferred.
const DEFERRALS: &str = "x-codebox-deferrals";

/// How a task message is published: persistent JSON.
fn persistent() -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
}

/// A count in a header (`x-delivery-count`: deliveries so far, as the quorum queue counts
/// them); absent, 0.
fn header_count(properties: &BasicProperties, name: &str) -> u32 {
    let value = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(name).cloned());
    match value {
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(AMQPValue::LongInt(n)) => u32::try_from(n).unwrap_or(u32::MAX),
        Some(AMQPValue::LongUInt(n)) => n,
        Some(AMQPValue::ShortInt(n)) => u32::try_from(n).unwrap_or(0),
        Some(AMQPValue::ShortShortInt(n)) => u32::try_from(n).unwrap_or(0),
        _ => 0,
    }
}

struct RabbitSettle {
    /// `None` once settled; dropped unsettled, the message is handed back to the broker.
    acker: std::sync::Mutex<Option<Acker>>,
    /// To publish a deferred copy.
    queue: Arc<Inner>,
    payload: Vec<u8>,
    /// Deliveries before this one.
    deliveries: u32,
    deferrals: u32,
}

impl RabbitSettle {
    fn take(&self) -> Option<Acker> {
        self.acker.lock().ok().and_then(|mut a| a.take())
    }
}

#[async_trait]
impl Settle for RabbitSettle {
    async fn ack(self: Box<Self>) -> Result<(), Error> {
        match self.take() {
            Some(a) => bounded(a.ack(BasicAckOptions::default())).await,
            None => Ok(()),
        }
    }

    async fn retry(self: Box<Self>) -> Result<(), Error> {
        match self.take() {
            Some(a) => {
                bounded(a.nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                }))
                .await
            }
            None => Ok(()),
        }
    }

    async fn dead_letter(self: Box<Self>) -> Result<(), Error> {
        match self.take() {
            Some(a) => bounded(a.reject(BasicRejectOptions { requeue: false })).await,
            None => Ok(()),
        }
    }

    /// A copy to `<queue>.later`, confirmed, then the original acked: a crash in between
    /// leaves two messages of one task, which the start of a run makes harmless.
    async fn defer(self: Box<Self>, after: Duration) -> Result<(), Error> {
        let Some(acker) = self.take() else {
            return Ok(());
        };
        let mut headers = FieldTable::default();
        headers.insert(
            DEFERRED_DELIVERIES.into(),
            AMQPValue::LongUInt(self.deliveries),
        );
        headers.insert(
            DEFERRALS.into(),
            AMQPValue::LongUInt(self.deferrals.saturating_add(1)),
        );
        let expiration = after.as_millis().max(1).to_string();
        let properties = persistent()
            .with_expiration(expiration.into())
            .with_headers(headers);
        let later = self.queue.later();
        match self.queue.publish(&later, &self.payload, properties).await {
            Ok(()) => bounded(acker.ack(BasicAckOptions::default())).await,
            Err(e) => {
                // Not deferred: back now, counted, as a retry is.
                let _ = bounded(acker.nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                }))
                .await;
                Err(e)
            }
        }
    }
}

impl Drop for RabbitSettle {
    fn drop(&mut self) {
        if let Some(a) = self.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = bounded(a.nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                }))
                .await;
            });
        }
    }
}

/// Time a settlement (ack, nack, reject) gets. One sent as its connection dies goes to
/// the connection's internal loop, which may have ended: nothing would ever answer it,
/// and a stopping worker would wait for it forever. Its message is the broker's again
/// either way, as the connection is gone.
const SETTLE_WAIT: Duration = Duration::from_secs(10);

async fn bounded(
    settle: impl std::future::Future<Output = Result<bool, lapin::Error>>,
) -> Result<(), Error> {
    match tokio::time::timeout(SETTLE_WAIT, settle).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(unavailable(e)),
        Err(_) => Err(unavailable(
            "the broker did not take the settlement within 10 s",
        )),
    }
}

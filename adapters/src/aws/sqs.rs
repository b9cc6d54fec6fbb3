//! SQS: long polling, one message per receive (a worker asks when it has a free slot),
//! the attempt from `ApproximateReceiveCount`, a visibility timeout the worker extends
//! while a task runs longer than it, delete only after the commit, and a redrive policy
//! to a dead-letter queue (SQS moves a message there after `maxReceiveCount` receives).
//! A deferred message is sent again with a delay, carrying the receives it had
//! (`codebox-deliveries`), and the original deleted: a visibility change would count
//! toward `maxReceiveCount` and dead-letter a task that only waited its turn.
//! A message too big for SQS (256 KiB) is stored in the blob store and the message
//! carries its key.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use codebox_core::Error;
use codebox_core::domain::TaskMessage;
use codebox_core::ports::{BlobStore, Delivery, QueueConsumer, Settle, TaskQueue};
use codebox_core::spill::{self, Carried};
use serde::{Deserialize, Serialize};

use super::{SPILL_BYTES, sdk_error};

const WHAT: &str = "the task queue";
/// Receives a deferred message had before it was sent again.
const DEFERRED_DELIVERIES: &str = "codebox-deliveries";
/// How often a message was deferred.
const DEFERRALS: &str = "codebox-deferrals";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsConfig {
    /// `TASK_QUEUE_URL`.
    pub queue_url: String,
    /// `TASK_DLQ_URL`: where `dead_letter` moves a message, and what
    /// [`SqsQueue::dead_letters`] reads.
    pub dead_letter_url: Option<String>,
}

#[derive(Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: Option<String>,
    spill: Option<Arc<dyn BlobStore>>,
}

/// The body of a message whose task message is in the blob store.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spilled {
    spilled: String,
}

impl SqsQueue {
    pub fn new(
        sdk: &aws_config::SdkConfig,
        config: SqsConfig,
        spill: Option<Arc<dyn BlobStore>>,
    ) -> Self {
        Self {
            client: Client::new(sdk),
            url: config.queue_url,
            dead_letter_url: config.dead_letter_url,
            spill,
        }
    }

    /// A consumer of the dead-letter queue: messages SQS gave up on, whose tasks must
    /// still end `failed`.
    pub fn dead_letters(&self) -> Option<Self> {
        self.dead_letter_url.as_ref().map(|url| Self {
            client: self.client.clone(),
            url: url.clone(),
            dead_letter_url: None,
            spill: self.spill.clone(),
        })
    }

    /// Messages waiting in this queue (approximate, as SQS counts).
    pub async fn depth(&self) -> Result<u64, Error> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        Ok(out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// The task message of a body, fetching it from the blob store when spilled.
    /// `Ok(Err(why))`: the message can never be read; `Err`: the blob store is failing.
    #[allow(clippy::type_complexity)]
    async fn decode(
        &self,
        body: &str,
    ) -> Result<Result<(TaskMessage, Option<String>), String>, Error> {
        if let Ok(message) = serde_json::from_str::<TaskMessage>(body) {
            return Ok(Ok((message, None)));
        }
        let spilled: Spilled = match serde_json::from_str(body) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let Some(spill) = self.spill.as_ref() else {
            return Ok(Err("a spilled message, but no blob store".into()));
        };
        let Some(bytes) = spill.get(&spilled.spilled).await? else {
            return Ok(Err(format!(
                "the spilled message {} is gone",
                spilled.spilled
            )));
        };
        Ok(serde_json::from_slice(&bytes)
            .map(|m| (m, Some(spilled.spilled)))
            .map_err(|e| e.to_string()))
    }
}

#[async_trait]
impl TaskQueue for SqsQueue {
    async fn publish(&self, message: &TaskMessage) -> Result<(), Error> {
        let body = serde_json::to_string(message).map_err(|e| Error::Backend(e.into()))?;
        let key = || {
            format!(
                "spill/messages/{}-{}.json",
                message.task_id,
                uuid::Uuid::new_v4()
            )
        };
        let (body, spilled) = match spill::carry(
            self.spill.as_deref(),
            body,
            SPILL_BYTES,
            "an SQS message",
            key,
        )
        .await?
        {
            Carried::Inline(body) => (body, None),
            Carried::Spilled(key) => (
                serde_json::to_string(&Spilled {
                    spilled: key.clone(),
                })
                .map_err(|e| Error::Backend(e.into()))?,
                Some(key),
            ),
        };
        let sent = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await;
        if let Err(e) = sent {
            if let (Some(spill), Some(key)) = (&self.spill, spilled) {
                let _ = spill.delete(&key).await;
            }
            return Err(sdk_error(WHAT, e));
        }
        Ok(())
    }

    async fn ping(&self) -> Result<(), Error> {
        self.depth().await.map(|_| ())
    }
}

#[async_trait]
impl QueueConsumer for SqsQueue {
    async fn receive(&self, wait: Duration) -> Result<Option<Delivery>, Error> {
        // Long polling waits whole seconds, at most 20.
        let wait_secs = i32::try_from(wait.as_secs().min(20)).unwrap_or(20);
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(1)
            .wait_time_seconds(wait_secs)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names(DEFERRED_DELIVERIES)
            .message_attribute_names(DEFERRALS)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        let Some(m) = out.messages.unwrap_or_default().into_iter().next() else {
            if wait_secs == 0 && !wait.is_zero() {
                // Shorter than SQS can wait: wait here, as the port promises.
                tokio::time::sleep(wait).await;
            }
            return Ok(None);
        };
        let (Some(receipt), Some(body)) = (m.receipt_handle, m.body) else {
            return Err(Error::Backend(anyhow::anyhow!(
                "SQS returned a message without a body or receipt handle"
            )));
        };
        let receives: u32 = m
            .attributes
            .as_ref()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let number = |name: &str| -> u32 {
            m.message_attributes
                .as_ref()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let (before, deferrals) = (number(DEFERRED_DELIVERIES), number(DEFERRALS));
        let attempt = before.saturating_add(receives);
        // A failing blob store is not the message's fault: leave it; SQS hands it out
        // again after the visibility timeout.
        let decoded = self.decode(&body).await?;
        let settle = SqsSettle {
            client: self.client.clone(),
            url: self.url.clone(),
            dead_letter_url: self.dead_letter_url.clone(),
            spill: self.spill.clone(),
            receipt: Mutex::new(Some(receipt)),
            attempt,
            deferrals,
            body,
            spilled: decoded.as_ref().ok().and_then(|(_, key)| key.clone()),
        };
        match decoded {
            Ok((message, _)) => Ok(Some(Delivery {
                message,
                attempt,
                deferrals,
                settle: Box::new(settle),
            })),
            Err(e) => {
                // Not a task message at all: to the dead letters, never retried.
                tracing::error!(error = %e, "undecodable message; dead-lettering it");
                Box::new(settle).dead_letter().await?;
                Ok(None)
            }
        }
    }
}

struct SqsSettle {
    client: Client,
    url: String,
    dead_letter_url: Option<String>,
    spill: Option<Arc<dyn BlobStore>>,
    /// `None` once settled; dropped unsettled, the message is made visible again.
    receipt: Mutex<Option<String>>,
    attempt: u32,
    deferrals: u32,
    body: String,
    spilled: Option<String>,
}

impl SqsSettle {
    fn take(&self) -> Option<String> {
        self.receipt.lock().ok().and_then(|mut r| r.take())
    }

    fn receipt(&self) -> Option<String> {
        self.receipt.lock().ok().and_then(|r| r.clone())
    }

    async fn delete(&self, receipt: String) -> Result<(), Error> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        Ok(())
    }

    async fn visible_in(&self, receipt: String, secs: i32) -> Result<(), Error> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(secs)
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        Ok(())
    }
}

#[async_trait]
impl Settle for SqsSettle {
    async fn ack(self: Box<Self>) -> Result<(), Error> {
        if let Some(r) = self.take() {
            self.delete(r).await?;
            if let (Some(spill), Some(key)) = (&self.spill, &self.spilled) {
                let _ = spill.delete(key).await;
            }
        }
        Ok(())
    }

    async fn retry(self: Box<Self>) -> Result<(), Error> {
        if let Some(r) = self.take() {
            self.visible_in(r, 0).await?;
        }
        Ok(())
    }

    async fn dead_letter(self: Box<Self>) -> Result<(), Error> {
        let Some(r) = self.take() else {
            return Ok(());
        };
        let Some(dlq) = &self.dead_letter_url else {
            tracing::error!("no dead-letter queue configured; dropping the message");
            self.delete(r).await?;
            if let (Some(spill), Some(key)) = (&self.spill, &self.spilled) {
                let _ = spill.delete(key).await;
            }
            return Ok(());
        };
        self.client
            .send_message()
            .queue_url(dlq)
            .message_body(self.body.clone())
            .send()
            .await
            .map_err(|e| sdk_error(WHAT, e))?;
        self.delete(r).await
    }

    async fn defer(self: Box<Self>, after: Duration) -> Result<(), Error> {
        let Some(r) = self.take() else {
            return Ok(());
        };
        // Whole seconds, at most 15 minutes.
        let secs = after.as_secs_f64().ceil().clamp(1.0, 900.0) as i32;
        let number = |n: u32| {
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("Number")
                .string_value(n.to_string())
                .build()
                .map_err(|e| Error::Backend(e.into()))
        };
        let deliveries = number(self.attempt.saturating_sub(1))?;
        let deferrals = number(self.deferrals.saturating_add(1))?;
        let sent = self
            .client
            .send_message()
            .queue_url(&self.url)
            .message_body(self.body.clone())
            .delay_seconds(secs)
            .message_attributes(DEFERRED_DELIVERIES, deliveries)
            .message_attributes(DEFERRALS, deferrals)
            .send()
            .await;
        match sent {
            // The spilled message, if any, is the copy's now.
            Ok(_) => self.delete(r).await,
            Err(e) => {
                let _ = self.visible_in(r, 0).await;
                Err(sdk_error(WHAT, e))
            }
        }
    }

    async fn extend(&self, by: Duration) -> Result<(), Error> {
        match self.receipt() {
            // SQS allows up to 12 hours.
            Some(r) => {
                let secs = i32::try_from(by.as_secs().clamp(1, 43_200)).unwrap_or(43_200);
                self.visible_in(r, secs).await
            }
            None => Ok(()),
        }
    }
}

impl Drop for SqsSettle {
    fn drop(&mut self) {
        if let Some(r) = self.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (client, url) = (self.client.clone(), self.url.clone());
            handle.spawn(async move {
                let _ = client
                    .change_message_visibility()
                    .queue_url(url)
                    .receipt_handle(r)
                    .visibility_timeout(0)
                    .send()
                    .await;
            });
        }
    }
}

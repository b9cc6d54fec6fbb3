//! The webhook queue (SQS): where a Lambda function that stores tasks' ends (`commit`)
//! hands each ended task's webhook on, instead of calling it before it answers. The
//! `webhooks` function, fed by the queue, makes the calls with every try and pause they
//! are due (no worker waits on them); a message names the task only, so nothing of its
//! outcome travels twice.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use codebox_core::domain::{Task, TaskId};
use codebox_core::ports::EndNotifier;
use serde::{Deserialize, Serialize};

use super::sdk_error;

/// A message of the webhook queue: the ended task whose webhook is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookDue {
    pub task: TaskId,
}

/// The notifier of a Lambda function: one message per ended task with a webhook.
pub struct SqsWebhookQueue {
    client: Client,
    url: String,
}

impl SqsWebhookQueue {
    /// The queue at `url` (`WEBHOOK_QUEUE_URL`).
    pub fn new(sdk: &aws_config::SdkConfig, url: String) -> Self {
        Self {
            client: Client::new(sdk),
            url,
        }
    }

    /// Hands the call of `task`'s webhook on.
    pub async fn hand_on(&self, task: TaskId) -> Result<(), codebox_core::Error> {
        let body = serde_json::to_string(&WebhookDue { task })
            .map_err(|e| codebox_core::Error::Backend(e.into()))?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| sdk_error("the webhook queue", e))?;
        Ok(())
    }
}

#[async_trait]
impl EndNotifier for SqsWebhookQueue {
    async fn ended(&self, task: Task) -> Result<(), codebox_core::Error> {
        self.hand_on(task.id).await?;
        tracing::debug!(task_id = %task.id, "webhook handed to the webhook queue");
        Ok(())
    }
}

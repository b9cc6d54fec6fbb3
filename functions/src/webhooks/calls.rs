//! The calls of ended tasks' webhooks: the task service's notifier in a long-running
//! process that stores tasks' ends (the gateway, the embedded default), which calls in
//! the background, and what the `webhooks` Lambda function calls with. Only such a
//! process builds it, so the other Lambda functions link no HTTP client of it.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use codebox_core::domain::{Task, TaskId, WebhookStyle};
use codebox_core::ports::EndNotifier;
use secrecy::{ExposeSecret, SecretString};

use super::{Call, Sender, Sent, TASK, WebhookConfig, signing};
use crate::dto::OutputEncoding;
use crate::state::AppState;

/// The notifier the task service tells of ended tasks with a webhook.
pub struct WebhookCalls {
    sender: Sender,
    secret: Option<SecretString>,
    /// The API whose views the calls carry; set once it is built.
    state: OnceLock<AppState>,
    /// Calls under way in the background, which a stopping API lets finish.
    calls: tokio_util::task::TaskTracker,
}

impl WebhookCalls {
    pub fn new(config: &WebhookConfig) -> anyhow::Result<Arc<Self>> {
        Ok(Arc::new(Self {
            sender: Sender::new(config.allowed_hosts.clone())?,
            secret: config.secret.clone(),
            state: OnceLock::new(),
            calls: tokio_util::task::TaskTracker::new(),
        }))
    }

    /// Lets the calls under way finish, tries and pauses included, for at most `within`
    /// (a stopping API: its tasks' ends are stored, their calls not yet made). Answers how
    /// many were still under way when it gave up.
    pub async fn drain(&self, within: std::time::Duration) -> usize {
        self.calls.close();
        if tokio::time::timeout(within, self.calls.wait())
            .await
            .is_err()
        {
            let left = self.calls.len();
            tracing::warn!(
                left,
                "webhook calls still under way when the API stopped; not made"
            );
            return left;
        }
        0
    }

    pub fn attach(&self, state: AppState) {
        let _ = self.state.set(state);
    }

    /// Calls `task`'s webhook now, every try and pause included (the `webhooks` function);
    /// `None` when it has none. An error: its body could not be made now (its output not
    /// read from the blob store), to be tried again.
    pub async fn call(&self, task: &Task) -> codebox_core::error::Result<Option<Sent>> {
        let Some(call) = self.call_for(task).await? else {
            return Ok(None);
        };
        Ok(Some(make(self.sender.clone(), call, task.id).await))
    }

    /// The call a task's webhook asks for; `None` when it has none (or its URL, checked
    /// when the task was made, no longer parses).
    async fn call_for(&self, task: &Task) -> codebox_core::error::Result<Option<Call>> {
        let (Some(webhook), Some(state)) = (task.spec.webhook(), self.state.get()) else {
            return Ok(None);
        };
        let Ok(url) = reqwest::Url::parse(&webhook.url) else {
            return Ok(None);
        };
        let mut headers = vec![(TASK, task.id.to_string())];
        let (method, body) = match webhook.style {
            WebhookStyle::Task => {
                let view = match crate::handlers::get_task::view(
                    state,
                    task,
                    OutputEncoding::default(),
                )
                .await
                {
                    Ok(view) => view,
                    // The blob store out: tried again later.
                    Err(e) if e.status.is_server_error() => {
                        return Err(codebox_core::Error::Unavailable(format!(
                            "the body of task {}'s webhook: {}",
                            task.id, e.detail
                        )));
                    }
                    Err(e) => {
                        tracing::warn!(task_id = %task.id, error = %e.detail, "a webhook's body could not be made; not called");
                        return Ok(None);
                    }
                };
                let body = serde_json::to_vec(&view)
                    .map_err(|e| codebox_core::Error::Backend(e.into()))?;
                (reqwest::Method::POST, body)
            }
            WebhookStyle::Judge0 => (
                reqwest::Method::PUT,
                crate::handlers::judge0::callback_body(state, task),
            ),
        };
        if let Some(secret) = &self.secret {
            let at = codebox_core::time::now().timestamp();
            headers.extend(
                signing::headers(secret.expose_secret().as_bytes(), task.owner, at, &body)
                    .into_iter()
                    .flatten(),
            );
        }
        Ok(Some(Call {
            method,
            url,
            body,
            headers,
        }))
    }
}

/// Makes `call` of the task `id`, every try, and logs how it ended.
async fn make(sender: Sender, call: Call, id: TaskId) -> Sent {
    let sent = sender.send(&call).await;
    match &sent {
        Sent::Answered(status) if (200..300).contains(status) => {
            tracing::info!(task_id = %id, status, "webhook called");
        }
        Sent::Answered(status) => {
            tracing::warn!(task_id = %id, status, "webhook answered with an error");
        }
        Sent::Failed(why) => {
            tracing::warn!(task_id = %id, error = %why, "webhook not reached");
        }
    }
    sent
}

#[async_trait]
impl EndNotifier for WebhookCalls {
    /// In the background: no commit waits on a receiver.
    async fn ended(&self, task: Task) -> codebox_core::error::Result<()> {
        if let Some(call) = self.call_for(&task).await? {
            self.calls.spawn(make(self.sender.clone(), call, task.id));
        }
        Ok(())
    }
}

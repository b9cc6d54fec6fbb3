//! The calls of ended tasks' webhooks: the task service's notifier, in a process that
//! stores tasks' ends (the gateway, the embedded default, the `commit` function). Only
//! such a process builds it, so the other Lambda functions link no HTTP client of it.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use codebox_core::domain::{Task, WebhookStyle};
use codebox_core::ports::EndNotifier;
use secrecy::{ExposeSecret, SecretString};

use super::{Call, Sender, Sent, TASK, WebhookConfig, signing};
use crate::dto::OutputEncoding;
use crate::state::AppState;

/// What a call made before a Lambda function answers may take, all tries together.
const INLINE_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

/// The notifier the task service tells of ended tasks with a webhook.
pub struct WebhookCalls {
    sender: Sender,
    secret: Option<SecretString>,
    inline: bool,
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
            inline: config.inline,
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

    /// The call a task's webhook asks for.
    async fn call_for(&self, task: &Task) -> Option<Call> {
        let webhook = task.spec.webhook()?;
        let state = self.state.get()?;
        let url = reqwest::Url::parse(&webhook.url).ok()?;
        let mut headers = vec![(TASK, task.id.to_string())];
        let (method, body) = match webhook.style {
            WebhookStyle::Task => {
                let view = crate::handlers::get_task::view(state, task, OutputEncoding::default())
                    .await
                    .map_err(|e| tracing::warn!(task_id = %task.id, error = %e.detail, "a webhook's body could not be made"))
                    .ok()?;
                (reqwest::Method::POST, serde_json::to_vec(&view).ok()?)
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
        Some(Call {
            method,
            url,
            body,
            headers,
        })
    }
}

#[async_trait]
impl EndNotifier for WebhookCalls {
    async fn ended(&self, task: Task) {
        let Some(call) = self.call_for(&task).await else {
            return;
        };
        let sender = self.sender.clone();
        let id = task.id;
        let send = async move {
            match sender.send(&call).await {
                Sent::Answered(status) if (200..300).contains(&status) => {
                    tracing::info!(task_id = %id, status, "webhook called");
                }
                Sent::Answered(status) => {
                    tracing::warn!(task_id = %id, status, "webhook answered with an error");
                }
                Sent::Failed(why) => {
                    tracing::warn!(task_id = %id, error = %why, "webhook not reached");
                }
            }
        };
        if self.inline {
            // Before the function answers its worker, which waits: a short budget, not
            // three slow tries.
            if tokio::time::timeout(INLINE_BUDGET, send).await.is_err() {
                tracing::warn!(task_id = %id, "webhook not reached within the function's budget");
            }
        } else {
            self.calls.spawn(send);
        }
    }
}

//! The worker's view of the API over HTTP, with the worker credential: `POST /commit/start`,
//! `POST /commit/lease`,
//! `GET /commit/{id}` (cancel watch) and `POST /commit`. The worker holds no store
//! credentials at all.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use codebox_core::Error;
use codebox_core::domain::{Commit, LeaseId, StartDecision, TaskEvent, TaskId};
use codebox_core::ports::{BlobStore, TaskControl};
use serde::Deserialize;

pub struct HttpTaskControl {
    http: reqwest::Client,
    base: String,
    token: String,
    /// Where an outcome too big for one request goes, and from what size.
    spill: Option<(Arc<dyn BlobStore>, usize)>,
}

/// A request body the API (and a Lambda invocation, 6 MB) takes with room to spare.
pub const COMMIT_SPILL_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
struct StartResponse {
    run: bool,
    #[serde(default)]
    leased: bool,
    #[serde(default)]
    deferred: bool,
}

fn unreachable(e: reqwest::Error) -> Error {
    Error::Unavailable(format!("the API: {e}"))
}

impl HttpTaskControl {
    pub fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        crate::tls::install_provider();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            spill: None,
        })
    }

    /// Outcomes whose commit body is over `bytes` go to `blobs` and the commit carries
    /// their key (`results/<task>/<random>.json`; the API removes it once stored).
    pub fn spilling_to(mut self, blobs: Arc<dyn BlobStore>, bytes: usize) -> Self {
        self.spill = Some((blobs, bytes));
        self
    }

    /// `POST`s `body` to the API's `path` with the worker credential; a non-success
    /// answer is an error (see [`Self::check`]).
    async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, Error> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        Self::check(req.send().await.map_err(unreachable)?).await
    }

    /// A non-success answer as a domain error: 5xx is worth a retry, 4xx is not.
    async fn check(res: reqwest::Response) -> Result<reqwest::Response, Error> {
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let body = res.text().await.unwrap_or_default();
        let detail: String = body.chars().take(300).collect();
        Err(match status.as_u16() {
            // Gone (a task past its retention) is as good as never there.
            404 | 410 => Error::NotFound(detail),
            401 | 403 => {
                Error::Forbidden(format!("the API refused the worker credential: {detail}"))
            }
            400 | 422 => Error::Invalid(format!("the API answered {status}: {detail}")),
            413 => Error::TooLarge(format!("the API answered {status}: {detail}")),
            // Throttled (a gateway in front of the API), or the API is in trouble.
            429 => Error::Unavailable(format!("the API answered {status}")),
            s if s >= 500 => Error::Unavailable(format!("the API answered {status}")),
            _ => Error::Backend(anyhow::anyhow!("the API answered {status}: {detail}")),
        })
    }
}

#[async_trait]
impl TaskControl for HttpTaskControl {
    #[tracing::instrument(level = "debug", name = "api.start", skip_all)]
    async fn start_delivery(
        &self,
        id: TaskId,
        holder: LeaseId,
        deferrals: u32,
    ) -> Result<StartDecision, Error> {
        let body = serde_json::json!({ "task_id": id, "lease": holder, "deferrals": deferrals });
        match self.post("/commit/start", &body, None).await {
            Ok(res) => {
                let answer: StartResponse = res.json().await.map_err(unreachable)?;
                Ok(match (answer.run, answer.deferred, answer.leased) {
                    (true, _, _) => StartDecision::Run,
                    (false, true, _) => StartDecision::Defer,
                    (false, false, true) => StartDecision::Leased,
                    (false, false, false) => StartDecision::Skip,
                })
            }
            Err(Error::NotFound(_)) => Ok(StartDecision::Skip),
            Err(e) => Err(e),
        }
    }

    async fn cancelled_among(&self, ids: &[TaskId]) -> Result<Vec<TaskId>, Error> {
        #[derive(serde::Deserialize)]
        struct Cancelled {
            cancelled: Vec<TaskId>,
        }
        let mut cancelled = Vec::new();
        // The API answers for at most 256 ids at once.
        for chunk in ids.chunks(256) {
            let res = self
                .post(
                    "/commit/cancelled",
                    &serde_json::json!({ "task_ids": chunk }),
                    None,
                )
                .await?;
            let found: Cancelled = res.json().await.map_err(unreachable)?;
            cancelled.extend(found.cancelled);
        }
        Ok(cancelled)
    }

    async fn renew(&self, leases: &[(TaskId, LeaseId)]) -> Result<(), Error> {
        for chunk in leases.chunks(256) {
            let leases: Vec<_> = chunk
                .iter()
                .map(|(id, holder)| serde_json::json!({ "task_id": id, "lease": holder }))
                .collect();
            self.post(
                "/commit/lease",
                &serde_json::json!({ "leases": leases }),
                None,
            )
            .await?;
        }
        Ok(())
    }

    async fn release(&self, id: TaskId, holder: LeaseId) -> Result<(), Error> {
        let body = serde_json::json!({
            "leases": [{ "task_id": id, "lease": holder }],
            "release": true,
        });
        self.post("/commit/lease", &body, Some(Duration::from_secs(5)))
            .await
            .map(|_| ())
    }

    #[tracing::instrument(level = "debug", name = "api.events", skip_all)]
    async fn progress(
        &self,
        id: TaskId,
        attempt: u32,
        events: Vec<TaskEvent>,
    ) -> Result<(), Error> {
        let body = serde_json::json!({ "task_id": id, "attempt": attempt, "events": events });
        self.post("/commit/events", &body, Some(Duration::from_secs(5)))
            .await
            .map(|_| ())
    }

    async fn ping(&self) -> Result<(), Error> {
        let res = self
            .http
            .get(format!("{}/commit/ping", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(unreachable)?;
        Self::check(res).await.map(|_| ())
    }

    async fn report_languages(
        &self,
        languages: &[codebox_core::languages::Language],
    ) -> Result<(), Error> {
        let res = self
            .http
            .put(format!("{}/commit/languages", self.base))
            .bearer_auth(&self.token)
            .json(languages)
            .send()
            .await
            .map_err(unreachable)?;
        Self::check(res).await.map(|_| ())
    }

    #[tracing::instrument(level = "debug", name = "api.commit", skip_all)]
    async fn commit(&self, commit: &Commit) -> Result<(), Error> {
        let body = serde_json::to_vec(commit).map_err(|e| Error::Backend(e.into()))?;
        // The API reads, stores and re-reads the outcome: give a large one time in
        // proportion (30 s, and 1 s more per MiB).
        let timeout = Duration::from_secs(30 + (body.len() as u64 >> 20));
        let spilled = match &self.spill {
            // The body is past what the API takes inline: its outcome travels by key (the
            // rest of the body is a few fields).
            Some((blobs, limit)) if body.len() > *limit => {
                let result =
                    serde_json::to_string(&commit.result).map_err(|e| Error::Backend(e.into()))?;
                let key = format!(
                    "results/{}/{}.json",
                    commit.task_id,
                    uuid::Uuid::new_v4().simple()
                );
                blobs.put(&key, result.into_bytes()).await?;
                metrics::counter!("codebox_commits_spilled_total").increment(1);
                Some((blobs, key))
            }
            _ => None,
        };
        let body = match &spilled {
            Some((_, key)) => {
                let mut spilled = serde_json::json!({
                    "task_id": commit.task_id,
                    "status": commit.status,
                    "result_key": key,
                });
                // Only when set, as the inline body has it: an API from before webhooks
                // takes no field it does not know.
                if commit.notify {
                    spilled["notify"] = serde_json::Value::Bool(true);
                }
                serde_json::to_vec(&spilled).map_err(|e| Error::Backend(e.into()))?
            }
            None => body,
        };
        let sent = self
            .http
            .post(format!("{}/commit", self.base))
            .bearer_auth(&self.token)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(unreachable);
        let outcome = match sent {
            Ok(res) => match Self::check(res).await {
                Ok(_) => Ok(()),
                // The task was removed (it could not be queued): nothing to store.
                Err(Error::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        // Not stored: the next try writes its own blob, so this one goes.
        if outcome.is_err()
            && let Some((blobs, key)) = &spilled
            && let Err(e) = blobs.delete(key).await
        {
            tracing::warn!(error = %e, "a spilled outcome's blob stays behind");
        }
        outcome
    }
}

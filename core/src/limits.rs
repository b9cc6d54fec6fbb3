//! The limits on clients: a rate of `/register` and `/login` per client address, a rate of
//! submissions per user, and a cap on each user's tasks queued or running at once. The
//! counts live behind the [`RateLimiter`] port, so every API instance (processes, Lambda
//! functions) shares them.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, ConfigError};
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::ports::{RateDecision, RateLimiter};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitsConfig {
    /// `/register` and `/login` calls per client address per minute (each costs a bcrypt
    /// hash: about 8 a second fill two cores).
    pub auth_per_minute: u32,
    /// `POST /task` calls per user per minute.
    pub submit_per_minute: u32,
    /// A user's tasks queued or running at once.
    pub max_active_tasks: u32,
    /// A user's tasks running at once (0: no cap); the rest wait, behind other users'.
    pub max_running_tasks: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            auth_per_minute: 30,
            submit_per_minute: 300,
            max_active_tasks: 50,
            max_running_tasks: 3,
        }
    }
}

impl LimitsConfig {
    /// `LIMIT_AUTH_PER_MINUTE` (30), `LIMIT_SUBMIT_PER_MINUTE` (300),
    /// `LIMIT_ACTIVE_TASKS` (50); each 1 to 1 000 000. `LIMIT_RUNNING_TASKS` (3; 0 to
    /// 1 000 000, 0 for no cap).
    pub fn from_env() -> Result<Self, ConfigError> {
        let d = Self::default();
        let range = 1..=1_000_000;
        Ok(Self {
            auth_per_minute: config::parse_in(
                "LIMIT_AUTH_PER_MINUTE",
                d.auth_per_minute,
                range.clone(),
                "calls per minute",
            )?,
            submit_per_minute: config::parse_in(
                "LIMIT_SUBMIT_PER_MINUTE",
                d.submit_per_minute,
                range.clone(),
                "submissions per minute",
            )?,
            max_active_tasks: config::parse_in(
                "LIMIT_ACTIVE_TASKS",
                d.max_active_tasks,
                range,
                "tasks",
            )?,
            max_running_tasks: config::parse_in(
                "LIMIT_RUNNING_TASKS",
                d.max_running_tasks,
                0..=1_000_000,
                "tasks",
            )?,
        })
    }
}

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// Upload URLs one user gets an hour (10 MiB each at most, kept for a day).
pub const UPLOADS_PER_HOUR: u32 = 60;

#[derive(Clone)]
pub struct ClientLimits {
    limiter: Arc<dyn RateLimiter>,
    config: LimitsConfig,
}

impl ClientLimits {
    pub fn new(limiter: Arc<dyn RateLimiter>, config: LimitsConfig) -> Self {
        Self { limiter, config }
    }

    pub fn config(&self) -> LimitsConfig {
        self.config
    }

    /// One `/register` or `/login` call from `client` (an address).
    ///
    /// # Errors
    /// `RateLimited` over the rate.
    pub async fn auth(&self, client: &str) -> Result<()> {
        let limit = self.config.auth_per_minute;
        self.hit(&format!("auth:{client}"), limit, || {
            format!("at most {limit} registrations and logins a minute from one address")
        })
        .await
    }

    /// One submission of `owner`, counted at its rate. The cap on tasks under way
    /// (`max_active_tasks`) is the task service's, checked as the task is stored
    /// (`TaskService::with_active_cap`).
    ///
    /// # Errors
    /// `RateLimited` over the rate.
    pub async fn submit(&self, owner: UserId) -> Result<()> {
        let limit = self.config.submit_per_minute;
        self.hit(&format!("submit:{owner}"), limit, || {
            format!("at most {limit} submissions a minute")
        })
        .await
    }

    /// One upload URL asked for by `owner`, counted at the submission rate on a count
    /// of its own (each upload is followed by a submission).
    ///
    /// # Errors
    /// `RateLimited` over the rate.
    pub async fn upload(&self, owner: UserId) -> Result<()> {
        let limit = self.config.submit_per_minute;
        self.hit(&format!("upload:{owner}"), limit, || {
            format!("at most {limit} uploads a minute")
        })
        .await?;
        // Uploads are kept for a day: an hour's cap bounds what one user can store.
        self.hit_in(
            &format!("uploads-hour:{owner}"),
            UPLOADS_PER_HOUR,
            HOUR,
            || format!("at most {UPLOADS_PER_HOUR} uploads an hour"),
        )
        .await
    }

    async fn hit(&self, key: &str, limit: u32, detail: impl FnOnce() -> String) -> Result<()> {
        self.hit_in(key, limit, MINUTE, detail).await
    }

    async fn hit_in(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        detail: impl FnOnce() -> String,
    ) -> Result<()> {
        match self.limiter.hit(key, limit, window).await {
            Ok(RateDecision::Allowed) => Ok(()),
            Ok(RateDecision::Limited { retry_after }) => {
                let which = key.split(':').next().unwrap_or("rate");
                metrics::counter!("codebox_limited_total", "limit" => which.to_owned())
                    .increment(1);
                Err(Error::RateLimited(detail(), retry_after))
            }
            // A limit must not take the API down with its store: let the call through.
            Err(e) => {
                tracing::warn!(error = %e, "rate limiter unavailable; not limiting");
                Ok(())
            }
        }
    }
}

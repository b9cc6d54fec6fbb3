//! The API's configuration, read once from the environment, and the one place that
//! turns it into services (the factory that matches on backends).

use std::sync::Arc;

use codebox_core::auth::{AccountConfig, AccountService};
use codebox_core::config::{self, ConfigError};
use codebox_core::memory::{
    MemoryBlobStore, MemoryQueue, MemorySessionStore, MemoryTaskStore, MemoryUserStore,
};
use codebox_core::ports::{
    BlobStore, QueueConsumer, SessionStore, TaskQueue, TaskStore, UserStore,
};
use codebox_core::tasks::TaskService;
use secrecy::SecretString;

use crate::state::AppState;

#[derive(Clone)]
pub struct ApiConfig {
    pub jwt_secret: SecretString,
    pub worker_token: SecretString,
    pub token_ttl_secs: i64,
    pub bcrypt_cost: u32,
    pub backend: Backend,
}

/// Which stores and queue the API uses. More arrive with their adapters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Everything in this process (the embedded default and tests).
    Memory,
    /// The compose profile: PostgreSQL, Redis, RabbitMQ and blobs in a shared directory.
    Local(LocalBackend),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBackend {
    pub database_url: String,
    pub redis_url: String,
    pub amqp_url: String,
    pub queue: String,
    pub blob_dir: String,
    pub max_deliveries: u32,
    /// Throwaway queues (tests, benchmarks) vanish after this long unused.
    pub queue_expires: Option<std::time::Duration>,
}

impl LocalBackend {
    /// `DATABASE_URL`, `REDIS_URL`, `AMQP_URL` (required), `TASK_QUEUE` (codebox.tasks),
    /// `BLOB_DIR` (/var/lib/codebox/blobs), `MAX_DELIVERIES` (3).
    pub fn from_env() -> Result<Self, ConfigError> {
        let required = |name: &str, example: &str| {
            config::var(name).ok_or_else(|| ConfigError {
                var: name.to_owned(),
                problem: format!("is required with BACKEND=local, e.g. {example}"),
            })
        };
        Ok(Self {
            database_url: required("DATABASE_URL", "postgres://codebox@postgres/codebox")?,
            redis_url: required("REDIS_URL", "redis://redis:6379")?,
            amqp_url: required("AMQP_URL", "amqp://guest:guest@rabbitmq:5672/%2f")?,
            queue: config::var("TASK_QUEUE").unwrap_or_else(|| "codebox.tasks".to_owned()),
            blob_dir: config::var("BLOB_DIR")
                .unwrap_or_else(|| "/var/lib/codebox/blobs".to_owned()),
            max_deliveries: config::parse_or("MAX_DELIVERIES", MAX_DELIVERIES, "a count, e.g. 3")?,
            queue_expires: config::var("TASK_QUEUE_EXPIRES_SECS")
                .map(|v| {
                    v.parse()
                        .map(std::time::Duration::from_secs)
                        .map_err(|_| ConfigError {
                            var: "TASK_QUEUE_EXPIRES_SECS".into(),
                            problem: format!("{v:?} is not a number of seconds"),
                        })
                })
                .transpose()?,
        })
    }
}

impl ApiConfig {
    /// `JWT_SECRET` (≥ 32 bytes) and `WORKER_TOKEN` are required; `TOKEN_TTL_SECS`
    /// (default 3600), `BCRYPT_COST` (4–31, default 12), `BACKEND` (memory).
    pub fn from_env() -> Result<Self, ConfigError> {
        let jwt_secret = config::secret("JWT_SECRET", "at least 32 random bytes signing tokens")?;
        let worker_token = config::secret("WORKER_TOKEN", "the credential workers commit with")?;
        Self::with_secrets(jwt_secret, worker_token)
    }

    /// As `from_env`, with the secrets given (the embedded default makes random ones).
    pub fn with_secrets(
        jwt_secret: SecretString,
        worker_token: SecretString,
    ) -> Result<Self, ConfigError> {
        use secrecy::ExposeSecret;
        if jwt_secret.expose_secret().len() < 32 {
            return Err(ConfigError {
                var: "JWT_SECRET".into(),
                problem: "must be at least 32 bytes".into(),
            });
        }
        let token_ttl_secs = config::parse_or("TOKEN_TTL_SECS", 3600i64, "seconds, e.g. 3600")?;
        if token_ttl_secs < 1 {
            return Err(ConfigError {
                var: "TOKEN_TTL_SECS".into(),
                problem: "must be at least 1".into(),
            });
        }
        let bcrypt_cost = config::parse_or("BCRYPT_COST", 12u32, "a bcrypt cost from 4 to 31")?;
        if !(4..=31).contains(&bcrypt_cost) {
            return Err(ConfigError {
                var: "BCRYPT_COST".into(),
                problem: format!("{bcrypt_cost} is not from 4 to 31"),
            });
        }
        let backend = match config::choice("BACKEND", "memory", &["memory", "local"])?.as_str() {
            "local" => Backend::Local(LocalBackend::from_env()?),
            _ => Backend::Memory,
        };
        Ok(Self {
            jwt_secret,
            worker_token,
            token_ttl_secs,
            bcrypt_cost,
            backend,
        })
    }
}

/// The backends of one process, as ports.
#[derive(Clone)]
pub struct Backends {
    pub users: Arc<dyn UserStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub tasks: Arc<dyn TaskStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn TaskQueue>,
    /// The consuming side, where this process also runs the worker (embedded).
    pub consumer: Option<Arc<dyn QueueConsumer>>,
}

/// How many deliveries a message gets before it is dead-lettered.
pub const MAX_DELIVERIES: u32 = 3;

impl Backends {
    pub fn memory() -> Self {
        let queue = MemoryQueue::new(MAX_DELIVERIES);
        Self {
            users: Arc::new(MemoryUserStore::default()),
            sessions: Arc::new(MemorySessionStore::default()),
            tasks: Arc::new(MemoryTaskStore::default()),
            blobs: Arc::new(MemoryBlobStore::default()),
            queue: Arc::new(queue.clone()),
            consumer: Some(Arc::new(queue)),
        }
    }

    pub async fn from_config(config: &ApiConfig) -> anyhow::Result<Self> {
        match &config.backend {
            Backend::Memory => Ok(Self::memory()),
            Backend::Local(local) => Self::local(local).await,
        }
    }

    /// PostgreSQL for users and tasks, Redis for sessions, RabbitMQ, blobs as files.
    pub async fn local(c: &LocalBackend) -> anyhow::Result<Self> {
        use codebox_adapters::{fs, postgres, rabbitmq, redis};
        let store = postgres::PostgresStore::connect(&c.database_url).await?;
        let sessions = redis::RedisSessionStore::connect(&c.redis_url, "codebox:").await?;
        let queue = rabbitmq::RabbitQueue::connect(rabbitmq::RabbitConfig {
            url: c.amqp_url.clone(),
            queue: c.queue.clone(),
            max_deliveries: c.max_deliveries,
            prefetch: 1,
            expires: c.queue_expires,
        })
        .await?;
        Ok(Self {
            users: Arc::new(store.clone()),
            sessions: Arc::new(sessions),
            tasks: Arc::new(store),
            blobs: Arc::new(fs::FsBlobStore::new(&c.blob_dir)),
            queue: Arc::new(queue),
            consumer: None,
        })
    }
}

impl AppState {
    pub fn build(config: &ApiConfig, backends: &Backends) -> anyhow::Result<Self> {
        let accounts = AccountService::new(
            backends.users.clone(),
            backends.sessions.clone(),
            AccountConfig {
                jwt_secret: config.jwt_secret.clone(),
                token_ttl: chrono::Duration::seconds(config.token_ttl_secs),
                bcrypt_cost: config.bcrypt_cost,
                worker_token: config.worker_token.clone(),
            },
        )?;
        let tasks = TaskService::new(
            backends.tasks.clone(),
            backends.blobs.clone(),
            backends.queue.clone(),
        );
        Ok(AppState::new(accounts, tasks))
    }

    /// Configuration and backends from the environment: what a Lambda function and the
    /// gateway binary start with.
    pub async fn from_env() -> anyhow::Result<Self> {
        let config = ApiConfig::from_env()?;
        let backends = Backends::from_config(&config).await?;
        Self::build(&config, &backends)
    }
}

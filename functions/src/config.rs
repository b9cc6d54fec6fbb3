//! The API's configuration, read once from the environment, and the one place that
//! turns it into services (the factory that matches on backends).

use std::sync::Arc;

use codebox_core::auth::{AccountConfig, AccountService};
use codebox_core::config::{self, ConfigError};
use codebox_core::limits::{ClientLimits, LimitsConfig};
use codebox_core::memory::{
    MemoryBlobStore, MemoryEventBus, MemoryQueue, MemoryRateLimiter, MemorySessionStore,
    MemoryTaskStore, MemoryUserStore,
};
#[cfg(feature = "aws")]
use codebox_core::ports::NoEvents;
use codebox_core::ports::{
    BlobStore, EndNotifier, EventBus, QueueConsumer, RateLimiter, SessionStore, TaskQueue,
    TaskStore, UserStore,
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
    pub limits: LimitsConfig,
    /// Origins a browser may call the API from (`CORS_ORIGINS`); none by default.
    pub cors_origins: Vec<String>,
    /// The longest an event stream follows its task (`EVENTS_MAX_SECS`, 900; below the
    /// function's timeout on AWS, where a response is sent whole when it ends).
    pub events_max: std::time::Duration,
    /// The largest PNG a request may carry inline (`MAX_INLINE_IMAGE_BYTES`, 10 MiB; the
    /// AWS stack sets 3 000 000 so a request always fits a Lambda invocation): larger
    /// ones are uploaded through `POST /task/upload`.
    pub inline_image_max: usize,
    /// Where clients reach the API (`PUBLIC_URL`, e.g. `https://code.example.com`): the
    /// base of the upload URLs it hands out. Unset, the request's own `Host` (and
    /// `X-Forwarded-Proto`) tell it.
    pub public_url: Option<String>,
    /// Where webhooks may point, and their signing key (`CALLBACK_ALLOWED_HOSTS`,
    /// `WEBHOOK_SECRET`).
    pub webhooks: crate::webhooks::WebhookConfig,
    /// How `/judge0/` tells a program killed by a signal (`JUDGE0_SIGNALS`: `signal`, the
    /// default, or `nzec` as Judge0 itself).
    pub judge0_signals: crate::handlers::judge0::SignalReport,
}

/// Which stores and queue the API uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Everything in this process (the embedded default and tests).
    Memory,
    /// The compose profile: PostgreSQL, Redis, RabbitMQ and blobs in a shared directory.
    Local(LocalBackend),
    /// The cloud: DynamoDB, SQS and S3 (or LocalStack / moto through `AWS_ENDPOINT_URL`).
    Aws(AwsBackend),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsBackend {
    pub users_table: String,
    pub sessions_table: String,
    pub tasks_table: String,
    pub idempotency_table: String,
    pub limits_table: String,
    pub queue_url: String,
    pub blob_bucket: String,
    /// Days a task is kept (its item expires a day before its blobs, which the bucket's
    /// lifecycle deletes after this many days); `None` keeps tasks for ever.
    pub task_retention_days: Option<u32>,
    /// `WEBHOOK_QUEUE_URL`, read in a Lambda function only: where it hands ended tasks'
    /// webhooks to the `webhooks` function (nothing of a function runs after it answers,
    /// and calling before would hold its worker). A process that outlives its answers
    /// (the gateway) calls in the background.
    pub webhook_queue_url: Option<String>,
}

impl AwsBackend {
    /// `USERS_TABLE`, `SESSIONS_TABLE`, `TASKS_TABLE`, `IDEMPOTENCY_TABLE`,
    /// `LIMITS_TABLE`, `TASK_QUEUE_URL`, `BLOB_BUCKET` (all required: infra/ and
    /// localstack/ set them); `TASK_RETENTION_DAYS` (2–3650, unset: no expiry);
    /// `WEBHOOK_QUEUE_URL` in a Lambda function.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            users_table: config::required("USERS_TABLE", "codebox-users")?,
            sessions_table: config::required("SESSIONS_TABLE", "codebox-sessions")?,
            tasks_table: config::required("TASKS_TABLE", "codebox-tasks")?,
            idempotency_table: config::required("IDEMPOTENCY_TABLE", "codebox-idempotency")?,
            limits_table: config::required("LIMITS_TABLE", "codebox-limits")?,
            queue_url: config::required(
                "TASK_QUEUE_URL",
                "https://sqs.eu-west-1.amazonaws.com/123456789012/codebox-tasks",
            )?,
            blob_bucket: config::required("BLOB_BUCKET", "codebox-blobs")?,
            task_retention_days: match config::var("TASK_RETENTION_DAYS") {
                Some(_) => Some(config::parse_in(
                    "TASK_RETENTION_DAYS",
                    30u32,
                    2..=3650,
                    "days",
                )?),
                None => None,
            },
            webhook_queue_url: config::var("AWS_LAMBDA_FUNCTION_NAME")
                .and_then(|_| config::var("WEBHOOK_QUEUE_URL")),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalBackend {
    pub database_url: String,
    pub redis_url: String,
    /// Prefix of every Redis key (sessions, rate counts): deployments sharing a server
    /// keep apart.
    pub redis_prefix: String,
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
        let required = config::required;
        Ok(Self {
            database_url: required("DATABASE_URL", "postgres://codebox@postgres/codebox")?,
            redis_url: required("REDIS_URL", "redis://redis:6379")?,
            redis_prefix: config::var("REDIS_PREFIX").unwrap_or_else(|| "codebox:".to_owned()),
            amqp_url: required("AMQP_URL", "amqp://guest:guest@rabbitmq:5672/%2f")?,
            queue: config::var("TASK_QUEUE").unwrap_or_else(|| "codebox.tasks".to_owned()),
            blob_dir: config::var("BLOB_DIR")
                .unwrap_or_else(|| "/var/lib/codebox/blobs".to_owned()),
            max_deliveries: config::parse_or("MAX_DELIVERIES", MAX_DELIVERIES, "a count, e.g. 3")?,
            queue_expires: config::secs_opt("TASK_QUEUE_EXPIRES_SECS")?,
        })
    }
}

impl ApiConfig {
    /// `JWT_SECRET` (≥ 32 bytes) and `WORKER_TOKEN` are required — or, with
    /// `BACKEND=aws`, `JWT_SECRET_ARN` and `WORKER_TOKEN_ARN` naming them in Secrets
    /// Manager, read once here; `TOKEN_TTL_SECS` (default 3600), `BCRYPT_COST` (4–31,
    /// default 12), `BACKEND` (memory | local | aws).
    ///
    /// A process that serves no worker route (a Lambda function other than `commit`)
    /// passes `serves_workers = false`: it does not read the worker credential at all (so
    /// its role needs no access to it) and accepts no worker.
    pub async fn from_env(serves_workers: bool) -> anyhow::Result<Self> {
        let jwt_secret =
            secret_or_arn("JWT_SECRET", "at least 32 random bytes signing tokens").await?;
        let worker_token = if serves_workers {
            secret_or_arn("WORKER_TOKEN", "the credential workers commit with").await?
        } else {
            // Unguessable and never told to anyone: no worker gets in here.
            SecretString::from(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ))
        };
        let mut config = Self::with_secrets(jwt_secret, worker_token)?;
        // Only a process given `WEBHOOK_SECRET_ARN` reads the key from Secrets Manager: on
        // AWS, `commit` (which calls webhooks) and `webhook-key` (which shows each user
        // theirs).
        if config.webhooks.secret.is_none() && config::var("WEBHOOK_SECRET_ARN").is_some() {
            use secrecy::ExposeSecret;
            let key =
                secret_or_arn("WEBHOOK_SECRET", "the key webhook calls are signed with").await?;
            config.webhooks.secret = webhook_secret(Some(key.expose_secret().to_owned()))?;
        }
        check_webhook_delivery(
            serves_workers,
            &config.backend,
            config::var("AWS_LAMBDA_FUNCTION_NAME").is_some(),
        )?;
        Ok(config)
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
        if worker_token.expose_secret().len() < 16 {
            return Err(ConfigError {
                var: "WORKER_TOKEN".into(),
                problem: "must be at least 16 bytes".into(),
            });
        }
        // The placeholders of `.env.example`: a copy left unchanged would sign tokens with
        // a secret everyone knows.
        for (var, value) in [("JWT_SECRET", &jwt_secret), ("WORKER_TOKEN", &worker_token)] {
            if value.expose_secret().starts_with("change-me") {
                return Err(ConfigError {
                    var: var.into(),
                    problem: "is still the placeholder of .env.example; `make up` writes \
                              fresh secrets into .env"
                        .into(),
                });
            }
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
        let backend =
            match config::choice("BACKEND", "memory", &["memory", "local", "aws"])?.as_str() {
                "local" => Backend::Local(LocalBackend::from_env()?),
                "aws" => Backend::Aws(AwsBackend::from_env()?),
                _ => Backend::Memory,
            };
        let cors_origins = config::var("CORS_ORIGINS")
            .map(|v| {
                v.split(',')
                    .map(|o| o.trim().to_owned())
                    .filter(|o| !o.is_empty())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        for origin in &cors_origins {
            let ok = (origin.starts_with("https://") || origin.starts_with("http://"))
                && axum::http::HeaderValue::from_str(origin).is_ok()
                && !origin.ends_with('/');
            if !ok {
                return Err(ConfigError {
                    var: "CORS_ORIGINS".into(),
                    problem: format!(
                        "{origin:?} is not an origin like https://app.example.com (comma-separated, no path)"
                    ),
                });
            }
        }
        Ok(Self {
            jwt_secret,
            worker_token,
            token_ttl_secs,
            bcrypt_cost,
            backend,
            limits: LimitsConfig::from_env()?,
            cors_origins,
            events_max: std::time::Duration::from_secs(config::parse_in(
                "EVENTS_MAX_SECS",
                crate::state::EVENTS_MAX.as_secs(),
                1..=3600,
                "seconds",
            )?),
            inline_image_max: config::parse_in(
                "MAX_INLINE_IMAGE_BYTES",
                codebox_core::png::MAX_BYTES,
                1..=codebox_core::png::MAX_BYTES,
                "bytes",
            )?,
            public_url: public_url(config::var("PUBLIC_URL"))?,
            webhooks: webhook_config()?,
            judge0_signals: match config::choice("JUDGE0_SIGNALS", "signal", &["signal", "nzec"])?
                .as_str()
            {
                "nzec" => crate::handlers::judge0::SignalReport::Nzec,
                _ => crate::handlers::judge0::SignalReport::Signal,
            },
        })
    }
}

/// `CALLBACK_ALLOWED_HOSTS` (`host[:port]`, comma-separated) and `WEBHOOK_SECRET` (at
/// least 32 characters; or `WEBHOOK_SECRET_ARN`, read where outcomes are stored).
pub fn webhook_config() -> Result<crate::webhooks::WebhookConfig, ConfigError> {
    let allowed_hosts = crate::webhooks::AllowedHosts::parse(
        &config::var("CALLBACK_ALLOWED_HOSTS").unwrap_or_default(),
    )
    .map_err(|problem| ConfigError {
        var: "CALLBACK_ALLOWED_HOSTS".into(),
        problem: format!("{problem} (host[:port], comma-separated)"),
    })?;
    Ok(crate::webhooks::WebhookConfig {
        allowed_hosts,
        secret: webhook_secret(config::var("WEBHOOK_SECRET"))?,
    })
}

/// A Lambda function that stores tasks' ends on AWS cannot call their webhooks after it
/// answers, and calling before would hold its worker: it needs the webhook queue.
fn check_webhook_delivery(
    serves_workers: bool,
    backend: &Backend,
    on_lambda: bool,
) -> Result<(), ConfigError> {
    match backend {
        Backend::Aws(aws) if serves_workers && on_lambda && aws.webhook_queue_url.is_none() => {
            Err(ConfigError {
                var: "WEBHOOK_QUEUE_URL".into(),
                problem: "is required in a Lambda function that stores tasks' ends: it hands \
                          their webhooks to the webhooks function through that queue"
                    .into(),
            })
        }
        _ => Ok(()),
    }
}

/// The webhook key (`WEBHOOK_SECRET`, or the secret `WEBHOOK_SECRET_ARN` names): at
/// least 32 characters.
fn webhook_secret(value: Option<String>) -> Result<Option<SecretString>, ConfigError> {
    match value {
        Some(s) if s.len() < 32 => Err(ConfigError {
            var: "WEBHOOK_SECRET".into(),
            problem: "must be at least 32 characters".into(),
        }),
        other => Ok(other.map(SecretString::from)),
    }
}

/// `PUBLIC_URL`: `http(s)://host[:port][/prefix]`, no query or fragment; kept without a
/// trailing `/`.
pub fn public_url(value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let url = value.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or_default();
        !host.is_empty()
            && !r.contains(['?', '#', ' ', '@'])
            && axum::http::uri::Authority::try_from(host).is_ok()
    });
    if !ok {
        return Err(ConfigError {
            var: "PUBLIC_URL".into(),
            problem: format!(
                "{value:?} is not a URL like https://code.example.com (scheme, host, optional port and path)"
            ),
        });
    }
    Ok(Some(url.to_owned()))
}

/// `NAME` itself, or the secret `NAME_ARN` names in Secrets Manager.
async fn secret_or_arn(name: &str, what: &str) -> anyhow::Result<SecretString> {
    if let Some(v) = config::var(name) {
        return Ok(SecretString::from(v));
    }
    let arn_var = format!("{name}_ARN");
    let Some(arn) = config::var(&arn_var) else {
        return Err(ConfigError {
            var: name.to_owned(),
            problem: format!("is required ({what}), or {arn_var} naming it in Secrets Manager"),
        }
        .into());
    };
    #[cfg(feature = "aws")]
    {
        let sdk = codebox_adapters::aws::sdk_config().await?;
        codebox_adapters::aws::secrets::secret_string(sdk, &arn).await
    }
    #[cfg(not(feature = "aws"))]
    {
        Err(ConfigError {
            var: arn_var,
            problem: format!("{arn} cannot be read: this build has no AWS support (feature aws)"),
        }
        .into())
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
    /// The counts behind the limits on clients.
    pub limiter: Arc<dyn RateLimiter>,
    /// Live events between workers and the API processes serving event streams.
    pub events: Arc<dyn EventBus>,
    /// The consuming side, where this process also runs the worker (embedded).
    pub consumer: Option<Arc<dyn QueueConsumer>>,
    /// Where ended tasks' webhooks are handed on, instead of called by this process (a
    /// Lambda function: the webhook queue).
    pub webhook_queue: Option<Arc<dyn EndNotifier>>,
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
            limiter: Arc::new(MemoryRateLimiter::default()),
            events: Arc::new(MemoryEventBus::default()),
            consumer: Some(Arc::new(queue)),
            webhook_queue: None,
        }
    }

    /// The backends `config` names. `QUEUES`: whether this process queues tasks; a Lambda
    /// function that never does is built with `false`, so on AWS it links no SQS client
    /// (the linker drops its code) and has a queue that refuses instead.
    pub async fn from_config<const QUEUES: bool>(config: &ApiConfig) -> anyhow::Result<Self> {
        match &config.backend {
            Backend::Memory => Ok(Self::memory()),
            #[cfg(feature = "local")]
            Backend::Local(local) => Self::local(local).await,
            #[cfg(not(feature = "local"))]
            Backend::Local(_) => Err(ConfigError {
                var: "BACKEND".into(),
                problem: "local is not in this build (feature local)".into(),
            }
            .into()),
            #[cfg(feature = "aws")]
            Backend::Aws(aws) => Ok(Self::aws_linking::<QUEUES>(
                codebox_adapters::aws::sdk_config().await?,
                aws,
            )),
            #[cfg(not(feature = "aws"))]
            Backend::Aws(_) => Err(ConfigError {
                var: "BACKEND".into(),
                problem: "aws is not in this build (feature aws)".into(),
            }
            .into()),
        }
    }

    /// DynamoDB for users, sessions and tasks, SQS, S3 for blobs and for values too big
    /// for an item or a message, with the SDK configuration given (tests on moto). The
    /// clients connect lazily: nothing is dialled at start.
    #[cfg(feature = "aws")]
    pub fn aws_with(sdk: &codebox_adapters::aws::SdkConfig, c: &AwsBackend) -> Self {
        Self::aws_linking::<true>(sdk, c)
    }

    /// As [`Backends::aws_with`], with SQS only where `QUEUES`.
    #[cfg(feature = "aws")]
    fn aws_linking<const QUEUES: bool>(
        sdk: &codebox_adapters::aws::SdkConfig,
        c: &AwsBackend,
    ) -> Self {
        use codebox_adapters::aws::{dynamodb, s3, sqs};
        let blobs: Arc<dyn BlobStore> = Arc::new(s3::S3BlobStore::new(sdk, &c.blob_bucket));
        let store = Arc::new(
            dynamodb::DynamoStore::new(
                sdk,
                dynamodb::DynamoTables {
                    users: c.users_table.clone(),
                    sessions: c.sessions_table.clone(),
                    tasks: c.tasks_table.clone(),
                    idempotency: c.idempotency_table.clone(),
                },
                Some(blobs.clone()),
            )
            .with_retention(c.task_retention_days),
        );
        let queue: Arc<dyn TaskQueue> = if QUEUES {
            Arc::new(sqs::SqsQueue::new(
                sdk,
                sqs::SqsConfig {
                    queue_url: c.queue_url.clone(),
                    dead_letter_url: None,
                },
                Some(blobs.clone()),
            ))
        } else {
            Arc::new(crate::lambda::NoQueue)
        };
        Self {
            users: store.clone(),
            sessions: store.clone(),
            tasks: store,
            blobs,
            queue,
            limiter: Arc::new(dynamodb::DynamoRateLimiter::new(
                sdk,
                c.limits_table.clone(),
            )),
            // Functions share no channel: event streams carry status, tests and the end.
            events: Arc::new(NoEvents),
            consumer: None,
            webhook_queue: c.webhook_queue_url.as_ref().map(|url| {
                Arc::new(codebox_adapters::aws::webhook_queue::SqsWebhookQueue::new(
                    sdk,
                    url.clone(),
                )) as Arc<dyn EndNotifier>
            }),
        }
    }

    /// PostgreSQL for users and tasks, Redis for sessions, RabbitMQ, blobs as files.
    #[cfg(feature = "local")]
    pub async fn local(c: &LocalBackend) -> anyhow::Result<Self> {
        use codebox_adapters::{fs, postgres, rabbitmq, redis};
        let store = postgres::PostgresStore::connect(&c.database_url).await?;
        let sessions = redis::RedisSessionStore::connect(&c.redis_url, &c.redis_prefix).await?;
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
            limiter: Arc::new(sessions.rate_limiter()),
            sessions: Arc::new(sessions),
            tasks: Arc::new(store),
            blobs: Arc::new(fs::FsBlobStore::new(&c.blob_dir)),
            queue: Arc::new(queue),
            events: Arc::new(redis::RedisEventBus::connect(&c.redis_url, &c.redis_prefix).await?),
            consumer: None,
            webhook_queue: None,
        })
    }
}

impl AppState {
    /// The API over `backends`, taking the workers' outcomes and calling the webhooks of
    /// the tasks they end.
    pub fn build(config: &ApiConfig, backends: &Backends) -> anyhow::Result<Self> {
        Self::build_serving::<true>(config, backends)
    }

    /// `WORKERS`: whether this process stores tasks' ends, and so calls their webhooks; a
    /// Lambda function other than `commit` is built with `false` and links no webhook
    /// client (it still checks a submitted webhook's address and tells users their keys).
    fn build_serving<const WORKERS: bool>(
        config: &ApiConfig,
        backends: &Backends,
    ) -> anyhow::Result<Self> {
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
        let mut tasks = TaskService::new(
            backends.tasks.clone(),
            backends.blobs.clone(),
            backends.queue.clone(),
        )
        .with_events(backends.events.clone())
        .with_inline_image_limit(config.inline_image_max)
        .with_running_cap(config.limits.max_running_tasks)
        .with_active_cap(config.limits.max_active_tasks);
        let calls = match (WORKERS, &backends.webhook_queue) {
            (false, _) => None,
            (true, Some(queue)) => {
                tasks = tasks.with_notifier(queue.clone());
                None
            }
            (true, None) => {
                let calls = crate::webhooks::WebhookCalls::new(&config.webhooks)?;
                tasks = tasks.with_notifier(calls.clone());
                Some(calls)
            }
        };
        let limits = ClientLimits::new(backends.limiter.clone(), config.limits);
        let mut state = AppState::new(accounts, tasks, limits, config.cors_origins.clone());
        state.large_responses = Some(backends.blobs.clone());
        state.events_max = config.events_max;
        state.public_url = config.public_url.clone();
        state.judge0_signals = config.judge0_signals;
        state.webhooks = Some(crate::webhooks::Webhooks::new(&config.webhooks));
        if let Some(calls) = &calls {
            calls.attach(state.clone());
        }
        state.webhook_calls = calls;
        Ok(state)
    }

    /// Configuration and backends from the environment: what the gateway binary starts
    /// with (it serves every route, the workers' too).
    pub async fn from_env() -> anyhow::Result<Self> {
        Self::from_env_serving::<true, true>().await
    }

    /// What a Lambda function starts with: only one built with `QUEUES` queues tasks
    /// ([`Backends::from_config`]), only one built with `WORKERS` (`commit`) serves
    /// workers and calls webhooks ([`Self::build_serving`]).
    pub async fn for_function<const QUEUES: bool, const WORKERS: bool>() -> anyhow::Result<Self> {
        Self::from_env_serving::<QUEUES, WORKERS>().await
    }

    /// What the `webhooks` function starts with: the API's state (whose views its calls
    /// carry) and the calls, made by it with every try.
    pub async fn for_webhooks() -> anyhow::Result<(Self, Arc<crate::webhooks::WebhookCalls>)> {
        let config = ApiConfig::from_env(false).await?;
        let backends = Backends::from_config::<false>(&config).await?;
        let state = Self::build_serving::<false>(&config, &backends)?;
        let calls = crate::webhooks::WebhookCalls::new(&config.webhooks)?;
        calls.attach(state.clone());
        Ok((state, calls))
    }

    async fn from_env_serving<const QUEUES: bool, const WORKERS: bool>() -> anyhow::Result<Self> {
        let config = ApiConfig::from_env(WORKERS).await?;
        let backends = Backends::from_config::<QUEUES>(&config).await?;
        Self::build_serving::<WORKERS>(&config, &backends)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws(webhook_queue_url: Option<&str>) -> Backend {
        Backend::Aws(AwsBackend {
            users_table: "u".into(),
            sessions_table: "s".into(),
            tasks_table: "t".into(),
            idempotency_table: "i".into(),
            limits_table: "l".into(),
            queue_url: "q".into(),
            blob_bucket: "b".into(),
            task_retention_days: None,
            webhook_queue_url: webhook_queue_url.map(str::to_owned),
        })
    }

    /// `commit` on Lambda does not start without the webhook queue; nothing else needs it.
    #[test]
    fn a_lambda_commit_needs_the_webhook_queue() {
        let refused = check_webhook_delivery(true, &aws(None), true);
        assert_eq!(
            refused.map_err(|e| e.var),
            Err("WEBHOOK_QUEUE_URL".to_owned())
        );
        assert!(check_webhook_delivery(true, &aws(Some("https://q")), true).is_ok());
        assert!(check_webhook_delivery(false, &aws(None), true).is_ok());
        assert!(check_webhook_delivery(true, &aws(None), false).is_ok());
        assert!(check_webhook_delivery(true, &Backend::Memory, true).is_ok());
    }
}

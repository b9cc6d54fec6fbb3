//! A worker's settings, read once from the environment before anything is connected: a
//! bad value stops it at once, with one line naming the variable.

use std::net::SocketAddr;
use std::time::Duration;

use codebox_core::config::{self, ConfigError};

use crate::consumer::WorkerConfig;
use crate::filters::child::FilterLimits;
use crate::sandbox::SandboxConfig;

/// What every worker reads, standalone or in the embedded process.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    pub worker: WorkerConfig,
    pub sandbox: SandboxConfig,
}

impl WorkerSettings {
    /// `WORKER_CONCURRENCY` (4, 1–64), `CANCEL_POLL_MS` (200: how often the running tasks are checked for a cancel, all in
    /// one call), `LIVE_EVENTS` (on: running tasks' output goes to the API as it is made,
    /// for their event streams; `off` where the API cannot carry it, AWS), the image
    /// filters' `CODEBOX_FILTER_*` and the sandbox's `CODEBOX_*` settings.
    pub fn from_env() -> Result<Self, ConfigError> {
        let concurrency = config::parse_in("WORKER_CONCURRENCY", 4usize, 1..=64, "tasks at once")?;
        let cancel_poll = Duration::from_millis(config::parse_in(
            "CANCEL_POLL_MS",
            200u64,
            50..=60_000,
            "milliseconds",
        )?);
        let live_events = config::choice("LIVE_EVENTS", "on", &["on", "off"])? == "on";
        let mut sandbox = SandboxConfig::from_env()?;
        // A warm sandbox per task the worker runs at once, unless set; one slot per task.
        sandbox.pool.get_or_insert(concurrency);
        sandbox.slots = concurrency;
        Ok(Self {
            worker: WorkerConfig {
                concurrency,
                cancel_poll,
                live_events,
                filter: FilterLimits::from_env()?,
                ..WorkerConfig::default()
            },
            sandbox,
        })
    }
}

/// The standalone worker's: its API, its queue, its metrics. No `Debug`: it holds the
/// worker credential.
#[derive(Clone)]
pub struct StandaloneSettings {
    pub common: WorkerSettings,
    pub api_url: String,
    pub token: String,
    /// How long the API may take to answer at start before the worker stops, saying why.
    pub api_wait: Duration,
    pub metrics_addr: SocketAddr,
    /// A commit body over this goes through the blob store (a Lambda takes 6 MB).
    pub spill_bytes: usize,
    pub queue: QueueSettings,
}

/// The queue a standalone worker consumes, and the blob store beside it.
#[derive(Debug, Clone)]
pub enum QueueSettings {
    Rabbit {
        url: String,
        queue: String,
        expires: Option<Duration>,
        blob_dir: String,
    },
    Sqs {
        queue_url: String,
        dead_letter_url: String,
        bucket: String,
        /// The queue's visibility timeout: a running task's message is kept invisible in
        /// steps of it.
        visibility: Duration,
    },
}

impl StandaloneSettings {
    /// `API_URL`, `WORKER_TOKEN` (required; `API_URL` may be `https://`: rustls, the
    /// platform's roots or the bundle `SSL_CERT_FILE` names), `WORKER_API_WAIT_SECS` (30),
    /// `WORKER_METRICS_ADDR` (0.0.0.0:9100), `COMMIT_SPILL_BYTES`, `MAX_DELIVERIES` (3, the
    /// broker's limit: the embedded process's in-process queue has its own), `QUEUE`
    /// (rabbitmq | sqs)
    /// and the queue's own: `AMQP_URL` (required), `TASK_QUEUE` (codebox.tasks),
    /// `TASK_QUEUE_EXPIRES_SECS`, `BLOB_DIR` (/var/lib/codebox/blobs); or `TASK_QUEUE_URL`,
    /// `TASK_DLQ_URL`, `BLOB_BUCKET` (required), `SQS_VISIBILITY_SECS` (60) and the usual
    /// AWS settings. Then [`WorkerSettings::from_env`].
    pub fn from_env() -> Result<Self, ConfigError> {
        let api_url = config::required("API_URL", "http://gateway:8080")?;
        let max_deliveries = config::parse_in("MAX_DELIVERIES", 3u32, 1..=100, "deliveries")?;
        let token = config::required("WORKER_TOKEN", "the credential the gateway was given")?;
        let api_wait = Duration::from_secs(config::parse_in(
            "WORKER_API_WAIT_SECS",
            30u64,
            1..=3600,
            "seconds",
        )?);
        let metrics_addr = config::parse_or(
            "WORKER_METRICS_ADDR",
            SocketAddr::from(([0, 0, 0, 0], 9100)),
            "host:port",
        )?;
        let spill_bytes = config::parse_in(
            "COMMIT_SPILL_BYTES",
            crate::http_control::COMMIT_SPILL_BYTES,
            1024..=5_000_000,
            "bytes",
        )?;
        let queue = match config::choice("QUEUE", "rabbitmq", &["rabbitmq", "sqs"])?.as_str() {
            "sqs" => QueueSettings::Sqs {
                queue_url: config::required(
                    "TASK_QUEUE_URL",
                    "https://sqs.eu-west-1.amazonaws.com/123456789012/codebox-tasks",
                )?,
                dead_letter_url: config::required(
                    "TASK_DLQ_URL",
                    "https://sqs.eu-west-1.amazonaws.com/123456789012/codebox-tasks-dead",
                )?,
                bucket: config::required("BLOB_BUCKET", "codebox-blobs")?,
                // SQS's own bounds are 0–43 200; under 3 s the extensions could not keep up.
                visibility: Duration::from_secs(config::parse_in(
                    "SQS_VISIBILITY_SECS",
                    60u64,
                    3..=43_200,
                    "seconds",
                )?),
            },
            _ => QueueSettings::Rabbit {
                url: config::required("AMQP_URL", "amqp://guest:guest@rabbitmq:5672/%2f")?,
                queue: config::var("TASK_QUEUE").unwrap_or_else(|| "codebox.tasks".to_owned()),
                expires: config::secs_opt("TASK_QUEUE_EXPIRES_SECS")?,
                blob_dir: config::var("BLOB_DIR")
                    .unwrap_or_else(|| "/var/lib/codebox/blobs".to_owned()),
            },
        };
        let mut common = WorkerSettings::from_env()?;
        common.worker.max_deliveries = max_deliveries;
        Ok(Self {
            common,
            api_url,
            token,
            api_wait,
            metrics_addr,
            spill_bytes,
            queue,
        })
    }
}

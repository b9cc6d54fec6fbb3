//! `codebox-worker`: the standalone worker of the compose and AWS profiles. It takes tasks
//! from RabbitMQ or SQS, runs them in sandboxes (runc run by the worker, or the local
//! Docker engine) and commits through the API with the worker credential; it holds no
//! database credentials.
//!
//! `API_URL`, `WORKER_TOKEN` (required); `QUEUE` (rabbitmq | sqs), `MAX_DELIVERIES` (3,
//! the broker's limit), `WORKER_CONCURRENCY` (4), `WORKER_METRICS_ADDR` (0.0.0.0:9100),
//! `WORKER_API_WAIT_SECS` (30: how long the API may take to answer at start before the
//! worker stops, saying why), `API_URL` may be `https://` (rustls; the platform's roots,
//! or the bundle `SSL_CERT_FILE` names),
//! `CANCEL_POLL_MS` (200: how often the running tasks are checked for a cancel, all in
//! one call), `LIVE_EVENTS` (on: running tasks' output goes to the API as it is made, for
//! their event streams; `off` where the API cannot carry it, AWS), and the sandbox's
//! `CODEBOX_*` settings.
//! - rabbitmq: `AMQP_URL` (required), `TASK_QUEUE` (codebox.tasks), `BLOB_DIR`
//!   (/var/lib/codebox/blobs).
//! - sqs: `TASK_QUEUE_URL`, `TASK_DLQ_URL`, `BLOB_BUCKET` (required),
//!   `SQS_VISIBILITY_SECS` (the queue's visibility timeout, 60: a running task's message
//!   is kept invisible in steps of it), and the usual AWS settings (`AWS_REGION`,
//!   `AWS_ENDPOINT_URL`, the ECS task role).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use codebox_adapters::fs::FsBlobStore;
use codebox_adapters::rabbitmq::{RabbitConfig, RabbitQueue};
use codebox_core::config;
use codebox_core::ports::{BlobStore, QueueConsumer};
use codebox_worker::consumer::{Worker, WorkerConfig};
use codebox_worker::http_control::HttpTaskControl;
use codebox_worker::sandbox::{SandboxConfig, Sandboxes};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    // `codebox-worker --filter …`: one image filter, as the worker's own child process.
    codebox_worker::filters::child::main_if_filter();
    codebox_core::telemetry::init_tracing();
    // Installed before anything is recorded, so no early measurement is lost.
    codebox_core::telemetry::metrics_handle();
    if let Err(e) = run().await {
        eprintln!("codebox-worker: {e:#}");
        std::process::exit(1);
    }
}

/// The queue a worker consumes, its dead letters, and the blob store next to it.
struct Source {
    consumer: Arc<dyn QueueConsumer>,
    dead_letters: Option<Arc<dyn QueueConsumer>>,
    blobs: Arc<dyn BlobStore>,
    /// How long a delivery stays invisible unless extended (SQS).
    lease: Option<Duration>,
    /// Long-poll wait of one receive (SQS bills every receive: wait longer there).
    receive_wait: Duration,
}

async fn rabbitmq(concurrency: usize, max_deliveries: u32) -> anyhow::Result<Source> {
    let rabbit = RabbitQueue::connect(RabbitConfig {
        url: config::required("AMQP_URL", "amqp://guest:guest@rabbitmq:5672/%2f")?,
        queue: config::var("TASK_QUEUE").unwrap_or_else(|| "codebox.tasks".to_owned()),
        max_deliveries,
        prefetch: u16::try_from(concurrency).unwrap_or(u16::MAX),
        expires: config::secs_opt("TASK_QUEUE_EXPIRES_SECS")?,
    })
    .await?;
    let blob_dir = config::var("BLOB_DIR").unwrap_or_else(|| "/var/lib/codebox/blobs".to_owned());
    Ok(Source {
        dead_letters: Some(Arc::new(rabbit.dead_letters())),
        consumer: Arc::new(rabbit),
        blobs: Arc::new(FsBlobStore::new(blob_dir)),
        lease: None,
        receive_wait: Duration::from_secs(1),
    })
}

async fn sqs() -> anyhow::Result<Source> {
    use codebox_adapters::aws::{s3::S3BlobStore, sdk_config, sqs};
    let queue_url = config::required(
        "TASK_QUEUE_URL",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/codebox-tasks",
    )?;
    let dead_letter_url = config::required(
        "TASK_DLQ_URL",
        "https://sqs.eu-west-1.amazonaws.com/123456789012/codebox-tasks-dead",
    )?;
    let bucket = config::required("BLOB_BUCKET", "codebox-blobs")?;
    // SQS's own bounds are 0–43 200; under 3 s the extensions could not keep up.
    let visibility = config::parse_in("SQS_VISIBILITY_SECS", 60u64, 3..=43_200, "seconds")?;
    let sdk = sdk_config().await;
    let blobs: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(sdk, bucket));
    let queue = sqs::SqsQueue::new(
        sdk,
        sqs::SqsConfig {
            queue_url,
            dead_letter_url: Some(dead_letter_url),
        },
        Some(blobs.clone()),
    );
    queue
        .depth()
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach SQS: {e}"))?;
    Ok(Source {
        dead_letters: queue
            .dead_letters()
            .map(|d| Arc::new(d) as Arc<dyn QueueConsumer>),
        consumer: Arc::new(queue),
        blobs,
        lease: Some(Duration::from_secs(visibility)),
        receive_wait: Duration::from_secs(10),
    })
}

/// A worker whose credential the API refuses could never store an outcome: it stops at
/// once with one line. An API that does not answer within `wait` (not up, a wrong
/// `API_URL`, a certificate the worker does not trust) stops it too, with the reason:
/// a worker that can store nothing is not healthy, and its orchestrator should see it
/// fail rather than a log line.
async fn check_api(control: &HttpTaskControl, api_url: &str, wait: Duration) -> anyhow::Result<()> {
    use codebox_core::Error;
    use codebox_core::ports::TaskControl;
    let deadline = tokio::time::Instant::now() + wait;
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let answer = tokio::time::timeout(left.max(Duration::from_millis(100)), control.ping())
            .await
            .unwrap_or_else(|_| Err(Error::Unavailable("no answer in time".into())));
        let e = match answer {
            Ok(()) => return Ok(()),
            Err(Error::Forbidden(_)) => anyhow::bail!(
                "WORKER_TOKEN is not the worker credential of the API at {api_url} (it answered 401/403)"
            ),
            Err(e) => e,
        };
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "the API at {api_url} did not answer within {} s (WORKER_API_WAIT_SECS): {e}",
                wait.as_secs()
            );
        }
        tracing::warn!(attempt, error = %e, "the API does not answer yet");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn run() -> anyhow::Result<()> {
    let api_url = config::required("API_URL", "http://gateway:8080")?;
    let token = config::required("WORKER_TOKEN", "the credential the gateway was given")?;
    let api_wait = Duration::from_secs(config::parse_in(
        "WORKER_API_WAIT_SECS",
        30u64,
        1..=3600,
        "seconds",
    )?);
    let max_deliveries = config::parse_in("MAX_DELIVERIES", 3u32, 1..=100, "deliveries")?;
    let concurrency = config::parse_in("WORKER_CONCURRENCY", 4usize, 1..=64, "tasks at once")?;
    let cancel_poll = Duration::from_millis(config::parse_in(
        "CANCEL_POLL_MS",
        200u64,
        50..=60_000,
        "milliseconds",
    )?);
    let live_events = config::choice("LIVE_EVENTS", "on", &["on", "off"])? == "on";
    let metrics_addr = config::parse_or(
        "WORKER_METRICS_ADDR",
        SocketAddr::from(([0, 0, 0, 0], 9100)),
        "host:port",
    )?;
    // All settings are read before anything is connected: a bad one stops the worker at
    // once, with one line naming it.
    let mut sandbox_config = SandboxConfig::from_env()?;
    let filter = codebox_worker::filters::child::FilterLimits::from_env()?;
    // A commit body over this goes through the blob store (a Lambda takes 6 MB).
    let spill_bytes = config::parse_in(
        "COMMIT_SPILL_BYTES",
        codebox_worker::http_control::COMMIT_SPILL_BYTES,
        1024..=5_000_000,
        "bytes",
    )?;
    let source = match config::choice("QUEUE", "rabbitmq", &["rabbitmq", "sqs"])?.as_str() {
        "sqs" => sqs().await?,
        _ => rabbitmq(concurrency, max_deliveries).await?,
    };
    let reap_after = sandbox_config.reap_after;
    sandbox_config.pool.get_or_insert(concurrency);
    sandbox_config.slots = concurrency;
    let sandbox = Arc::new(Sandboxes::connect(sandbox_config).await?);
    sandbox.ping().await?;
    let control = Arc::new(
        HttpTaskControl::new(&api_url, &token)?.spilling_to(source.blobs.clone(), spill_bytes),
    );
    check_api(control.as_ref(), &api_url, api_wait).await?;
    let worker = Worker::new(
        source.consumer,
        control,
        sandbox.clone(),
        source.blobs,
        WorkerConfig {
            concurrency,
            max_deliveries,
            lease: source.lease,
            receive_wait: source.receive_wait,
            filter,
            cancel_poll,
            live_events,
            ..WorkerConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind(metrics_addr)
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot listen on {metrics_addr} (WORKER_METRICS_ADDR): {e}")
        })?;
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(|| async { codebox_core::telemetry::metrics_handle().render() }),
        );
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        codebox_core::shutdown::signal().await;
        tracing::info!("shutting down: finishing the tasks under way");
        stop.cancel();
    });
    {
        // The gateway lists the versions this worker's runner image really has.
        let (sandbox, control) = (sandbox.clone(), worker.control.clone());
        tokio::spawn(async move {
            let languages = match sandbox.probe_versions().await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the runner image's versions");
                    return;
                }
            };
            // Reported again every hour: the API keeps the listing in its blob store,
            // whose retention would otherwise expire it.
            loop {
                for attempt in 1..=30u32 {
                    match control.report_languages(&languages).await {
                        Ok(()) => break,
                        Err(e) => {
                            tracing::debug!(attempt, error = %e, "reporting languages failed")
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        });
    }
    {
        let (sandbox, stop) = (sandbox.clone(), shutdown.clone());
        let every = (reap_after / 4).max(std::time::Duration::from_secs(1));
        tokio::spawn(async move { sandbox.reap_forever(reap_after, every, stop).await });
    }
    if let Some(dead_letters) = source.dead_letters {
        let (worker, stop) = (worker.clone(), shutdown.clone());
        tokio::spawn(async move { worker.fail_dead_letters(dead_letters, stop).await });
    }
    let pool = sandbox.start_pool(shutdown.clone());
    tracing::info!(concurrency, "worker started");
    worker.run(shutdown).await;
    // Every warm and used container removed before the process ends.
    let _ = pool.await;
    sandbox.settle().await;
    // One line for whoever stopped it (and for the fault tests, which count runs).
    eprintln!(
        "codebox-worker: stopped after running {} tasks",
        worker.runs()
    );
    Ok(())
}

//! `codebox-worker`: the standalone worker of the compose and AWS profiles. It takes tasks
//! from RabbitMQ or SQS, runs them in sandboxes (runc run by the worker, or the local
//! Docker engine) and commits through the API with the worker credential; it holds no
//! database credentials. Its settings: `codebox_worker::settings`.

use std::sync::Arc;
use std::time::Duration;

use codebox_adapters::fs::FsBlobStore;
use codebox_adapters::rabbitmq::{RabbitConfig, RabbitQueue};
use codebox_core::ports::{BlobStore, QueueConsumer};
use codebox_worker::consumer::Worker;
use codebox_worker::http_control::HttpTaskControl;
use codebox_worker::sandbox::Sandboxes;
use codebox_worker::settings::{QueueSettings, StandaloneSettings};
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

async fn connect(
    queue: &QueueSettings,
    concurrency: usize,
    max_deliveries: u32,
) -> anyhow::Result<Source> {
    match queue.clone() {
        QueueSettings::Rabbit {
            url,
            queue,
            expires,
            blob_dir,
        } => {
            let rabbit = RabbitQueue::connect(RabbitConfig {
                url,
                queue,
                max_deliveries,
                prefetch: u16::try_from(concurrency).unwrap_or(u16::MAX),
                expires,
            })
            .await?;
            Ok(Source {
                dead_letters: Some(Arc::new(rabbit.dead_letters())),
                consumer: Arc::new(rabbit),
                blobs: Arc::new(FsBlobStore::new(blob_dir)),
                lease: None,
                receive_wait: Duration::from_secs(1),
            })
        }
        QueueSettings::Sqs {
            queue_url,
            dead_letter_url,
            bucket,
            visibility,
        } => {
            use codebox_adapters::aws::{s3::S3BlobStore, sdk_config, sqs};
            let sdk = sdk_config().await?;
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
                lease: Some(visibility),
                receive_wait: Duration::from_secs(10),
            })
        }
    }
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
    // All settings are read before anything is connected.
    let settings = StandaloneSettings::from_env()?;
    let mut config = settings.common.worker.clone();
    let source = connect(&settings.queue, config.concurrency, config.max_deliveries).await?;
    let sandbox = Arc::new(Sandboxes::connect(settings.common.sandbox.clone()).await?);
    sandbox.ping().await?;
    let control = Arc::new(
        HttpTaskControl::new(&settings.api_url, &settings.token)?
            .spilling_to(source.blobs.clone(), settings.spill_bytes),
    );
    check_api(control.as_ref(), &settings.api_url, settings.api_wait).await?;
    config.lease = source.lease;
    config.receive_wait = source.receive_wait;
    let concurrency = config.concurrency;
    let worker = Worker::new(
        source.consumer,
        control,
        sandbox.clone(),
        source.blobs,
        config,
    );
    serve_metrics(settings.metrics_addr).await?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        codebox_core::shutdown::signal().await;
        tracing::info!("shutting down: finishing the tasks under way");
        stop.cancel();
    });
    report_languages(&worker, &sandbox, shutdown.clone());
    tracing::info!(concurrency, engine = sandbox.engine(), "worker started");
    codebox_worker::run::run_worker(worker.clone(), sandbox, source.dead_letters, shutdown).await;
    // One line for whoever stopped it (and for the fault tests, which count runs).
    eprintln!(
        "codebox-worker: stopped after running {} tasks",
        worker.runs()
    );
    Ok(())
}

/// `/metrics` on its own port, off the API's.
async fn serve_metrics(addr: std::net::SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (WORKER_METRICS_ADDR): {e}"))?;
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(|| async { codebox_core::telemetry::metrics_handle().render() }),
        );
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(())
}

/// The gateway lists the versions this worker's runner image really has: read once,
/// reported now and every hour (the API keeps the listing in its blob store, whose
/// retention would otherwise expire it), each report tried for a minute.
fn report_languages(worker: &Worker, sandbox: &Arc<Sandboxes>, stop: CancellationToken) {
    let (sandbox, control) = (sandbox.clone(), worker.control.clone());
    tokio::spawn(async move {
        let languages = match sandbox.probe_versions().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the runner image's versions");
                return;
            }
        };
        use codebox_core::shutdown::{First, every};
        every(Duration::from_secs(3600), First::Now, stop, || async {
            for attempt in 1..=30u32 {
                match control.report_languages(&languages).await {
                    Ok(()) => return,
                    Err(e) => tracing::debug!(attempt, error = %e, "reporting languages failed"),
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
        .await;
    });
}

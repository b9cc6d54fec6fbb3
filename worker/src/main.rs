//! `codebox-worker`: the standalone worker of the compose profile. It takes tasks from
//! RabbitMQ, runs them in the local Docker engine and commits through the API with the
//! worker credential; it holds no database credentials.
//!
//! `AMQP_URL`, `API_URL`, `WORKER_TOKEN` (required); `TASK_QUEUE` (codebox.tasks),
//! `MAX_DELIVERIES` (3), `BLOB_DIR` (/var/lib/codebox/blobs), `WORKER_CONCURRENCY` (4),
//! `WORKER_METRICS_ADDR` (0.0.0.0:9100), and the sandbox's `CODEBOX_*` settings.

use std::net::SocketAddr;
use std::sync::Arc;

use codebox_adapters::fs::FsBlobStore;
use codebox_adapters::rabbitmq::{RabbitConfig, RabbitQueue};
use codebox_core::config::{self, ConfigError};
use codebox_worker::consumer::{Worker, WorkerConfig};
use codebox_worker::http_control::HttpTaskControl;
use codebox_worker::sandbox::{DockerSandbox, SandboxConfig};
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() {
    codebox_core::telemetry::init_tracing();
    // Installed before anything is recorded, so no early measurement is lost.
    codebox_core::telemetry::metrics_handle();
    if let Err(e) = run().await {
        eprintln!("codebox-worker: {e:#}");
        std::process::exit(1);
    }
}

fn required(name: &str, example: &str) -> Result<String, ConfigError> {
    config::var(name).ok_or_else(|| ConfigError {
        var: name.to_owned(),
        problem: format!("is required, e.g. {example}"),
    })
}

async fn run() -> anyhow::Result<()> {
    let amqp_url = required("AMQP_URL", "amqp://guest:guest@rabbitmq:5672/%2f")?;
    let api_url = required("API_URL", "http://gateway:8080")?;
    let token = required("WORKER_TOKEN", "the credential the gateway was given")?;
    let queue = config::var("TASK_QUEUE").unwrap_or_else(|| "codebox.tasks".to_owned());
    let max_deliveries = config::parse_or("MAX_DELIVERIES", 3u32, "a count, e.g. 3")?;
    let blob_dir = config::var("BLOB_DIR").unwrap_or_else(|| "/var/lib/codebox/blobs".to_owned());
    let concurrency = config::parse_or("WORKER_CONCURRENCY", 4usize, "tasks at once, 1 to 64")?;
    let metrics_addr = config::parse_or(
        "WORKER_METRICS_ADDR",
        SocketAddr::from(([0, 0, 0, 0], 9100)),
        "host:port",
    )?;
    let sandbox_config = SandboxConfig::from_env()?;
    let reap_after = sandbox_config.reap_after;
    let sandbox = Arc::new(DockerSandbox::connect(sandbox_config).await?);
    sandbox.ping().await?;
    let rabbit = RabbitQueue::connect(RabbitConfig {
        url: amqp_url,
        queue,
        max_deliveries,
        prefetch: u16::try_from(concurrency).unwrap_or(u16::MAX),
        expires: config::var("TASK_QUEUE_EXPIRES_SECS")
            .map(|v| v.parse().map(std::time::Duration::from_secs))
            .transpose()
            .map_err(|_| ConfigError {
                var: "TASK_QUEUE_EXPIRES_SECS".into(),
                problem: "is not a number of seconds".into(),
            })?,
    })
    .await?;
    let dead_letters = Arc::new(rabbit.dead_letters());
    let worker = Worker {
        consumer: Arc::new(rabbit),
        control: Arc::new(HttpTaskControl::new(&api_url, &token)?),
        sandbox: sandbox.clone(),
        blobs: Arc::new(FsBlobStore::new(blob_dir)),
        config: WorkerConfig {
            concurrency,
            max_deliveries,
            ..WorkerConfig::default()
        },
    };
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
        let _ = tokio::signal::ctrl_c().await;
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
            for attempt in 1..=30u32 {
                match control.report_languages(&languages).await {
                    Ok(()) => return,
                    Err(e) => tracing::debug!(attempt, error = %e, "reporting languages failed"),
                }
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
        });
    }
    {
        let (sandbox, stop) = (sandbox.clone(), shutdown.clone());
        let every = (reap_after / 4).max(std::time::Duration::from_secs(1));
        tokio::spawn(async move { sandbox.reap_forever(reap_after, every, stop).await });
    }
    {
        let (worker, stop) = (worker.clone(), shutdown.clone());
        tokio::spawn(async move { worker.fail_dead_letters(dead_letters, stop).await });
    }
    tracing::info!(concurrency, "worker started");
    worker.run(shutdown).await;
    Ok(())
}

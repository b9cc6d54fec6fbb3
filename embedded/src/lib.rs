//! The embedded default: one process holding the gateway (every handler), the in-process
//! queue, the in-memory stores and a worker that runs tasks in sandboxes (runc, or the
//! local Docker engine). `make run` starts it; the end-to-end tests start it on 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use codebox_core::config::{self, ConfigError};
use codebox_functions::config::{ApiConfig, Backends, MAX_DELIVERIES};
use codebox_functions::{AppState, router};
use codebox_worker::consumer::{Worker, WorkerConfig};
use codebox_worker::sandbox::{SandboxConfig, Sandboxes};
use codebox_worker::settings::WorkerSettings;
use secrecy::SecretString;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Clone)]
pub struct EmbeddedConfig {
    pub addr: SocketAddr,
    pub api: ApiConfig,
    pub sandbox: SandboxConfig,
    pub worker: WorkerConfig,
}

impl EmbeddedConfig {
    /// `CODEBOX_ADDR` (default 127.0.0.1:8080), the API's settings and the worker's
    /// ([`WorkerSettings::from_env`]; the in-process queue's own delivery limit). Secrets
    /// are made up at start when unset: the stores live in this process only, so nothing
    /// outlives them.
    pub fn from_env() -> Result<Self, ConfigError> {
        let addr = config::parse_or(
            "CODEBOX_ADDR",
            SocketAddr::from(([127, 0, 0, 1], 8080)),
            "host:port, e.g. 127.0.0.1:8080",
        )?;
        let random = || {
            SecretString::from(format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ))
        };
        let jwt = config::var("JWT_SECRET")
            .map(SecretString::from)
            .unwrap_or_else(random);
        let worker_token = config::var("WORKER_TOKEN")
            .map(SecretString::from)
            .unwrap_or_else(random);
        let api = ApiConfig::with_secrets(jwt, worker_token)?;
        let WorkerSettings {
            mut worker,
            sandbox,
        } = WorkerSettings::from_env()?;
        worker.max_deliveries = MAX_DELIVERIES;
        Ok(Self {
            addr,
            api,
            sandbox,
            worker,
        })
    }
}

/// A running embedded stack.
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    shutdown: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
    worker: JoinHandle<()>,
}

impl Running {
    /// Stops taking requests and tasks, finishes those under way and the webhook calls
    /// their ends made, then returns.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let _ = (&mut self.worker).await;
        let _ = (&mut self.server).await;
        self.drain_webhooks().await;
    }

    /// The webhook calls of tasks that ended before the stop, made before it returns.
    async fn drain_webhooks(&self) {
        if let Some(webhooks) = &self.state.webhook_calls {
            webhooks.drain(codebox_functions::webhooks::DRAIN).await;
        }
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server ends (after the shutdown token is cancelled).
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let served = (&mut self.server).await;
        self.shutdown.cancel();
        let _ = (&mut self.worker).await;
        self.drain_webhooks().await;
        served
            .context("the server task failed")?
            .context("serving HTTP")?;
        Ok(())
    }
}

/// Starts the stack: checks Docker and the runner image first (one clear error when
/// either is missing), reads the language versions from the image, then serves.
pub async fn start(config: EmbeddedConfig) -> anyhow::Result<Running> {
    // The recorder before anything records (the sandboxes say their engine at start).
    codebox_core::telemetry::metrics_handle();
    let mut sandbox_config = config.sandbox.clone();
    sandbox_config.pool.get_or_insert(config.worker.concurrency);
    sandbox_config.slots = config.worker.concurrency;
    let sandbox = Arc::new(Sandboxes::connect(sandbox_config).await?);
    sandbox.ping().await?;
    let backends = Backends::memory();
    let state = AppState::build(&config.api, &backends)?;
    match sandbox.probe_versions().await {
        Ok(languages) => state.set_languages(languages),
        Err(e) => {
            tracing::warn!(error = %e, "could not read language versions from the runner image")
        }
    }
    let consumer = backends
        .consumer
        .clone()
        .context("the in-memory backends have a consumer")?;
    let worker = Worker::new(
        consumer,
        Arc::new(state.tasks.clone()),
        sandbox.clone(),
        backends.blobs.clone(),
        config.worker.clone(),
    );
    let listener = tokio::net::TcpListener::bind(config.addr)
        .await
        .with_context(|| format!("cannot listen on {} (CODEBOX_ADDR)", config.addr))?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    // Uploads older than a day leave memory.
    {
        let (tasks, stop) = (state.tasks.clone(), shutdown.clone());
        tokio::spawn(async move {
            tasks
                .expire_uploads_forever(std::time::Duration::from_secs(3600), stop)
                .await
        });
    }
    let server = {
        let shutdown = shutdown.clone();
        let app = router(state.clone());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
        })
    };
    // Every warm and used container is removed before the stack reports stopped.
    let worker = tokio::spawn(codebox_worker::run::run_worker(
        worker,
        sandbox,
        None,
        shutdown.clone(),
    ));
    Ok(Running {
        addr,
        state,
        shutdown,
        server,
        worker,
    })
}

//! The compose profile for tests: the gateway's state on PostgreSQL, Redis, RabbitMQ and
//! a blob directory, served on 127.0.0.1:0, and a worker that consumes RabbitMQ and
//! commits over HTTP with the worker credential, exactly as the two containers do.
//! The services come from `scripts/services.sh up`; each stack gets its own queue.
#![allow(clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use codebox_adapters::fs::FsBlobStore;
use codebox_adapters::rabbitmq::{RabbitConfig, RabbitQueue};
use codebox_functions::config::{ApiConfig, Backend, Backends, LocalBackend};
use codebox_functions::{AppState, router};
use codebox_worker::consumer::{Worker, WorkerConfig};
use codebox_worker::http_control::HttpTaskControl;
use codebox_worker::sandbox::{DockerSandbox, SandboxConfig};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Settings of a fresh compose-profile stack against the test services.
pub fn local_backend() -> LocalBackend {
    let id = uuid::Uuid::new_v4().simple().to_string();
    LocalBackend {
        database_url: env_or(
            "CODEBOX_TEST_POSTGRES_URL",
            "postgres://codebox@127.0.0.1:55432/codebox",
        ),
        redis_url: env_or("CODEBOX_TEST_REDIS_URL", "redis://127.0.0.1:56379"),
        amqp_url: env_or(
            "CODEBOX_TEST_AMQP_URL",
            "amqp://guest:guest@127.0.0.1:55672/%2f",
        ),
        queue: format!("codebox-e2e-{id}"),
        blob_dir: std::env::temp_dir()
            .join(format!("codebox-e2e-blobs-{id}"))
            .to_string_lossy()
            .into_owned(),
        max_deliveries: 3,
    }
}

pub struct ComposeStack {
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
}

/// Starts a gateway and one worker (concurrency 4) against the local services.
pub async fn start(local: LocalBackend, worker_token: &str) -> anyhow::Result<ComposeStack> {
    let api = ApiConfig {
        jwt_secret: SecretString::from(format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        )),
        worker_token: SecretString::from(worker_token.to_owned()),
        token_ttl_secs: 3600,
        bcrypt_cost: 4,
        backend: Backend::Local(local.clone()),
    };
    let backends = Backends::local(&local).await?;
    let state = AppState::build(&api, &backends)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, router(state))
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
    });

    let sandbox = DockerSandbox::connect(SandboxConfig::from_env()?).await?;
    sandbox.ping().await?;
    let consumer = RabbitQueue::connect(RabbitConfig {
        url: local.amqp_url.clone(),
        queue: local.queue.clone(),
        max_deliveries: local.max_deliveries,
        prefetch: 4,
    })
    .await?;
    let worker = Worker {
        consumer: Arc::new(consumer),
        control: Arc::new(HttpTaskControl::new(
            &format!("http://{addr}"),
            worker_token,
        )?),
        sandbox: Arc::new(sandbox),
        blobs: Arc::new(FsBlobStore::new(&local.blob_dir)),
        config: WorkerConfig {
            concurrency: 4,
            max_deliveries: local.max_deliveries,
            receive_wait: Duration::from_millis(500),
            ..WorkerConfig::default()
        },
    };
    let stop = shutdown.clone();
    tokio::spawn(async move { worker.run(stop).await });
    Ok(ComposeStack { addr, shutdown })
}

/// One compose stack shared by the tests of a test binary, on its own runtime.
pub fn shared_stack() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("compose-stack".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("a runtime for the compose stack");
                rt.block_on(async move {
                    let token = format!("worker-{}", uuid::Uuid::new_v4().simple());
                    let stack = start(local_backend(), &token).await.expect(
                        "the compose stack must start: `bash scripts/services.sh up`, Docker and the runner image are required",
                    );
                    tx.send(stack.addr).expect("the test waits for the address");
                    std::future::pending::<()>().await;
                    drop(stack);
                });
            })
            .expect("a thread for the compose stack");
        rx.recv_timeout(Duration::from_secs(120))
            .expect("the compose stack did not start within 120 s")
    })
}

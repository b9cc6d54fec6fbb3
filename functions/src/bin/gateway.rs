//! The local gateway: every handler behind one HTTP server (`GATEWAY_ADDR`, default
//! 0.0.0.0:8080), for docker compose. With `METRICS_ADDR`, `GET /metrics` is served
//! there only, off the public API port.

use codebox_functions::{AppState, api_router, metrics_router, router, telemetry};

#[tokio::main]
async fn main() {
    // `gateway --health URL`: the container healthcheck, without curl in the image.
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, url] = args.as_slice()
        && flag == "--health"
    {
        std::process::exit(match health(url).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("codebox-gateway: unhealthy: {e}");
                1
            }
        });
    }
    telemetry::init_tracing();
    if let Err(e) = run().await {
        eprintln!("codebox-gateway: {e:#}");
        std::process::exit(2);
    }
}

async fn run() -> anyhow::Result<()> {
    // The recorder first: a count made before it is installed is lost (with
    // `METRICS_ADDR`, the metrics listener's task once installed it after the API had
    // answered its first requests).
    codebox_core::telemetry::metrics_handle();
    let addr = codebox_core::config::var("GATEWAY_ADDR").unwrap_or_else(|| "0.0.0.0:8080".into());
    let metrics_addr = codebox_core::config::var("METRICS_ADDR");
    let state = AppState::from_env().await?;
    // The outbox: tasks a gateway stored and then died before queueing get queued.
    let stop = tokio_util::sync::CancellationToken::new();
    {
        let (tasks, stop) = (state.tasks.clone(), stop.clone());
        tokio::spawn(async move {
            tasks
                .sweep_forever(std::time::Duration::from_secs(30), stop)
                .await
        });
    }
    // Uploads older than a day, where the blob store keeps them until told (files).
    {
        let (tasks, stop) = (state.tasks.clone(), stop.clone());
        tokio::spawn(async move {
            tasks
                .expire_uploads_forever(std::time::Duration::from_secs(3600), stop)
                .await
        });
    }
    // Calls of tasks that ended before the stop are made before the process ends.
    let webhooks = state.webhook_calls.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (GATEWAY_ADDR): {e}"))?;
    let app = match &metrics_addr {
        Some(maddr) => {
            let metrics = tokio::net::TcpListener::bind(maddr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot listen on {maddr} (METRICS_ADDR): {e}"))?;
            tokio::spawn(async move {
                if let Err(e) = axum::serve(metrics, metrics_router()).await {
                    tracing::error!(error = %e, "metrics listener stopped");
                }
            });
            api_router(state)
        }
        None => router(state),
    };
    tracing::info!(%addr, metrics = ?metrics_addr, "gateway listening");
    // The peer address is what the rates per client address count.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(codebox_core::shutdown::signal())
    .await?;
    stop.cancel();
    if let Some(webhooks) = webhooks {
        webhooks.drain(codebox_functions::webhooks::DRAIN).await;
    }
    Ok(())
}

/// A bare HTTP/1.0 GET over TCP: enough for a healthcheck against this very server.
async fn health(url: &str) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs"))?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut stream = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        tokio::net::TcpStream::connect(host),
    )
    .await??;
    stream
        .write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    if &head[9..12] == b"200" {
        Ok(())
    } else {
        anyhow::bail!("{}", String::from_utf8_lossy(&head))
    }
}

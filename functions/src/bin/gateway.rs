//! The local gateway: every handler behind one HTTP server (`GATEWAY_ADDR`, default
//! 0.0.0.0:8080), for docker compose.

use codebox_functions::{AppState, router, telemetry};

#[tokio::main]
async fn main() {
    telemetry::init_tracing();
    if let Err(e) = run().await {
        eprintln!("codebox-gateway: {e:#}");
        std::process::exit(2);
    }
}

async fn run() -> anyhow::Result<()> {
    let addr = codebox_core::config::var("GATEWAY_ADDR").unwrap_or_else(|| "0.0.0.0:8080".into());
    let state = AppState::from_env().await?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (GATEWAY_ADDR): {e}"))?;
    tracing::info!(%addr, "gateway listening");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

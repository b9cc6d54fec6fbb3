//! `codebox-server`: the embedded default (`make run`).

#[tokio::main]
async fn main() {
    // `codebox-server --filter …`: one image filter, as the worker's child process.
    codebox_worker::filters::child::main_if_filter();
    codebox_functions::telemetry::init_tracing();
    if let Err(e) = run().await {
        eprintln!("codebox-server: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    let config = codebox_embedded::EmbeddedConfig::from_env()?;
    let running = codebox_embedded::start(config).await?;
    tracing::info!(
        "codebox is listening on http://{} (Swagger UI at /swagger/)",
        running.addr
    );
    let shutdown = running.shutdown_token();
    tokio::spawn(async move {
        codebox_core::shutdown::signal().await;
        tracing::info!("shutting down: finishing the tasks under way");
        shutdown.cancel();
    });
    running.wait().await
}

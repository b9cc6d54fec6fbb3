//! The stop signals every binary drains on: SIGTERM (what `docker stop`, compose, ECS and
//! systemd send) and SIGINT (Ctrl-C).

/// Resolves on the first SIGTERM or SIGINT. Where the SIGTERM handler cannot be
/// installed, SIGINT alone still works.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM: draining"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: draining"),
                }
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch SIGTERM; only SIGINT stops"),
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

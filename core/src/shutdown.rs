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

/// When a periodic loop first runs its round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum First {
    /// At once, then every period.
    Now,
    /// After one period.
    AfterOnePeriod,
}

/// Runs `round` every `period` until `stop`; a round under way when `stop` comes is
/// finished, none starts after it. The one shape of every background loop (the outbox
/// sweeper, the upload expiry, the sandbox reaper, the language report).
pub async fn every<F, Fut>(
    period: std::time::Duration,
    first: First,
    stop: tokio_util::sync::CancellationToken,
    mut round: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if first == First::AfterOnePeriod {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
    }
    loop {
        if stop.is_cancelled() {
            return;
        }
        round().await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// Rounds run at the period's pace and stop with the token; none runs after it.
    #[tokio::test(start_paused = true)]
    async fn a_periodic_loop_runs_its_rounds_until_stopped() {
        for (first, expected) in [(First::Now, 4), (First::AfterOnePeriod, 3)] {
            let rounds = Arc::new(AtomicU32::new(0));
            let stop = tokio_util::sync::CancellationToken::new();
            let counted = rounds.clone();
            let looping = tokio::spawn(every(
                Duration::from_secs(10),
                first,
                stop.clone(),
                move || {
                    let counted = counted.clone();
                    async move {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                },
            ));
            tokio::time::sleep(Duration::from_secs(35)).await;
            stop.cancel();
            looping.await.unwrap();
            assert_eq!(rounds.load(Ordering::SeqCst), expected, "{first:?}");
            tokio::time::sleep(Duration::from_secs(60)).await;
            assert_eq!(
                rounds.load(Ordering::SeqCst),
                expected,
                "none after the stop"
            );
        }
    }
}

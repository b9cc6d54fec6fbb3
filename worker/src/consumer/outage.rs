//! Holding a delivery through an outage: a dependency that does not answer is retried
//! with backoff, and no new message is taken until it is back.

use super::*;

#[derive(Default)]
pub(super) struct Outage {
    pub(super) held: AtomicUsize,
    cleared: Notify,
}

/// Marks one delivery as held through an outage for as long as it lives.
pub(super) struct HoldGuard<'a>(&'a Outage);

impl<'a> HoldGuard<'a> {
    fn new(outage: &'a Outage) -> Self {
        outage.held.fetch_add(1, Ordering::SeqCst);
        metrics::gauge!("codebox_deliveries_held").increment(1.0);
        metrics::counter!("codebox_outage_holds_total").increment(1);
        Self(outage)
    }
}

impl Drop for HoldGuard<'_> {
    fn drop(&mut self) {
        metrics::gauge!("codebox_deliveries_held").decrement(1.0);
        if self.0.held.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.cleared.notify_waiters();
        }
    }
}

/// Why a held call gave up.
pub(super) const STOPPING: &str = "the worker is stopping";
/// How long a stopping worker keeps trying to store an outcome it holds before it hands
/// the message back: inside compose's 90 s and ECS's 120 s of grace.
pub(super) const OUTCOME_AFTER_STOP: Duration = Duration::from_secs(60);

/// What a hold does when the worker is told to stop.
#[derive(Clone, Copy)]
pub(super) enum OnStop {
    /// Give up: the delivery goes back for another worker (nothing has run yet).
    HandBack,
    /// Keep trying: an outcome in hand is stored (a message handed back would run its
    /// task again), for up to a minute after the stop.
    KeepTrying,
}

impl Worker {
    pub(super) async fn outage_cleared(&self) {
        loop {
            let cleared = self.outage.cleared.notified();
            if self.outage.held.load(Ordering::SeqCst) == 0 {
                return;
            }
            // The timeout covers a wake-up that raced the check above.
            let _ = tokio::time::timeout(Duration::from_millis(500), cleared).await;
        }
    }

    /// Runs `op` until it succeeds or fails for a reason of the task's own. A transient
    /// failure while `probe` fails too is an outage: the call is retried with backoff,
    /// without limit, and the worker takes no new message meanwhile. A transient failure
    /// while the probe answers is tried again up to `tries` times in all (the dependency
    /// may just have come back), then counts. Gives up with `Unavailable` when the worker
    /// stops.
    pub(super) async fn hold<T, Op, OpFut, Probe, ProbeFut>(
        &self,
        what: &'static str,
        tries: u32,
        mut op: Op,
        probe: Probe,
        on_stop: OnStop,
    ) -> Result<T, Error>
    where
        Op: FnMut() -> OpFut,
        OpFut: Future<Output = Result<T, Error>>,
        Probe: Fn() -> ProbeFut,
        ProbeFut: Future<Output = Result<(), Error>>,
    {
        let (first, longest) = self.config.hold_backoff;
        let mut pause = first;
        let mut strikes = 0;
        let mut held: Option<HoldGuard<'_>> = None;
        let mut stopped_at: Option<tokio::time::Instant> = None;
        loop {
            let e = match op().await {
                Ok(v) => {
                    if held.is_some() {
                        tracing::info!(what, "back: the held task goes on");
                    }
                    return Ok(v);
                }
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => e,
            };
            match probe().await {
                Ok(()) => {
                    strikes += 1;
                    if strikes >= tries {
                        return Err(e);
                    }
                }
                Err(probe_error) => {
                    strikes = 0;
                    if held.is_none() {
                        tracing::warn!(what, error = %e, probe = %probe_error,
                            "unavailable: holding the task until it is back");
                        held = Some(HoldGuard::new(&self.outage));
                    }
                }
            }
            let stopped = match on_stop {
                OnStop::HandBack => self.stopping.clone(),
                // An outcome is kept trying for a while after the stop (less than an
                // orchestrator's grace), then handed back, so the worker still ends
                // cleanly, its sandboxes removed.
                OnStop::KeepTrying if self.stopping.is_cancelled() => {
                    let since = *stopped_at.get_or_insert_with(tokio::time::Instant::now);
                    let token = CancellationToken::new();
                    if since.elapsed() >= OUTCOME_AFTER_STOP {
                        token.cancel();
                    }
                    token
                }
                OnStop::KeepTrying => CancellationToken::new(),
            };
            tokio::select! {
                _ = stopped.cancelled() => return Err(Error::Unavailable(STOPPING.into())),
                _ = tokio::time::sleep(jitter(pause)) => {}
            }
            pause = (pause * 2).min(longest);
        }
    }
}

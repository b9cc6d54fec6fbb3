//! The watch over this worker's running tasks: one loop asks the API which of them were
//! cancelled (every `cancel_poll`, one call for all of them: on AWS each call is a Lambda
//! invocation), another renews their runs' leases (every [`RUN_LEASE_RENEWAL`], one call
//! for all, each call bounded well inside the 30 s lease). Both run only while a task does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use codebox_core::domain::{LeaseId, RUN_LEASE_RENEWAL, TaskId};
use codebox_core::ports::TaskControl;
use tokio_util::sync::CancellationToken;

/// The longest one renewal may take: a renewal that hangs must not outlast the lease it
/// renews (30 s, renewed every 5 s).
const RENEW_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Default)]
pub(crate) struct RunWatch {
    inner: Arc<Mutex<Watched>>,
}

#[derive(Default)]
struct Watched {
    /// Each watched run's cancel token and lease, by task.
    runs: HashMap<TaskId, (CancellationToken, LeaseId)>,
    polling: bool,
    renewing: bool,
}

/// One run under the watch, until dropped.
pub(crate) struct WatchGuard {
    watch: RunWatch,
    id: TaskId,
    holder: LeaseId,
    pub(crate) token: CancellationToken,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Ok(mut w) = self.watch.inner.lock()
            // Another run of the same task (one that took a lapsed lease over) keeps its own.
            && w.runs.get(&self.id).is_some_and(|(_, l)| *l == self.holder)
        {
            w.runs.remove(&self.id);
        }
    }
}

impl RunWatch {
    /// Watches the run of `id` that holds `holder`'s lease.
    pub(crate) fn watch(
        &self,
        id: TaskId,
        holder: LeaseId,
        control: Arc<dyn TaskControl>,
        every: Duration,
    ) -> WatchGuard {
        let token = CancellationToken::new();
        let (poll, renew) = match self.inner.lock() {
            Ok(mut w) => {
                w.runs.insert(id, (token.clone(), holder));
                (
                    !std::mem::replace(&mut w.polling, true),
                    !std::mem::replace(&mut w.renewing, true),
                )
            }
            Err(_) => (false, false),
        };
        if poll {
            let (watch, control) = (self.clone(), control.clone());
            tokio::spawn(async move { watch.poll(control, every).await });
        }
        if renew {
            let watch = self.clone();
            tokio::spawn(async move { watch.renew(control).await });
        }
        WatchGuard {
            watch: self.clone(),
            id,
            holder,
            token,
        }
    }

    /// The watched runs, or `None` (and the loop's flag cleared) when there are none.
    fn snapshot(&self, flag: fn(&mut Watched) -> &mut bool) -> Option<Vec<(TaskId, LeaseId)>> {
        let mut w = self.inner.lock().ok()?;
        if w.runs.is_empty() {
            *flag(&mut w) = false;
            return None;
        }
        Some(w.runs.iter().map(|(id, (_, l))| (*id, *l)).collect())
    }

    /// Asks for cancels until no task is watched any more.
    async fn poll(&self, control: Arc<dyn TaskControl>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(runs) = self.snapshot(|w| &mut w.polling) else {
                return;
            };
            let ids: Vec<TaskId> = runs.iter().map(|(id, _)| *id).collect();
            match control.cancelled_among(&ids).await {
                Ok(cancelled) => {
                    let Ok(w) = self.inner.lock() else { return };
                    for id in cancelled {
                        if let Some((token, _)) = w.runs.get(&id) {
                            tracing::info!(task_id = %id, "cancelled while running; stopping it");
                            token.cancel();
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cancel check failed"),
            }
        }
    }

    /// Renews the watched runs' leases until no task is watched any more.
    async fn renew(&self, control: Arc<dyn TaskControl>) {
        let mut tick = tokio::time::interval(RUN_LEASE_RENEWAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            let Some(leases) = self.snapshot(|w| &mut w.renewing) else {
                return;
            };
            match tokio::time::timeout(RENEW_TIMEOUT, control.renew(&leases)).await {
                Ok(Ok(())) => metrics::counter!("codebox_lease_renewals_total").increment(1),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "renewing the running tasks' leases failed")
                }
                Err(_) => tracing::warn!("renewing the running tasks' leases timed out"),
            }
        }
    }
}

//! A delivery's task taken under this worker's lease, or deferred (its owner runs as
//! many tasks as a user may), or waited for (it runs on another worker).

use super::*;

impl Worker {
    /// `execute`, keeping the delivery with this worker while it runs.
    pub(super) async fn execute_leased(
        &self,
        message: &TaskMessage,
        attempt: u32,
        deferrals: u32,
        settle: &dyn Settle,
    ) -> Result<Ran, Error> {
        let Some(lease) = self.config.lease else {
            return self.execute(message, attempt, deferrals).await;
        };
        let work = self.execute(message, attempt, deferrals);
        tokio::pin!(work);
        let mut tick = tokio::time::interval((lease / 3).max(Duration::from_millis(500)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                done = &mut work => return done,
                _ = tick.tick() => {
                    match settle.extend(lease).await {
                        Ok(()) => metrics::counter!("codebox_lease_extensions_total").increment(1),
                        Err(e) => tracing::warn!(error = %e, "could not extend the delivery"),
                    }
                }
            }
        }
    }

    /// Runs the task and commits its outcome, unless it is not to be run (cancelled or
    /// finished meanwhile) or not yet. `Err`: a platform failure worth another delivery.
    pub(super) async fn execute(
        &self,
        message: &TaskMessage,
        attempt: u32,
        deferrals: u32,
    ) -> Result<Ran, Error> {
        if let Err(e) = codebox_core::tasks::check_spec(&message.spec) {
            // Not made by the API (forged, or corrupted on the way): never run it.
            tracing::error!(error = %e, "a message outside the API's bounds; not running it");
            metrics::counter!("codebox_messages_refused_total").increment(1);
            self.commit(Commit {
                task_id: message.task_id,
                status: TaskStatus::Failed,
                result: TaskResult::without_output(
                    message.spec.kind(),
                    Verdict::InternalError,
                    Some(format!("the task's message was refused: {e}")),
                ),
                notify: message.spec.webhook().is_some(),
            })
            .await?;
            return Ok(Ran::Committed);
        }
        let id = message.task_id;
        // This delivery's run: its lease is told apart from another delivery's.
        let holder = uuid::Uuid::new_v4();
        let lease = crate::stages::Timer::start("lease");
        match self.take_lease(id, holder, deferrals).await {
            Ok(StartDecision::Run) => lease.done(),
            Ok(StartDecision::Defer) => return Ok(Ran::Deferred),
            Ok(StartDecision::Skip | StartDecision::Leased) => return Ok(Ran::Skipped),
            Err(e) => {
                // A start the API applied but whose answer was lost (the gateway died
                // mid-request) holds a lease for this delivery: give it up, so the next
                // delivery need not wait 30 s for it to lapse while deliveries are spent.
                // Only this delivery's own lease is released; none is a no-op.
                let release = self.control.release(id, holder);
                if !matches!(
                    tokio::time::timeout(Duration::from_secs(5), release).await,
                    Ok(Ok(()))
                ) {
                    tracing::warn!(
                        "could not give up this delivery's lease; the next waits for it to lapse"
                    );
                }
                return Err(e);
            }
        }
        // Watched for a cancel, and its lease renewed, until its outcome is stored.
        let watched = self
            .watch
            .watch(id, holder, self.control.clone(), self.config.cancel_poll);
        let done = self
            .run_and_commit(message, attempt, watched.token.clone())
            .await;
        drop(watched);
        if let Err(e) = &done {
            // The message goes back: its next delivery need not wait for this lease.
            if let Err(release) = self.control.release(id, holder).await {
                tracing::warn!(error = %e, release = %release,
                    "could not release the lease; the next delivery waits for it to lapse");
            }
        }
        done.map(|()| Ran::Committed)
    }

    /// Starts the task under this worker's lease (`Run`), unless it is not to be run
    /// (`Skip`) or not yet (`Defer`). A task another worker runs (its message came back
    /// after a broker restart, say) is waited for, the delivery kept, until it ends
    /// (`Skip`) or its lease lapses because that worker died (`Run`: this one takes it
    /// over); `Leased` is never returned.
    pub(super) async fn take_lease(
        &self,
        id: TaskId,
        holder: LeaseId,
        deferrals: u32,
    ) -> Result<StartDecision, Error> {
        let control = &self.control;
        let mut logged = false;
        loop {
            let decision = self
                .hold(
                    "the API",
                    HOLD_TRIES,
                    || control.start_delivery(id, holder, deferrals),
                    || control.ping(),
                    OnStop::HandBack,
                )
                .await?;
            match decision {
                StartDecision::Run => return Ok(StartDecision::Run),
                StartDecision::Skip => {
                    tracing::info!("task is cancelled or finished; skipping");
                    return Ok(StartDecision::Skip);
                }
                StartDecision::Defer => {
                    tracing::debug!("its owner runs as many tasks as a user may; deferring");
                    return Ok(StartDecision::Defer);
                }
                StartDecision::Leased => {
                    if !logged {
                        tracing::info!("task runs on another worker; waiting for its end");
                        metrics::counter!("codebox_leased_elsewhere_total").increment(1);
                        logged = true;
                    }
                    tokio::select! {
                        _ = self.stopping.cancelled() => {
                            return Err(Error::Unavailable(STOPPING.into()));
                        }
                        _ = tokio::time::sleep(jitter(LEASE_RECHECK)) => {}
                    }
                }
            }
        }
    }
}

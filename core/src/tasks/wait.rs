//! Waiting for a task's end: what `POST /task?wait=true`, Judge0's `wait=true` and a
//! client's long poll all do, written once.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::broadcast;

use super::ended::Ended;
use super::{Submitted, TaskService};
use crate::domain::{Task, TaskEvent};
use crate::error::Result;
use crate::ports::Logged;

/// The ends this process stores from the moment it was taken. Taken before a task is
/// published, its wait reads nothing until the end is told: the end cannot have come
/// before.
pub struct EndWatch(broadcast::Receiver<Arc<Ended>>);

impl TaskService {
    /// Listens for the ends this process stores, from now on.
    pub fn watch_ends(&self) -> EndWatch {
        EndWatch(self.ended.listen())
    }

    /// The task once it has ended, or `None` when `within` passes first. Woken by the
    /// task's status events where the deployment's event bus carries them (the answer
    /// leaves as the outcome is stored); reads only the task's summary otherwise, polling
    /// from 20 ms (100 ms where the bus carries status events) and backing off to 250 ms
    /// — also the safety net for an event the bus lost.
    pub async fn wait_for_end(&self, task: &Task, within: Duration) -> Result<Option<Task>> {
        self.wait(task, within, self.ended.listen(), true).await
    }

    /// As [`Self::wait_for_end`], for a task submitted after `watch` was taken (a submit
    /// that waits). A task the submit made is not read before the first pause, which
    /// would only meet the worker's start in the store; one an idempotent replay found
    /// is read first (it may have ended long ago).
    pub async fn wait_for_submitted(
        &self,
        submitted: &Submitted,
        watch: EndWatch,
        within: Duration,
    ) -> Result<Option<Task>> {
        self.wait(&submitted.task, within, watch.0, !submitted.created)
            .await
    }

    async fn wait(
        &self,
        task: &Task,
        within: Duration,
        here: broadcast::Receiver<Arc<Ended>>,
        read_first: bool,
    ) -> Result<Option<Task>> {
        let deadline = tokio::time::Instant::now() + within;
        // Listening before the first read: an end between the two is not missed. An end
        // this process stores comes whole (`ended.rs`); others through the bus.
        let mut here = Some(here);
        let mut read = read_first;
        let bus = self.events();
        let mut live = if bus.carries() {
            bus.listen(task.id).await.ok()
        } else {
            None
        };
        // Polling is the safety net where the bus tells the end: a first read at 20 ms
        // would race the end it tells (a hello's run lasts about that long) and cost two
        // reads on the answer's way. Where nothing tells it, polling is the way.
        let mut pause = Duration::from_millis(if live.is_some() { 100 } else { 20 });
        // Told by the bus that the task ended: the task itself is read at once (one read,
        // not its summary first).
        let mut told = false;
        loop {
            if std::mem::take(&mut told) {
                let ended = self.get(task.owner, task.id).await?;
                if ended.status.is_finished() {
                    return Ok(Some(ended));
                }
            }
            if std::mem::replace(&mut read, true) {
                let summary = self.summary(task.owner, task.id).await?;
                if summary.status.is_finished() {
                    return Ok(Some(self.get(task.owner, task.id).await?));
                }
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let nap = tokio::time::sleep(pause.min(deadline - now));
            tokio::pin!(nap);
            // Output and test events do not end it: only an ended status, an end stored
            // here, the nap's end, or the bus letting go of this listener (polling alone
            // from then on) reads again.
            loop {
                tokio::select! {
                    biased;
                    end = next_end(&mut here) => match end {
                        Ok(end) => {
                            if let Some(ended) = end.of(task) {
                                return Ok(Some(ended));
                            }
                        }
                        // Behind: the bus and the store tell the end instead.
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => here = None,
                    },
                    event = next_event(&mut live) => match event {
                        Some(Logged { event: TaskEvent::Status { status }, .. }) if status.is_finished() => {
                            told = true;
                            break;
                        }
                        Some(_) => {}
                        None => live = None,
                    },
                    _ = &mut nap => break,
                }
            }
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }
}

/// The next end stored in this process; never, once the channel is gone.
async fn next_end(
    here: &mut Option<broadcast::Receiver<Arc<Ended>>>,
) -> std::result::Result<Arc<Ended>, broadcast::error::RecvError> {
    match here {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The bus's next event for the task; never, once the bus has let go (`None` once, when
/// it does).
async fn next_event(
    live: &mut Option<futures::stream::BoxStream<'static, Logged>>,
) -> Option<Logged> {
    match live {
        Some(events) => events.next().await,
        None => std::future::pending().await,
    }
}

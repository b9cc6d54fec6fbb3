//! Ended tasks handed from a commit to the waiters of the same process. A waiter
//! (`wait.rs`) holds the task it submitted; the final summary and the result the commit
//! stored complete it, without the event bus's round trip and a read of the store. A
//! waiter in another process, or one that fell behind, hears the bus and reads the store
//! as before.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::domain::{Task, TaskResult, TaskSummary};

/// Ends a waiter may fall behind by before it is let go (it then reads the store).
const BEHIND: usize = 256;

/// The channel of this process's ends.
#[derive(Clone)]
pub(super) struct EndedHere {
    tx: broadcast::Sender<Arc<Ended>>,
}

/// A task's end as its commit stored it.
pub(super) struct Ended {
    summary: TaskSummary,
    result: TaskResult,
}

impl Default for EndedHere {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(BEHIND).0,
        }
    }
}

impl EndedHere {
    /// Tells this process's waiters of an end just stored (nothing is copied when none
    /// waits).
    pub(super) fn tell(&self, summary: &TaskSummary, result: &TaskResult) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let _ = self.tx.send(Arc::new(Ended {
            summary: summary.clone(),
            result: result.clone(),
        }));
    }

    /// The ends stored from now on.
    pub(super) fn listen(&self) -> broadcast::Receiver<Arc<Ended>> {
        self.tx.subscribe()
    }
}

impl Ended {
    /// `task` as it ended, when this is its end.
    pub(super) fn of(&self, task: &Task) -> Option<Task> {
        (self.summary.id == task.id && self.summary.status.is_finished()).then(|| Task {
            status: self.summary.status,
            started_at: self.summary.started_at,
            finished_at: self.summary.finished_at,
            result: Some(self.result.clone()),
            ..task.clone()
        })
    }
}

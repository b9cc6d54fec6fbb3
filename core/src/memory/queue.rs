use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::domain::TaskMessage;
use crate::error::{Error, Result};
use crate::ports::{Delivery, QueueConsumer, Settle, TaskQueue};

/// An in-process queue with the semantics of the real brokers: a message is delivered
/// until it is acked, a dropped delivery comes back, and after `max_deliveries` it is
/// moved to the dead letters instead.
#[derive(Clone)]
pub struct MemoryQueue {
    inner: Arc<Inner>,
}

/// A waiting message, the deliveries it had and how often it was deferred.
type Entry = (TaskMessage, u32, u32);

struct Inner {
    ready: Mutex<VecDeque<Entry>>,
    dead: Mutex<Vec<TaskMessage>>,
    notify: Notify,
    max_deliveries: u32,
    available: AtomicBool,
}

impl MemoryQueue {
    pub fn new(max_deliveries: u32) -> Self {
        Self {
            inner: Arc::new(Inner {
                ready: Mutex::new(VecDeque::new()),
                dead: Mutex::new(Vec::new()),
                notify: Notify::new(),
                max_deliveries: max_deliveries.max(1),
                available: AtomicBool::new(true),
            }),
        }
    }

    /// Messages waiting to be delivered.
    pub fn len(&self) -> usize {
        self.inner.ready.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dead_letters(&self) -> Vec<TaskMessage> {
        self.inner.dead.lock().clone()
    }

    /// Simulates a broker outage: publishing fails while unavailable.
    pub fn set_available(&self, available: bool) {
        self.inner.available.store(available, Ordering::SeqCst);
    }
}

impl Inner {
    fn push(&self, message: TaskMessage, deliveries: u32, deferrals: u32) {
        if deliveries >= self.max_deliveries {
            self.dead.lock().push(message);
        } else {
            self.ready
                .lock()
                .push_back((message, deliveries, deferrals));
            self.notify.notify_one();
        }
    }
}

#[async_trait]
impl TaskQueue for MemoryQueue {
    async fn publish(&self, message: &TaskMessage) -> Result<()> {
        if !self.inner.available.load(Ordering::SeqCst) {
            return Err(Error::Unavailable("in-process queue is closed".into()));
        }
        self.inner.push(message.clone(), 0, 0);
        Ok(())
    }
}

#[async_trait]
impl QueueConsumer for MemoryQueue {
    async fn receive(&self, wait: Duration) -> Result<Option<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Register interest before looking, so a publish in between is not missed.
            let notified = self.inner.notify.notified();
            if let Some((message, deliveries, deferrals)) = self.inner.ready.lock().pop_front() {
                let attempt = deliveries + 1;
                return Ok(Some(Delivery {
                    message: message.clone(),
                    attempt,
                    deferrals,
                    settle: Box::new(MemorySettle {
                        queue: self.inner.clone(),
                        pending: Mutex::new(Some((message, attempt, deferrals))),
                    }),
                }));
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(None);
            }
        }
    }
}

struct MemorySettle {
    queue: Arc<Inner>,
    /// `None` once settled; a delivery dropped while `Some` goes back to the queue.
    pending: Mutex<Option<Entry>>,
}

#[async_trait]
impl Settle for MemorySettle {
    async fn ack(self: Box<Self>) -> Result<()> {
        self.pending.lock().take();
        Ok(())
    }

    async fn retry(self: Box<Self>) -> Result<()> {
        if let Some((m, attempt, deferrals)) = self.pending.lock().take() {
            self.queue.push(m, attempt, deferrals);
        }
        Ok(())
    }

    async fn dead_letter(self: Box<Self>) -> Result<()> {
        if let Some((m, _, _)) = self.pending.lock().take() {
            self.queue.dead.lock().push(m);
        }
        Ok(())
    }

    async fn defer(self: Box<Self>, after: Duration) -> Result<()> {
        if let Some((m, attempt, deferrals)) = self.pending.lock().take() {
            let queue = self.queue.clone();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                queue.push(m, attempt.saturating_sub(1), deferrals.saturating_add(1));
            });
        }
        Ok(())
    }
}

impl Drop for MemorySettle {
    fn drop(&mut self) {
        if let Some((m, attempt, deferrals)) = self.pending.lock().take() {
            self.queue.push(m, attempt, deferrals);
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let q = super::MemoryQueue::new(3);
        crate::conformance::queue(&q, &q, 3).await;
    }
}

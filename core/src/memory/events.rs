//! Live events within one process (the embedded profile): a broadcast channel per task
//! that someone listens to.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::domain::{TaskEvent, TaskId};
use crate::error::Result;
use crate::ports::EventBus;

/// Events a slow listener may fall behind by before it misses some.
const BACKLOG: usize = 1024;

#[derive(Clone, Default)]
pub struct MemoryEventBus {
    channels: Arc<Mutex<HashMap<TaskId, broadcast::Sender<TaskEvent>>>>,
}

impl MemoryEventBus {
    /// The tasks someone listens to now.
    pub fn listened(&self) -> Vec<TaskId> {
        let mut channels = self.channels.lock();
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels.keys().copied().collect()
    }

    /// Tasks with a channel: each has had a listener since its last event.
    pub fn channels(&self) -> usize {
        let mut channels = self.channels.lock();
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels.len()
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, id: TaskId, events: &[TaskEvent]) -> Result<()> {
        let mut channels = self.channels.lock();
        if let Some(tx) = channels.get(&id) {
            if tx.receiver_count() == 0 {
                channels.remove(&id);
            } else {
                for event in events {
                    let _ = tx.send(event.clone());
                }
            }
        }
        Ok(())
    }

    async fn subscribe(&self, id: TaskId) -> Result<BoxStream<'static, TaskEvent>> {
        let rx = {
            let mut channels = self.channels.lock();
            channels.retain(|_, tx| tx.receiver_count() > 0);
            channels
                .entry(id)
                .or_insert_with(|| broadcast::channel(BACKLOG).0)
                .subscribe()
        };
        Ok(Box::pin(futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::TaskStatus;
    use futures::StreamExt;

    #[tokio::test]
    async fn conformance() {
        crate::conformance::event_bus(&MemoryEventBus::default()).await;
    }

    #[tokio::test]
    async fn a_listener_hears_what_is_published_after_it_came_and_leaves_nothing_behind() {
        let bus = MemoryEventBus::default();
        let id = TaskId::new_v4();
        let running = TaskEvent::Status {
            status: TaskStatus::Running,
        };
        bus.publish(id, std::slice::from_ref(&running))
            .await
            .unwrap();
        let mut events = bus.subscribe(id).await.unwrap();
        let chunk = TaskEvent::Stdout {
            data: crate::bytes::Bytes::new(b"hi\n".to_vec()),
        };
        bus.publish(id, std::slice::from_ref(&chunk)).await.unwrap();
        assert_eq!(events.next().await, Some(chunk));
        assert_eq!(bus.channels(), 1);
        drop(events);
        assert_eq!(bus.channels(), 0, "a listener gone leaves no channel");
        bus.publish(id, &[running]).await.unwrap();
        assert_eq!(bus.channels(), 0, "publishing to nobody makes none");
    }
}

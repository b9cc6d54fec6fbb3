//! Live events within one process (the embedded profile): each task's log while it runs,
//! and a broadcast channel per task that someone listens to. [`Fanout`] alone (channels
//! without a log) is how a process hands on events numbered elsewhere (the Redis bus).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::stream::BoxStream;
use parking_lot::Mutex;
use tokio::sync::broadcast;

use crate::domain::{TaskEvent, TaskId};
use crate::error::Result;
use crate::ports::{EventBus, LOG_BYTES, LOG_EVENTS, Logged, Subscription, ends_log, log_ttl};

/// Events a slow listener may fall behind by before it misses some.
const BACKLOG: usize = 1024;
/// Bytes all tasks' logs of one process keep at most; events beyond are heard live only.
const ALL_LOGS_BYTES: usize = 64 << 20;
/// How often ended and idle logs are looked for.
const SWEEP: Duration = Duration::from_secs(1);

/// A broadcast channel per task that someone listens to.
#[derive(Clone, Default)]
pub struct Fanout {
    channels: Arc<Mutex<HashMap<TaskId, broadcast::Sender<Logged>>>>,
}

impl Fanout {
    /// Hands the events to the task's listeners here, if any.
    pub fn send(&self, id: TaskId, events: &[Logged]) {
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
    }

    /// A receiver of the task's events handed on from now on (see [`live_after`]).
    pub fn listen(&self, id: TaskId) -> broadcast::Receiver<Logged> {
        let mut channels = self.channels.lock();
        channels.retain(|_, tx| tx.receiver_count() > 0);
        channels
            .entry(id)
            .or_insert_with(|| broadcast::channel(BACKLOG).0)
            .subscribe()
    }

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

/// A listener's live events: those numbered after `after`, and unnumbered ones.
pub fn live_after(rx: broadcast::Receiver<Logged>, after: u64) -> BoxStream<'static, Logged> {
    Box::pin(futures::stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(logged) if logged.seq.is_none_or(|seq| seq > after) => {
                    return Some((logged, rx));
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }))
}

/// One task's log.
struct Log {
    events: Vec<Logged>,
    /// The number the next event gets.
    next: u64,
    bytes: usize,
    until: Instant,
    /// A final status was logged: nothing later keeps the log longer.
    ended: bool,
}

#[derive(Default)]
struct Logs {
    tasks: HashMap<TaskId, Log>,
    bytes: usize,
    swept: Option<Instant>,
}

impl Logs {
    /// Numbers and keeps what fits; hands back every event, numbered when kept.
    fn append(&mut self, id: TaskId, events: &[TaskEvent], now: Instant) -> Vec<Logged> {
        self.sweep(now);
        let total = &mut self.bytes;
        let log = self.tasks.entry(id).or_insert_with(|| Log {
            events: Vec::new(),
            next: 1,
            bytes: 0,
            until: now,
            ended: false,
        });
        let until = now + log_ttl(events);
        log.until = if log.ended {
            log.until.min(until)
        } else {
            until
        };
        log.ended |= ends_log(events);
        events
            .iter()
            .map(|event| {
                let weight = event.weight();
                let fits = log.events.len() < LOG_EVENTS
                    && log.bytes + weight <= LOG_BYTES
                    && *total + weight <= ALL_LOGS_BYTES;
                if !fits {
                    return Logged {
                        seq: None,
                        event: event.clone(),
                    };
                }
                let logged = Logged {
                    seq: Some(log.next),
                    event: event.clone(),
                };
                log.next += 1;
                log.bytes += weight;
                *total += weight;
                log.events.push(logged.clone());
                logged
            })
            .collect()
    }

    fn sweep(&mut self, now: Instant) {
        if self.swept.is_some_and(|at| now < at + SWEEP) {
            return;
        }
        self.swept = Some(now);
        let total = &mut self.bytes;
        self.tasks.retain(|_, log| {
            let keep = log.until > now;
            if !keep {
                *total -= log.bytes;
            }
            keep
        });
    }
}

#[derive(Clone, Default)]
pub struct MemoryEventBus {
    fanout: Fanout,
    logs: Arc<Mutex<Logs>>,
}

impl MemoryEventBus {
    /// Tasks with a channel: each has had a listener since its last event.
    pub fn channels(&self) -> usize {
        self.fanout.channels()
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, id: TaskId, events: &[TaskEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        // Numbered and handed on under one lock: listeners hear them in the log's order.
        let mut logs = self.logs.lock();
        let logged = logs.append(id, events, Instant::now());
        self.fanout.send(id, &logged);
        Ok(())
    }

    async fn subscribe(&self, id: TaskId) -> Result<Subscription> {
        let logs = self.logs.lock();
        let rx = self.fanout.listen(id);
        let past = logs
            .tasks
            .get(&id)
            .map(|log| log.events.clone())
            .unwrap_or_default();
        drop(logs);
        // The log's events are all numbered, in order.
        let after = past.last().and_then(|l| l.seq).unwrap_or(0);
        Ok(Subscription {
            past,
            live: live_after(rx, after),
        })
    }

    async fn listen(&self, id: TaskId) -> Result<BoxStream<'static, Logged>> {
        Ok(live_after(self.fanout.listen(id), 0))
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
    async fn a_listener_gone_leaves_no_channel_and_nobody_listening_makes_none() {
        let bus = MemoryEventBus::default();
        let id = TaskId::new_v4();
        let mut events = bus.subscribe(id).await.unwrap().live;
        let chunk = TaskEvent::Stdout {
            data: crate::bytes::Bytes::new(b"hi\n".to_vec()),
        };
        bus.publish(id, std::slice::from_ref(&chunk)).await.unwrap();
        assert_eq!(events.next().await.map(|l| l.event), Some(chunk));
        assert_eq!(bus.channels(), 1);
        drop(events);
        assert_eq!(bus.channels(), 0, "a listener gone leaves no channel");
        let running = TaskEvent::Status {
            status: TaskStatus::Running,
        };
        bus.publish(id, &[running]).await.unwrap();
        assert_eq!(bus.channels(), 0, "publishing to nobody makes none");
    }

    #[test]
    fn a_log_is_bounded_and_goes_once_its_task_has_ended() {
        let mut logs = Logs::default();
        let (id, now) = (TaskId::new_v4(), Instant::now());
        let chunk = |n: usize| TaskEvent::Stdout {
            data: crate::bytes::Bytes::new(vec![b'x'; n]),
        };
        let big = chunk(LOG_BYTES / 2);
        let kept = logs.append(id, &[big.clone(), big.clone(), chunk(1)], now);
        let seqs: Vec<_> = kept.iter().map(|l| l.seq).collect();
        assert_eq!(
            seqs,
            [Some(1), None, Some(2)],
            "what does not fit is heard live, unnumbered; a smaller event still fits"
        );
        let ended = TaskEvent::Status {
            status: TaskStatus::Completed,
        };
        logs.append(id, &[ended], now);
        // Output that came after the end keeps the log no longer.
        logs.append(id, &[chunk(1)], now + SWEEP);
        logs.sweep(now + SWEEP + crate::ports::LOG_AFTER_END / 2);
        assert_eq!(logs.tasks.len(), 1, "kept a while after the end");
        logs.sweep(now + SWEEP * 2 + crate::ports::LOG_AFTER_END);
        assert!(logs.tasks.is_empty(), "and then gone");
        assert_eq!(logs.bytes, 0, "with its bytes");
        let other = TaskId::new_v4();
        logs.append(other, &[chunk(1)], now);
        logs.sweep(now + crate::ports::LOG_IDLE + SWEEP * 4);
        assert!(
            logs.tasks.is_empty(),
            "a task that never ends goes once idle"
        );
    }
}

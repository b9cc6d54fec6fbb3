//! Warm single-use sandboxes: containers created and started ahead of need (their agent
//! waiting for a job), handed out one per step, never reused, refilled in the background.
//!
//! A container's memory limit is set when it is created: gVisor's runsc cannot change it
//! afterwards (`docker update` fails there), and with runc an update costs an engine round
//! trip on the task's path. So the pool keeps one queue per memory size ("class"): the
//! default run limit and the compile limit always, and any other size for as long as
//! tasks ask for it. A take that finds its queue empty prepares a container on the spot,
//! as a pool of size 0 always does.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codebox_core::Error;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::engine::{Engine, Prepared};

/// Memory sizes kept warm at once, at most.
const MAX_CLASSES: usize = 8;
/// A class nobody asked for in this long is no longer refilled.
const CLASS_IDLE: Duration = Duration::from_secs(120);
/// A warm container unused this long is replaced.
const MAX_AGE: Duration = Duration::from_secs(60);
/// Containers prepared at once by the refill.
const PARALLEL: usize = 2;

#[derive(Default)]
struct Class {
    ready: VecDeque<Prepared>,
    making: usize,
    pinned: bool,
    wanted_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    classes: HashMap<u32, Class>,
    stopped: bool,
}

pub struct Pool {
    engine: Arc<dyn Engine>,
    /// Warm containers per class.
    size: usize,
    /// A warm container older than this is replaced (fresh ones keep the reaper's rules
    /// simple: no live sandbox container is older than a few minutes).
    max_age: Duration,
    state: Mutex<State>,
    wake: Notify,
}

impl Pool {
    pub fn new(engine: Arc<dyn Engine>, size: usize, pinned: &[u32]) -> Self {
        let max_age = MAX_AGE;
        let classes = pinned
            .iter()
            .map(|&m| {
                (
                    m,
                    Class {
                        pinned: true,
                        ..Class::default()
                    },
                )
            })
            .collect();
        Self {
            engine,
            size,
            max_age,
            state: Mutex::new(State {
                classes,
                stopped: false,
            }),
            wake: Notify::new(),
        }
    }

    /// A container with `memory_mb` of memory, warm when the pool has one.
    pub async fn take(&self, memory_mb: u32) -> Result<Prepared, Error> {
        let warm = {
            let mut state = self.state.lock();
            let room = state.classes.len() < MAX_CLASSES;
            let stopped = state.stopped;
            match state.classes.get_mut(&memory_mb) {
                Some(class) => {
                    class.wanted_at = Some(Instant::now());
                    let mut found = None;
                    while let Some(p) = class.ready.pop_front() {
                        if p.born.elapsed() < self.max_age {
                            found = Some(p);
                            break;
                        }
                        // Dropped: its guard removes it.
                    }
                    found
                }
                None if room && !stopped && self.size > 0 => {
                    state.classes.insert(
                        memory_mb,
                        Class {
                            wanted_at: Some(Instant::now()),
                            ..Class::default()
                        },
                    );
                    None
                }
                None => None,
            }
        };
        self.wake.notify_one();
        match warm {
            Some(p) => {
                metrics::counter!("codebox_sandbox_starts_total", "pool" => "warm").increment(1);
                Ok(p)
            }
            None => {
                metrics::counter!("codebox_sandbox_starts_total", "pool" => "cold").increment(1);
                self.engine.prepare(memory_mb).await
            }
        }
    }

    /// The class that most needs a container, counted as being made.
    fn next_to_make(&self) -> Option<u32> {
        let mut state = self.state.lock();
        if state.stopped {
            return None;
        }
        let making: usize = state.classes.values().map(|c| c.making).sum();
        if making >= PARALLEL {
            return None;
        }
        let now = Instant::now();
        let (size, max_age) = (self.size, self.max_age);
        let mut best: Option<(u32, usize)> = None;
        for (&memory, class) in state.classes.iter_mut() {
            class.ready.retain(|p| p.born.elapsed() < max_age);
            let wanted = class.pinned
                || class
                    .wanted_at
                    .is_some_and(|at| now.duration_since(at) < CLASS_IDLE);
            let have = class.ready.len() + class.making;
            if wanted && have < size && best.is_none_or(|(_, h)| have < h) {
                best = Some((memory, have));
            }
        }
        // Classes long unused, with nothing in them, are forgotten.
        state.classes.retain(|_, c| {
            c.pinned
                || c.making > 0
                || !c.ready.is_empty()
                || c.wanted_at
                    .is_some_and(|at| now.duration_since(at) < CLASS_IDLE)
        });
        let (memory, _) = best?;
        if let Some(class) = state.classes.get_mut(&memory) {
            class.making += 1;
        }
        Some(memory)
    }

    /// Puts a container made for `memory` in its queue; gives it back once the pool is
    /// stopped or the class gone.
    fn made(&self, memory: u32, prepared: Option<Prepared>) -> Option<Prepared> {
        let mut state = self.state.lock();
        let stopped = state.stopped;
        let Some(class) = state.classes.get_mut(&memory) else {
            return prepared;
        };
        class.making = class.making.saturating_sub(1);
        let p = prepared?;
        if stopped {
            return Some(p);
        }
        class.ready.push_back(p);
        None
    }

    /// Keeps the pool filled until `shutdown`, then removes every warm container.
    pub async fn refill_forever(self: Arc<Self>, shutdown: CancellationToken) {
        let mut making = JoinSet::new();
        let mut backoff = Duration::ZERO;
        while self.size > 0 && !shutdown.is_cancelled() {
            while let Some(memory) = self.next_to_make() {
                let pool = self.clone();
                making.spawn(async move {
                    let made = pool.engine.prepare(memory).await;
                    let ok = made.is_ok();
                    if let Err(e) = &made {
                        tracing::warn!(error = %e, "preparing a warm sandbox failed");
                    }
                    if let Some(unwanted) = pool.made(memory, made.ok()) {
                        unwanted.discard().await;
                    }
                    ok
                });
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.wake.notified() => {}
                done = making.join_next(), if !making.is_empty() => {
                    // The engine failing: do not spin on it.
                    backoff = match done {
                        Some(Ok(true)) => Duration::ZERO,
                        _ => (backoff * 2).clamp(Duration::from_millis(200), Duration::from_secs(5)),
                    };
                    if !backoff.is_zero() {
                        tokio::time::sleep(backoff).await;
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        self.drain(&mut making).await;
    }

    async fn drain(&self, making: &mut JoinSet<bool>) {
        let warm: Vec<Prepared> = {
            let mut state = self.state.lock();
            state.stopped = true;
            state
                .classes
                .values_mut()
                .flat_map(|c| c.ready.drain(..))
                .collect()
        };
        // Those being made are removed as they arrive (`made` drops them once stopped).
        while making.join_next().await.is_some() {}
        futures::future::join_all(warm.into_iter().map(Prepared::discard)).await;
        tracing::info!("the warm sandbox pool is drained");
    }
}

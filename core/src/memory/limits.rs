use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::ports::{RateDecision, RateLimiter, window_of};
use crate::time;

/// Counts in this process: right where one process is the whole API (embedded).
#[derive(Default)]
pub struct MemoryRateLimiter {
    /// key → (window index, count)
    counts: Mutex<HashMap<String, (i64, u32)>>,
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<RateDecision> {
        let (index, left) = window_of(time::now().timestamp_millis(), window);
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| Error::Unavailable("rate limiter".into()))?;
        // Past windows are dropped now and then, so idle keys do not pile up.
        if counts.len() > 10_000 {
            counts.retain(|_, (i, _)| *i == index);
        }
        let entry = counts.entry(key.to_owned()).or_insert((index, 0));
        if entry.0 != index {
            *entry = (index, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        Ok(RateDecision::of(u64::from(entry.1), limit, left))
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        crate::conformance::rate_limiter(&super::MemoryRateLimiter::default()).await;
    }
}

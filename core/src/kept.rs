//! Values one process keeps for a while instead of reading or computing them again: each
//! answered for `ttl` after it was put, at most `most` of them (full, the expired go, and
//! if none has, all). Used by the finished tasks' summaries and Judge0's statistics.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub struct Kept<K, V> {
    ttl: Duration,
    most: usize,
    values: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> Kept<K, V> {
    pub fn new(ttl: Duration, most: usize) -> Self {
        Self {
            ttl,
            most,
            values: Mutex::default(),
        }
    }

    /// The value of `key`, if it was put less than `ttl` ago.
    pub fn get(&self, key: &K) -> Option<V> {
        let values = self.values.lock();
        let (at, value) = values.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    pub fn put(&self, key: K, value: V) {
        let mut values = self.values.lock();
        if values.len() >= self.most {
            values.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if values.len() >= self.most {
                values.clear();
            }
        }
        values.insert(key, (Instant::now(), value));
    }

    pub fn forget(&self, key: &K) {
        self.values.lock().remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_kept_for_its_time_and_a_full_map_makes_room() {
        let kept = Kept::new(Duration::from_secs(60), 2);
        kept.put(1, "a");
        kept.put(2, "b");
        assert_eq!(kept.get(&1), Some("a"));
        kept.put(3, "c");
        assert_eq!(
            (kept.get(&1), kept.get(&3)),
            (None, Some("c")),
            "full: all went"
        );
        kept.forget(&3);
        assert_eq!(kept.get(&3), None);
        let brief = Kept::new(Duration::ZERO, 2);
        brief.put(1, "a");
        assert_eq!(brief.get(&1), None, "past its time");
    }
}

//! Values too big for what carries them — a DynamoDB item (400 KB), an SQS message
//! (256 KiB) — go to the blob store, and only their key travels: one rule for the
//! adapters' items and messages. (The worker's commit moves its outcome by key too, but
//! its rule is the whole body's size, so it puts the blob itself.)

use crate::error::{Error, Result};
use crate::ports::BlobStore;

/// A value as it travels: itself, or the key of the blob that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    Inline(String),
    Spilled(String),
}

/// `value` as a carrier taking `limit` bytes carries it: itself when it fits; otherwise
/// stored in `blobs` under `key()` (made only then) and carried by its key. Without a blob
/// store a value past the limit is refused (`TooLarge`, naming the `carrier`).
pub async fn carry(
    blobs: Option<&dyn BlobStore>,
    value: String,
    limit: usize,
    carrier: &str,
    key: impl FnOnce() -> String,
) -> Result<Carried> {
    if value.len() <= limit {
        return Ok(Carried::Inline(value));
    }
    let Some(blobs) = blobs else {
        return Err(Error::TooLarge(format!(
            "a value of {} bytes does not fit {carrier}",
            value.len()
        )));
    };
    let key = key();
    blobs.put(&key, value.into_bytes()).await?;
    Ok(Carried::Spilled(key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::memory::MemoryBlobStore;

    #[tokio::test]
    async fn a_value_past_the_limit_travels_by_its_key() {
        let blobs = MemoryBlobStore::default();
        let small = carry(
            Some(&blobs),
            "x".repeat(10),
            10,
            "a test",
            || unreachable!(),
        )
        .await
        .unwrap();
        assert_eq!(small, Carried::Inline("x".repeat(10)));
        let big = carry(Some(&blobs), "y".repeat(11), 10, "a test", || "k".into())
            .await
            .unwrap();
        assert_eq!(big, Carried::Spilled("k".into()));
        assert_eq!(blobs.get("k").await.unwrap(), Some(b"yyyyyyyyyyy".to_vec()));
        let refused = carry(None, "z".repeat(11), 10, "a test", || "k2".into())
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, Error::TooLarge(m) if m.contains("11 bytes") && m.contains("a test")),
            "{refused:?}"
        );
    }
}

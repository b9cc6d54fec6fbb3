//! Values too big for an item: a task's spec or result past [`SPILL_BYTES`] lives in the
//! blob store, and the item keeps its key.

use codebox_core::spill::{self, Carried};

use super::codec::*;
use super::*;

impl DynamoStore {
    /// A JSON value as an attribute, or a reference to a blob when it is too big.
    pub(super) async fn store_json(
        &self,
        value: String,
        key: impl FnOnce() -> String,
    ) -> Result<(&'static str, AttributeValue, Option<String>), Error> {
        match spill::carry(
            self.spill.as_deref(),
            value,
            SPILL_BYTES,
            "a DynamoDB item",
            key,
        )
        .await?
        {
            Carried::Inline(value) => Ok(("inline", s(value), None)),
            Carried::Spilled(key) => Ok(("ref", s(key.clone()), Some(key))),
        }
    }

    pub(super) async fn load_json<T: serde::de::DeserializeOwned>(
        &self,
        item: &Item,
        inline: &str,
        reference: &str,
    ) -> Result<Option<T>, Error> {
        let text = if let Some(v) = opt_s(item, inline) {
            v.as_bytes().to_vec()
        } else if let Some(key) = opt_s(item, reference) {
            let spill = self.spill.as_ref().ok_or_else(|| {
                Error::Backend(anyhow::anyhow!("{reference} is set but no blob store is"))
            })?;
            // Its blob expired (or was deleted): the task is gone, not broken.
            spill.get(key).await?.ok_or_else(|| {
                Error::Gone(format!(
                    "this task's stored {inline} has expired (blob {key} is gone)"
                ))
            })?
        } else {
            return Ok(None);
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| Error::Backend(anyhow::anyhow!("a stored {inline} does not decode: {e}")))
    }

    pub(super) async fn forget_blobs(&self, keys: impl IntoIterator<Item = String>) {
        if let Some(spill) = &self.spill {
            for key in keys {
                if let Err(e) = spill.delete(&key).await {
                    tracing::warn!(key, error = %e, "could not delete a spilled value");
                }
            }
        }
    }

    /// Whether the stored task refers to these blobs of a write of ours (so that write
    /// went through, e.g. before an SDK retry). False when there are none to tell by.
    pub(super) async fn holds_blobs(&self, id: TaskId, blobs: &[String]) -> Result<bool, Error> {
        let Some(first) = blobs.first() else {
            return Ok(false);
        };
        let item = self.task_item(id).await?;
        Ok(item.is_some_and(|i| {
            opt_s(&i, "spec_ref") == Some(first.as_str())
                || opt_s(&i, "result_ref") == Some(first.as_str())
        }))
    }
}

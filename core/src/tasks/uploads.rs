//! PNG uploads (`POST /task/upload`): where they are kept, how long, and how an image
//! task takes its owner's upload.

use uuid::Uuid;

use super::TaskService;
use crate::domain::UserId;
use crate::error::{Error, Result};
use crate::png;
use crate::time;

/// How long an upload URL of `POST /task/upload` works.
pub const UPLOAD_TTL: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Where uploads are kept: a day (on AWS by the bucket's lifecycle, elsewhere by
/// [`TaskService::expire_uploads`]); an image task copies its upload when it is submitted.
pub const UPLOADS: &str = "uploads/";
/// How long an upload is kept.
pub const UPLOAD_KEPT: chrono::Duration = chrono::Duration::days(1);

/// Where `owner`'s uploads are kept.
pub fn upload_prefix(owner: UserId) -> String {
    format!("{UPLOADS}{owner}/")
}

/// A new upload's key.
pub fn upload_key(owner: UserId) -> String {
    format!("{}{}.png", upload_prefix(owner), Uuid::new_v4())
}

impl TaskService {
    /// Deletes uploads written more than `kept` ago, where the blob store does not expire
    /// them by itself; how many.
    pub async fn expire_uploads(&self, kept: chrono::Duration) -> Result<usize> {
        let deleted = self
            .blobs
            .delete_older_than(UPLOADS, time::now() - kept)
            .await?
            .unwrap_or(0);
        if deleted > 0 {
            tracing::info!(deleted, "expired uploads deleted");
        }
        Ok(deleted)
    }

    /// Runs [`TaskService::expire_uploads`] for [`UPLOAD_KEPT`] now and every `every`
    /// until `stop`.
    pub async fn expire_uploads_forever(
        &self,
        every: std::time::Duration,
        stop: tokio_util::sync::CancellationToken,
    ) {
        crate::shutdown::every(every, crate::shutdown::First::Now, stop, || async {
            if let Err(e) = self.expire_uploads(UPLOAD_KEPT).await {
                tracing::warn!(error = %e, "deleting expired uploads failed; trying again later");
            }
        })
        .await;
    }

    /// The checked PNG `owner` uploaded at `key`.
    pub(super) async fn uploaded(&self, owner: UserId, key: &str) -> Result<Vec<u8>> {
        let name = key.strip_prefix(&upload_prefix(owner)).unwrap_or_default();
        let well_formed = name
            .strip_suffix(".png")
            .is_some_and(|id| Uuid::parse_str(id).is_ok());
        if !well_formed {
            return Err(Error::Invalid(
                "image_key is not one of your uploads (POST /task/upload gives one)".into(),
            ));
        }
        let bytes = match self.blobs.get_at_most(key, png::MAX_BYTES).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                return Err(Error::Invalid(
                    "nothing was uploaded at image_key, or the upload has expired".into(),
                ));
            }
            Err(Error::TooLarge(_)) => {
                return Err(Error::TooLarge(format!(
                    "the uploaded image is larger than {} bytes",
                    png::MAX_BYTES
                )));
            }
            Err(e) => return Err(e),
        };
        png::check(&bytes)?;
        Ok(bytes)
    }
}

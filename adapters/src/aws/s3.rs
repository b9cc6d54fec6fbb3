//! S3 blobs: image inputs and outputs, and values too big for a DynamoDB item or an SQS
//! message. Keys are made by codebox and checked like the filesystem store's.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use codebox_core::Error;
use codebox_core::ports::{BlobStore, PresignedPut};

use super::sdk_error;

#[derive(Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    /// Path-style addressing when an endpoint is configured (LocalStack and moto on a
    /// loopback port have no bucket subdomains).
    pub fn new(sdk: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        let config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(sdk.endpoint_url().is_some())
            .build();
        Self {
            client: Client::from_conf(config),
            bucket: bucket.into(),
        }
    }

    async fn upload(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<(), Error> {
        Self::check(key)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(content_type.map(str::to_owned))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| sdk_error("the blob store", e))?;
        Ok(())
    }

    /// The blob at `key` (the `range` of it only, when given), `None` when there is none.
    async fn fetch(&self, key: &str, range: Option<String>) -> Result<Option<Vec<u8>>, Error> {
        Self::check(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            // An empty blob has no byte 0 to start a range at.
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                return Ok(Some(Vec::new()));
            }
            Err(e) => return Err(sdk_error("the blob store", e)),
        };
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| Error::Unavailable(format!("the blob store: {e}")))?;
        Ok(Some(bytes.into_bytes().to_vec()))
    }

    fn presigning(ttl: std::time::Duration) -> Result<PresigningConfig, Error> {
        PresigningConfig::expires_in(ttl)
            .map_err(|e| Error::Invalid(format!("a presigned URL's lifetime: {e}")))
    }

    fn check(key: &str) -> Result<(), Error> {
        if crate::fs::valid_key(key) {
            Ok(())
        } else {
            Err(Error::Invalid(format!("invalid blob key {key:?}")))
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), Error> {
        self.upload(key, bytes, None).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        self.fetch(key, None).await
    }

    async fn put_typed(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), Error> {
        self.upload(key, bytes, Some(content_type)).await
    }

    async fn presigned_get(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<String>, Error> {
        Self::check(key)?;
        let how = Self::presigning(ttl)?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(how)
            .await
            .map_err(|e| sdk_error("the blob store", e))?;
        Ok(Some(request.uri().to_owned()))
    }

    async fn presigned_put(
        &self,
        key: &str,
        ttl: std::time::Duration,
        content_type: &str,
        length: u64,
    ) -> Result<Option<PresignedPut>, Error> {
        Self::check(key)?;
        let how = Self::presigning(ttl)?;
        let length = i64::try_from(length)
            .map_err(|_| Error::Invalid(format!("an upload of {length} bytes")))?;
        // The length and type are signed: S3 refuses an upload of any other size.
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .content_length(length)
            .presigned(how)
            .await
            .map_err(|e| sdk_error("the blob store", e))?;
        Ok(Some(PresignedPut {
            url: request.uri().to_owned(),
            headers: request
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }))
    }

    async fn get_at_most(&self, key: &str, max: usize) -> Result<Option<Vec<u8>>, Error> {
        // One byte past the limit tells a blob over it from one at it, whatever its size.
        let bytes = self.fetch(key, Some(format!("bytes=0-{max}"))).await?;
        match bytes {
            Some(b) if b.len() > max => Err(codebox_core::ports::too_large(max)),
            other => Ok(other),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), Error> {
        Self::check(key)?;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| sdk_error("the blob store", e))?;
        Ok(())
    }
}

//! S3 blobs: image inputs and outputs, and values too big for a DynamoDB item or an SQS
//! message. Keys are made by codebox and checked like the filesystem store's.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use codebox_core::Error;
use codebox_core::ports::BlobStore;

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
        Self::check(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
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

    async fn put_typed(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), Error> {
        self.upload(key, bytes, Some(content_type)).await
    }

    async fn presigned_get(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<String>, Error> {
        Self::check(key)?;
        let how = aws_sdk_s3::presigning::PresigningConfig::expires_in(ttl)
            .map_err(|e| Error::Invalid(format!("a presigned URL's lifetime: {e}")))?;
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

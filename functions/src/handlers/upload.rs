//! `POST /task/upload`: a URL to upload a PNG to before submitting an image task with
//! its `image_key`, so that no image has to travel inside a request (on AWS a Lambda
//! invocation carries 6 MB at most). Where the blob store signs URLs (S3) the upload goes
//! straight to it; elsewhere to `PUT /task/upload/{grant}`, served here.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use codebox_core::png;
use codebox_core::tasks::{UPLOAD_TTL, upload_key};
use codebox_core::time::{self, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::extract::{AuthUser, JsonObject, Path};
use crate::problem::{ApiError, ApiResult, Problem};
use crate::state::AppState;

/// The one type of upload taken.
pub const PNG: &str = "image/png";

/// The body of `POST /task/upload`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The PNG's exact size in bytes (1 to 10 MiB): the upload must be exactly this long.
    #[schema(value_type = u64, required = true, minimum = 1, maximum = 10485760, example = 5242880)]
    #[serde(default, deserialize_with = "codebox_core::tasks::whole_number")]
    pub size: Option<u32>,
}

/// Where and how to upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadGranted {
    /// What to send as `image_key` in `POST /task` once the upload is done.
    #[schema(example = "uploads/8c1c…/1f0e….png")]
    pub image_key: String,
    /// Send the PNG's bytes as the body of a `PUT` to this URL, with `headers`, and no
    /// `Authorization` header: the URL itself is the permission.
    pub upload_url: String,
    /// Always `PUT`.
    #[schema(example = "PUT")]
    pub method: String,
    /// Headers the upload must carry exactly as given (they are signed).
    pub headers: BTreeMap<String, String>,
    /// When `upload_url` stops working. The upload itself is kept for a day.
    #[serde(with = "time::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Timestamp,
}

#[utoipa::path(post, path = "/task/upload", tag = "tasks", request_body = UploadRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Upload the PNG to `upload_url`, then submit an image task with `image_key`", body = UploadGranted),
        (status = 400, description = "No size, or not 1 byte to 10 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not logged in", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over your upload rate; see `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait")))))]
#[tracing::instrument(skip_all, fields(user_id = %me.user_id))]
pub async fn grant(
    State(state): State<AppState>,
    AuthUser(me): AuthUser,
    headers: HeaderMap,
    JsonObject(body): JsonObject<UploadRequest>,
) -> ApiResult<Response> {
    let size = u64::from(
        body.size
            .ok_or_else(|| ApiError::bad_request("size is required: the PNG's bytes"))?,
    );
    if !(1..=png::MAX_BYTES as u64).contains(&size) {
        return Err(ApiError::bad_request(format!(
            "size must be 1 to {} bytes (an image's limit), not {size}",
            png::MAX_BYTES
        )));
    }
    state.limits.upload(me.user_id).await?;
    let key = upload_key(me.user_id);
    let expires_at = time::now()
        + chrono::Duration::from_std(UPLOAD_TTL)
            .map_err(|e| codebox_core::Error::Backend(e.into()))?;
    let store = state.tasks.blobs();
    let (upload_url, signed) = match store.presigned_put(&key, UPLOAD_TTL, PNG, size).await? {
        Some(presigned) => (presigned.url, presigned.headers),
        None => {
            let grant = state.accounts.grant_upload(&key, size, expires_at)?;
            let base = match &state.public_url {
                Some(url) => url.clone(),
                None => origin(&headers),
            };
            let url = format!("{base}/task/upload/{grant}");
            let signed = vec![
                (header::CONTENT_TYPE.to_string(), PNG.to_owned()),
                (header::CONTENT_LENGTH.to_string(), size.to_string()),
            ];
            (url, signed)
        }
    };
    let granted = UploadGranted {
        image_key: key,
        upload_url,
        method: "PUT".into(),
        headers: signed
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        expires_at,
    };
    Ok((StatusCode::CREATED, axum::Json(granted)).into_response())
}

/// `scheme://host` the client called, as far as the request tells (a proxy in front
/// sets `X-Forwarded-Proto`); `PUBLIC_URL` says it for sure.
fn origin(headers: &HeaderMap) -> String {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST.as_str()).unwrap_or("localhost");
    let scheme = match text("x-forwarded-proto") {
        Some("https") => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

#[utoipa::path(put, path = "/task/upload/{grant}", tag = "tasks",
    params(("grant" = String, Path, description = "The grant in an `upload_url` of `POST /task/upload`")),
    request_body(content = Vec<u8>, content_type = "image/png", description = "The PNG, exactly `size` bytes"),
    responses(
        (status = 204, description = "Uploaded; submit the image task with its `image_key`"),
        (status = 400, description = "Not the size asked for, or not a PNG", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a valid upload URL, or it has expired", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Over 10 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not sent as `image/png`", body = Problem, content_type = "application/problem+json")))]
#[tracing::instrument(skip_all)]
pub async fn upload(
    State(state): State<AppState>,
    Path(grant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // The grant before the body: nothing is read for a URL that is not one.
    let grant = state.accounts.check_upload(&grant)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != PNG {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("an upload is sent as {PNG}"),
        ));
    }
    let body = axum::body::to_bytes(body, png::MAX_BYTES)
        .await
        .map_err(|_| {
            codebox_core::Error::TooLarge(format!(
                "an upload is at most {} bytes (or it was cut off)",
                png::MAX_BYTES
            ))
        })?;
    if body.len() as u64 != grant.len {
        return Err(ApiError::bad_request(format!(
            "this upload URL takes exactly {} bytes, not {}",
            grant.len,
            body.len()
        )));
    }
    png::check(&body)?;
    state
        .tasks
        .blobs()
        .put_typed(&grant.key, Vec::from(body), PNG)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub fn router(state: AppState) -> Router {
    super::finish(
        Router::new()
            .route("/task/upload", post(grant))
            .route("/task/upload/{grant}", put(upload))
            .with_state(state),
    )
}

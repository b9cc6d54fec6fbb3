//! Hosting one handler as an AWS Lambda function behind API Gateway (HTTP API, v2 events).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use codebox_core::domain::TaskMessage;
use codebox_core::ports::{BlobStore, TaskQueue};

/// The largest response body a Lambda function returns itself: Lambda carries 6 MB, and
/// a binary body (a PNG) travels base64-encoded, a third bigger.
pub const LAMBDA_BODY_LIMIT: usize = 4 * 1024 * 1024;
/// How long the URL of an offloaded response works.
pub const OFFLOADED_FOR: Duration = Duration::from_secs(300);

/// A successful response bigger than [`LAMBDA_BODY_LIMIT`] (a judged task's outputs, a big
/// image) is put in the blob store and answered `303 See Other` with a short-lived
/// presigned URL of it, served with the same content type: every result the API stores
/// can be read through Lambda. Where the store has no such URLs it is answered as it is.
pub async fn offload(
    State(blobs): State<Arc<dyn BlobStore>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if !response.status().is_success()
        || axum::body::HttpBody::size_hint(response.body())
            .upper()
            .is_some_and(|n| n <= LAMBDA_BODY_LIMIT as u64)
    {
        return response;
    }
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::error!(error = %e, "reading a response body failed");
            return crate::problem::ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            )
            .into_response();
        }
    };
    if bytes.len() <= LAMBDA_BODY_LIMIT {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let key = format!("responses/{}", uuid::Uuid::new_v4());
    let size = bytes.len();
    let url = match blobs.put_typed(&key, bytes.to_vec(), &content_type).await {
        Ok(()) => blobs.presigned_get(&key, OFFLOADED_FOR).await,
        Err(e) => Err(e),
    };
    match url {
        Ok(Some(url)) => match HeaderValue::from_str(&url) {
            Ok(location) => {
                tracing::info!(size, key, "response offloaded to the blob store");
                let mut res = StatusCode::SEE_OTHER.into_response();
                res.headers_mut().insert(header::LOCATION, location);
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                res
            }
            Err(_) => crate::problem::ApiError::from(codebox_core::Error::Backend(
                anyhow::anyhow!("a presigned URL is not a header value"),
            ))
            .into_response(),
        },
        Ok(None) => Response::from_parts(parts, Body::from(bytes)),
        Err(e) => crate::problem::ApiError::from(e).into_response(),
    }
}

/// What a Lambda function serves: one handler's router with the API's fallbacks for
/// unknown routes and methods.
pub fn app(router: Router) -> Router {
    router
        .fallback(crate::problem::not_found_fallback)
        .method_not_allowed_fallback(crate::problem::method_not_allowed_fallback)
}

/// Serves `router` as this Lambda function, with CORS for `cors_origins` and big
/// responses offloaded to `large_responses`.
pub async fn serve(
    router: Router,
    cors_origins: &[String],
    large_responses: Option<Arc<dyn BlobStore>>,
) -> Result<(), lambda_http::Error> {
    let app = with_offload(app(router), large_responses);
    match crate::cors(cors_origins) {
        Some(layer) => lambda_http::run(app.layer(layer)).await,
        None => lambda_http::run(app).await,
    }
}

/// `router` with [`offload`] in front, where there is a store to offload to.
pub fn with_offload(router: Router, large_responses: Option<Arc<dyn BlobStore>>) -> Router {
    match large_responses {
        Some(blobs) => router.layer(axum::middleware::from_fn_with_state(blobs, offload)),
        None => router,
    }
}

/// The queue of a Lambda function that never queues a task (built with `QUEUES` false,
/// [`crate::Backends::from_config`]): it links no queue client, and a publish it was never
/// meant to make fails as the broker being away would, so nothing is taken as queued.
pub struct NoQueue;

#[async_trait::async_trait]
impl TaskQueue for NoQueue {
    async fn publish(&self, message: &TaskMessage) -> codebox_core::error::Result<()> {
        Err(codebox_core::Error::Unavailable(format!(
            "this function queues no task (task {})",
            message.task_id
        )))
    }
}

/// The `main` of a Lambda binary serving the handler module `$handler`: tracing, state
/// built once from the environment (a bad setting stops it with one line), then serve.
/// `lambda_main!(create_task, queues)` for a function that queues tasks, and
/// `lambda_main!(commit, workers)` for the one that serves workers (it stores tasks' ends
/// and calls their webhooks); without either the function links no queue client and no
/// webhook client.
#[macro_export]
macro_rules! lambda_main {
    ($handler:ident) => {
        $crate::lambda_main!(@serve $handler, false, false);
    };
    ($handler:ident, queues) => {
        $crate::lambda_main!(@serve $handler, true, false);
    };
    ($handler:ident, workers) => {
        $crate::lambda_main!(@serve $handler, false, true);
    };
    (@serve $handler:ident, $queues:literal, $workers:literal) => {
        #[tokio::main]
        async fn main() -> Result<(), lambda_http::Error> {
            $crate::telemetry::init_tracing();
            let state = match $crate::AppState::for_function::<$queues, $workers>().await {
                Ok(state) => state,
                Err(e) => {
                    eprintln!("codebox: {e}");
                    std::process::exit(2);
                }
            };
            let cors = state.cors_origins.clone();
            let offload = state.large_responses.clone();
            $crate::lambda::serve($crate::handlers::$handler::router(state), &cors, offload).await
        }
    };
}

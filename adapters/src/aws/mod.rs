//! AWS backends: DynamoDB (users, sessions, tasks, idempotency keys), SQS (the task queue
//! and its dead letters; the webhook queue), S3 (blobs) and Secrets Manager (the API's secrets at start).
//!
//! One SDK configuration per process, loaded once from the usual sources (environment,
//! ECS task role, Lambda role); `AWS_ENDPOINT_URL` points every client at LocalStack or
//! moto. The HTTP client is the SDK's hyper client on rustls with *ring* (no OpenSSL, no
//! aws-lc build).

pub use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use codebox_core::Error;
use tokio::sync::OnceCell;

#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "secrets")]
pub mod secrets;
#[cfg(feature = "sqs")]
pub mod sqs;
#[cfg(feature = "sqs")]
pub mod webhook_queue;

static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();

/// The SDK's hyper client on rustls with *ring*.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

fn loader() -> aws_config::ConfigLoader {
    let loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client());
    // A bound on every call, retries included, where the caller has a deadline of its
    // own (a function's timeout): a call that hangs fails in time for the function to
    // answer, instead of the function being killed half-way.
    match operation_timeout() {
        Some(limit) => loader.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(limit)
                .build(),
        ),
        None => loader,
    }
}

/// `AWS_OPERATION_TIMEOUT_SECS` (1–900; unset: the SDK's defaults, no overall bound).
fn operation_timeout() -> Option<std::time::Duration> {
    operation_timeout_in(codebox_core::config::var)
}

fn operation_timeout_in(var: impl Fn(&str) -> Option<String>) -> Option<std::time::Duration> {
    let secs: u64 = var("AWS_OPERATION_TIMEOUT_SECS")?
        .trim()
        .parse()
        .ok()
        .filter(|s| (1..=900).contains(s))
        .or_else(|| {
            tracing::warn!("AWS_OPERATION_TIMEOUT_SECS is not 1–900 seconds; ignored");
            None
        })?;
    Some(std::time::Duration::from_secs(secs))
}

/// The process's SDK configuration from the environment, loaded on first use: every
/// client of the process is made from it. Built for Lambda (feature
/// `lambda-environment`), the environment Lambda sets is all it reads
/// ([`environment_config`]); otherwise the SDK's default chain.
pub async fn sdk_config() -> anyhow::Result<&'static SdkConfig> {
    #[cfg(feature = "lambda-environment")]
    let config = CONFIG
        .get_or_try_init(|| async { environment_config(|name| std::env::var(name).ok()) })
        .await?;
    #[cfg(not(feature = "lambda-environment"))]
    let config = CONFIG.get_or_init(|| loader().load()).await;
    Ok(config)
}

/// The SDK configuration from the variables AWS Lambda sets, and nothing else: the
/// credentials of the function's role (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`), its region (`AWS_REGION`), `AWS_ENDPOINT_URL` for a stand-in,
/// and `AWS_OPERATION_TIMEOUT_SECS`; not per-service endpoint URLs, retry or
/// FIPS/dual-stack variables, or a container credentials URI, none of which Lambda sets.
/// The SDK's default chain — profile files, SSO, web identity through STS, the ECS and
/// instance metadata endpoints — is never referenced, so a function built with it links
/// none of that (sleeping, the time source and the identity cache are the clients' own
/// defaults).
pub fn environment_config(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<SdkConfig> {
    let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
    let required = |name: &str| {
        var(name).ok_or_else(|| {
            anyhow::anyhow!(
                "{name} is not set: a function built for Lambda takes its AWS credentials and region from the environment Lambda gives it"
            )
        })
    };
    let credentials = aws_credential_types::Credentials::new(
        required("AWS_ACCESS_KEY_ID")?,
        required("AWS_SECRET_ACCESS_KEY")?,
        var("AWS_SESSION_TOKEN"),
        None,
        "environment",
    );
    let region = var("AWS_REGION")
        .or_else(|| var("AWS_DEFAULT_REGION"))
        .ok_or_else(|| anyhow::anyhow!("AWS_REGION is not set: a function built for Lambda takes its AWS credentials and region from the environment Lambda gives it"))?;
    let mut builder = SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        // Standard retries, whatever a later behaviour version's default.
        .retry_config(aws_config::retry::RetryConfig::standard())
        .http_client(https_client())
        .region(aws_config::Region::new(region))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        );
    if let Some(limit) = operation_timeout_in(var) {
        builder = builder.timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .operation_timeout(limit)
                .build(),
        );
    }
    if let Some(endpoint) = var("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(builder.build())
}

/// A configuration for a stand-in on `endpoint` (moto, LocalStack) with its dummy
/// credentials and region, whatever the environment says: for tests and tools.
pub async fn stand_in_config(endpoint: &str) -> SdkConfig {
    loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "stand-in",
        ))
        .load()
        .await
}

/// An SDK failure as a domain error: the service cannot be reached, is throttling or is
/// failing → `Unavailable` (503, retry later); anything else is a backend error whose
/// text goes to the logs only.
pub(crate) fn sdk_error<E, R>(what: &'static str, e: SdkError<E, R>) -> Error
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let transient = match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(s) => matches!(
            s.err().code(),
            Some(
                "ThrottlingException"
                    | "Throttling"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "RequestThrottled"
                    | "KmsThrottled"
                    | "TransactionConflictException"
                    | "TransactionInProgressException"
                    | "ServiceUnavailableException"
                    | "InternalServerErrorException"
                    | "InternalServerError"
                    | "ServiceUnavailable"
                    | "SlowDown"
                    | "InternalError"
            )
        ),
        _ => false,
    };
    let detail = DisplayErrorContext(&e).to_string();
    if transient {
        tracing::warn!(error = %detail, "{what}");
        Error::Unavailable(what.into())
    } else {
        Error::Backend(anyhow::anyhow!("{what}: {detail}"))
    }
}

/// Values bigger than this are kept in the blob store and referenced by key: a DynamoDB
/// item holds at most 400 KB and an SQS message 256 KiB, while a task may carry 1 MiB of
/// stdin and return 1 MiB per output stream.
pub const SPILL_BYTES: usize = 64 * 1024;

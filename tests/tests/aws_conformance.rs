//! The core conformance suites against the AWS adapters (DynamoDB, SQS, S3), on moto's
//! server with resources made by the LocalStack init hook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use codebox_adapters::aws::dynamodb::{DynamoStore, DynamoTables};
use codebox_adapters::aws::s3::S3BlobStore;
use codebox_adapters::aws::sqs::{SqsConfig, SqsQueue};
use codebox_core::conformance;
use codebox_core::ports::{BlobStore, SessionStore};
use codebox_tests::aws::StandIn;

async fn store(aws: &StandIn) -> DynamoStore {
    let sdk = aws.sdk().await;
    let blobs: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(&sdk, aws.var("BLOB_BUCKET")));
    DynamoStore::new(
        &sdk,
        DynamoTables {
            users: aws.var("USERS_TABLE"),
            sessions: aws.var("SESSIONS_TABLE"),
            tasks: aws.var("TASKS_TABLE"),
            idempotency: aws.var("IDEMPOTENCY_TABLE"),
        },
        Some(blobs),
    )
}

#[tokio::test]
async fn dynamodb_user_store() {
    let aws = StandIn::provision(60, 3);
    conformance::user_store(&store(&aws).await).await;
}

#[tokio::test]
async fn dynamodb_session_store() {
    let aws = StandIn::provision(60, 3);
    let store = store(&aws).await;
    conformance::session_store(&store).await;
    store.ping().await.unwrap();
}

#[tokio::test]
async fn dynamodb_task_store() {
    let aws = StandIn::provision(60, 3);
    conformance::task_store(&store(&aws).await).await;
}

#[tokio::test]
async fn dynamodb_rate_limiter() {
    let aws = StandIn::provision(60, 3);
    let limiter = codebox_adapters::aws::dynamodb::DynamoRateLimiter::new(
        &aws.sdk().await,
        aws.var("LIMITS_TABLE"),
    );
    conformance::rate_limiter(&limiter).await;
}

#[tokio::test]
async fn s3_blob_store() {
    let aws = StandIn::provision(60, 3);
    let store = S3BlobStore::new(&aws.sdk().await, aws.var("BLOB_BUCKET"));
    conformance::blob_store(&store).await;
    for bad in ["../etc/passwd", "/abs", "a/../b", "", "a//b", "sp ace"] {
        assert!(
            store.put(bad, vec![1]).await.is_err(),
            "{bad:?} must be refused"
        );
    }
}

#[tokio::test]
async fn sqs_queue() {
    // A short visibility timeout, so the suite shows that extending a delivery matters.
    let aws = StandIn::provision(2, 3);
    let sdk = aws.sdk().await;
    let blobs: Arc<dyn BlobStore> = Arc::new(S3BlobStore::new(&sdk, aws.var("BLOB_BUCKET")));
    let queue = SqsQueue::new(
        &sdk,
        SqsConfig {
            queue_url: aws.var("TASK_QUEUE_URL"),
            dead_letter_url: Some(aws.var("TASK_DLQ_URL")),
        },
        Some(blobs),
    );
    conformance::queue(&queue, &queue, 3).await;
    let dead = queue.dead_letters().expect("a dead-letter queue");
    assert_eq!(
        dead.depth().await.unwrap(),
        2,
        "two messages were dead-lettered"
    );
}

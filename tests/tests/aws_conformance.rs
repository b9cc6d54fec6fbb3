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
    DynamoStore::new(&sdk, tables(aws), Some(blobs))
}

fn tables(aws: &StandIn) -> DynamoTables {
    DynamoTables {
        users: aws.var("USERS_TABLE"),
        sessions: aws.var("SESSIONS_TABLE"),
        tasks: aws.var("TASKS_TABLE"),
        idempotency: aws.var("IDEMPOTENCY_TABLE"),
    }
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

/// The outbox index's partitions: tasks spread over them (no one partition value takes
/// every task's index writes), the sweeper reads them all, oldest first across them, and
/// a task stored before the sharding (in the one partition `pending`) is still swept.
#[tokio::test]
async fn dynamodb_outbox_spreads_over_partitions() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use codebox_adapters::aws::dynamodb::OUTBOX_SHARDS;
    use codebox_core::domain::{CodeSpec, Task, TaskSpec};
    use codebox_core::ports::TaskStore;
    let aws = StandIn::provision(60, 3);
    let sdk = aws.sdk().await;
    let dynamo = store(&aws).await;
    let store: &dyn TaskStore = &dynamo;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = aws.var("TASKS_TABLE");
    let since = codebox_core::time::now() - chrono::Duration::hours(24);
    let mut tasks = Vec::new();
    for i in 0..48i64 {
        let mut task = Task::new(
            uuid::Uuid::new_v4(),
            TaskSpec::Code(CodeSpec {
                language: "python".into(),
                code: format!("print({i})"),
                ..CodeSpec::default()
            }),
        );
        task.created_at = chrono::DateTime::from_timestamp_millis(1_000_000_000_000 + i * 1000)
            .expect("a time in 2001");
        store.create(&task, None, since).await.unwrap();
        tasks.push(task);
    }
    let mut partitions = std::collections::BTreeSet::new();
    for task in &tasks {
        let item = ddb
            .get_item()
            .table_name(&table)
            .key("id", AttributeValue::S(task.id.to_string()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap();
        partitions.insert(item["outbox"].as_s().unwrap().clone());
    }
    assert!(
        partitions.len() >= 8 && partitions.len() <= OUTBOX_SHARDS as usize,
        "48 tasks over {OUTBOX_SHARDS} partitions: {partitions:?}"
    );
    // The oldest first, whichever partition holds them.
    let after_all = tasks[47].created_at + chrono::Duration::seconds(1);
    let oldest = store.unpublished(after_all, 5).await.unwrap();
    let ids = |tasks: &[Task]| tasks.iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids(&oldest), ids(&tasks[..5]));
    assert_eq!(store.unpublished(after_all, 100).await.unwrap().len(), 48);
    // Stored before the sharding: the single partition is swept too.
    ddb.update_item()
        .table_name(&table)
        .key("id", AttributeValue::S(tasks[0].id.to_string()))
        .update_expression("SET outbox = :p")
        .expression_attribute_values(":p", AttributeValue::S("pending".into()))
        .send()
        .await
        .unwrap();
    let oldest = store.unpublished(after_all, 1).await.unwrap();
    assert_eq!(ids(&oldest), vec![tasks[0].id]);
    for task in &tasks {
        store.mark_published(task.id).await.unwrap();
    }
    assert!(store.unpublished(after_all, 100).await.unwrap().is_empty());
}

/// One retention for tasks and blobs: a task's item expires a day before its blobs and is
/// gone for every read from then on (TTL deletion is lazy); a task whose blob is gone
/// anyway answers `Gone` (410), and the list around both still loads (it reads the
/// index's summary projection, never a blob).
#[tokio::test]
async fn dynamodb_tasks_expire_with_their_blobs() {
    use aws_sdk_dynamodb::types::AttributeValue;
    use codebox_core::domain::{CodeSpec, Task, TaskSpec};
    use codebox_core::ports::TaskStore;
    let aws = StandIn::provision(60, 3);
    let sdk = aws.sdk().await;
    let dynamo = store(&aws).await.with_retention(Some(2));
    let store: &dyn TaskStore = &dynamo;
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = aws.var("TASKS_TABLE");
    let owner = uuid::Uuid::new_v4();
    let task = |code: String| {
        Task::new(
            owner,
            TaskSpec::Code(CodeSpec {
                language: "python".into(),
                code,
                ..CodeSpec::default()
            }),
        )
    };
    let since = codebox_core::time::now() - chrono::Duration::hours(24);
    let kept = task("print(1)".into());
    // Its spec is spilled to a blob: bigger than an item holds.
    let blobless = task("#".repeat(codebox_adapters::aws::SPILL_BYTES + 1));
    let expired = task("print(3)".into());
    for t in [&kept, &blobless, &expired] {
        store.create(t, None, since).await.unwrap();
    }
    let item = |id: uuid::Uuid| {
        let ddb = ddb.clone();
        let table = table.clone();
        async move {
            ddb.get_item()
                .table_name(table)
                .key("id", AttributeValue::S(id.to_string()))
                .send()
                .await
                .unwrap()
                .item
                .unwrap()
        }
    };
    // Two days' retention: the item expires after one (a day before the blobs).
    let at: i64 = item(kept.id).await["expires_at_epoch"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    let want = (kept.created_at + chrono::Duration::days(1)).timestamp();
    assert!((at - want).abs() <= 1, "expires_at_epoch {at}, want {want}");

    let key = item(blobless.id).await["spec_ref"].as_s().unwrap().clone();
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    )
    .delete_object()
    .bucket(aws.var("BLOB_BUCKET"))
    .key(&key)
    .send()
    .await
    .unwrap();
    ddb.update_item()
        .table_name(&table)
        .key("id", AttributeValue::S(expired.id.to_string()))
        .update_expression("SET expires_at_epoch = :past")
        .expression_attribute_values(
            ":past",
            AttributeValue::N((codebox_core::time::now().timestamp() - 1).to_string()),
        )
        .send()
        .await
        .unwrap();

    assert_eq!(store.get(kept.id).await.unwrap(), Some(kept.clone()));
    let gone = store.get(blobless.id).await;
    assert!(
        matches!(gone, Err(codebox_core::Error::Gone(_))),
        "{gone:?}"
    );
    assert_eq!(
        store.summary(blobless.id).await.unwrap(),
        Some(blobless.summary())
    );
    assert_eq!(store.get(expired.id).await.unwrap(), None);
    assert_eq!(store.summary(expired.id).await.unwrap(), None);
    let page = store.list_by_owner(owner, 10, None).await.unwrap();
    let ids: Vec<_> = page.items.iter().map(|t| t.id).collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&kept.id) && ids.contains(&blobless.id) && !ids.contains(&expired.id));
}

/// Counts the blob reads of the store it wraps.
struct CountingBlobs {
    inner: S3BlobStore,
    gets: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl BlobStore for CountingBlobs {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), codebox_core::Error> {
        self.inner.put(key, bytes).await
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, codebox_core::Error> {
        self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<(), codebox_core::Error> {
        self.inner.delete(key).await
    }
}

/// A commit reads the task's summary and makes one conditional write: no spec or result
/// is read back from the blob store, however big (both spilled here).
#[tokio::test]
async fn a_commit_reads_no_blob() {
    use codebox_core::domain::{
        CodeResult, CodeSpec, Commit, Task, TaskResult, TaskSpec, TaskStatus, Verdict,
    };
    use codebox_core::ports::{TaskControl, TaskStore};
    use std::sync::atomic::Ordering;
    let aws = StandIn::provision(60, 3);
    let sdk = aws.sdk().await;
    let blobs = Arc::new(CountingBlobs {
        inner: S3BlobStore::new(&sdk, aws.var("BLOB_BUCKET")),
        gets: Default::default(),
    });
    let store = Arc::new(DynamoStore::new(
        &sdk,
        tables(&aws),
        Some(blobs.clone() as Arc<dyn BlobStore>),
    ));
    let service = codebox_core::tasks::TaskService::new(
        store.clone(),
        blobs.clone(),
        Arc::new(codebox_core::memory::MemoryQueue::new(3)),
    );
    let task = Task::new(
        uuid::Uuid::new_v4(),
        TaskSpec::Code(CodeSpec {
            language: "python".into(),
            code: "#".repeat(codebox_adapters::aws::SPILL_BYTES + 1),
            ..CodeSpec::default()
        }),
    );
    let since = codebox_core::time::now() - chrono::Duration::hours(24);
    store.create(&task, None, since).await.unwrap();
    assert_eq!(
        service.start(task.id, uuid::Uuid::new_v4()).await.unwrap(),
        codebox_core::domain::StartDecision::Run
    );
    let result = TaskResult::Code(CodeResult {
        stdout: vec![b'x'; 1024 * 1024].into(),
        ..CodeResult::empty(Verdict::Ok)
    });
    let before = blobs.gets.load(Ordering::SeqCst);
    TaskControl::commit(
        &service,
        &Commit {
            task_id: task.id,
            status: TaskStatus::Completed,
            result: result.clone(),
            notify: false,
        },
    )
    .await
    .unwrap();
    assert_eq!(blobs.gets.load(Ordering::SeqCst), before, "a blob was read");
    let stored = TaskStore::get(store.as_ref(), task.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, TaskStatus::Completed);
    assert_eq!(stored.result, Some(result));
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

/// What a function built for Lambda (`make lambda-build`, feature `lambda`) runs on: the
/// SDK configuration from the variables Lambda sets and nothing else — moto reached
/// through `AWS_ENDPOINT_URL`, its stores passing their suites — and a missing variable
/// named in the error.
#[tokio::test]
async fn a_lambda_functions_aws_settings_come_from_its_environment_alone() {
    use std::collections::HashMap;
    let aws = StandIn::provision(60, 3);
    let env: HashMap<String, String> = aws.process_env().into_iter().collect();
    let sdk = codebox_adapters::aws::environment_config(|name| env.get(name).cloned()).unwrap();
    assert_eq!(sdk.region().map(|r| r.as_ref()), Some("us-east-1"));
    let blobs = S3BlobStore::new(&sdk, aws.var("BLOB_BUCKET"));
    conformance::blob_store(&blobs).await;
    let sessions = DynamoStore::new(&sdk, tables(&aws), None);
    conformance::session_store(&sessions).await;
    for missing in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
        let err = codebox_adapters::aws::environment_config(|name| {
            (name != missing).then(|| env.get(name).cloned()).flatten()
        })
        .unwrap_err();
        assert!(err.to_string().starts_with(missing), "{err}");
    }
}

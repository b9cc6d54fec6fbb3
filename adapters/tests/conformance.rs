//! The core conformance suites against real PostgreSQL, Redis and RabbitMQ, started by
//! `scripts/services.sh up` (make test does it). Unreachable backends fail the tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use codebox_adapters::fs::FsBlobStore;
use codebox_adapters::postgres::PostgresStore;
use codebox_adapters::rabbitmq::{RabbitConfig, RabbitQueue};
use codebox_adapters::redis::{RedisEventBus, RedisSessionStore};
use codebox_core::conformance;

fn url(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

async fn postgres() -> PostgresStore {
    let u = url(
        "CODEBOX_TEST_POSTGRES_URL",
        "postgres://codebox@127.0.0.1:55432/codebox",
    );
    PostgresStore::connect(&u)
        .await
        .unwrap_or_else(|e| panic!("{e}: start it with `bash scripts/services.sh up`"))
}

#[tokio::test]
async fn postgres_user_store() {
    conformance::user_store(&postgres().await).await;
}

#[tokio::test]
async fn postgres_task_store() {
    conformance::task_store(&postgres().await).await;
}

/// The test Redis, and a prefix of keys no other test uses.
fn redis_url_and_prefix() -> (String, String) {
    (
        url("CODEBOX_TEST_REDIS_URL", "redis://127.0.0.1:56379"),
        format!("test-{}:", uuid::Uuid::new_v4().simple()),
    )
}

#[tokio::test]
async fn redis_session_store() {
    let (u, prefix) = redis_url_and_prefix();
    let store = RedisSessionStore::connect(&u, &prefix)
        .await
        .unwrap_or_else(|e| panic!("{e}: start it with `bash scripts/services.sh up`"));
    conformance::session_store(&store).await;
}

#[tokio::test]
async fn redis_rate_limiter() {
    let (u, prefix) = redis_url_and_prefix();
    let store = RedisSessionStore::connect(&u, &prefix)
        .await
        .unwrap_or_else(|e| panic!("{e}: start it with `bash scripts/services.sh up`"));
    conformance::rate_limiter(&store.rate_limiter()).await;
}

#[tokio::test]
async fn redis_event_bus() {
    let (u, prefix) = redis_url_and_prefix();
    let bus = RedisEventBus::connect(&u, &prefix)
        .await
        .unwrap_or_else(|e| panic!("{e}: start it with `bash scripts/services.sh up`"));
    conformance::event_bus(&bus).await;
}

/// However many streams a process serves, Redis sees one subscriber per task channel (one
/// pub/sub connection, shared), and a channel nobody here follows any more is left.
#[tokio::test]
async fn redis_event_streams_share_one_subscription() {
    use codebox_core::ports::EventBus;
    let (u, prefix) = redis_url_and_prefix();
    let bus = RedisEventBus::connect(&u, &prefix).await.unwrap();
    let client = redis::Client::open(u.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let (one, two, three) = (
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
        uuid::Uuid::new_v4(),
    );
    let channel = |id: uuid::Uuid| format!("{prefix}events:{id}");
    let mut numsub = async |ids: &[uuid::Uuid]| -> Vec<i64> {
        let mut cmd = redis::cmd("PUBSUB");
        cmd.arg("NUMSUB");
        for id in ids {
            cmd.arg(channel(*id));
        }
        let answer: Vec<redis::Value> = cmd.query_async(&mut conn).await.unwrap();
        answer
            .chunks(2)
            .map(|pair| redis::from_redis_value(pair[1].clone()).unwrap())
            .collect()
    };
    let streams = vec![
        bus.subscribe(one).await.unwrap(),
        bus.subscribe(one).await.unwrap(),
        bus.subscribe(one).await.unwrap(),
        bus.subscribe(two).await.unwrap(),
    ];
    assert_eq!(numsub(&[one, two]).await, vec![1, 1]);
    drop(streams);
    let _three = bus.subscribe(three).await.unwrap();
    assert_eq!(numsub(&[one, two, three]).await, vec![0, 0, 1]);
}

#[tokio::test]
async fn rabbitmq_queue() {
    let u = url(
        "CODEBOX_TEST_AMQP_URL",
        "amqp://guest:guest@127.0.0.1:55672/%2f",
    );
    let queue = RabbitQueue::connect(RabbitConfig {
        url: u,
        queue: format!("codebox-test-{}", uuid::Uuid::new_v4().simple()),
        max_deliveries: 3,
        prefetch: 4,
        expires: Some(std::time::Duration::from_secs(600)),
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: start it with `bash scripts/services.sh up`"));
    conformance::queue(&queue, &queue, 3).await;
    assert_eq!(
        queue.dead_letter_count().await.unwrap(),
        2,
        "two messages were dead-lettered"
    );
}

#[tokio::test]
async fn filesystem_blob_store() {
    let dir = std::env::temp_dir().join(format!("codebox-blobs-{}", uuid::Uuid::new_v4().simple()));
    let store = FsBlobStore::new(&dir);
    conformance::blob_store(&store).await;
    use codebox_core::ports::BlobStore;
    for bad in ["../etc/passwd", "/abs", "a/../b", "", "a//b", "sp ace"] {
        assert!(
            store.put(bad, vec![1]).await.is_err(),
            "{bad:?} must be refused"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Streams open when the shared subscription's connection is lost hear their tasks again
/// once it is made anew, without any new stream asking for it.
#[tokio::test]
async fn redis_event_streams_outlive_a_lost_connection() {
    use codebox_core::domain::{TaskEvent, TaskStatus};
    use codebox_core::ports::EventBus;
    use futures::StreamExt;
    let (u, prefix) = redis_url_and_prefix();
    let bus = RedisEventBus::connect(&u, &prefix).await.unwrap();
    let client = redis::Client::open(u.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // Seven channels: the one pub/sub client with sub=7 is this bus's.
    let ids: Vec<uuid::Uuid> = (0..7).map(|_| uuid::Uuid::new_v4()).collect();
    let mut streams = Vec::new();
    for id in &ids {
        streams.push(bus.listen(*id).await.unwrap());
    }
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    let ours: Vec<&str> = list
        .lines()
        .filter(|l| l.split(' ').any(|f| f == "sub=7"))
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .collect();
    assert_eq!(ours.len(), 1, "{list}");
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(ours[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    let running = TaskEvent::Status {
        status: TaskStatus::Running,
    };
    // Published every 200 ms until the stream hears it (within 10 s).
    let heard = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            bus.publish(ids[3], std::slice::from_ref(&running))
                .await
                .unwrap();
            if let Ok(Some(event)) =
                tokio::time::timeout(std::time::Duration::from_millis(200), streams[3].next()).await
            {
                return event.event;
            }
        }
    })
    .await
    .expect("the open stream hears its task again");
    assert_eq!(heard, running);
}

/// A task's log in Redis lives while the task runs and a minute after its end: never
/// longer, whoever listens.
#[tokio::test]
async fn redis_event_logs_expire_after_their_tasks_end() {
    use codebox_core::domain::{TaskEvent, TaskStatus};
    use codebox_core::ports::{EventBus, LOG_AFTER_END, LOG_IDLE};
    let (u, prefix) = redis_url_and_prefix();
    let bus = RedisEventBus::connect(&u, &prefix).await.unwrap();
    let client = redis::Client::open(u.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let id = uuid::Uuid::new_v4();
    let log = format!("{prefix}events:{{{id}}}:log");
    let mut ttl = async || -> i64 {
        redis::cmd("TTL")
            .arg(&log)
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    let running = TaskEvent::Status {
        status: TaskStatus::Running,
    };
    bus.publish(id, &[running]).await.unwrap();
    let idle = ttl().await;
    assert!(
        idle > LOG_AFTER_END.as_secs() as i64 && idle <= LOG_IDLE.as_secs() as i64,
        "a running task's log is kept while it runs: {idle} s"
    );
    let ended = TaskEvent::Status {
        status: TaskStatus::Completed,
    };
    bus.publish(id, &[ended]).await.unwrap();
    let after = ttl().await;
    assert!(
        after > 0 && after <= LOG_AFTER_END.as_secs() as i64,
        "an ended task's log goes a minute later: {after} s"
    );
    // Output that came after the end (a worker's last batch, late) keeps it no longer.
    let late = TaskEvent::Stdout {
        data: codebox_core::bytes::Bytes::new(b"late".to_vec()),
    };
    bus.publish(id, &[late]).await.unwrap();
    let still = ttl().await;
    assert!(
        still > 0 && still <= LOG_AFTER_END.as_secs() as i64,
        "a late event keeps an ended log no longer: {still} s"
    );
    assert_eq!(bus.subscribe(id).await.unwrap().past.len(), 3);
}

/// An event of a task's log this process cannot read (a newer version's kind, written
/// during an upgrade) is left out of a subscription, its number kept; the rest is served.
#[tokio::test]
async fn redis_event_logs_serve_what_they_can_read() {
    use codebox_core::domain::{TaskEvent, TaskStatus};
    use codebox_core::ports::EventBus;
    let (u, prefix) = redis_url_and_prefix();
    let bus = RedisEventBus::connect(&u, &prefix).await.unwrap();
    let client = redis::Client::open(u.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let id = uuid::Uuid::new_v4();
    let status = |status| TaskEvent::Status { status };
    bus.publish(id, &[status(TaskStatus::Running)])
        .await
        .unwrap();
    let _: i64 = redis::cmd("RPUSH")
        .arg(format!("{prefix}events:{{{id}}}:log"))
        .arg(r#"{"type":"a_kind_from_a_newer_version"}"#)
        .query_async(&mut conn)
        .await
        .unwrap();
    bus.publish(id, &[status(TaskStatus::Completed)])
        .await
        .unwrap();
    let past = bus.subscribe(id).await.expect("the log still serves").past;
    let got: Vec<_> = past.iter().map(|l| (l.seq, l.event.clone())).collect();
    assert_eq!(
        got,
        vec![
            (Some(1), status(TaskStatus::Running)),
            (Some(3), status(TaskStatus::Completed))
        ]
    );
}

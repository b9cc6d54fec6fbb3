use std::collections::HashSet;
use std::time::Duration;

use uuid::Uuid;

use crate::domain::{CodeSpec, Limits, TaskMessage, TaskSpec};
use crate::ports::{QueueConsumer, TaskQueue};
use crate::time;

/// Long enough for a real broker to hand back a message, short enough for a test.
const WAIT: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(1500);

fn message() -> TaskMessage {
    TaskMessage {
        task_id: Uuid::new_v4(),
        spec: TaskSpec::Code(CodeSpec {
            language: "c".into(),
            compiler: Some(crate::domain::Compiler::Clang),
            code: "int main(){}".into(),
            stdin: Default::default(),
            args: vec![],
            limits: Limits::DEFAULT,
            // A judged spec: tests travel whole, any byte included.
            tests: vec![
                crate::domain::TestCase {
                    stdin: b"1 2\n\x00\xff".as_slice().into(),
                    expected_stdout: "3\n".into(),
                    args: vec!["--x".into()],
                },
                crate::domain::TestCase {
                    stdin: "5 7\n".into(),
                    expected_stdout: "12\n".into(),
                    args: vec![],
                },
            ],
            compare: crate::domain::Compare {
                mode: crate::domain::CompareMode::Tokens,
                abs_tol: Some(1e-6),
                rel_tol: None,
            },
            stop_on_failure: true,
            ..Default::default()
        }),
        enqueued_at: time::now(),
    }
}

/// `queue` and `consumer` MUST be a fresh, empty queue whose broker dead-letters a
/// message after `max_deliveries` deliveries.
pub async fn queue(queue: &dyn TaskQueue, consumer: &dyn QueueConsumer, max_deliveries: u32) {
    // Empty: receive returns None after waiting.
    assert!(
        consumer
            .receive(Duration::from_millis(200))
            .await
            .unwrap()
            .is_none()
    );

    // Publish → receive the same message on attempt 1 → ack → gone.
    let m = message();
    queue.publish(&m).await.unwrap();
    let d = consumer
        .receive(WAIT)
        .await
        .unwrap()
        .expect("a published message MUST arrive");
    assert_eq!(d.message, m);
    assert_eq!(d.attempt, 1);
    d.settle.ack().await.unwrap();
    assert!(
        consumer.receive(QUIET).await.unwrap().is_none(),
        "an acked message MUST NOT return"
    );

    // Retry → delivered again with attempt 2.
    let m = message();
    queue.publish(&m).await.unwrap();
    let d = consumer.receive(WAIT).await.unwrap().expect("message");
    d.settle.retry().await.unwrap();
    let d = consumer
        .receive(WAIT)
        .await
        .unwrap()
        .expect("a retried message MUST return");
    assert_eq!(d.message.task_id, m.task_id);
    assert_eq!(d.attempt, 2);
    d.settle.ack().await.unwrap();

    // A delivery dropped unsettled (a crashed worker) comes back.
    let m = message();
    queue.publish(&m).await.unwrap();
    let d = consumer.receive(WAIT).await.unwrap().expect("message");
    drop(d);
    let d = consumer
        .receive(WAIT)
        .await
        .unwrap()
        .expect("a dropped delivery MUST return");
    assert_eq!(d.message.task_id, m.task_id);
    assert!(d.attempt >= 2);
    d.settle.ack().await.unwrap();

    // Deferred: back after the delay (not before), behind a message queued meanwhile,
    // with the deferral not counted as an attempt, however often it is deferred.
    let m = message();
    queue.publish(&m).await.unwrap();
    let d = consumer.receive(WAIT).await.unwrap().expect("message");
    d.settle.retry().await.unwrap();
    let d = consumer.receive(WAIT).await.unwrap().expect("message");
    assert_eq!(d.attempt, 2);
    let deferred_at = std::time::Instant::now();
    d.settle.defer(Duration::from_secs(1)).await.unwrap();
    let other = message();
    queue.publish(&other).await.unwrap();
    let d = consumer.receive(WAIT).await.unwrap().expect("message");
    assert_eq!(
        d.message.task_id, other.task_id,
        "a message queued after a deferral MUST come first"
    );
    d.settle.ack().await.unwrap();
    for deferrals in 1..=max_deliveries + 1 {
        let d = consumer
            .receive(WAIT)
            .await
            .unwrap()
            .expect("a deferred message MUST return");
        assert_eq!(d.message, m);
        assert_eq!(d.attempt, 2, "a deferral MUST NOT count as an attempt");
        assert_eq!(d.deferrals, deferrals, "a deferral MUST be counted apart");
        assert!(
            deferred_at.elapsed() >= Duration::from_millis(950),
            "a deferred message MUST NOT return before its delay"
        );
        d.settle.defer(Duration::from_millis(100)).await.unwrap();
    }
    let d = consumer.receive(WAIT).await.unwrap().expect("message");
    assert_eq!(d.attempt, 2);
    assert_eq!(d.deferrals, max_deliveries + 2);
    d.settle.retry().await.unwrap();
    let d = consumer.receive(WAIT).await.unwrap().expect("message");
    assert_eq!(
        (d.attempt, d.deferrals),
        (3, max_deliveries + 2),
        "a retry MUST keep the deferrals"
    );
    d.settle.ack().await.unwrap();

    // A delivery held and extended is not handed out again (SQS: longer than the queue's
    // visibility timeout, which the caller MUST set below 3 s).
    let m = message();
    queue.publish(&m).await.unwrap();
    let d = consumer.receive(WAIT).await.unwrap().expect("message");
    for _ in 0..3 {
        d.settle.extend(Duration::from_secs(4)).await.unwrap();
        assert!(
            consumer.receive(QUIET).await.unwrap().is_none(),
            "an extended delivery MUST stay with its consumer"
        );
    }
    d.settle.ack().await.unwrap();

    // The largest message the API can make (1 MiB of stdin) arrives whole.
    let mut m = message();
    if let TaskSpec::Code(spec) = &mut m.spec {
        spec.stdin = super::stores::every_byte(crate::tasks::MAX_STDIN_BYTES);
        spec.code = "#".repeat(crate::tasks::MAX_CODE_BYTES);
    }
    queue.publish(&m).await.unwrap();
    let d = consumer.receive(WAIT).await.unwrap().expect("message");
    assert_eq!(d.message, m);
    d.settle.ack().await.unwrap();

    // Dead-lettered: never delivered again.
    let m = message();
    queue.publish(&m).await.unwrap();
    let d = consumer.receive(WAIT).await.unwrap().expect("message");
    d.settle.dead_letter().await.unwrap();
    assert!(consumer.receive(QUIET).await.unwrap().is_none());

    // Retried past max_deliveries: dead-lettered by the broker, not delivered forever.
    let m = message();
    queue.publish(&m).await.unwrap();
    for attempt in 1..=max_deliveries {
        let d = consumer.receive(WAIT).await.unwrap().expect("message");
        assert_eq!(d.attempt, attempt);
        d.settle.retry().await.unwrap();
    }
    assert!(
        consumer.receive(QUIET).await.unwrap().is_none(),
        "after max_deliveries a message MUST be dead-lettered"
    );

    // Many messages: each delivered once.
    let mut sent = HashSet::new();
    for _ in 0..20 {
        let m = message();
        queue.publish(&m).await.unwrap();
        sent.insert(m.task_id);
    }
    let mut got = HashSet::new();
    for _ in 0..40 {
        match consumer.receive(Duration::from_secs(3)).await.unwrap() {
            Some(d) => {
                assert!(
                    got.insert(d.message.task_id),
                    "a message MUST NOT be delivered twice"
                );
                d.settle.ack().await.unwrap();
            }
            None => break,
        }
        if got.len() == sent.len() {
            break;
        }
    }
    assert_eq!(got, sent);
}

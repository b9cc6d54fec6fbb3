//! The event bus's contract: a listener hears what its task publishes after it came, in
//! order, and nothing of other tasks; several listeners of a task each hear it; one
//! leaving does not stop the others.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use uuid::Uuid;

use crate::domain::{TaskEvent, TaskStatus};
use crate::ports::EventBus;

async fn next(stream: &mut BoxStream<'static, TaskEvent>) -> TaskEvent {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream goes on")
}

fn status(status: TaskStatus) -> TaskEvent {
    TaskEvent::Status { status }
}

pub async fn event_bus(bus: &dyn EventBus) {
    let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
    let mut first = bus.subscribe(one).await.unwrap();
    let mut second = bus.subscribe(one).await.unwrap();
    let mut other = bus.subscribe(two).await.unwrap();
    bus.publish(
        one,
        &[
            status(TaskStatus::Running),
            TaskEvent::Stdout {
                data: "hi\n".into(),
            },
        ],
    )
    .await
    .unwrap();
    bus.publish(two, &[status(TaskStatus::Cancelled)])
        .await
        .unwrap();
    for stream in [&mut first, &mut second] {
        assert_eq!(next(stream).await, status(TaskStatus::Running));
        assert_eq!(
            next(stream).await,
            TaskEvent::Stdout {
                data: "hi\n".into()
            }
        );
    }
    assert_eq!(next(&mut other).await, status(TaskStatus::Cancelled));

    drop(first);
    bus.publish(one, &[status(TaskStatus::Completed)])
        .await
        .unwrap();
    assert_eq!(next(&mut second).await, status(TaskStatus::Completed));
    // A task nobody follows: publishing is fine, and a later listener hears only what
    // comes after it (a task never listened to, so nothing of it can still be on the way).
    drop(second);
    let three = Uuid::new_v4();
    bus.publish(three, &[status(TaskStatus::Failed)])
        .await
        .unwrap();
    let mut late = bus.subscribe(three).await.unwrap();
    bus.publish(three, &[status(TaskStatus::Running)])
        .await
        .unwrap();
    assert_eq!(next(&mut late).await, status(TaskStatus::Running));
}

//! The event bus's contract: a listener hears its task's log so far, then what it
//! publishes, in order, each once, and nothing of other tasks; several listeners of a
//! task each hear it; one leaving does not stop the others. Kept events are numbered from
//! 1 in the order they were published.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;
use uuid::Uuid;

use crate::domain::{TaskEvent, TaskStatus};
use crate::ports::{EventBus, Logged};

async fn next(stream: &mut BoxStream<'static, Logged>) -> Logged {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event within 5 s")
        .expect("the stream goes on")
}

fn status(status: TaskStatus) -> TaskEvent {
    TaskEvent::Status { status }
}

fn out(text: &str) -> TaskEvent {
    TaskEvent::Stdout { data: text.into() }
}

fn logged(seq: u64, event: TaskEvent) -> Logged {
    Logged {
        seq: Some(seq),
        event,
    }
}

pub async fn event_bus(bus: &dyn EventBus) {
    listeners_hear_their_task_live(bus).await;
    a_late_listener_hears_the_log_then_what_comes(bus).await;
    a_busy_task_is_heard_in_order_each_event_once(bus).await;
}

async fn listeners_hear_their_task_live(bus: &dyn EventBus) {
    let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
    let mut first = bus.subscribe(one).await.unwrap().live;
    let mut second = bus.subscribe(one).await.unwrap().live;
    let mut other = bus.subscribe(two).await.unwrap().live;
    bus.publish(one, &[status(TaskStatus::Running), out("hi\n")])
        .await
        .unwrap();
    bus.publish(two, &[status(TaskStatus::Cancelled)])
        .await
        .unwrap();
    for stream in [&mut first, &mut second] {
        assert_eq!(next(stream).await, logged(1, status(TaskStatus::Running)));
        assert_eq!(next(stream).await, logged(2, out("hi\n")));
    }
    assert_eq!(
        next(&mut other).await,
        logged(1, status(TaskStatus::Cancelled)),
        "each task numbers its own log"
    );
    drop(first);
    bus.publish(one, &[status(TaskStatus::Completed)])
        .await
        .unwrap();
    assert_eq!(
        next(&mut second).await,
        logged(3, status(TaskStatus::Completed))
    );
}

async fn a_late_listener_hears_the_log_then_what_comes(bus: &dyn EventBus) {
    let id = Uuid::new_v4();
    bus.publish(id, &[status(TaskStatus::Running)])
        .await
        .unwrap();
    bus.publish(id, &[TaskEvent::Attempt { attempt: 1 }, out("a")])
        .await
        .unwrap();
    let late = bus.subscribe(id).await.unwrap();
    assert_eq!(
        late.past,
        [
            logged(1, status(TaskStatus::Running)),
            logged(2, TaskEvent::Attempt { attempt: 1 }),
            logged(3, out("a")),
        ],
        "a listener who comes late hears what it missed"
    );
    assert_eq!(late.last_seq(), 3);
    let mut live = late.live;
    bus.publish(id, &[out("b")]).await.unwrap();
    assert_eq!(next(&mut live).await, logged(4, out("b")));
    // Listening alone hears what comes, not the log.
    let mut listening = bus.listen(id).await.unwrap();
    bus.publish(id, &[out("c")]).await.unwrap();
    assert_eq!(next(&mut listening).await, logged(5, out("c")));
    assert_eq!(next(&mut live).await, logged(5, out("c")));
    // A task nobody has published to has an empty log.
    let fresh = bus.subscribe(Uuid::new_v4()).await.unwrap();
    assert!(fresh.past.is_empty());
}

async fn a_busy_task_is_heard_in_order_each_event_once(bus: &dyn EventBus) {
    // Listeners arriving while events are published: together, the log and the live
    // stream hold every event once, numbered in order.
    let id = Uuid::new_v4();
    const EVENTS: u64 = 40;
    let publishing = async {
        for n in 0..EVENTS {
            bus.publish(id, &[out(&n.to_string())]).await.unwrap();
            tokio::task::yield_now().await;
        }
    };
    let listening = async {
        let mut listeners = Vec::new();
        for _ in 0..4 {
            listeners.push(bus.subscribe(id).await.unwrap().all());
            tokio::task::yield_now().await;
        }
        listeners
    };
    let ((), listeners) = tokio::join!(publishing, listening);
    for (k, mut stream) in listeners.into_iter().enumerate() {
        for n in 0..EVENTS {
            assert_eq!(
                next(&mut stream).await,
                logged(n + 1, out(&n.to_string())),
                "listener {k}"
            );
        }
    }
}

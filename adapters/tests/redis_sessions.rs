//! The sessions a gateway keeps (Redis's server-assisted client-side caching): a session
//! read twice costs Redis one read, and a logout holds at once where it was made and, as
//! soon as Redis's message arrives, in every other gateway. Needs the test Redis
//! (`scripts/services.sh up`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use codebox_adapters::redis::RedisSessionStore;
use codebox_core::domain::Session;
use codebox_core::ports::SessionStore;

async fn gateway(prefix: &str) -> RedisSessionStore {
    let url = std::env::var("CODEBOX_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:56379".to_owned());
    RedisSessionStore::connect(&url, prefix)
        .await
        .unwrap_or_else(|e| panic!("{e}: start it with `bash scripts/services.sh up`"))
}

fn session() -> Session {
    Session {
        jti: uuid::Uuid::new_v4().simple().to_string(),
        user_id: uuid::Uuid::new_v4(),
        expires_at: codebox_core::time::now() + chrono::Duration::minutes(10),
    }
}

/// `store` no longer finds `jti`, asking for at most two seconds.
async fn gone_within(store: &RedisSessionStore, jti: &str) -> Duration {
    let since = Instant::now();
    while store.get(jti).await.unwrap().is_some() {
        assert!(
            since.elapsed() < Duration::from_secs(2),
            "a revoked session was still kept after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    since.elapsed()
}

#[tokio::test]
async fn a_session_read_twice_costs_one_read_and_a_logout_anywhere_ends_it() {
    let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    let (here, there) = (gateway(&prefix).await, gateway(&prefix).await);

    // Kept where it was read.
    let s = session();
    there.put(&s).await.unwrap();
    let before = here.sessions_kept();
    for _ in 0..3 {
        assert_eq!(here.get(&s.jti).await.unwrap(), Some(s.clone()));
    }
    let after = here.sessions_kept();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (2, 1),
        "three reads of one session: one from Redis, two kept"
    );

    // A logout in another gateway ends it here too (Redis tells this connection).
    there.revoke(&s.jti).await.unwrap();
    gone_within(&here, &s.jti).await;

    // A logout in this gateway holds at once: Redis's word comes before its answer.
    let s = session();
    here.put(&s).await.unwrap();
    assert!(here.get(&s.jti).await.unwrap().is_some());
    assert!(here.get(&s.jti).await.unwrap().is_some());
    here.revoke(&s.jti).await.unwrap();
    assert_eq!(
        here.get(&s.jti).await.unwrap(),
        None,
        "a logout here held late"
    );

    // A session that lapses in Redis is not kept past its time either.
    let mut s = session();
    s.expires_at = codebox_core::time::now() + chrono::Duration::milliseconds(300);
    there.put(&s).await.unwrap();
    assert!(here.get(&s.jti).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(here.get(&s.jti).await.unwrap(), None);
}

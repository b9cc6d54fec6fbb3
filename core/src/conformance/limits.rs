use std::time::Duration;

use uuid::Uuid;

use crate::ports::{RateDecision, RateLimiter};

/// The limiter's contract: `limit` events per window pass, the next is limited with a
/// `retry_after` within the window, keys are independent, and a new window starts over.
pub async fn rate_limiter(limiter: &dyn RateLimiter) {
    let key = format!("conformance:{}", Uuid::new_v4().simple());
    let other = format!("conformance:{}", Uuid::new_v4().simple());
    let window = Duration::from_secs(2);
    // Start just after a window begins, so the three hits below share it.
    let (_, left) = crate::ports::window_of(crate::time::now().timestamp_millis(), window);
    tokio::time::sleep(left + Duration::from_millis(50)).await;
    for _ in 0..3 {
        assert_eq!(
            limiter.hit(&key, 3, window).await.unwrap(),
            RateDecision::Allowed
        );
    }
    match limiter.hit(&key, 3, window).await.unwrap() {
        RateDecision::Limited { retry_after } => assert!(
            retry_after > Duration::ZERO && retry_after <= window,
            "retry_after {retry_after:?} MUST fall within the window"
        ),
        RateDecision::Allowed => panic!("the 4th hit of a limit of 3 MUST be limited"),
    }
    assert_eq!(
        limiter.hit(&other, 3, window).await.unwrap(),
        RateDecision::Allowed,
        "keys MUST NOT share a count"
    );
    // The next window starts over.
    let (_, left) = crate::ports::window_of(crate::time::now().timestamp_millis(), window);
    tokio::time::sleep(left + Duration::from_millis(50)).await;
    assert_eq!(
        limiter.hit(&key, 3, window).await.unwrap(),
        RateDecision::Allowed,
        "a new window MUST start from zero"
    );
    // Concurrent hits are all counted: 20 at once with a limit of 10 let 10 through.
    let key = format!("conformance:{}", Uuid::new_v4().simple());
    let (_, left) = crate::ports::window_of(crate::time::now().timestamp_millis(), window);
    if left < Duration::from_millis(1000) {
        tokio::time::sleep(left + Duration::from_millis(50)).await;
    }
    let hits = futures::future::join_all((0..20).map(|_| limiter.hit(&key, 10, window))).await;
    let allowed = hits
        .into_iter()
        .filter(|h| *h.as_ref().unwrap() == RateDecision::Allowed)
        .count();
    assert_eq!(allowed, 10, "every concurrent hit MUST be counted once");
}

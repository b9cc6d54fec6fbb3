//! The limits on clients: rates per address and per user, and the cap on tasks under way.

use super::*;

/// `/register` and `/login` share one rate per client address: the next call over it is
/// 429 with `Retry-After`, whichever route it is.
#[tokio::test]
async fn register_and_login_are_rate_limited_per_address() {
    let app = app_with(
        codebox_core::limits::LimitsConfig {
            auth_per_minute: 3,
            ..Default::default()
        },
        &[],
    );
    let creds = json!({"username": "rita", "password": "password123"});
    let r = send(&app, req("POST", "/register", None, Some(creds.clone()))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    for _ in 0..2 {
        let r = send(&app, req("POST", "/login", None, Some(creds.clone()))).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_429(&send(&app, req("POST", "/login", None, Some(creds.clone()))).await);
    let other = json!({"username": "sam", "password": "password123"});
    assert_429(&send(&app, req("POST", "/register", None, Some(other))).await);
}

/// A user's submissions have a rate, and a cap on tasks queued or running at once; a
/// finished task frees its place.
#[tokio::test]
async fn submissions_have_a_rate_and_a_cap_on_tasks_under_way() {
    let app = app_with(
        codebox_core::limits::LimitsConfig {
            max_active_tasks: 2,
            ..Default::default()
        },
        &[],
    );
    let token = login_as(&app, "tom").await;
    let first = submit(&app, &token).await;
    submit(&app, &token).await;
    let body = json!({"language": "python", "code": "print(1)"});
    let r = send(&app, req("POST", "/task", Some(&token), Some(body.clone()))).await;
    assert_429(&r);
    assert!(
        r.problem(StatusCode::TOO_MANY_REQUESTS)
            .contains("at most 2")
    );
    // Another user is not held back by tom's tasks.
    let other = login_as(&app, "uma").await;
    submit(&app, &other).await;
    // A finished task frees its place.
    start(&app, &first).await;
    let r = commit(&app, &first, Verdict::Ok, "1").await;
    assert_eq!(r.status, StatusCode::OK);
    submit(&app, &token).await;

    let app = app_with(
        codebox_core::limits::LimitsConfig {
            submit_per_minute: 2,
            ..Default::default()
        },
        &[],
    );
    let token = login_as(&app, "vic").await;
    submit(&app, &token).await;
    submit(&app, &token).await;
    assert_429(&send(&app, req("POST", "/task", Some(&token), Some(body))).await);
}

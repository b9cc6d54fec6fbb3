//! Accounts: registering, logging in and out, and the tokens refused.

use super::*;

#[tokio::test]
async fn register_validates_and_refuses_taken_names() {
    let app = app();
    let r = send(
        &app,
        req(
            "POST",
            "/register",
            None,
            Some(json!({"username": "ada", "password": "password123"})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let v = r.json();
    assert_eq!(v["username"], "ada");
    assert!(v["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(v.get("password_hash").is_none());

    let taken = send(
        &app,
        req(
            "POST",
            "/register",
            None,
            Some(json!({"username": "ada", "password": "password123"})),
        ),
    )
    .await;
    assert!(taken.problem(StatusCode::CONFLICT).contains("taken"));

    for bad in [
        json!({"username": "ad", "password": "password123"}),
        json!({"username": "a d a", "password": "password123"}),
        json!({"username": "grace", "password": "short"}),
        json!({"username": "grace", "password": "x".repeat(73)}),
        json!({"username": "grace", "password": "password123", "admin": true}),
        json!({"username": "grace"}),
    ] {
        let r = send(&app, req("POST", "/register", None, Some(bad))).await;
        r.problem(StatusCode::BAD_REQUEST);
    }
    let r = send(
        &app,
        Request::post("/register")
            .header("content-type", "application/json")
            .body(Body::from("{not json"))
            .unwrap(),
    )
    .await;
    assert!(r.problem(StatusCode::BAD_REQUEST).contains("JSON"));
    let r = send(
        &app,
        Request::post("/register").body(Body::from("{}")).unwrap(),
    )
    .await;
    r.problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn login_and_logout() {
    let app = app();
    let token = login_as(&app, "bob").await;
    let r = send(
        &app,
        req(
            "POST",
            "/login",
            None,
            Some(json!({"username": "bob", "password": "password123"})),
        ),
    )
    .await;
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3600);

    let wrong = send(
        &app,
        req(
            "POST",
            "/login",
            None,
            Some(json!({"username": "bob", "password": "password999"})),
        ),
    )
    .await;
    let unknown = send(
        &app,
        req(
            "POST",
            "/login",
            None,
            Some(json!({"username": "nobody", "password": "password123"})),
        ),
    )
    .await;
    assert_eq!(
        wrong.problem(StatusCode::UNAUTHORIZED),
        unknown.problem(StatusCode::UNAUTHORIZED)
    );

    let r = send(&app, req("GET", "/task", Some(&token), None)).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&app, req("POST", "/logout", Some(&token), None)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = send(&app, req("GET", "/task", Some(&token), None)).await;
    r.problem(StatusCode::UNAUTHORIZED);
    assert_eq!(r.header("www-authenticate"), "Bearer");
    send(&app, req("POST", "/logout", Some(&token), None))
        .await
        .problem(StatusCode::UNAUTHORIZED);
    send(&app, req("POST", "/logout", None, None))
        .await
        .problem(StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn forged_malformed_and_expired_tokens_get_401() {
    let app = app();
    let token = login_as(&app, "carol").await;
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for t in [forged.as_str(), "abc", "a.b.c"] {
        let r = send(&app, req("GET", "/task", Some(t), None)).await;
        r.problem(StatusCode::UNAUTHORIZED);
        assert_eq!(r.header("www-authenticate"), "Bearer");
    }
    let r = send(
        &app,
        Request::get("/task")
            .header("authorization", "Basic Zm9vOmJhcg==")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    r.problem(StatusCode::UNAUTHORIZED);
    // A token signed by another deployment's key.
    let other = router(
        AppState::build(
            &ApiConfig {
                jwt_secret: SecretString::from("another-secret-another-secret-another"),
                ..config(3600)
            },
            &Backends::memory(),
        )
        .unwrap(),
    );
    let foreign = login_as(&other, "carol").await;
    send(&app, req("GET", "/task", Some(&foreign), None))
        .await
        .problem(StatusCode::UNAUTHORIZED);

    let expired_app = router(state_with(-10, &Backends::memory()));
    let expired = login_as(&expired_app, "dave").await;
    let r = send(&expired_app, req("GET", "/task", Some(&expired), None)).await;
    r.problem(StatusCode::UNAUTHORIZED);
}

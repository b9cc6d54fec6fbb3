//! Image tasks and their uploads.

use super::*;

#[tokio::test]
async fn image_task_round_trip() {
    let backends = Backends::memory();
    let app = router(state_with(3600, &backends));
    let token = login_as(&app, "judy").await;
    let input = png(4, 3);
    let body = json!({"kind": "image", "image_base64": base64::engine::general_purpose::STANDARD.encode(&input), "filter": {"name": "blur", "parameters": {"sigma": 2.0}}});
    let r = send(&app, req("POST", "/task", Some(&token), Some(body))).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let v = send(
        &app,
        req("GET", &format!("/status/{id}"), Some(&token), None),
    )
    .await
    .json();
    assert_eq!(v["kind"], "image");

    let output = png(4, 3);
    let key = format!("output/{id}.png");
    backends.blobs.put(&key, output.clone()).await.unwrap();
    let commit = serde_json::to_value(Commit {
        task_id: id.parse().unwrap(),
        status: TaskStatus::Completed,
        result: TaskResult::Image(ImageResult {
            verdict: Verdict::Ok,
            output_key: Some(key),
            error: None,
        }),
        notify: false,
    })
    .unwrap();
    assert_eq!(
        send(&app, req("POST", "/commit", Some(WORKER), Some(commit)))
            .await
            .status,
        StatusCode::OK
    );

    let r = send(
        &app,
        req("GET", &format!("/result/{id}"), Some(&token), None),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "image/png");
    assert_eq!(r.bytes, output);
    let r = send(
        &app,
        Request::get(format!("/result/{id}"))
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let v = r.json();
    assert_eq!(v["verdict"], "ok");
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(v["image_base64"].as_str().unwrap())
            .unwrap(),
        output
    );
}

#[tokio::test]
async fn bad_images_are_400() {
    let app = app();
    let token = login_as(&app, "kate").await;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut huge_header = png(2, 2);
    huge_header[16..20].copy_from_slice(&10_000u32.to_be_bytes());
    huge_header[20..24].copy_from_slice(&10_000u32.to_be_bytes());
    for (image, filter) in [
        (
            b64(b"GIF89a not a png at all, sorry........"),
            json!({"name": "negative"}),
        ),
        (b64(&huge_header), json!({"name": "negative"})),
        ("%%%not base64".to_owned(), json!({"name": "negative"})),
        (b64(&png(2, 2)), json!({"name": "sepia"})),
        (
            b64(&png(2, 2)),
            json!({"name": "blur", "parameters": {"sigma": 500.0}}),
        ),
        (
            b64(&png(2, 2)),
            json!({"name": "negative", "parameters": {"sigma": 1.0}}),
        ),
    ] {
        let body = json!({"kind": "image", "image_base64": image, "filter": filter});
        send(&app, req("POST", "/task", Some(&token), Some(body)))
            .await
            .problem(StatusCode::BAD_REQUEST);
    }
    // Over the body limit before it is even parsed.
    let body = json!({"kind": "image", "image_base64": b64(&vec![0u8; 10 * 1024 * 1024]), "filter": {"name": "negative"}});
    send(&app, req("POST", "/task", Some(&token), Some(body)))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    let mixed = json!({"kind": "image", "image_base64": b64(&png(2, 2)), "filter": {"name": "flipx"}, "code": "x"});
    send(&app, req("POST", "/task", Some(&token), Some(mixed)))
        .await
        .problem(StatusCode::BAD_REQUEST);
}

/// `POST /task/upload` for `size` bytes: the answer, and the path of its upload URL.
async fn grant(app: &Router, token: &str, size: usize) -> (Value, String) {
    let r = send(
        app,
        req(
            "POST",
            "/task/upload",
            Some(token),
            Some(json!({"size": size})),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let g = r.json();
    let url = g["upload_url"].as_str().unwrap();
    let path = url[url.find("/task/upload/").unwrap()..].to_owned();
    (g, path)
}

fn put_png(uri: &str, content_type: &str, bytes: Vec<u8>) -> Request<Body> {
    Request::builder()
        .method("PUT")
        .uri(uri)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .unwrap()
}

/// Where the blob store signs no URLs, the API takes uploads itself: `POST /task/upload`
/// grants a URL for exactly `size` bytes of PNG, the upload needs no token but only works
/// as granted, and the image task takes the upload by its key.
#[tokio::test]
async fn an_upload_url_takes_exactly_the_png_it_was_granted_for() {
    let backends = Backends::memory();
    let app = router(state_with(3600, &backends));
    let token = login_as(&app, "uma").await;
    let input = png(5, 4);
    let size = input.len();
    let r = Request::builder()
        .method("POST")
        .uri("/task/upload")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::HOST, "api.example.com")
        .header("x-forwarded-proto", "https")
        .body(Body::from(json!({"size": size}).to_string()))
        .unwrap();
    let granted = send(&app, r).await;
    assert_eq!(
        granted.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&granted.bytes)
    );
    let g = granted.json();
    let key = g["image_key"].as_str().unwrap().to_owned();
    let url = g["upload_url"].as_str().unwrap().to_owned();
    assert!(key.starts_with("uploads/"), "{key}");
    assert_eq!(g["method"], "PUT");
    assert_eq!(g["headers"]["content-type"], "image/png");
    assert_eq!(g["headers"]["content-length"], size.to_string());
    let path = url
        .strip_prefix("https://api.example.com")
        .unwrap_or_else(|| panic!("{url}"))
        .to_owned();
    assert!(path.starts_with("/task/upload/"), "{path}");

    // Not as granted: another size, another type, not a PNG, a forged or foreign grant.
    let mut longer = input.clone();
    longer.push(0);
    send(&app, put_png(&path, "image/png", longer))
        .await
        .problem(StatusCode::BAD_REQUEST);
    send(
        &app,
        put_png(&path, "application/octet-stream", input.clone()),
    )
    .await
    .problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut garbage = input.clone();
    garbage[0] = b'G';
    send(&app, put_png(&path, "image/png", garbage))
        .await
        .problem(StatusCode::BAD_REQUEST);
    let mut forged = path.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    send(&app, put_png(&forged, "image/png", input.clone()))
        .await
        .problem(StatusCode::FORBIDDEN);
    send(
        &app,
        put_png(&format!("/task/upload/{token}"), "image/png", input.clone()),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
    assert!(
        backends.blobs.get(&key).await.unwrap().is_none(),
        "nothing stored yet"
    );
    // Before the upload, the key leads nowhere.
    let task = json!({"kind": "image", "image_key": key, "filter": {"name": "negative"}});
    send(&app, req("POST", "/task", Some(&token), Some(task.clone())))
        .await
        .problem(StatusCode::BAD_REQUEST);

    let r = send(&app, put_png(&path, "image/png", input.clone())).await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(backends.blobs.get(&key).await.unwrap(), Some(input.clone()));

    // Another user cannot use it.
    let other = login_as(&app, "victor").await;
    send(&app, req("POST", "/task", Some(&other), Some(task.clone())))
        .await
        .problem(StatusCode::BAD_REQUEST);
    let r = send(&app, req("POST", "/task", Some(&token), Some(task))).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );

    // Sizes out of range, and no size at all.
    for (body, status) in [
        (json!({"size": 0}), StatusCode::BAD_REQUEST),
        (
            json!({"size": 10 * 1024 * 1024 + 1}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({}), StatusCode::BAD_REQUEST),
        (json!({"size": -1}), StatusCode::BAD_REQUEST),
    ] {
        send(&app, req("POST", "/task/upload", Some(&token), Some(body)))
            .await
            .problem(status);
    }
    send(
        &app,
        req("POST", "/task/upload", None, Some(json!({"size": 100}))),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED);
    // No Host header: the URL still names a host.
    let (g, _) = grant(&app, &token, 100).await;
    assert!(
        g["upload_url"]
            .as_str()
            .unwrap()
            .starts_with("http://localhost/task/upload/"),
        "{g}"
    );
}

/// With `PUBLIC_URL`, upload URLs name the deployment's public address, whatever `Host`
/// a request came with (a proxy in front, or a client sending someone else's host).
#[tokio::test]
async fn upload_urls_name_the_public_url_when_one_is_set() {
    let backends = Backends::memory();
    let app = router(
        AppState::build(
            &ApiConfig {
                public_url: Some("https://code.example.com/api".into()),
                ..config(3600)
            },
            &backends,
        )
        .unwrap(),
    );
    let token = login_as(&app, "xavier").await;
    let mut request = req(
        "POST",
        "/task/upload",
        Some(&token),
        Some(json!({"size": 100})),
    );
    request
        .headers_mut()
        .insert(header::HOST, "attacker.example".parse().unwrap());
    let r = send(&app, request).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let url = r.json()["upload_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("https://code.example.com/api/task/upload/"),
        "{url}"
    );
}

/// A deployment whose requests must stay small (AWS) refuses a larger inline PNG with 413
/// and takes the same PNG through an upload.
#[tokio::test]
async fn inline_images_over_the_deployments_limit_go_through_uploads() {
    let backends = Backends::memory();
    let app = router(
        AppState::build(
            &ApiConfig {
                inline_image_max: 200,
                ..config(3600)
            },
            &backends,
        )
        .unwrap(),
    );
    let token = login_as(&app, "wendy").await;
    let input = png(40, 40);
    assert!(input.len() > 200, "{}", input.len());
    let b64 = base64::engine::general_purpose::STANDARD.encode(&input);
    let inline = json!({"kind": "image", "image_base64": b64, "filter": {"name": "flipx"}});
    let detail = send(&app, req("POST", "/task", Some(&token), Some(inline)))
        .await
        .problem(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(detail.contains("POST /task/upload"), "{detail}");
    let (g, path) = grant(&app, &token, input.len()).await;
    assert_eq!(
        send(&app, put_png(&path, "image/png", input)).await.status,
        StatusCode::NO_CONTENT
    );
    let task = json!({"kind": "image", "image_key": g["image_key"], "filter": {"name": "flipx"}});
    let r = send(&app, req("POST", "/task", Some(&token), Some(task))).await;
    assert_eq!(
        r.status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
}

/// Uploads are kept for a day: one user gets at most 60 upload URLs an hour, whatever
/// the submission rate allows.
#[tokio::test]
async fn upload_urls_are_capped_per_hour() {
    let mut cfg = config(3600);
    cfg.limits.submit_per_minute = 10_000;
    let app = router(AppState::build(&cfg, &Backends::memory()).unwrap());
    let token = login_as(&app, "xavier").await;
    for _ in 0..codebox_core::limits::UPLOADS_PER_HOUR {
        grant(&app, &token, 100).await;
    }
    let detail = send(
        &app,
        req(
            "POST",
            "/task/upload",
            Some(&token),
            Some(json!({"size": 100})),
        ),
    )
    .await
    .problem(StatusCode::TOO_MANY_REQUESTS);
    assert!(detail.contains("uploads an hour"), "{detail}");
}

/// An upload's body is read only for a valid grant, and never past 10 MiB.
#[tokio::test]
async fn an_upload_body_over_the_limit_is_too_large() {
    let app = app();
    let token = login_as(&app, "yvonne").await;
    let (_, path) = grant(&app, &token, 100).await;
    send(
        &app,
        put_png(&path, "image/png", vec![0; 10 * 1024 * 1024 + 1]),
    )
    .await
    .problem(StatusCode::PAYLOAD_TOO_LARGE);
    send(
        &app,
        put_png("/task/upload/not-a-grant", "image/png", vec![0; 100]),
    )
    .await
    .problem(StatusCode::FORBIDDEN);
}

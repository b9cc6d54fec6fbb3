//! Image filters on PNGs, inline and uploaded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use super::client;
use crate::Client;

fn png_of(img: &image::RgbaImage) -> String {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    base64::engine::general_purpose::STANDARD.encode(out.into_inner())
}

fn decode_png(b64: &str) -> image::RgbaImage {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .unwrap()
        .to_rgba8()
}

async fn filter(c: &Client, img_b64: &str, filter: Value) -> image::RgbaImage {
    let r = c
        .run(json!({"kind": "image", "image_base64": img_b64, "filter": filter}))
        .await
        .unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    decode_png(r["image_base64"].as_str().unwrap())
}

pub async fn image_filters_on_a_real_png(addr: SocketAddr) {
    let c = client(addr).await;
    let original = image::RgbaImage::from_fn(16, 9, |x, y| {
        image::Rgba([(x * 15) as u8, (y * 25) as u8, 200, 255 - x as u8])
    });
    let b64 = png_of(&original);

    let neg = filter(&c, &b64, json!({"name": "negative"})).await;
    assert_eq!(
        neg.get_pixel(1, 2).0,
        [255 - 15, 255 - 50, 55, 254],
        "alpha is kept"
    );
    let neg_neg = filter(&c, &png_of(&neg), json!({"name": "negative"})).await;
    assert_eq!(neg_neg, original, "negative of negative is the original");

    let flipped = filter(&c, &b64, json!({"name": "flipx"})).await;
    assert_eq!(flipped.dimensions(), (16, 9));
    assert_eq!(flipped.get_pixel(0, 3), original.get_pixel(15, 3));
    assert_eq!(flipped.get_pixel(15, 8), original.get_pixel(0, 8));

    let blurred = filter(
        &c,
        &b64,
        json!({"name": "blur", "parameters": {"sigma": 2.0}}),
    )
    .await;
    assert_eq!(blurred.dimensions(), (16, 9));
    assert_ne!(blurred, original);
    let sharp = filter(
        &c,
        &b64,
        json!({"name": "sharpen", "parameters": {"sigma": 1.0}}),
    )
    .await;
    assert_eq!(sharp.dimensions(), (16, 9));

    // The PNG form of the result.
    let id = c
        .submit(&json!({"kind": "image", "image_base64": b64, "filter": {"name": "flipx"}}))
        .await
        .unwrap();
    c.wait(&id, Duration::from_secs(30)).await.unwrap();
    let r = c.fetch(&format!("/result/{id}")).await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/png");
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
}

/// A PNG uploaded first (`POST /task/upload`, then a `PUT` to the URL it grants: the API
/// itself, or S3's presigned URL on AWS) is filtered by the task naming its key, as the
/// same PNG inline is; an upload serves several tasks of its owner, and no one else's.
pub async fn an_uploaded_png_is_filtered(addr: SocketAddr) {
    let c = client(addr).await;
    let original = image::RgbaImage::from_fn(64, 48, |x, y| {
        image::Rgba([(x * 4) as u8, (y * 5) as u8, (x ^ y) as u8, 255])
    });
    let b64 = png_of(&original);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    let key = c.upload_png(&bytes).await.unwrap();
    let task = json!({"kind": "image", "image_key": key, "filter": {"name": "negative"}});
    let r = c.run(task.clone()).await.unwrap();
    assert_eq!(r["verdict"], "ok", "{r}");
    let uploaded = decode_png(r["image_base64"].as_str().unwrap());
    assert_eq!(
        uploaded,
        filter(&c, &b64, json!({"name": "negative"})).await
    );
    assert_eq!(
        uploaded.get_pixel(3, 2).0,
        [255 - 12, 255 - 10, 255 - 1, 255]
    );
    let again = c
        .run(json!({"kind": "image", "image_key": key, "filter": {"name": "flipx"}}))
        .await
        .unwrap();
    assert_eq!(again["verdict"], "ok", "{again}");

    let other = client(addr).await;
    let r = other
        .http
        .post(other.url("/task"))
        .bearer_auth(&other.token)
        .json(&task)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

pub async fn non_png_and_oversized_png_are_refused(addr: SocketAddr) {
    let c = client(addr).await;
    let gif = base64::engine::general_purpose::STANDARD
        .encode(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!");
    let mut header = std::io::Cursor::new(Vec::new());
    image::RgbaImage::new(2, 2)
        .write_to(&mut header, image::ImageFormat::Png)
        .unwrap();
    let mut huge = header.into_inner();
    huge[16..20].copy_from_slice(&8000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&8000u32.to_be_bytes());
    let huge = base64::engine::general_purpose::STANDARD.encode(&huge);
    for img in [gif, huge] {
        let r = c
            .http
            .post(c.url("/task"))
            .bearer_auth(&c.token)
            .json(&json!({"kind": "image", "image_base64": img, "filter": {"name": "negative"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
}

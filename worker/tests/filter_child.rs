//! Image filters in a child process under limits (`filters::child`): the worker binary
//! itself, started with `--filter`, under `prlimit` and a timeout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use codebox_core::domain::Filter;
use codebox_worker::filters::child::{ChildError, FilterLimits, run};
use image::{ImageBuffer, ImageFormat, Rgba};

fn limits(memory_mb: u64, secs: u64) -> FilterLimits {
    FilterLimits {
        program: env!("CARGO_BIN_EXE_codebox-worker").into(),
        memory_mb,
        time: Duration::from_secs(secs),
    }
}

fn png(img: image::DynamicImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The largest image the API accepts: 40 megapixels of 16-bit RGBA (320 MB decoded),
/// a compressible pattern so the PNG stays under 10 MiB. Made once for all tests.
fn forty_megapixels() -> Vec<u8> {
    static PNG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PNG.get_or_init(make_forty_megapixels).clone()
}

fn make_forty_megapixels() -> Vec<u8> {
    let (w, h) = (8000u32, 5000u32);
    let img = ImageBuffer::from_fn(w, h, |x, y| {
        Rgba([(x % 256) as u16 * 257, (y % 256) as u16 * 257, 1000, 65535])
    });
    let bytes = png(image::DynamicImage::ImageRgba16(img));
    assert!(
        bytes.len() < codebox_core::png::MAX_BYTES,
        "{} bytes",
        bytes.len()
    );
    bytes
}

#[tokio::test]
async fn a_filter_runs_in_a_child_and_its_refusals_come_back() {
    let small = png(image::DynamicImage::ImageRgba8(ImageBuffer::from_fn(
        3,
        2,
        |x, _| Rgba([x as u8 * 100, 0, 0, 255]),
    )));
    let out = run(&limits(512, 30), small, &Filter::Negative)
        .await
        .unwrap();
    let img = image::load_from_memory(&out).unwrap().to_rgba8();
    assert_eq!(img.get_pixel(1, 0).0, [155, 255, 255, 255]);
    match run(&limits(512, 30), b"not a png".to_vec(), &Filter::Flipx).await {
        Err(ChildError::Refused(reason)) => assert!(reason.contains("not a PNG"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

/// The largest accepted image filters within the default limits, and the same image
/// under a small memory limit ends with that reason: the child dies, this process (the
/// worker) does not.
#[tokio::test]
async fn forty_megapixels_of_16_bit_rgba_fit_the_limits_and_a_lower_limit_bites() {
    let big = forty_megapixels();
    let started = Instant::now();
    let out = run(
        &FilterLimits {
            ..limits(2048, 120)
        },
        big.clone(),
        &Filter::Negative,
    )
    .await
    .unwrap();
    assert_eq!(&out[..8], codebox_core::png::SIGNATURE.as_slice());
    eprintln!("40 MP 16-bit negative in a child: {:?}", started.elapsed());
    match run(&limits(256, 120), big, &Filter::Blur { sigma: 2.0 }).await {
        Err(ChildError::Limit(reason)) => {
            assert!(reason.contains("more than 256 MiB"), "{reason}")
        }
        other => panic!("{:?}", other.map(|v| v.len())),
    }
}

/// A filter that runs too long is killed at the time limit.
#[tokio::test]
async fn a_filter_over_its_time_is_stopped() {
    let big = forty_megapixels();
    let started = Instant::now();
    match run(&limits(2048, 1), big, &Filter::Blur { sigma: 50.0 }).await {
        Err(ChildError::Limit(reason)) => assert!(reason.contains("1 s"), "{reason}"),
        other => panic!("{:?}", other.map(|v| v.len())),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

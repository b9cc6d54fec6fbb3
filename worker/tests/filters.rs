//! The image filters through their public entry point, on PNGs made in memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use codebox_core::domain::Filter;
use codebox_worker::filters::{FilterError, apply};
use image::{
    DynamicImage, GenericImageView, GrayAlphaImage, GrayImage, ImageBuffer, ImageFormat, Luma,
    LumaA, Rgb, RgbImage, Rgba, RgbaImage,
};

fn encode(img: impl Into<DynamicImage>) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.into().write_to(&mut buf, ImageFormat::Png).unwrap();
    buf.into_inner()
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory_with_format(bytes, ImageFormat::Png).unwrap()
}

fn run(img: impl Into<DynamicImage>, filter: Filter) -> DynamicImage {
    decode(&apply(&encode(img), &filter).unwrap())
}

/// Odd width (so flipx has a middle column), varied colour and alpha.
fn sample() -> RgbaImage {
    RgbaImage::from_fn(7, 5, |x, y| {
        Rgba([
            x as u8 * 30,
            y as u8 * 40,
            10 + (x * y) as u8,
            100 + x as u8 * 20,
        ])
    })
}

#[test]
fn negative_of_a_known_pixel() {
    let mut img = sample();
    img.put_pixel(2, 3, Rgba([10, 20, 30, 255]));
    let out = run(img, Filter::Negative);
    assert!(matches!(out, DynamicImage::ImageRgba8(_)), "stays RGBA8");
    assert_eq!(out.to_rgba8().get_pixel(2, 3).0, [245, 235, 225, 255]);
}

#[test]
fn negative_keeps_alpha_and_twice_is_identity() {
    let img = sample();
    let once = run(img.clone(), Filter::Negative).to_rgba8();
    for (a, b) in img.pixels().zip(once.pixels()) {
        assert_eq!(b.0[3], a.0[3], "alpha kept");
        assert_eq!(b.0[0], 255 - a.0[0]);
    }
    let twice = run(once, Filter::Negative).to_rgba8();
    assert_eq!(twice, img);
}

#[test]
fn flipx_mirrors_and_twice_is_identity() {
    let img = sample();
    let (w, h) = img.dimensions();
    let out = run(img.clone(), Filter::Flipx).to_rgba8();
    assert_eq!(out.dimensions(), (w, h));
    for y in 0..h {
        for x in 0..w {
            assert_eq!(
                out.get_pixel(x, y),
                img.get_pixel(w - 1 - x, y),
                "({x},{y})"
            );
        }
    }
    assert_eq!(run(out, Filter::Flipx).to_rgba8(), img);
}

#[test]
fn flipx_and_negative_on_every_8_bit_layout() {
    let rgb = RgbImage::from_fn(4, 2, |x, y| Rgb([x as u8, y as u8, 200]));
    let out = run(rgb.clone(), Filter::Flipx);
    assert!(matches!(out, DynamicImage::ImageRgb8(_)));
    assert_eq!(out.to_rgb8().get_pixel(0, 1), rgb.get_pixel(3, 1));
    assert_eq!(
        run(rgb, Filter::Negative).to_rgb8().get_pixel(1, 0).0,
        [254, 255, 55]
    );

    let la = GrayAlphaImage::from_fn(3, 2, |x, _| LumaA([x as u8 * 100, 7 + x as u8]));
    let out = run(la.clone(), Filter::Negative);
    assert!(matches!(out, DynamicImage::ImageLumaA8(_)));
    assert_eq!(out.to_luma_alpha8().get_pixel(2, 0).0, [55, 9]);
    let out = run(la.clone(), Filter::Flipx).to_luma_alpha8();
    assert_eq!(out.get_pixel(0, 1), la.get_pixel(2, 1));
}

#[test]
fn grayscale_input_works_and_stays_grayscale() {
    let img = GrayImage::from_fn(3, 3, |x, _| Luma([x as u8 * 100]));
    let neg = run(img.clone(), Filter::Negative);
    assert!(matches!(neg, DynamicImage::ImageLuma8(_)));
    assert_eq!(neg.to_luma8().get_pixel(1, 0).0, [155]);
    let flip = run(img.clone(), Filter::Flipx).to_luma8();
    assert_eq!(flip.get_pixel(0, 2), img.get_pixel(2, 2));
    for filter in [Filter::Blur { sigma: 1.0 }, Filter::Sharpen { sigma: 1.0 }] {
        assert_eq!(run(img.clone(), filter).dimensions(), (3, 3));
    }
}

#[test]
fn sixteen_bit_stays_sixteen_bit() {
    let img: ImageBuffer<Rgba<u16>, Vec<u16>> = ImageBuffer::from_fn(3, 2, |x, y| {
        Rgba([1000 * x as u16, 300, 7 * y as u16, 40_000])
    });
    let neg = run(img.clone(), Filter::Negative);
    let DynamicImage::ImageRgba16(neg) = neg else {
        panic!("expected RGBA16, got {:?}", neg.color());
    };
    assert_eq!(neg.get_pixel(2, 1).0, [65535 - 2000, 65235, 65528, 40_000]);
    let flip = run(img.clone(), Filter::Flipx).into_rgba16();
    assert_eq!(flip.get_pixel(0, 0), img.get_pixel(2, 0));

    let grey: ImageBuffer<Luma<u16>, Vec<u16>> =
        ImageBuffer::from_fn(2, 2, |x, _| Luma([x as u16]));
    let out = run(grey, Filter::Negative);
    assert!(matches!(out, DynamicImage::ImageLuma16(_)));
    assert_eq!(out.into_luma16().get_pixel(1, 0).0, [65534]);
}

#[test]
fn blur_spreads_a_bright_pixel_and_keeps_dimensions() {
    let mut img = RgbaImage::from_pixel(9, 7, Rgba([0, 0, 0, 255]));
    img.put_pixel(4, 3, Rgba([255, 255, 255, 255]));
    let out = run(img, Filter::Blur { sigma: 1.5 }).to_rgba8();
    assert_eq!(out.dimensions(), (9, 7));
    assert!(out.get_pixel(4, 3).0[0] < 255, "centre dims");
    assert!(out.get_pixel(5, 3).0[0] > 0, "right neighbour lights up");
    assert!(out.get_pixel(4, 2).0[0] > 0, "upper neighbour lights up");
    assert_eq!(out.get_pixel(4, 3).0[3], 255, "opaque stays opaque");
}

#[test]
fn sharpen_raises_contrast_at_an_edge() {
    let img = GrayImage::from_fn(10, 4, |x, _| Luma([if x < 5 { 100 } else { 150 }]));
    let out = run(img, Filter::Sharpen { sigma: 1.0 }).to_luma8();
    assert_eq!(out.dimensions(), (10, 4));
    assert!(out.get_pixel(4, 1).0[0] < 100, "dark side gets darker");
    assert!(out.get_pixel(5, 1).0[0] > 150, "bright side gets brighter");
    assert_eq!(out.get_pixel(0, 1).0[0], 100, "flat area unchanged");
}

#[test]
fn blur_with_a_large_sigma_spreads_too() {
    // Above sigma 8 blur switches to `fast_blur`; it must still look like a blur.
    let mut img = RgbaImage::from_pixel(61, 41, Rgba([0, 0, 0, 255]));
    for (x, y) in [(30, 20), (31, 20), (30, 21), (31, 21)] {
        img.put_pixel(x, y, Rgba([255, 255, 255, 255]));
    }
    let out = run(img, Filter::Blur { sigma: 9.0 }).to_rgba8();
    assert_eq!(out.dimensions(), (61, 41));
    assert!(out.get_pixel(30, 20).0[0] < 255);
    assert!(
        out.get_pixel(36, 20).0[0] > 0,
        "spreads well beyond the bright block"
    );
    assert!(
        out.get_pixel(30, 20).0[0] >= out.get_pixel(40, 20).0[0],
        "falls off"
    );
    assert_eq!(out.get_pixel(0, 0).0[3], 255);
}

#[test]
fn sharpen_with_a_large_sigma_raises_contrast_too() {
    let img = GrayImage::from_fn(80, 4, |x, _| Luma([if x < 40 { 100 } else { 150 }]));
    let out = run(img, Filter::Sharpen { sigma: 12.0 }).to_luma8();
    assert_eq!(out.dimensions(), (80, 4));
    assert!(out.get_pixel(39, 1).0[0] < 100);
    assert!(out.get_pixel(40, 1).0[0] > 150);
}

#[test]
fn sharpen_matches_image_unsharpen_on_colour_and_keeps_alpha() {
    let img = RgbaImage::from_fn(40, 30, |x, y| {
        let v = if (x / 7 + y / 5) % 2 == 0 { 40 } else { 210 };
        Rgba([
            v,
            (x * 6) as u8,
            (y * 8) as u8,
            if x < 20 { 255 } else { 90 },
        ])
    });
    let out = run(img.clone(), Filter::Sharpen { sigma: 1.5 }).to_rgba8();
    let reference = image::imageops::unsharpen(&img, 1.5, 0);
    let mut max_diff = 0;
    for ((o, r), i) in out.pixels().zip(reference.pixels()).zip(img.pixels()) {
        assert_eq!(o.0[3], i.0[3], "alpha kept exactly");
        for c in 0..3 {
            max_diff = max_diff.max((i32::from(o.0[c]) - i32::from(r.0[c])).abs());
        }
    }
    // The two Gaussian code paths in `image` round differently, by 1 at most here.
    assert!(
        max_diff <= 2,
        "colour differs from imageops::unsharpen by {max_diff}"
    );
    assert_ne!(out, img, "something was sharpened");
}

#[test]
fn out_of_range_sigma_is_refused_not_a_panic() {
    let png = encode(sample());
    for sigma in [0.0, -1.0, f32::NAN, f32::INFINITY, 1000.0] {
        for filter in [Filter::Blur { sigma }, Filter::Sharpen { sigma }] {
            let err = apply(&png, &filter).unwrap_err();
            assert!(
                matches!(err, FilterError::InvalidParameter(_)),
                "{filter:?}: {err:?}"
            );
        }
    }
}

#[test]
fn non_png_is_refused() {
    let jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00 not a png";
    let gif =
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,";
    for bytes in [&jpeg[..], &gif[..], b"", b"\x89PNG"] {
        let err = apply(bytes, &Filter::Negative).unwrap_err();
        assert!(matches!(err, FilterError::NotPng(_)), "{err:?}");
        assert!(err.to_string().contains("PNG"), "{err}");
    }
}

#[test]
fn a_header_claiming_10000_by_10000_is_refused_before_decoding() {
    // A tiny valid PNG with its IHDR rewritten; decoding it would fail on the CRC, so a
    // TooLarge answer shows the header check ran first.
    let mut lying = encode(sample());
    lying[16..20].copy_from_slice(&10_000u32.to_be_bytes());
    lying[20..24].copy_from_slice(&10_000u32.to_be_bytes());
    let err = apply(&lying, &Filter::Flipx).unwrap_err();
    assert!(matches!(err, FilterError::TooLarge(_)), "{err:?}");
    assert!(err.to_string().contains("40000000"), "{err}");
}

#[test]
fn more_than_10_mib_is_too_large() {
    let mut big = encode(sample());
    big.resize(10 * 1024 * 1024 + 1, 0);
    let err = apply(&big, &Filter::Negative).unwrap_err();
    assert!(matches!(err, FilterError::TooLarge(_)), "{err:?}");
}

#[test]
fn truncated_or_corrupt_png_is_a_decode_error() {
    let good = encode(RgbaImage::from_fn(64, 64, |x, y| {
        Rgba([x as u8, y as u8, (x ^ y) as u8, 255])
    }));
    for cut in [40, good.len() / 2, good.len() - 13] {
        let err = apply(&good[..cut], &Filter::Negative).unwrap_err();
        assert!(
            matches!(err, FilterError::Decode(_)),
            "cut at {cut}: {err:?}"
        );
        assert!(err.to_string().contains("truncated"), "{err}");
    }
    let mut corrupt = good.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0xff;
    let err = apply(&corrupt, &Filter::Blur { sigma: 1.0 }).unwrap_err();
    assert!(matches!(err, FilterError::Decode(_)), "{err:?}");
    // User-facing: no decoder internals (chunk names, CRC values).
    let text = err.to_string();
    assert!(text.contains("corrupt"), "{text}");
    assert!(!text.contains("IDAT") && !text.contains("CRC"), "{text}");
}

/// Rough figures for each filter on a 2000×2000 RGBA image (decode + filter + encode), and
/// `blur` against `fast_blur` on the decoded image. Meaningful only optimised:
/// `cargo test -p codebox-worker --release --test filters -- --ignored --nocapture timing`
#[test]
#[ignore = "timing; run in release by hand"]
fn timing() {
    use std::time::Instant;

    let img = RgbaImage::from_fn(2000, 2000, |x, y| {
        Rgba([(x % 256) as u8, (y % 256) as u8, ((x * y) % 251) as u8, 255])
    });
    let png = encode(img.clone());
    println!("input PNG: {} KiB", png.len() / 1024);

    let time = |label: &str, f: &dyn Fn()| {
        f(); // warm up
        let runs = 3;
        let start = Instant::now();
        for _ in 0..runs {
            f();
        }
        println!(
            "{label:<40} {:>8.1} ms",
            start.elapsed().as_secs_f64() * 1000.0 / runs as f64
        );
    };
    time("decode only", &|| {
        let _ = decode(&png);
    });
    time("encode only (test helper, default settings)", &|| {
        let _ = encode(img.clone());
    });
    for filter in [
        Filter::Negative,
        Filter::Flipx,
        Filter::Blur { sigma: 1.0 },
        Filter::Blur { sigma: 8.0 },
        Filter::Blur { sigma: 50.0 },
        Filter::Sharpen { sigma: 1.0 },
        Filter::Sharpen { sigma: 8.0 },
        Filter::Sharpen { sigma: 50.0 },
    ] {
        time(&format!("apply {filter:?}"), &|| {
            apply(&png, &filter).unwrap();
        });
    }
    let dynamic = DynamicImage::ImageRgba8(img);
    for sigma in [1.0, 2.0, 8.0, 10.0, 50.0] {
        time(&format!("blur (Gaussian) sigma {sigma}"), &|| {
            let _ = dynamic.blur(sigma);
        });
        time(&format!("fast_blur (3 boxes) sigma {sigma}"), &|| {
            let _ = dynamic.fast_blur(sigma);
        });
    }
}

//! Image filters, run in-process on PNGs: `sharpen` and `blur` with the `image` crate,
//! `negative` and `flipx` by hand over the pixel buffer. CPU-bound and synchronous:
//! callers run them in `spawn_blocking`.

use std::io::Cursor;

use codebox_core::domain::Filter;
use codebox_core::png;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Why a filter produced no output. The texts are shown to users.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("{0}")]
    Refused(String),
    #[error("the PNG could not be decoded: {0}")]
    Decode(String),
    #[error("the output could not be encoded: {0}")]
    Encode(String),
}

/// Checks, decodes, filters and re-encodes one PNG.
pub fn apply(bytes: &[u8], filter: &Filter) -> Result<Vec<u8>, FilterError> {
    // Header checks first: nothing is decoded from a file that is not a PNG or too large.
    let (width, height) = png::check(bytes).map_err(|e| FilterError::Refused(e.to_string()))?;
    let mut reader = ImageReader::with_format(Cursor::new(bytes), ImageFormat::Png);
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // 16-bit RGBA is the widest a PNG decodes to.
    limits.max_alloc = Some(png::MAX_PIXELS * 8 + (1 << 20));
    reader.limits(limits);
    let img = reader
        .decode()
        .map_err(|e| FilterError::Decode(short(&e.to_string())))?;
    let out = match *filter {
        Filter::Blur { sigma } => img.blur(sigma),
        Filter::Sharpen { sigma } => img.unsharpen(sigma, 0),
        Filter::Negative => negative(img),
        Filter::Flipx => flipx(img),
    };
    let mut buf = Cursor::new(Vec::new());
    out.write_to(&mut buf, ImageFormat::Png)
        .map_err(|e| FilterError::Encode(short(&e.to_string())))?;
    Ok(buf.into_inner())
}

fn short(s: &str) -> String {
    s.chars().take(200).collect()
}

/// Inverts the colour channels, keeps alpha. 8-bit images stay 8-bit, others go 16-bit.
fn negative(img: DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageLuma8(mut b) => {
            b.pixels_mut().for_each(|p| p.0[0] = 255 - p.0[0]);
            DynamicImage::ImageLuma8(b)
        }
        DynamicImage::ImageLumaA8(mut b) => {
            b.pixels_mut().for_each(|p| p.0[0] = 255 - p.0[0]);
            DynamicImage::ImageLumaA8(b)
        }
        DynamicImage::ImageRgb8(mut b) => {
            b.pixels_mut()
                .for_each(|p| p.0.iter_mut().for_each(|c| *c = 255 - *c));
            DynamicImage::ImageRgb8(b)
        }
        DynamicImage::ImageRgba8(mut b) => {
            b.pixels_mut()
                .for_each(|p| p.0[..3].iter_mut().for_each(|c| *c = 255 - *c));
            DynamicImage::ImageRgba8(b)
        }
        other => {
            let mut b = other.into_rgba16();
            b.pixels_mut()
                .for_each(|p| p.0[..3].iter_mut().for_each(|c| *c = u16::MAX - *c));
            DynamicImage::ImageRgba16(b)
        }
    }
}

/// Mirrors left and right, row by row, in place.
fn flipx(img: DynamicImage) -> DynamicImage {
    fn mirror<P: image::Pixel>(b: &mut image::ImageBuffer<P, Vec<P::Subpixel>>) {
        let (w, h) = b.dimensions();
        for y in 0..h {
            for x in 0..w / 2 {
                let left = *b.get_pixel(x, y);
                let right = *b.get_pixel(w - 1 - x, y);
                b.put_pixel(x, y, right);
                b.put_pixel(w - 1 - x, y, left);
            }
        }
    }
    match img {
        DynamicImage::ImageLuma8(mut b) => {
            mirror(&mut b);
            DynamicImage::ImageLuma8(b)
        }
        DynamicImage::ImageLumaA8(mut b) => {
            mirror(&mut b);
            DynamicImage::ImageLumaA8(b)
        }
        DynamicImage::ImageRgb8(mut b) => {
            mirror(&mut b);
            DynamicImage::ImageRgb8(b)
        }
        DynamicImage::ImageRgba8(mut b) => {
            mirror(&mut b);
            DynamicImage::ImageRgba8(b)
        }
        other => {
            let mut b = other.into_rgba16();
            mirror(&mut b);
            DynamicImage::ImageRgba16(b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgba, RgbaImage};

    fn encode(img: DynamicImage) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        img.write_to(&mut buf, ImageFormat::Png).unwrap();
        buf.into_inner()
    }

    fn decode(bytes: &[u8]) -> DynamicImage {
        image::load_from_memory_with_format(bytes, ImageFormat::Png).unwrap()
    }

    fn sample() -> RgbaImage {
        RgbaImage::from_fn(7, 5, |x, y| {
            Rgba([x as u8 * 30, y as u8 * 40, 10, 200 + x as u8])
        })
    }

    #[test]
    fn negative_inverts_colour_and_keeps_alpha() {
        let mut img = sample();
        img.put_pixel(2, 3, Rgba([10, 20, 30, 255]));
        let out =
            decode(&apply(&encode(img.clone().into()), &Filter::Negative).unwrap()).to_rgba8();
        assert_eq!(out.get_pixel(2, 3).0, [245, 235, 225, 255]);
        let back = decode(&apply(&encode(out.into()), &Filter::Negative).unwrap()).to_rgba8();
        assert_eq!(back, img);
    }

    #[test]
    fn flipx_mirrors_and_twice_is_identity() {
        let img = sample();
        let out = decode(&apply(&encode(img.clone().into()), &Filter::Flipx).unwrap()).to_rgba8();
        for y in 0..5 {
            assert_eq!(out.get_pixel(0, y), img.get_pixel(6, y));
            assert_eq!(out.get_pixel(3, y), img.get_pixel(3, y));
        }
        let back = decode(&apply(&encode(out.into()), &Filter::Flipx).unwrap()).to_rgba8();
        assert_eq!(back, img);
    }

    #[test]
    fn blur_spreads_a_bright_pixel() {
        let mut img = GrayImage::new(9, 9);
        img.put_pixel(4, 4, Luma([255]));
        let out =
            decode(&apply(&encode(img.into()), &Filter::Blur { sigma: 1.5 }).unwrap()).to_luma8();
        assert_eq!(out.dimensions(), (9, 9));
        assert!(out.get_pixel(4, 4).0[0] < 255);
        assert!(out.get_pixel(5, 4).0[0] > 0);
    }

    #[test]
    fn sharpen_raises_contrast_at_an_edge() {
        let img = GrayImage::from_fn(10, 4, |x, _| Luma([if x < 5 { 100 } else { 150 }]));
        let out = decode(&apply(&encode(img.into()), &Filter::Sharpen { sigma: 1.0 }).unwrap())
            .to_luma8();
        assert!(out.get_pixel(4, 1).0[0] < 100, "dark side gets darker");
        assert!(out.get_pixel(5, 1).0[0] > 150, "bright side gets brighter");
    }

    #[test]
    fn grayscale_negative_stays_grayscale() {
        let img = GrayImage::from_fn(3, 3, |x, _| Luma([x as u8 * 100]));
        let out = decode(&apply(&encode(img.into()), &Filter::Negative).unwrap());
        assert_eq!(out.to_luma8().get_pixel(1, 0).0, [155]);
    }

    #[test]
    fn refuses_non_png_lying_headers_and_truncation() {
        assert!(matches!(
            apply(
                b"\xff\xd8\xff\xe0 a jpeg, not a png at all.......",
                &Filter::Negative
            ),
            Err(FilterError::Refused(_))
        ));
        let mut lying = encode(sample().into());
        lying[16..20].copy_from_slice(&10_000u32.to_be_bytes());
        lying[20..24].copy_from_slice(&10_000u32.to_be_bytes());
        assert!(matches!(
            apply(&lying, &Filter::Negative),
            Err(FilterError::Refused(_))
        ));
        let good = encode(sample().into());
        assert!(matches!(
            apply(&good[..good.len() / 2], &Filter::Negative),
            Err(FilterError::Decode(_))
        ));
    }
}

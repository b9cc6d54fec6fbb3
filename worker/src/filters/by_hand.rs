//! `negative` and `flipx`, written by hand over the raw sample buffer of the decoded image
//! (no `imageops::invert` / `flip_horizontal`).
//!
//! Both work in place on whatever colour type the PNG decoded to — 8 or 16 bits; grey,
//! grey + alpha, RGB, RGBA — so nothing is converted and alpha is kept. Only a colour type
//! a PNG never decodes to (32-bit float) is first turned into 16-bit RGBA.

use std::ops::Not;

use image::{DynamicImage, ImageBuffer, Pixel};

/// Inverts the colour channels and keeps alpha: `c → MAX − c` on each colour sample.
pub(super) fn negative(img: DynamicImage) -> DynamicImage {
    in_place(img, Negative)
}

/// Mirrors the image left ↔ right: pixel `(x, y)` becomes pixel `(w − 1 − x, y)`.
pub(super) fn flipx(img: DynamicImage) -> DynamicImage {
    in_place(img, FlipX)
}

/// An in-place operation on an interleaved sample buffer, for any unsigned sample type.
trait SampleOp {
    /// `samples` holds rows of `width` pixels of `channels` samples each, the first
    /// `colour` of which are colour (the rest, if any, alpha).
    fn run<T: Copy + Not<Output = T>>(
        &self,
        samples: &mut [T],
        width: usize,
        channels: usize,
        colour: usize,
    );
}

struct Negative;

impl SampleOp for Negative {
    fn run<T: Copy + Not<Output = T>>(
        &self,
        samples: &mut [T],
        _width: usize,
        channels: usize,
        colour: usize,
    ) {
        // For unsigned integers `!c == MAX - c` (255 − c for u8, 65535 − c for u16).
        for pixel in samples.chunks_exact_mut(channels) {
            for c in &mut pixel[..colour] {
                *c = !*c;
            }
        }
    }
}

struct FlipX;

impl SampleOp for FlipX {
    fn run<T: Copy + Not<Output = T>>(
        &self,
        samples: &mut [T],
        width: usize,
        channels: usize,
        _colour: usize,
    ) {
        let row_len = width * channels;
        if row_len == 0 {
            return;
        }
        for row in samples.chunks_exact_mut(row_len) {
            // Reversing the row's samples puts the pixels in mirrored order but also
            // reverses the channels inside each pixel; reversing each pixel undoes that.
            row.reverse();
            for pixel in row.chunks_exact_mut(channels) {
                pixel.reverse();
            }
        }
    }
}

/// Runs `op` on the image's own buffer, whatever its colour type.
fn in_place(img: DynamicImage, op: impl SampleOp) -> DynamicImage {
    fn go<P, O>(
        mut buf: ImageBuffer<P, Vec<P::Subpixel>>,
        op: &O,
    ) -> ImageBuffer<P, Vec<P::Subpixel>>
    where
        P: Pixel,
        P::Subpixel: Not<Output = P::Subpixel>,
        O: SampleOp,
    {
        let width = buf.width() as usize;
        let channels = usize::from(P::CHANNEL_COUNT);
        // Grey + alpha and RGBA carry alpha in their last channel.
        let colour = if P::HAS_ALPHA { channels - 1 } else { channels };
        op.run(&mut buf, width, channels, colour);
        buf
    }

    match img {
        DynamicImage::ImageLuma8(b) => DynamicImage::ImageLuma8(go(b, &op)),
        DynamicImage::ImageLumaA8(b) => DynamicImage::ImageLumaA8(go(b, &op)),
        DynamicImage::ImageRgb8(b) => DynamicImage::ImageRgb8(go(b, &op)),
        DynamicImage::ImageRgba8(b) => DynamicImage::ImageRgba8(go(b, &op)),
        DynamicImage::ImageLuma16(b) => DynamicImage::ImageLuma16(go(b, &op)),
        DynamicImage::ImageLumaA16(b) => DynamicImage::ImageLumaA16(go(b, &op)),
        DynamicImage::ImageRgb16(b) => DynamicImage::ImageRgb16(go(b, &op)),
        DynamicImage::ImageRgba16(b) => DynamicImage::ImageRgba16(go(b, &op)),
        // Float images never come out of the PNG decoder; keep alpha, stay PNG-encodable.
        other => DynamicImage::ImageRgba16(go(other.into_rgba16(), &op)),
    }
}

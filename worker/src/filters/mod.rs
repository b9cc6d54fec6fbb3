//! Image filters on PNGs (run by the worker in a child process, see [`child`]): `blur` and `sharpen` with the `image` crate's
//! Gaussians (`blur.rs`), `negative` and `flipx` by hand over the pixel buffer (`by_hand.rs`).
//!
//! [`apply`] is CPU-bound and synchronous: callers run it in `spawn_blocking`.
//!
//! The steps, in order:
//! 1. [`codebox_core::png::check`] reads the signature and the IHDR chunk and refuses
//!    anything that is not a PNG, is over 10 MiB or over 40 megapixels — before a single
//!    pixel is decoded.
//! 2. The decoder runs under [`image::Limits`] derived from those checked dimensions: width
//!    and height capped at the header's values and `max_alloc` at what the widest PNG
//!    colour type (16-bit RGBA, 8 bytes a pixel) needs for that many pixels, plus a little
//!    room for metadata. A header that lies cannot make the decoder allocate more.
//! 3. The filter runs on the colour type the PNG decoded to (8 or 16 bits; grey, grey +
//!    alpha, RGB, RGBA): nothing is converted, alpha is kept, 16-bit stays 16-bit.
//! 4. The result is encoded as PNG with fast compression.
//!
//! Blur uses the exact Gaussian up to sigma 8 and `fast_blur` above it; `blur.rs` has the
//! measurements behind that choice (the ignored `timing` test in `worker/tests/filters.rs`
//! reproduces them).

mod blur;
mod by_hand;
pub mod child;

use codebox_core::png;
use codebox_core::tasks::SIGMA_RANGE;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageError, ImageFormat, ImageReader, Limits};

/// Why a filter produced no output. The texts are shown to users: they say what is wrong
/// with the input and never carry paths, decoder internals or byte offsets.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// Not a PNG, or its header is malformed (refused before decoding).
    #[error("{0}")]
    NotPng(String),
    /// Over the byte or pixel limit (refused before decoding), or needing more memory to
    /// decode than such an image may.
    #[error("{0}")]
    TooLarge(String),
    /// The header was fine but the image data could not be decoded (truncated, corrupt).
    #[error("the PNG could not be decoded: {0}")]
    Decode(String),
    /// A filter parameter outside what the API accepts (e.g. a sigma out of range).
    #[error("{0}")]
    InvalidParameter(String),
    /// The filtered image could not be written as PNG.
    #[error("the filtered image could not be encoded: {0}")]
    Encode(String),
}

/// Room above the pixel buffer for what the PNG decoder allocates besides it: row buffers,
/// text chunks, an ICC profile.
const DECODER_SLACK_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes per pixel of the widest colour type a PNG decodes to (16-bit RGBA).
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// Checks, decodes, filters and re-encodes one PNG.
pub fn apply(
    png_bytes: &[u8],
    filter: &codebox_core::domain::Filter,
) -> Result<Vec<u8>, FilterError> {
    use codebox_core::domain::Filter;

    // Before anything is decoded: the parameters, then the header.
    if let Filter::Blur { sigma } | Filter::Sharpen { sigma } = *filter {
        check_sigma(sigma)?;
    }
    let (width, height) = png::check(png_bytes).map_err(|e| refusal(png_bytes, e))?;
    let img = decode(png_bytes, width, height)?;
    let out = match *filter {
        Filter::Blur { sigma } => blur::blur(&img, sigma),
        Filter::Sharpen { sigma } => blur::sharpen(&img, sigma),
        Filter::Negative => by_hand::negative(img),
        Filter::Flipx => by_hand::flipx(img),
    };
    encode(&out)
}

/// Sigma must be in the API's range: `image` panics on zero, negative or non-finite values,
/// and the Gaussian's cost grows with it. Messages from the queue are checked again here.
fn check_sigma(sigma: f32) -> Result<(), FilterError> {
    if SIGMA_RANGE.contains(&sigma) {
        Ok(())
    } else {
        Err(FilterError::InvalidParameter(format!(
            "filter.parameters.sigma must be {} to {}",
            SIGMA_RANGE.start(),
            SIGMA_RANGE.end()
        )))
    }
}

/// Sorts a refusal of [`png::check`] into "too large" or "not a PNG", keeping its text
/// (which is written for users).
fn refusal(bytes: &[u8], err: codebox_core::Error) -> FilterError {
    let message = match err {
        codebox_core::Error::TooLarge(m) => return FilterError::TooLarge(m),
        codebox_core::Error::Invalid(m) => m,
        _ => "the image is not a valid PNG".to_owned(),
    };
    if over_limits(bytes) {
        FilterError::TooLarge(message)
    } else {
        FilterError::NotPng(message)
    }
}

/// Whether the input is over the byte limit, or has a well-formed IHDR claiming more
/// pixels than allowed.
fn over_limits(bytes: &[u8]) -> bool {
    if bytes.len() > png::MAX_BYTES {
        return true;
    }
    let be = |at: usize| -> Option<u64> {
        let b: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        Some(u64::from(u32::from_be_bytes(b)))
    };
    bytes.starts_with(&png::SIGNATURE)
        && bytes.get(12..16) == Some(b"IHDR".as_slice())
        && matches!((be(16), be(20)), (Some(w), Some(h)) if w * h > png::MAX_PIXELS)
}

fn decode(bytes: &[u8], width: u32, height: u32) -> Result<DynamicImage, FilterError> {
    let mut limits = Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    // `check` bounded width × height by 40 MP, so this is at most 320 MB + slack.
    limits.max_alloc =
        Some(u64::from(width) * u64::from(height) * MAX_BYTES_PER_PIXEL + DECODER_SLACK_BYTES);
    let mut reader = ImageReader::with_format(std::io::Cursor::new(bytes), ImageFormat::Png);
    reader.limits(limits);
    reader.decode().map_err(|e| {
        tracing::debug!(error = %e, "PNG decode failed");
        decode_error(&e)
    })
}

/// A user-facing reason for a decoding failure; the decoder's own text (chunk names, CRCs,
/// offsets) goes to the debug log only.
fn decode_error(err: &ImageError) -> FilterError {
    match err {
        ImageError::Limits(_) => {
            FilterError::TooLarge("the image needs more memory to decode than allowed".into())
        }
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            FilterError::Decode("the data ends early (truncated file)".into())
        }
        ImageError::Unsupported(_) => {
            FilterError::Decode("it uses a PNG feature that is not supported".into())
        }
        _ => FilterError::Decode("the image data is corrupt".into()),
    }
}

fn encode(img: &DynamicImage) -> Result<Vec<u8>, FilterError> {
    let mut out = Vec::new();
    let encoder =
        PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive);
    img.write_with_encoder(encoder).map_err(|e| {
        tracing::warn!(error = %e, "PNG encode failed");
        FilterError::Encode("internal error while writing the PNG".into())
    })?;
    Ok(out)
}

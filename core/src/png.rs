//! PNG checks done before any decoding: signature, header and dimensions.

use crate::error::{Error, Result};

pub const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
pub const MAX_BYTES: usize = 10 * 1024 * 1024;
pub const MAX_PIXELS: u64 = 40_000_000;

/// Width and height from the IHDR chunk, refusing anything that is not a PNG or is larger
/// than the limits, without decoding a pixel.
pub fn check(bytes: &[u8]) -> Result<(u32, u32)> {
    if bytes.len() > MAX_BYTES {
        return Err(Error::Invalid(format!(
            "the image is {} bytes; at most {MAX_BYTES} are accepted",
            bytes.len()
        )));
    }
    if bytes.len() < 33 || bytes[..8] != SIGNATURE {
        return Err(Error::Invalid("the image is not a PNG".into()));
    }
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if be(8) != 13 || &bytes[12..16] != b"IHDR" {
        return Err(Error::Invalid("the PNG has no valid IHDR header".into()));
    }
    let (width, height) = (be(16), be(20));
    if width == 0 || height == 0 {
        return Err(Error::Invalid("the PNG has a zero dimension".into()));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_PIXELS {
        return Err(Error::Invalid(format!(
            "the image is {width}×{height} = {pixels} pixels; at most {MAX_PIXELS} are accepted"
        )));
    }
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(w: u32, h: u32) -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.extend_from_slice(&13u32.to_be_bytes());
        v.extend_from_slice(b"IHDR");
        v.extend_from_slice(&w.to_be_bytes());
        v.extend_from_slice(&h.to_be_bytes());
        v.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        v
    }

    #[test]
    fn reads_dimensions() {
        assert_eq!(check(&header(640, 480)).unwrap(), (640, 480));
    }

    #[test]
    fn refuses_non_png_and_oversized() {
        assert!(check(b"GIF89a............................").is_err());
        assert!(check(&header(10_000, 10_000)).is_err());
        assert!(check(&header(0, 5)).is_err());
        assert!(check(&header(u32::MAX, u32::MAX)).is_err());
    }
}

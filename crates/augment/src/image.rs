//! Images: HWC pixel buffers over `u8`, `u16` or `f32`, with 1, 3 or 4 channels, decoded and
//! encoded through the `image` crate (RGB order, always).

use std::path::Path;

use crate::{AugmentError, Result};

/// A pixel value type. Integer types saturate; `f32` images hold values in `[0, 1]`.
pub trait Pixel:
    Copy + Default + PartialEq + PartialOrd + Send + Sync + std::fmt::Debug + 'static
{
    /// The value of full intensity (255, 65535 or 1.0).
    const MAX: f32;
    /// The type's name, for messages.
    const NAME: &'static str;
    /// The value as `f32`, unscaled.
    fn to_f32(self) -> f32;
    /// From `f32`, rounded to nearest and clamped to the type's range (identity for `f32`).
    fn from_f32(v: f32) -> Self;
    /// From `f32`, truncated toward zero and clamped (OpenCV/albucore's rounding for
    /// multiplications on `u8`).
    fn from_f32_trunc(v: f32) -> Self;
    /// The values as bytes when the type is `u8` (for byte-level kernels), else `None`.
    fn as_u8(values: &[Self]) -> Option<&[u8]> {
        let _ = values;
        None
    }
    /// As [`Pixel::as_u8`], mutable.
    fn as_u8_mut(values: &mut [Self]) -> Option<&mut [u8]> {
        let _ = values;
        None
    }
}

impl Pixel for u8 {
    const MAX: f32 = 255.0;
    const NAME: &'static str = "u8";
    #[inline]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        // `as` truncates toward zero, saturates and maps NaN to 0: for v ≥ −0.5 this is
        // round-half-up, and anything below rounds to 0 either way (no libm `floor` call).
        (v + 0.5) as u8
    }
    #[inline]
    fn from_f32_trunc(v: f32) -> Self {
        v as u8
    }
    fn as_u8(values: &[u8]) -> Option<&[u8]> {
        Some(values)
    }
    fn as_u8_mut(values: &mut [u8]) -> Option<&mut [u8]> {
        Some(values)
    }
}

impl Pixel for u16 {
    const MAX: f32 = 65535.0;
    const NAME: &'static str = "u16";
    #[inline]
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        (v + 0.5) as u16
    }
    #[inline]
    fn from_f32_trunc(v: f32) -> Self {
        v as u16
    }
}

impl Pixel for f32 {
    const MAX: f32 = 1.0;
    const NAME: &'static str = "f32";
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
    #[inline]
    fn from_f32(v: f32) -> Self {
        v
    }
    #[inline]
    fn from_f32_trunc(v: f32) -> Self {
        v
    }
}

/// An image of one pixel type: `height × width × channels` values, row-major, channels last.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBuf<P> {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<P>,
}

impl<P: Pixel> ImageBuf<P> {
    /// An image from its pixels; fails on a zero size, an unsupported channel count or a
    /// buffer of the wrong length.
    pub fn new(width: usize, height: usize, channels: usize, data: Vec<P>) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(AugmentError::Image(format!(
                "zero-sized image {width}×{height}"
            )));
        }
        if !matches!(channels, 1 | 3 | 4) {
            return Err(AugmentError::Image(format!(
                "{channels} channels; expected 1, 3 or 4"
            )));
        }
        if data.len() != width * height * channels {
            return Err(AugmentError::Image(format!(
                "{} values for {width}×{height}×{channels} (= {})",
                data.len(),
                width * height * channels
            )));
        }
        Ok(Self {
            width,
            height,
            channels,
            data,
        })
    }

    /// An image filled with `value`.
    pub fn filled(width: usize, height: usize, channels: usize, value: P) -> Result<Self> {
        Self::new(
            width,
            height,
            channels,
            vec![value; width * height * channels],
        )
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }
    /// Channels per pixel.
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// The pixel values, HWC.
    pub fn data(&self) -> &[P] {
        &self.data
    }
    /// The pixel values, HWC, mutable.
    pub fn data_mut(&mut self) -> &mut [P] {
        &mut self.data
    }
    /// The pixel buffer.
    pub fn into_data(self) -> Vec<P> {
        self.data
    }
    /// The values of pixel `(x, y)`.
    pub fn pixel(&self, x: usize, y: usize) -> &[P] {
        let i = (y * self.width + x) * self.channels;
        &self.data[i..i + self.channels]
    }
    /// Row `y`, all channels.
    pub fn row(&self, y: usize) -> &[P] {
        let n = self.width * self.channels;
        &self.data[y * n..(y + 1) * n]
    }
    /// A same-typed image of another size and channel count, from a buffer built by an op.
    pub(crate) fn with_data(width: usize, height: usize, channels: usize, data: Vec<P>) -> Self {
        debug_assert_eq!(data.len(), width * height * channels);
        Self {
            width,
            height,
            channels,
            data,
        }
    }
}

/// An image of any supported pixel type.
#[derive(Debug, Clone, PartialEq)]
pub enum Image {
    /// 8-bit.
    U8(ImageBuf<u8>),
    /// 16-bit.
    U16(ImageBuf<u16>),
    /// Float in `[0, 1]`.
    F32(ImageBuf<f32>),
}

/// Runs `$body` with `$buf` bound to the typed buffer of an [`Image`] and wraps a returned
/// buffer back into the same variant: `map_image!(img, buf => op(buf))`.
#[macro_export]
macro_rules! map_image {
    ($image:expr, $buf:ident => $body:expr) => {
        match $image {
            $crate::Image::U8($buf) => $crate::Image::U8($body),
            $crate::Image::U16($buf) => $crate::Image::U16($body),
            $crate::Image::F32($buf) => $crate::Image::F32($body),
        }
    };
}

/// Runs `$body` with `$buf` bound to the typed buffer of an [`Image`] and returns its value
/// unchanged: `with_image!(img, buf => buf.width())`.
#[macro_export]
macro_rules! with_image {
    ($image:expr, $buf:ident => $body:expr) => {
        match $image {
            $crate::Image::U8($buf) => $body,
            $crate::Image::U16($buf) => $body,
            $crate::Image::F32($buf) => $body,
        }
    };
}

impl Image {
    /// Width in pixels.
    pub fn width(&self) -> usize {
        with_image!(self, b => b.width())
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        with_image!(self, b => b.height())
    }
    /// Channels per pixel.
    pub fn channels(&self) -> usize {
        with_image!(self, b => b.channels())
    }
    /// The pixel type's name.
    pub fn pixel_type(&self) -> &'static str {
        match self {
            Image::U8(_) => "u8",
            Image::U16(_) => "u16",
            Image::F32(_) => "f32",
        }
    }

    /// Decodes a file with the `image` crate: 8-bit and 16-bit stay as they are, float formats
    /// become `f32`; gray stays 1 channel, gray+alpha becomes RGBA. A file that cannot be
    /// decoded is an error naming it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let decoded = image::ImageReader::open(path)
            .and_then(|r| r.with_guessed_format())
            .map_err(|e| AugmentError::Decode {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?
            .decode()
            .map_err(|e| AugmentError::Decode {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(Self::from_dynamic(decoded))
    }

    /// Decodes an in-memory encoded image (PNG, JPEG, …).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let decoded = image::load_from_memory(bytes).map_err(|e| AugmentError::Decode {
            path: "<memory>".into(),
            message: e.to_string(),
        })?;
        Ok(Self::from_dynamic(decoded))
    }

    /// From an `image` crate image, keeping bit depth; always RGB(A) order.
    pub fn from_dynamic(img: image::DynamicImage) -> Self {
        use image::DynamicImage as D;
        let (w, h) = (img.width() as usize, img.height() as usize);
        match img {
            D::ImageLuma8(b) => Image::U8(ImageBuf::with_data(w, h, 1, b.into_raw())),
            D::ImageRgb8(b) => Image::U8(ImageBuf::with_data(w, h, 3, b.into_raw())),
            D::ImageRgba8(b) => Image::U8(ImageBuf::with_data(w, h, 4, b.into_raw())),
            D::ImageLumaA8(_) => Image::U8(ImageBuf::with_data(w, h, 4, img.to_rgba8().into_raw())),
            D::ImageLuma16(b) => Image::U16(ImageBuf::with_data(w, h, 1, b.into_raw())),
            D::ImageRgb16(b) => Image::U16(ImageBuf::with_data(w, h, 3, b.into_raw())),
            D::ImageRgba16(b) => Image::U16(ImageBuf::with_data(w, h, 4, b.into_raw())),
            D::ImageLumaA16(_) => {
                Image::U16(ImageBuf::with_data(w, h, 4, img.to_rgba16().into_raw()))
            }
            D::ImageRgb32F(b) => Image::F32(ImageBuf::with_data(w, h, 3, b.into_raw())),
            D::ImageRgba32F(b) => Image::F32(ImageBuf::with_data(w, h, 4, b.into_raw())),
            other => Image::U8(ImageBuf::with_data(w, h, 3, other.to_rgb8().into_raw())),
        }
    }

    /// As an `image` crate image (f32 images become 8-bit for formats without float).
    pub fn to_dynamic(&self) -> image::DynamicImage {
        use image::{DynamicImage as D, ImageBuffer};
        let (w, h) = (self.width() as u32, self.height() as u32);
        match (self, self.channels()) {
            (Image::U8(b), 1) => {
                D::ImageLuma8(ImageBuffer::from_raw(w, h, b.data().to_vec()).expect("size"))
            }
            (Image::U8(b), 3) => {
                D::ImageRgb8(ImageBuffer::from_raw(w, h, b.data().to_vec()).expect("size"))
            }
            (Image::U8(b), _) => {
                D::ImageRgba8(ImageBuffer::from_raw(w, h, b.data().to_vec()).expect("size"))
            }
            (Image::U16(b), 1) => {
                D::ImageLuma16(ImageBuffer::from_raw(w, h, b.data().to_vec()).expect("size"))
            }
            (Image::U16(b), 3) => {
                D::ImageRgb16(ImageBuffer::from_raw(w, h, b.data().to_vec()).expect("size"))
            }
            (Image::U16(b), _) => {
                D::ImageRgba16(ImageBuffer::from_raw(w, h, b.data().to_vec()).expect("size"))
            }
            (Image::F32(b), _) => {
                let u8s = b
                    .data()
                    .iter()
                    .map(|&v| u8::from_f32(v * 255.0))
                    .collect::<Vec<_>>();
                Image::U8(ImageBuf::with_data(
                    b.width(),
                    b.height(),
                    b.channels(),
                    u8s,
                ))
                .to_dynamic()
            }
        }
    }

    /// Encodes to a file, by extension (PNG keeps 16-bit).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        self.to_dynamic()
            .save(path)
            .map_err(|e| AugmentError::Encode {
                path: path.to_path_buf(),
                message: e.to_string(),
            })
    }

    /// The image as `f32` in `[0, 1]` (integer types divided by their maximum).
    pub fn to_f32(&self) -> ImageBuf<f32> {
        with_image!(self, b => {
            let scale = 1.0 / b_max(b);
            ImageBuf::with_data(
                b.width(),
                b.height(),
                b.channels(),
                b.data().iter().map(|v| v.to_f32() * scale).collect(),
            )
        })
    }
}

fn b_max<P: Pixel>(_: &ImageBuf<P>) -> f32 {
    P::MAX
}

impl From<ImageBuf<u8>> for Image {
    fn from(b: ImageBuf<u8>) -> Self {
        Image::U8(b)
    }
}
impl From<ImageBuf<u16>> for Image {
    fn from(b: ImageBuf<u16>) -> Self {
        Image::U16(b)
    }
}
impl From<ImageBuf<f32>> for Image {
    fn from(b: ImageBuf<f32>) -> Self {
        Image::F32(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_sized_and_wrong_length_images_are_refused() {
        assert!(
            ImageBuf::<u8>::new(0, 4, 3, vec![])
                .unwrap_err()
                .to_string()
                .contains("zero-sized")
        );
        let err = ImageBuf::<u8>::new(2, 2, 3, vec![0; 11])
            .unwrap_err()
            .to_string();
        assert!(err.contains("11 values for 2×2×3 (= 12)"), "{err}");
        assert!(
            ImageBuf::<u8>::new(2, 2, 2, vec![0; 8])
                .unwrap_err()
                .to_string()
                .contains("2 channels")
        );
    }

    #[test]
    fn a_corrupt_file_names_itself() {
        let dir = std::env::temp_dir().join("kindling-augment-corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broken.png");
        std::fs::write(&path, b"\x89PNG\r\n\x1a\nnot really").unwrap();
        let err = Image::open(&path).unwrap_err().to_string();
        assert!(err.contains("broken.png"), "{err}");
    }

    #[test]
    fn png_round_trip_keeps_rgb_order_and_depth() {
        let img = Image::U16(ImageBuf::new(2, 1, 3, vec![65535, 0, 0, 0, 0, 1000]).unwrap());
        let dir = std::env::temp_dir().join("kindling-augment-png");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rt.png");
        img.save(&path).unwrap();
        assert_eq!(Image::open(&path).unwrap(), img);
    }
}

//! The augmenters, one file per family (the pixel kernels they share are in
//! `crate::kernels`). Each op is a serde struct (its options) implementing
//! [`Op`](crate::Op): `sample` draws the parameters, `apply` transforms the image and, for
//! geometric ops, every target with the same parameters.

mod affine;
mod blur;
mod color;
mod contrast;
mod convolve;
mod crop;
mod crop_window;
mod distort;
mod dropout;
mod elastic;
mod flip;
mod intensity;
mod jpeg;
mod noise;
mod normalize;
mod pad_if_needed;
mod piecewise_affine;
mod resize;

pub use crate::kernels::box_filter::box_filter;
pub use crate::kernels::filter::{FilterPixel, filter2d, gaussian_kernel, sep_filter2d};
pub use crate::kernels::median::median_filter;
pub use crate::kernels::warp::{Fill, Interpolation};
pub use affine::{
    Affine, AffineParams, AxisParam, Rot90, Rotate, RotateParams, XyParam, affine_matrix,
    rot90_buf, rotation_matrix,
};
pub use blur::{
    AverageBlur, GaussianBlur, MedianBlur, MotionBlur, MotionBlurParams, motion_kernel,
};
pub use color::{
    AddToHueAndSaturation, BrightnessParams, BrightnessSpace, ChannelShuffle, Grayscale,
    HueSaturation, MultiplyBrightness,
};
pub use contrast::{Clahe, GammaContrast, HistogramEqualization, LinearContrast};
pub use convolve::{Emboss, KernelBlend, Sharpen, emboss_kernel, sharpen_kernel};
pub use crop::{Crop, CropAndPad, CropPadParams, NamedSides, Pad, Sides};
pub use crop_window::{CenterCrop, RandomCrop, RandomCropParams, RandomResizedCrop, WindowParams};
pub use distort::{GridDistortion, GridParams, PerspectiveParams, PerspectiveTransform};
pub use dropout::{CoarseDropout, CoarseDropoutParams, Cutout, CutoutArea, CutoutFill, Dropout};
pub use elastic::{ElasticParams, ElasticTransformation};
pub use flip::{Fliplr, Flipud};
pub use intensity::{Add, Invert, Multiply, Posterize, Solarize, SolarizeParams};
pub use jpeg::{JpegCompression, JpegParams};
pub use noise::{
    AdditiveGaussianNoise, AdditiveLaplaceNoise, Chance, ElementwiseParams, NoiseParams,
    SaltAndPepper,
};
pub use normalize::Normalize;
pub use pad_if_needed::PadIfNeeded;
pub use piecewise_affine::{PiecewiseAffine, PiecewiseParams};
pub use resize::{Resize, ResizeInterpolation, ResizeParams, resize_buf, resize_image};

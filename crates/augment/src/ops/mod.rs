//! The augmenters, one file per family. Each op is a serde struct (its options) implementing
//! [`Op`](crate::Op): `sample` draws the parameters, `apply` transforms the image and, for
//! geometric ops, every target with the same parameters.

mod flip;

pub use flip::{Fliplr, Flipud};

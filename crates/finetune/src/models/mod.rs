//! One file per family: its modules, builders and pretrained configurations.

/// A file of torchvision's model store.
macro_rules! tv_url {
    ($file:literal) => {
        concat!("https://download.pytorch.org/models/", $file)
    };
}

pub mod convnext;
pub mod densenet;
pub mod efficientnet;
pub mod mobilenet;
pub mod named;
pub mod regnet;
pub mod resnet;
pub mod shufflenet;
pub mod squeezenet;
pub mod tv_blocks;
pub mod vgg;
pub mod vit;

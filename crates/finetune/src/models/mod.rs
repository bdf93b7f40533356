//! One file per family: its modules, builders and pretrained configurations.

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

//! One file per family: its modules, builders and pretrained configurations.

pub mod resnet;

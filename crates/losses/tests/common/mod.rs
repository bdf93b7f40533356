#![allow(dead_code)] // each test binary uses part of the shared helpers
pub mod half;
pub mod parity;

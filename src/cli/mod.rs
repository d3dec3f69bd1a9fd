//! The commands whose bodies do not fit in `main.rs`'s dispatch.

pub mod init;

//! Loading a bundle: files → spanned tree → target merge → variables →
//! interpolation → typed [`model::Bundle`]. No network I/O here.

pub mod source;
pub mod model;

//! Loading a bundle: files → spanned tree → target merge → variables →
//! interpolation → typed [`model::Bundle`]. No network I/O here.

pub mod load;
pub mod merge;
pub mod model;
pub mod permissions;
pub mod presets;
pub mod run_as;
pub mod source;
pub mod unsupported;
pub mod variables;

pub use load::{load, LoadOptions, Loaded, ParseCache};

//! Loading a bundle: files → spanned tree → target merge → variables →
//! interpolation → typed [`model::Bundle`]. No network I/O here.

pub mod load;
pub mod merge;
pub mod model;
pub(crate) mod permissions;
pub(crate) mod presets;
pub(crate) mod run_as;
pub mod source;
pub(crate) mod unsupported;
pub mod variables;

pub use load::{load, warm_parse_cache, LoadOptions, Loaded, ParseCache};

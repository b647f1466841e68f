//! Plan model, field diff and rendering.

//! REST body types that the client (engine) and the emulator both speak. DESIGN §2:
//! the emulator shares nothing else with the client, so everything here is the
//! documented wire contract (reference §2), never engine or emulator internals.

pub mod error;

pub use error::{codes, ErrorDetail, ErrorReply};

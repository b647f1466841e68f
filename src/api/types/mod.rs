//! Serde types of request/response bodies, shared by the client and the
//! emulator (and nothing else is shared between them).

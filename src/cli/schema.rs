//! `lakebundle schema`: print the bundle JSON Schema (the text checked in as
//! `schemas/bundle.schema.json`).

use std::io::Write;

use super::args::GlobalArgs;
use super::Exit;

pub fn run(_g: &GlobalArgs) -> Exit {
    let text = crate::resources::schema::bundle_schema_text();
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Exit::Success,
        // A closed pipe (`lakebundle schema | head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Success,
        Err(e) => {
            eprintln!("error: writing the schema failed: {e}");
            Exit::Error
        }
    }
}

//! Output conventions: text (colour only on a TTY, NO_COLOR honoured), JSON,
//! progress on a TTY, plain lines otherwise.

use std::io::IsTerminal;

/// Whether stdout should get ANSI colour.
pub fn color_stdout() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
}

/// Whether stderr should get ANSI colour / live progress.
pub fn color_stderr() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Report that a command is not available in this build.
pub fn not_built(command: &str) -> super::Exit {
    eprintln!("error: `lakebundle {command}` is not available in this build yet");
    super::Exit::Error
}

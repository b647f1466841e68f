//! Output conventions: text (colour only on a TTY, NO_COLOR honoured), JSON,
//! progress on a TTY, plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indexmap::IndexMap;

use super::error::CliError;

/// Colour is wanted on a stream: it is a terminal and NO_COLOR is unset.
fn color_for(is_tty: bool) -> bool {
    is_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Whether stdout should get ANSI colour.
pub fn color_stdout() -> bool {
    color_for(std::io::stdout().is_terminal())
}

/// Whether stderr should get ANSI colour / live progress.
pub fn color_stderr() -> bool {
    color_for(std::io::stderr().is_terminal())
}

/// Whether stdin is interactive (a prompt can be answered).
pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// Write to stdout and flush, as is.
pub fn write_stdout_raw(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Write to stdout. A closed pipe (`lakebundle plan | head -1`) is not an
/// error: the reader has what it wanted, and the command's work (a deploy)
/// must not fail for it. Any other write failure (a full disk) is.
pub fn out(text: &str) -> Result<(), CliError> {
    match write_stdout_raw(text) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::user(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

/// Print a JSON document on stdout (pretty, newline-terminated).
pub fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::internal(format!("cannot serialize the JSON output: {e}")))?;
    out(&format!("{text}\n"))
}

/// `warning: ...` on stderr.
pub fn warning(message: impl std::fmt::Display) {
    if color_stderr() {
        eprintln!("\x1b[33;1mwarning\x1b[0m: {message}");
    } else {
        eprintln!("warning: {message}");
    }
}

/// Ask a yes/no question on the terminal. Only call when stdin is a TTY.
pub fn confirm(question: &str) -> bool {
    eprint!("{question} Only 'yes' will be accepted: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    match std::io::stdin().read_line(&mut answer) {
        Ok(_) => answer.trim() == "yes",
        Err(_) => false,
    }
}

// ---------------------------------------------------------------------------
// Progress

/// What happened to one resource (the front end's view of an apply event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressKind {
    Started {
        action: String,
    },
    Waiting {
        what: String,
    },
    Succeeded {
        id: Option<String>,
    },
    Failed {
        message: String,
    },
    Skipped {
        reason: String,
    },
    /// A free-form step outside the resource walk (file sync, lock).
    Note {
        message: String,
    },
}

#[derive(Debug, Clone)]
pub struct ProgressEvent {
    /// Resource address, or a step name for notes.
    pub subject: String,
    pub kind: ProgressKind,
    pub at: Instant,
}

/// `3.2s` / `1m04s`.
pub fn format_elapsed(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        let whole = d.as_secs();
        format!("{}m{:02}s", whole / 60, whole % 60)
    }
}

/// Progress output. `live` (a colour TTY on stderr): finished resources print
/// once, in-flight ones are redrawn under them with their elapsed time.
/// Otherwise: one plain line per event, stable for logs and CI.
pub struct Progress {
    live: bool,
    started: Instant,
    /// In flight: subject → (verb, since, waiting-for).
    active: IndexMap<String, (String, Instant, Option<String>)>,
    /// Lines drawn for `active` last time (to erase them on redraw).
    drawn: usize,
    sink: Box<dyn Write + Send>,
}

/// `create` → `creating`, for in-flight lines.
fn gerund(action: &str) -> String {
    match action {
        "create" => "creating".into(),
        "update" => "updating".into(),
        "replace" => "replacing".into(),
        "delete" => "deleting".into(),
        other => format!("{other}ing"),
    }
}

fn past(action: &str) -> String {
    match action {
        "create" => "created".into(),
        "update" => "updated".into(),
        "replace" => "replaced".into(),
        "delete" => "deleted".into(),
        other => format!("{other}ed"),
    }
}

impl Progress {
    /// Progress on stderr; live when stderr is a colour terminal.
    pub fn stderr() -> Progress {
        Progress::new(color_stderr(), Box::new(std::io::stderr()))
    }

    pub fn new(live: bool, sink: Box<dyn Write + Send>) -> Progress {
        Progress {
            live,
            started: Instant::now(),
            active: IndexMap::new(),
            drawn: 0,
            sink,
        }
    }

    pub fn is_live(&self) -> bool {
        self.live
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.live {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// The permanent line for an event, if it has one.
    fn event_line(&mut self, ev: &ProgressEvent) -> Option<String> {
        let subject = &ev.subject;
        match &ev.kind {
            ProgressKind::Started { action } => {
                self.active
                    .insert(subject.clone(), (action.clone(), ev.at, None));
                (!self.live).then(|| format!("{subject}: {}...", gerund(action)))
            }
            ProgressKind::Waiting { what } => {
                if let Some(entry) = self.active.get_mut(subject) {
                    entry.2 = Some(what.clone());
                }
                (!self.live).then(|| format!("{subject}: waiting for {what}"))
            }
            ProgressKind::Succeeded { id } => {
                let (verb, since) = self.finish(subject, ev.at);
                let id = id
                    .as_ref()
                    .map(|i| format!(" (id {i})"))
                    .unwrap_or_default();
                Some(format!(
                    "{subject}: {}{id} [{}]",
                    self.paint("32", &past(&verb)),
                    format_elapsed(since)
                ))
            }
            ProgressKind::Failed { message } => {
                let (_, since) = self.finish(subject, ev.at);
                Some(format!(
                    "{subject}: {} [{}]: {message}",
                    self.paint("31;1", "failed"),
                    format_elapsed(since)
                ))
            }
            ProgressKind::Skipped { reason } => {
                self.active.shift_remove(subject);
                Some(format!(
                    "{subject}: {} ({reason})",
                    self.paint("33", "skipped")
                ))
            }
            ProgressKind::Note { message } => Some(format!("{subject}: {message}")),
        }
    }

    /// Remove a subject from the in-flight set: its verb and elapsed time.
    fn finish(&mut self, subject: &str, at: Instant) -> (String, Duration) {
        match self.active.shift_remove(subject) {
            Some((verb, since, _)) => (verb, at.saturating_duration_since(since)),
            None => ("apply".into(), Duration::ZERO),
        }
    }

    fn erase_active(&mut self) {
        if self.live && self.drawn > 0 {
            let _ = write!(self.sink, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn draw_active(&mut self) {
        if !self.live {
            return;
        }
        let now = Instant::now();
        let lines: Vec<String> = self
            .active
            .iter()
            .map(|(subject, (verb, since, waiting))| {
                let wait = waiting
                    .as_ref()
                    .map(|w| format!(", waiting for {w}"))
                    .unwrap_or_default();
                format!(
                    "  {} {subject} {}{wait} {}",
                    self.paint("36", "…"),
                    gerund(verb),
                    self.paint("2", &format_elapsed(now.saturating_duration_since(*since)))
                )
            })
            .collect();
        for l in &lines {
            let _ = writeln!(self.sink, "{l}");
        }
        self.drawn = lines.len();
        let _ = self.sink.flush();
    }

    /// Record one event.
    pub fn event(&mut self, ev: &ProgressEvent) {
        self.erase_active();
        if let Some(line) = self.event_line(ev) {
            let _ = writeln!(self.sink, "{line}");
        }
        self.draw_active();
    }

    /// Redraw in-flight lines (elapsed times tick); a no-op when not live.
    pub fn tick(&mut self) {
        if self.live && !self.active.is_empty() {
            self.erase_active();
            self.draw_active();
        }
    }

    /// A plain message line (kept above the live block).
    pub fn line(&mut self, text: &str) {
        self.erase_active();
        let _ = writeln!(self.sink, "{text}");
        self.draw_active();
    }

    /// Finish: erase the live block; report total time.
    pub fn finish_all(&mut self) -> Duration {
        self.erase_active();
        let _ = self.sink.flush();
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().map(|v| v.clone()).unwrap_or_default())
                .into_owned()
        }
    }

    fn ev(subject: &str, kind: ProgressKind, at: Instant) -> ProgressEvent {
        ProgressEvent {
            subject: subject.into(),
            kind,
            at,
        }
    }

    #[test]
    fn plain_progress_is_one_line_per_event_without_escapes() {
        let buf = Buf::default();
        let mut p = Progress::new(false, Box::new(buf.clone()));
        let t0 = Instant::now();
        let a = "resources.jobs.a";
        p.event(&ev(
            a,
            ProgressKind::Started {
                action: "create".into(),
            },
            t0,
        ));
        p.event(&ev(
            a,
            ProgressKind::Waiting {
                what: "AVAILABLE".into(),
            },
            t0,
        ));
        p.event(&ev(
            a,
            ProgressKind::Succeeded {
                id: Some("42".into()),
            },
            t0 + Duration::from_millis(1500),
        ));
        p.event(&ev(
            "resources.jobs.b",
            ProgressKind::Skipped {
                reason: "dependency failed".into(),
            },
            t0,
        ));
        p.tick();
        let text = buf.text();
        assert_eq!(
            text,
            "resources.jobs.a: creating...\nresources.jobs.a: waiting for AVAILABLE\n\
             resources.jobs.a: created (id 42) [1.5s]\nresources.jobs.b: skipped (dependency failed)\n"
        );
    }

    #[test]
    fn live_progress_redraws_in_flight_lines() {
        let buf = Buf::default();
        let mut p = Progress::new(true, Box::new(buf.clone()));
        let t0 = Instant::now();
        p.event(&ev(
            "resources.apps.x",
            ProgressKind::Started {
                action: "create".into(),
            },
            t0,
        ));
        p.tick();
        p.event(&ev(
            "resources.apps.x",
            ProgressKind::Failed {
                message: "boom".into(),
            },
            t0,
        ));
        p.finish_all();
        let text = buf.text();
        assert!(text.contains("resources.apps.x creating"), "{text}");
        assert!(
            text.contains("\x1b[1A\x1b[J"),
            "erases the live block: {text:?}"
        );
        assert!(text.contains("failed"), "{text}");
        assert!(text.contains("boom"), "{text}");
    }

    #[test]
    fn elapsed_format() {
        assert_eq!(format_elapsed(Duration::from_millis(3200)), "3.2s");
        assert_eq!(format_elapsed(Duration::from_secs(64)), "1m04s");
    }
}

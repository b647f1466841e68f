//! The one way a command fails: every command returns `Result<Exit, CliError>`
//! and [`report`] (called once, from [`super::run`]) renders the error — with
//! its help — as text on stderr (miette; bundle diagnostics with source
//! snippets) or, under `-o json`, as one JSON object on stdout. The exit code
//! follows the error's [`ErrorClass`].

use std::fmt;

use miette::{Diagnostic, GraphicalReportHandler, GraphicalTheme};
use serde_json::{json, Map, Value};

use super::args::OutputFormat;
use super::output;
use super::Exit;
use crate::api::ApiError;
use crate::config::model::Bundle;
use crate::config::source::SourceMap;
use crate::diag::{Diagnostics, RenderOptions};
use crate::plan::EngineError;
use crate::state::StateError;

/// What kind of failure, which decides the exit code (README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The command line is wrong (unknown flag, bad value, flag not for this command).
    Usage,
    /// The bundle, a saved plan, local files or the user's environment is wrong;
    /// or a guard refused (held lock, no terminal to confirm, cancelled).
    User,
    /// The workspace failed or refused an operation.
    Remote,
    /// A bug or an environment lakebundle cannot work in (no async runtime).
    Internal,
    /// Ctrl-C.
    Interrupted,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Usage => "usage",
            ErrorClass::User => "user",
            ErrorClass::Remote => "remote",
            ErrorClass::Internal => "internal",
            ErrorClass::Interrupted => "interrupted",
        }
    }

    pub fn exit(self) -> Exit {
        match self {
            ErrorClass::Interrupted => Exit::Interrupted,
            // Exit 2 stays reserved for `plan --detailed-exitcode` with changes.
            ErrorClass::Usage | ErrorClass::User | ErrorClass::Remote | ErrorClass::Internal => {
                Exit::Error
            }
        }
    }
}

enum Body {
    /// Bundle diagnostics (with the files their spans point into).
    Diagnostics {
        sources: SourceMap,
        diags: Diagnostics,
        /// A closing line for text output (`Found 2 errors and 0 warnings`).
        footer: Option<String>,
    },
    Report(Box<dyn Diagnostic + Send + Sync + 'static>),
}

/// A failed command (boxed: it travels through every `Result` of the CLI).
pub struct CliError(Box<Inner>);

struct Inner {
    class: ErrorClass,
    body: Body,
    /// Replaces the error's own help: hints that name a command are rebuilt
    /// with the user's flags (see [`super::hint`]).
    help: Option<String>,
    /// Extra top-level fields of the JSON error object (deploy's plan and result).
    json: Map<String, Value>,
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CliError({}: {})", self.0.class.as_str(), self.message())
    }
}

/// A plain error message with optional help and related failures.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Message {
    pub message: String,
    pub help: Option<String>,
    pub related: Vec<Message>,
}

impl Message {
    pub fn new(message: impl Into<String>) -> Message {
        Message {
            message: message.into(),
            help: None,
            related: vec![],
        }
    }
}

impl Diagnostic for Message {
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|m| m as &dyn Diagnostic)))
        }
    }
}

impl CliError {
    fn new(class: ErrorClass, body: Body) -> CliError {
        CliError(Box::new(Inner {
            class,
            body,
            help: None,
            json: Map::new(),
        }))
    }

    /// A plain message of `class`.
    pub fn msg(class: ErrorClass, message: impl Into<String>) -> CliError {
        CliError::new(class, Body::Report(Box::new(Message::new(message))))
    }

    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::msg(ErrorClass::Usage, message)
    }

    pub fn user(message: impl Into<String>) -> CliError {
        CliError::msg(ErrorClass::User, message)
    }

    pub fn remote(message: impl Into<String>) -> CliError {
        CliError::msg(ErrorClass::Remote, message)
    }

    pub fn internal(message: impl Into<String>) -> CliError {
        CliError::msg(ErrorClass::Internal, message)
    }

    /// Any miette diagnostic.
    pub fn diagnostic(class: ErrorClass, d: impl Diagnostic + Send + Sync + 'static) -> CliError {
        CliError::new(class, Body::Report(Box::new(d)))
    }

    /// `context: error`, keeping the error's help.
    pub fn context(class: ErrorClass, context: impl fmt::Display, e: &dyn Diagnostic) -> CliError {
        let mut m = Message::new(format!("{context}: {e}"));
        m.help = e.help().map(|h| h.to_string());
        CliError::diagnostic(class, m)
    }

    /// Bundle diagnostics (a user error).
    pub fn diags(sources: &SourceMap, diags: Diagnostics) -> CliError {
        CliError::new(
            ErrorClass::User,
            Body::Diagnostics {
                sources: sources.clone(),
                diags,
                footer: None,
            },
        )
    }

    /// A workspace API failure, with what was being done.
    pub fn api(context: impl fmt::Display, e: &ApiError) -> CliError {
        CliError::remote(format!("{context}: {e}"))
    }

    /// An engine error: graph problems as diagnostics over the bundle's files.
    pub fn engine(bundle: &Bundle, e: EngineError) -> CliError {
        let class = match &e {
            EngineError::Graph { diags } => return CliError::diags(&bundle.sources, diags.clone()),
            EngineError::Read { .. } => ErrorClass::Remote,
            EngineError::NoClient => ErrorClass::Internal,
            EngineError::State(s) => state_class(s),
            EngineError::Unsupported { .. }
            | EngineError::PreventDestroy { .. }
            | EngineError::StalePlan { .. }
            | EngineError::BadPlan { .. }
            | EngineError::AlreadyExists { .. } => ErrorClass::User,
        };
        CliError::diagnostic(class, e)
    }

    pub fn state(e: StateError) -> CliError {
        CliError::diagnostic(state_class(&e), e)
    }

    /// Replace the help text.
    pub fn with_help(mut self, help: impl Into<String>) -> CliError {
        self.0.help = Some(help.into());
        self
    }

    /// Add a closing line to the text rendering of diagnostics.
    pub fn with_footer(mut self, footer: impl Into<String>) -> CliError {
        if let Body::Diagnostics { footer: f, .. } = &mut self.0.body {
            *f = Some(footer.into());
        }
        self
    }

    /// Add a top-level field to the JSON error object.
    pub fn with_json(mut self, key: &str, value: Value) -> CliError {
        self.0.json.insert(key.to_string(), value);
        self
    }

    pub fn class(&self) -> ErrorClass {
        self.0.class
    }

    /// The error in one line (tests and logs).
    pub fn message(&self) -> String {
        match &self.0.body {
            Body::Diagnostics { diags, .. } => diags
                .items
                .iter()
                .map(|d| d.message.clone())
                .collect::<Vec<_>>()
                .join("; "),
            Body::Report(d) => d.to_string(),
        }
    }

    /// The help shown (ours if set, else the error's own).
    pub fn help_text(&self) -> Option<String> {
        match (&self.0.help, &self.0.body) {
            (Some(h), _) => Some(h.clone()),
            (None, Body::Report(d)) => d.help().map(|h| h.to_string()),
            (None, Body::Diagnostics { .. }) => None,
        }
    }

    /// The JSON form (`-o json`).
    pub fn to_json(&self) -> Value {
        let mut obj = match &self.0.body {
            Body::Diagnostics { sources, diags, .. } => {
                match crate::diag::to_json(sources, diags) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                }
            }
            Body::Report(d) => {
                let shown = WithHelp {
                    inner: d.as_ref(),
                    help: self.0.help.as_deref(),
                };
                let mut m = Map::new();
                m.insert("error".into(), report_json(&shown, Some(self.0.class)));
                m
            }
        };
        for (k, v) in &self.0.json {
            obj.insert(k.clone(), v.clone());
        }
        Value::Object(obj)
    }

    /// The text form (stderr).
    pub fn to_text(&self, color: bool) -> String {
        match &self.0.body {
            Body::Diagnostics {
                sources,
                diags,
                footer,
            } => {
                let mut s = crate::diag::render_with(
                    sources,
                    diags,
                    RenderOptions {
                        color,
                        ..RenderOptions::default()
                    },
                );
                if let Some(f) = footer {
                    s.push_str(f);
                    s.push('\n');
                }
                s
            }
            Body::Report(d) => {
                let shown = WithHelp {
                    inner: d.as_ref(),
                    help: self.0.help.as_deref(),
                };
                let theme = if color {
                    GraphicalTheme::unicode()
                } else {
                    GraphicalTheme::unicode_nocolor()
                };
                // No wrapping: a hint's command must stay on one line to be
                // copied and run as printed.
                let handler = GraphicalReportHandler::new_themed(theme)
                    .with_wrap_lines(false)
                    .with_links(false);
                let mut s = String::new();
                if handler.render_report(&mut s, &shown).is_err() {
                    s = format!("error: {shown}\n");
                }
                if !s.ends_with('\n') {
                    s.push('\n');
                }
                s
            }
        }
    }
}

fn state_class(e: &StateError) -> ErrorClass {
    match e {
        StateError::Remote { .. } | StateError::LockLost { .. } => ErrorClass::Remote,
        _ => ErrorClass::User,
    }
}

fn report_json(d: &dyn Diagnostic, class: Option<ErrorClass>) -> Value {
    let mut causes = Vec::new();
    let mut cur = d.source();
    while let Some(c) = cur {
        causes.push(Value::String(c.to_string()));
        cur = c.source();
    }
    let related: Vec<Value> = d
        .related()
        .map(|it| it.map(|r| report_json(r, None)).collect())
        .unwrap_or_default();
    let mut m = Map::new();
    if let Some(c) = class {
        m.insert("class".into(), json!(c.as_str()));
    }
    m.insert("code".into(), json!(d.code().map(|c| c.to_string())));
    m.insert("message".into(), json!(d.to_string()));
    m.insert("help".into(), json!(d.help().map(|h| h.to_string())));
    if !causes.is_empty() {
        m.insert("causes".into(), Value::Array(causes));
    }
    if !related.is_empty() {
        m.insert("related".into(), Value::Array(related));
    }
    Value::Object(m)
}

/// A diagnostic shown with another help text.
struct WithHelp<'a> {
    inner: &'a (dyn Diagnostic + Send + Sync),
    help: Option<&'a str>,
}

impl fmt::Debug for WithHelp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.inner, f)
    }
}

impl fmt::Display for WithHelp<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.inner, f)
    }
}

impl std::error::Error for WithHelp<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source()
    }
}

impl Diagnostic for WithHelp<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.inner.code()
    }
    fn severity(&self) -> Option<miette::Severity> {
        self.inner.severity()
    }
    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        match self.help {
            Some(h) => Some(Box::new(h)),
            None => self.inner.help(),
        }
    }
    fn url<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.inner.url()
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.inner.source_code()
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        self.inner.labels()
    }
    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn Diagnostic> + 'b>> {
        self.inner.related()
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.inner.diagnostic_source()
    }
}

/// Render `err` once — text on stderr, or JSON on stdout under `-o json` —
/// and give the exit status of its class.
pub fn report(err: &CliError, format: OutputFormat) -> Exit {
    if format == OutputFormat::Json {
        let text = serde_json::to_string_pretty(&err.to_json()).unwrap_or_default();
        match output::write_stdout_raw(&format!("{text}\n")) {
            Ok(()) => return err.0.class.exit(),
            // stdout is gone: say it on stderr instead.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return err.0.class.exit(),
            Err(_) => {}
        }
    }
    eprint!("{}", err.to_text(output::color_stderr()));
    err.0.class.exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_override_replaces_the_errors_own_help() {
        let e = CliError::state(StateError::LockHeld {
            user: "a@b".into(),
            acquired_at: "2024-01-01T00:00:00Z".into(),
            operation: "deploy".into(),
            host: None,
            pid: None,
            dead: false,
        })
        .with_help("run `lakebundle -t dev deploy --force-lock`");
        let text = e.to_text(false);
        assert!(
            text.contains("lakebundle -t dev deploy --force-lock"),
            "{text}"
        );
        let j = e.to_json();
        assert_eq!(j["error"]["class"], "user");
        assert_eq!(j["error"]["code"], "lakebundle::state::lock_held");
        assert_eq!(
            j["error"]["help"],
            "run `lakebundle -t dev deploy --force-lock`"
        );
    }

    #[test]
    fn classes_map_to_exit_codes() {
        assert_eq!(ErrorClass::Usage.exit().code(), 1);
        assert_eq!(ErrorClass::User.exit().code(), 1);
        assert_eq!(ErrorClass::Remote.exit().code(), 1);
        assert_eq!(ErrorClass::Internal.exit().code(), 1);
        assert_eq!(ErrorClass::Interrupted.exit().code(), 130);
    }
}

//! `lakebundle emulator serve|down`

use serde_json::json;

use super::args::{EmulatorCommand, GlobalArgs, OutputFormat};
use super::error::{CliError, ErrorClass};
use super::{output, Exit};
use lakebundle_emulator::{self as emulator, DownReport, EmulatorConfig};

pub fn run(g: &GlobalArgs, c: &EmulatorCommand) -> Result<Exit, CliError> {
    let fail = |e| CliError::diagnostic(ErrorClass::User, e);
    match c {
        EmulatorCommand::Serve(a) => EmulatorConfig::from_args(a)
            .and_then(emulator::serve_cli)
            .map_err(fail)?,
        EmulatorCommand::Down(a) => {
            let dir = match &a.data_dir {
                Some(d) => d.clone(),
                None => emulator::default_data_dir().map_err(fail)?,
            };
            let report = emulator::down(&dir).map_err(fail)?;
            print_down(g, &dir, &report)?;
        }
    }
    Ok(Exit::Success)
}

/// What `down` stopped: one line per process, or that nothing ran; `-o json` as an object.
fn print_down(g: &GlobalArgs, dir: &std::path::Path, report: &DownReport) -> Result<(), CliError> {
    if g.output == OutputFormat::Json {
        return output::print_json(&json!({
            "data_dir": dir.display().to_string(),
            "emulator": report.emulator.as_ref().map(|(pid, url)| json!({"pid": pid, "url": url})),
            "postgres_servers": report.servers.iter().map(|s| json!({
                "instance": s.label,
                "pid": s.pid,
                "data_dir": s.data_dir.display().to_string(),
            })).collect::<Vec<_>>(),
            "stopped_anything": report.stopped_anything(),
        }));
    }
    if !report.stopped_anything() {
        return output::out(&format!("nothing was running for {}\n", dir.display()));
    }
    let mut text = String::new();
    if let Some((pid, url)) = &report.emulator {
        match url {
            Some(u) => {
                text += &format!(
                    "stopped emulator pid {pid} (serving {u}) for {}\n",
                    dir.display()
                )
            }
            None => text += &format!("stopped emulator pid {pid} for {}\n", dir.display()),
        }
    }
    for s in &report.servers {
        text += &format!(
            "stopped PostgreSQL server of instance {} (pid {}, {})\n",
            s.label,
            s.pid,
            s.data_dir.display()
        );
    }
    output::out(&text)
}

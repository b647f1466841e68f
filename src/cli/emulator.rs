//! `lakebundle emulator serve|down`

use serde_json::json;

use super::args::{EmulatorCommand, GlobalArgs, OutputFormat};
use super::{output, Exit};
use crate::emulator::{self, DownReport, EmulatorConfig};

pub fn run(g: &GlobalArgs, c: &EmulatorCommand) -> Exit {
    let result = match c {
        EmulatorCommand::Serve(a) => EmulatorConfig::from_args(a).and_then(emulator::serve_cli),
        EmulatorCommand::Down(a) => {
            let dir = match &a.data_dir {
                Some(d) => Ok(d.clone()),
                None => emulator::default_data_dir(),
            };
            dir.and_then(|d| {
                let report = emulator::down(&d)?;
                print_down(g, &d, &report);
                Ok(())
            })
        }
    };
    match result {
        Ok(()) => Exit::Success,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            Exit::Error
        }
    }
}

/// What `down` stopped: one line per process, or that nothing ran; `-o json` as an object.
fn print_down(g: &GlobalArgs, dir: &std::path::Path, report: &DownReport) {
    if g.output == OutputFormat::Json {
        output::print_json(&json!({
            "data_dir": dir.display().to_string(),
            "emulator": report.emulator.as_ref().map(|(pid, url)| json!({"pid": pid, "url": url})),
            "postgres_servers": report.servers.iter().map(|s| json!({
                "instance": s.label,
                "pid": s.pid,
                "data_dir": s.data_dir.display().to_string(),
            })).collect::<Vec<_>>(),
            "stopped_anything": report.stopped_anything(),
        }));
        return;
    }
    if !report.stopped_anything() {
        println!("nothing was running for {}", dir.display());
        return;
    }
    if let Some((pid, url)) = &report.emulator {
        match url {
            Some(u) => println!(
                "stopped emulator pid {pid} (serving {u}) for {}",
                dir.display()
            ),
            None => println!("stopped emulator pid {pid} for {}", dir.display()),
        }
    }
    for s in &report.servers {
        println!(
            "stopped PostgreSQL server of instance {} (pid {}, {})",
            s.label,
            s.pid,
            s.data_dir.display()
        );
    }
}

//! `lakebundle emulator serve|down`

use super::args::{EmulatorCommand, GlobalArgs};
use super::Exit;
use crate::emulator::{self, EmulatorConfig};

pub fn run(_g: &GlobalArgs, c: &EmulatorCommand) -> Exit {
    let result = match c {
        EmulatorCommand::Serve(a) => EmulatorConfig::from_args(a).and_then(emulator::serve_cli),
        EmulatorCommand::Down(a) => {
            let dir = match &a.data_dir {
                Some(d) => Ok(d.clone()),
                None => emulator::default_data_dir(),
            };
            dir.and_then(|d| {
                let stopped = emulator::down(&d)?;
                match stopped {
                    Some(pid) => println!("stopped emulator pid {pid} for {}", d.display()),
                    None => println!("no emulator running for {}", d.display()),
                }
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

//! `lakebundle emulator serve|down`

use super::args::{EmulatorCommand, GlobalArgs};
use super::Exit;

pub fn run(_g: &GlobalArgs, _c: &EmulatorCommand) -> Exit {
    super::output::not_built("emulator")
}

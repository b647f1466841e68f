//! `lakebundle run`

use super::args::{GlobalArgs, RunArgs};
use super::Exit;

pub fn run(_g: &GlobalArgs, _a: &RunArgs) -> Exit {
    super::output::not_built("run")
}

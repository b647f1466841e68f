//! `lakebundle graph`

use super::args::{GlobalArgs, GraphArgs};
use super::Exit;

pub fn run(_g: &GlobalArgs, _a: &GraphArgs) -> Exit {
    super::output::not_built("graph")
}

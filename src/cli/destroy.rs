//! `lakebundle destroy`

use super::args::{GlobalArgs, DestroyArgs};
use super::Exit;

pub fn run(_g: &GlobalArgs, _a: &DestroyArgs) -> Exit {
    super::output::not_built("destroy")
}

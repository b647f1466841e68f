//! `lakebundle validate`

use super::args::{GlobalArgs, ValidateArgs};
use super::Exit;

pub fn run(_g: &GlobalArgs, _a: &ValidateArgs) -> Exit {
    super::output::not_built("validate")
}

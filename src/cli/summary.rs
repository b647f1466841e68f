//! `lakebundle summary`

use super::args::GlobalArgs;
use super::Exit;

pub fn run(_g: &GlobalArgs) -> Exit {
    super::output::not_built("summary")
}

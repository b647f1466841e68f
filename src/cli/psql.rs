//! `lakebundle psql`

use super::args::{GlobalArgs, PsqlArgs};
use super::Exit;

pub fn run(_g: &GlobalArgs, _a: &PsqlArgs) -> Exit {
    super::output::not_built("psql")
}

//! `lakebundle deploy`

use super::args::{GlobalArgs, DeployArgs};
use super::Exit;

pub fn run(_g: &GlobalArgs, _a: &DeployArgs) -> Exit {
    super::output::not_built("deploy")
}

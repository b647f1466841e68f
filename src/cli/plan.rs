//! `lakebundle plan`

use super::args::{GlobalArgs, PlanArgs};
use super::Exit;

pub fn run(_g: &GlobalArgs, _a: &PlanArgs) -> Exit {
    super::output::not_built("plan")
}

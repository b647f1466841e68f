//! `lakebundle credential`

use super::args::{GlobalArgs, CredentialArgs};
use super::Exit;

pub fn run(_g: &GlobalArgs, _a: &CredentialArgs) -> Exit {
    super::output::not_built("credential")
}

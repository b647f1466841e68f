//! `validate`: load, resolve and check the bundle offline, with the checks
//! only a deploy would otherwise make (artifacts, synced files).

use crate::config::model::Bundle;
use crate::config::{load, LoadOptions, Loaded};
use crate::diag::{Diagnostics, Severity};

/// What the bundle is validated with (`LoadOptions::strict` turns warnings
/// into errors).
pub type ValidateOptions = LoadOptions;

/// What `validate` found: the load (bundle, every diagnostic, sources) and
/// the problems to show (the info notes left out: they belong to the
/// summary of a valid bundle).
pub struct Validation {
    pub loaded: Loaded,
    pub problems: Diagnostics,
}

impl Validation {
    /// The bundle, when it is valid (no errors).
    pub fn valid(&self) -> Option<&Bundle> {
        self.loaded
            .bundle
            .as_ref()
            .filter(|_| !self.loaded.diags.has_errors())
    }
}

pub fn validate(opts: &ValidateOptions) -> Validation {
    let mut loaded = load(opts);
    // Artifact outputs point at their upload before the file checks.
    if let Some(arts) = loaded
        .bundle
        .as_mut()
        .map(crate::artifacts::check_and_point)
    {
        loaded.diags.extend(arts);
    }
    // Files the sync leaves out or a resource needs but will not get; the
    // output shows the workspace paths local files deploy to.
    if let Some(files) = loaded
        .bundle
        .as_mut()
        .map(crate::apply::files::translate_for_validate)
    {
        loaded.diags.extend(files);
    }
    let mut problems = loaded.diags.clone();
    problems.items.retain(|d| d.severity != Severity::Info);
    Validation { loaded, problems }
}

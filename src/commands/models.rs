//! `scorer models list` and `scorer models verify`: the registry's versions, and their artifacts
//! checked against their sha256 (and loaded).

use super::{GlobalArgs, print_before_failing, registry};
use crate::cli::VerifyArgs;
use crate::error::exit;
use crate::failure::{Failure, RunError};

/// Every model version of --models-dir.
pub(super) async fn list(g: &GlobalArgs) -> Result<Vec<String>, RunError> {
    crate::summary::models_list(&registry(g)).map_err(|e| in_registry(g, e.into()))
}

/// Checks every artifact (of NAME, or NAME VERSION) and loads each model; exit 2 on a mismatch.
pub(super) async fn verify(g: &GlobalArgs, args: VerifyArgs) -> Result<Vec<String>, RunError> {
    let (lines, failed) = crate::summary::models_verify(
        &registry(g),
        args.name.as_deref(),
        args.version.as_deref(),
        args.device,
        args.texts.as_deref(),
    )
    .map_err(|e| in_registry(g, e.into()))?;
    if failed.is_empty() {
        return Ok(lines);
    }
    print_before_failing(&lines);
    Err(in_registry(
        g,
        Failure::Many {
            problems: failed,
            code: exit::CONFIG,
        },
    ))
}

/// A `scorer models` failure, naming the registry.
fn in_registry(g: &GlobalArgs, failure: Failure) -> RunError {
    RunError::Registry {
        root: g.models_dir.display().to_string(),
        failure,
    }
}

//! Why a tree model file cannot be used, by kind: not the format `model.toml` names, something
//! the library can write that scorer does not read, a file that contradicts itself, or a file
//! that does not fit what `model.toml` declares. `GbdtModel::build` names the file.

use thiserror::Error;

/// A tree model file scorer cannot use.
#[derive(Debug, Error)]
pub enum ForestFileError {
    /// Not a model file of the format `model.toml` names (not JSON, no `learner`, not UTF-8, no
    /// `tree` header).
    #[error("{0}")]
    NotTheFormat(String),
    /// Valid for the library, not read by scorer: an objective, a booster, several targets,
    /// vector leaves, linear trees, random forests.
    #[error("{0}")]
    Unsupported(String),
    /// The file contradicts itself or lacks a field the format requires: array lengths, child
    /// indexes, counts, base scores.
    #[error("{0}")]
    Malformed(String),
    /// The file does not fit `model.toml`: other features than the declared inputs, outputs
    /// that do not take one value per class.
    #[error("{0}")]
    Mismatch(String),
    /// A problem inside one tree (`tree 3`, `Tree=3`).
    #[error("{tree}: {source}")]
    InTree {
        tree: String,
        source: Box<ForestFileError>,
    },
    /// The forest could not be laid out for its evaluator (a tree too deep for the GPU form).
    #[error("{0}")]
    Layout(String),
}

impl ForestFileError {
    /// `self`, as found in tree `tree`.
    pub fn in_tree(self, tree: String) -> Self {
        Self::InTree {
            tree,
            source: Box::new(self),
        }
    }
}

/// The parsers' structural checks word their problems as sentences; each is a malformed file.
impl From<String> for ForestFileError {
    fn from(message: String) -> Self {
        Self::Malformed(message)
    }
}

impl From<&str> for ForestFileError {
    fn from(message: &str) -> Self {
        Self::Malformed(message.to_string())
    }
}

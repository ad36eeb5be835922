//! `models/<name>/<version>/model.toml`: the kind, the inputs in order, the preprocessing, the
//! outputs and every artifact pinned by sha256, so a run scores with exactly the files it says it
//! used.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config_keys::{self, field_names, or_list};
use crate::contract::{OutputColumn, OutputType};
use crate::preprocess::PreprocessSpec;
use crate::source::storage::StorageOptions;

pub use super::kind::{KindSpec, ModelKind};

/// One file a model needs, pinned by sha256: in the model's directory (`file`) or in an object
/// store (`url`, fetched once into the local model cache and checked before use).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ArtifactSpec {
    /// Path relative to the model.toml; no `..`, not absolute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `s3://`, `gs://`, `az://` or `file://` URL of the artifact, resolved like a job's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Hex sha256 of the file's bytes; checked on every load.
    pub sha256: String,
    /// How to reach `url`'s store (as a job's `[input.storage]`).
    #[serde(default, skip_serializing)]
    pub storage: StorageOptions,
}

/// One declared output of a model: a scalar (`"score"`) or a fixed-length vector
/// (`{ name = "probs", size = 3 }`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum OutputDecl {
    Scalar(String),
    Vector {
        name: String,
        size: usize,
    },
    /// `{ name = "label", type = "i64" }`: an integer the model computes itself (a class label).
    Typed {
        name: String,
        #[serde(rename = "type")]
        ty: ScalarType,
    },
    /// `{ name = "reasons", kind = "top_contributions", k = 3 }`: reason codes, the `k` input
    /// features whose contributions raised the score most (`sign = "negative"`: lowered it), as
    /// a text array, with those contributions in a companion f32 array (`values`, by default
    /// `<name>_values`). Listed before [`OutputDecl::Explained`], which would also match.
    Reasons {
        name: String,
        kind: ReasonKind,
        #[serde(default = "default_reasons_k")]
        k: usize,
        #[serde(default)]
        sign: ReasonSign,
        /// For a model of several output groups (a multiclass model): whose contributions.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<usize>,
        /// The companion column's name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        values: Option<String>,
    },
    /// `{ name = "contrib", kind = "contributions" }`: an explanation of each row's score, an f32
    /// vector whose length the model decides ([`ModelSpec::output_columns`]).
    Explained {
        name: String,
        kind: Explanation,
    },
}

/// What an explanation output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Explanation {
    /// Each row's SHAP contributions (gbdt models): per output group, one per input feature in
    /// input order, then the bias term; they sum to the group's margin.
    Contributions,
}

/// `kind = "top_contributions"`: the one kind of [`OutputDecl::Reasons`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    TopContributions,
}

/// Which way the reasons moved the score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonSign {
    /// The features that raised the score most (positive contributions).
    #[default]
    Positive,
    /// The features that lowered it most (negative contributions): an adverse decision's
    /// reasons when a high score is the good outcome.
    Negative,
}

/// Reason codes per row unless `k` says otherwise: the common count on adverse-action notices.
pub const DEFAULT_REASONS_K: usize = 3;

fn default_reasons_k() -> usize {
    DEFAULT_REASONS_K
}

/// What one output column explains, for the model kinds that compute explanations (gbdt).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplainedColumn {
    /// Every contribution of the row.
    Contributions,
    /// The names of the row's top `k` features (`values: false`), or their contributions
    /// (`values: true`); `class` is the output group they explain.
    Reasons {
        k: usize,
        sign: ReasonSign,
        class: Option<usize>,
        values: bool,
    },
}

/// The element type of a typed scalar output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScalarType {
    F32,
    I64,
}

/// Longest vector output accepted; a guard against a typo, far above real class counts or
/// embedding widths.
pub const MAX_VECTOR_SIZE: usize = 65_536;

impl OutputDecl {
    /// The output's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Scalar(n)
            | Self::Vector { name: n, .. }
            | Self::Typed { name: n, .. }
            | Self::Reasons { name: n, .. }
            | Self::Explained { name: n, .. } => n,
        }
    }

    /// The name of a reasons output's companion column of values.
    pub fn values_name(&self) -> Option<String> {
        match self {
            Self::Reasons { name, values, .. } => {
                Some(values.clone().unwrap_or_else(|| format!("{name}_values")))
            }
            _ => None,
        }
    }

    /// Whether it explains the score (contributions or reasons) rather than predicting it.
    pub fn is_explanation(&self) -> bool {
        matches!(self, Self::Reasons { .. } | Self::Explained { .. })
    }

    /// The explanation it asks for, if it is one.
    pub fn explanation(&self) -> Option<Explanation> {
        match self {
            Self::Explained { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The typed output column it declares; an explanation's length is the model's
    /// ([`ModelSpec::output_columns`]), so here it is 0.
    pub fn column(&self) -> OutputColumn {
        match self {
            Self::Scalar(name) => OutputColumn {
                name: name.clone(),
                ty: OutputType::Float32,
            },
            Self::Vector { name, size } => OutputColumn {
                name: name.clone(),
                ty: OutputType::Float32Vector(*size),
            },
            Self::Typed { name, ty } => OutputColumn {
                name: name.clone(),
                ty: match ty {
                    ScalarType::F32 => OutputType::Float32,
                    ScalarType::I64 => OutputType::Int64,
                },
            },
            Self::Explained { name, .. } => OutputColumn {
                name: name.clone(),
                ty: OutputType::Float32Vector(0),
            },
            Self::Reasons { name, k, .. } => OutputColumn {
                name: name.clone(),
                ty: OutputType::TextList(*k),
            },
        }
    }
}

impl From<&str> for OutputDecl {
    fn from(name: &str) -> Self {
        Self::Scalar(name.to_string())
    }
}

/// Element-wise function after a dense layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    #[default]
    None,
    Relu,
    Sigmoid,
    Tanh,
    Gelu,
}

/// One dense layer: tensor names in the safetensors file.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// `[out, in]` weight matrix, as PyTorch's `nn.Linear` stores it.
    pub weight: String,
    /// `[out]` bias vector; optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<String>,
    #[serde(default)]
    pub activation: Activation,
}

/// The content of `model.toml`: its kind with the kind's own keys (`Kind`: a [`KindSpec`] once
/// parsed, the kind's name while the file is read), and the keys every kind shares.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec<Kind = KindSpec> {
    pub kind: Kind,
    /// Input feature names, in the order the model expects them (after preprocessing).
    pub inputs: Vec<String>,
    /// The outputs, in the order of the model's value columns: a name takes one column (an f32
    /// score), `{ name = "probs", size = 3 }` takes `size` columns as one f32 vector,
    /// `{ name = "label", type = "i64" }` an integer label.
    pub outputs: Vec<OutputDecl>,
    /// Free text: how the model was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Every file the model needs, by role (`weights`, `graph`, `model`), each pinned by sha256.
    pub artifacts: BTreeMap<String, ArtifactSpec>,
    /// What happens to each batch's columns before the model sees them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess: Option<PreprocessSpec>,
}

impl ModelSpec {
    /// Parses `model.toml`'s text: the spec, or every problem found in it (each a sentence
    /// naming its key). The kind's own keys are parsed by the kind's folder (`model::kind`); a
    /// key of another kind is a problem naming the kinds it belongs to.
    pub fn parse(text: &str) -> Result<Self, Vec<String>> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| vec![e.to_string().trim_end().to_string()])?;
        let kinds = KindSpec::kinds();
        let name = table
            .get("kind")
            .and_then(|k| k.as_str())
            .map(str::to_string);
        let own = kinds
            .iter()
            .find(|(kind, _)| Some(*kind) == name.as_deref())
            .map_or(&[][..], |(_, fields)| *fields);
        let keys = config_keys::split(table, field_names::<ModelSpec<String>>(), own, &kinds);
        let mut problems = Vec::new();
        if let Some(name) = &name
            && !kinds.iter().any(|(kind, _)| kind == name)
        {
            let names: Vec<_> = kinds.iter().map(|(kind, _)| format!("`{kind}`")).collect();
            problems.push(format!(
                "kind: unknown model kind `{name}`, expected one of {}",
                or_list(&names)
            ));
        } else {
            for (key, owners) in &keys.misplaced {
                problems.push(format!(
                    "`{key}` applies to {} models, not {}",
                    or_list(owners),
                    name.as_deref().unwrap_or("this one")
                ));
            }
        }
        for key in &keys.unknown {
            let shared = field_names::<ModelSpec<String>>().iter();
            problems.push(config_keys::unknown_key(key, shared.chain(own).copied()));
        }
        let shared = toml::Value::Table(keys.shared)
            .try_into::<ModelSpec<String>>()
            .map_err(|e| problems.push(config_keys::one_line(&e)))
            .ok();
        let known = name
            .as_deref()
            .filter(|name| kinds.iter().any(|(kind, _)| kind == name));
        let kind = known.and_then(|name| {
            KindSpec::parse(name, keys.own)
                .map_err(|e| problems.push(format!("a {name} model: {e}")))
                .ok()
        });
        match (shared, kind) {
            (Some(shared), Some(kind)) if problems.is_empty() => Ok(shared.with_kind(kind)),
            _ => Err(problems),
        }
    }

    /// `model.toml`'s text for this spec (the kind's keys beside the shared ones).
    pub fn to_toml(&self) -> Result<String, String> {
        let mut table = toml::Table::try_from(self).map_err(|e| e.to_string())?;
        table.extend(self.kind.to_table().map_err(|e| e.to_string())?);
        toml::to_string(&table).map_err(|e| e.to_string())
    }
}

impl ModelSpec<String> {
    /// The spec with its kind parsed.
    fn with_kind(self, kind: KindSpec) -> ModelSpec {
        let ModelSpec {
            kind: _,
            inputs,
            outputs,
            description,
            artifacts,
            preprocess,
        } = self;
        ModelSpec {
            kind,
            inputs,
            outputs,
            description,
            artifacts,
            preprocess,
        }
    }
}

impl ModelSpec {
    /// The artifact holding the model itself (the weights or the graph).
    pub fn main_artifact(&self) -> Result<&ArtifactSpec, String> {
        let role = self.kind.section().main_artifact();
        self.artifacts.get(role).ok_or_else(|| {
            format!(
                "a {} model needs [artifacts.{role}] with `file` (or `url`) and `sha256`",
                self.kind.kind()
            )
        })
    }

    /// Problems with the declared artifacts: each names a file or a URL (not both), a
    /// well-formed sha256, and no path out of the model's directory.
    pub fn artifact_problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if let Err(e) = self.main_artifact() {
            p.push(e);
        }
        for (role, a) in &self.artifacts {
            match (&a.file, &a.url) {
                (Some(_), Some(_)) | (None, None) => p.push(format!(
                    "artifacts.{role}: set exactly one of `file` and `url`"
                )),
                (Some(f), None) => {
                    let path = std::path::Path::new(f);
                    if f.is_empty()
                        || path.is_absolute()
                        || path
                            .components()
                            .any(|c| !matches!(c, std::path::Component::Normal(_)))
                    {
                        p.push(format!(
                            "artifacts.{role}.file `{f}` must be a relative path inside the model's directory (no `..`)"
                        ));
                    }
                }
                (None, Some(_)) => {}
            }
            if a.sha256.len() != 64 || !a.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                p.push(format!(
                    "artifacts.{role}.sha256 must be 64 hex digits, got `{}`",
                    a.sha256
                ));
            }
            p.extend(a.storage.problems(&format!("artifacts.{role}.storage")));
        }
        p
    }

    /// Problems with the declared outputs: empty or repeated names, vector sizes out of range.
    /// The output columns, in declared order, with each explanation's length: contributions
    /// take `(inputs + 1) × groups` values, a group being one f32 value the model predicts.
    /// A reasons output is two columns: the names, then their values.
    pub fn output_columns(&self) -> Vec<OutputColumn> {
        let groups: usize = self
            .outputs
            .iter()
            .filter(|o| !o.is_explanation())
            .map(|o| o.column().ty)
            .filter(|ty| *ty != OutputType::Int64)
            .map(|ty| ty.width())
            .sum();
        let mut columns = Vec::with_capacity(self.outputs.len());
        for o in &self.outputs {
            match o {
                OutputDecl::Explained {
                    kind: Explanation::Contributions,
                    name,
                } => columns.push(OutputColumn {
                    name: name.clone(),
                    ty: OutputType::Float32Vector((self.inputs.len() + 1) * groups),
                }),
                OutputDecl::Reasons { k, .. } => {
                    columns.push(o.column());
                    columns.push(OutputColumn {
                        name: o.values_name().unwrap_or_default(),
                        ty: OutputType::Float32List(*k),
                    });
                }
                _ => columns.push(o.column()),
            }
        }
        columns
    }

    /// The explanation outputs by their position in [`ModelSpec::output_columns`].
    pub fn explained_columns(&self) -> Vec<(usize, ExplainedColumn)> {
        let mut at = 0;
        let mut explained = Vec::new();
        for o in &self.outputs {
            match o {
                OutputDecl::Explained { .. } => {
                    explained.push((at, ExplainedColumn::Contributions))
                }
                OutputDecl::Reasons { k, sign, class, .. } => {
                    for (i, values) in [(at, false), (at + 1, true)] {
                        explained.push((
                            i,
                            ExplainedColumn::Reasons {
                                k: *k,
                                sign: *sign,
                                class: *class,
                                values,
                            },
                        ));
                    }
                    at += 1;
                }
                _ => {}
            }
            at += 1;
        }
        explained
    }

    pub fn output_problems(&self) -> Option<String> {
        let mut seen = std::collections::BTreeSet::new();
        for o in &self.outputs {
            if o.name().is_empty() {
                return Some("an output name is empty".into());
            }
            if !seen.insert(o.name().to_string()) {
                return Some(format!("output `{}` is declared twice", o.name()));
            }
            if let Some(values) = o.values_name()
                && !seen.insert(values.clone())
            {
                return Some(format!(
                    "output `{}`: its values column `{values}` is declared twice (name it with \
                     `values = \"...\"`)",
                    o.name()
                ));
            }
            if let OutputDecl::Reasons { name, k, .. } = o
                && !(1..=self.inputs.len().max(1)).contains(k)
            {
                return Some(format!(
                    "output `{name}`: k must be between 1 and the number of inputs ({}), got {k}",
                    self.inputs.len()
                ));
            }
            if let OutputDecl::Vector { name, size } = o
                && !(1..=MAX_VECTOR_SIZE).contains(size)
            {
                return Some(format!(
                    "output `{name}`: size must be between 1 and {MAX_VECTOR_SIZE}, got {size}"
                ));
            }
            if o.is_explanation() && self.kind.kind() != super::kind::ModelKind::Gbdt {
                let what = match o {
                    OutputDecl::Reasons { .. } => "reason codes (kind = \"top_contributions\")",
                    _ => "contributions (kind = \"contributions\")",
                };
                return Some(format!(
                    "output `{}`: {what} are computed for gbdt models only (TreeSHAP); this model \
                     is of kind {}",
                    o.name(),
                    self.kind.kind()
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GBDT: &str = r#"
kind = "gbdt"
inputs = ["a", "b"]
outputs = ["p"]
[gbdt]
format = "xgboost_json"
[artifacts.model]
file = "model.json"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#;

    #[test]
    fn a_kind_s_own_keys_are_parsed_by_its_section() {
        let spec = ModelSpec::parse(GBDT).unwrap();
        assert_eq!(spec.kind.kind(), ModelKind::Gbdt);
        assert_eq!(spec.kind.section().main_artifact(), "model");
        assert_eq!(spec.inputs, ["a", "b"]);
    }

    #[test]
    fn keys_of_another_kind_and_unknown_keys_are_all_reported() {
        let text = GBDT.replace(
            "[gbdt]",
            "extra = 1\n[[layers]]\nweight = \"w\"\n[onnx]\n[gbdt]",
        );
        let problems = ModelSpec::parse(&text).unwrap_err();
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(
            problems
                .contains(&"`layers` applies to linear, logistic or mlp models, not gbdt".into()),
            "{problems:#?}"
        );
        assert!(
            problems.contains(&"`onnx` applies to onnx models, not gbdt".into()),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("unknown key `extra`, expected one of")
                    && p.contains("`gbdt`")),
            "{problems:#?}"
        );
    }

    #[test]
    fn an_unknown_kind_names_the_kinds() {
        let problems =
            ModelSpec::parse(&GBDT.replace("kind = \"gbdt\"", "kind = \"svm\"")).unwrap_err();
        assert!(
            problems[0].starts_with("kind: unknown model kind `svm`, expected one of `linear`"),
            "{problems:#?}"
        );
        let problems =
            ModelSpec::parse(&GBDT.replace("format = \"xgboost_json\"", "format = \"csv\""))
                .unwrap_err();
        assert!(
            problems[0].starts_with("a gbdt model: unknown variant `csv`"),
            "{problems:#?}"
        );
        let problems =
            ModelSpec::parse(&GBDT.replace("[gbdt]\nformat = \"xgboost_json\"", "")).unwrap_err();
        assert!(
            problems[0].contains("missing field `gbdt`"),
            "{problems:#?}"
        );
    }

    #[test]
    fn a_spec_written_as_toml_reads_back_the_same() {
        let spec = ModelSpec::parse(GBDT).unwrap();
        let again = ModelSpec::parse(&spec.to_toml().unwrap()).unwrap();
        assert_eq!(again, spec);
    }
}

//! The model kinds, and what each one's folder provides: its own keys of `model.toml` parsed,
//! validated and built into a [`ScoringModel`] there ([`KindSection`]). This file only lists
//! them: adding a model kind is its folder under `model/` and one line in `model_kinds!`.

use std::fmt::Debug;
use std::path::Path;

use serde::Serialize;

use super::artifacts::Artifact;
use super::device::{DeviceSpec, OpenedDevice};
use super::spec::ModelSpec;
use super::{ModelError, ScoringModel};
use crate::contract::OutputColumn;

/// One model kind's part of `model.toml` (`[gbdt]`, `[[layers]]`, …), parsed by the kind's folder,
/// and how the kind checks the rest of the spec and builds its model.
pub trait KindSection: Debug + Send + Sync {
    /// The artifact role holding the model itself (`weights`, `graph`, `model`).
    fn main_artifact(&self) -> &'static str;

    /// What the kind asks of the spec's shared keys (its inputs, outputs, artifacts,
    /// preprocessing), each problem a sentence.
    fn problems(&self, spec: &ModelSpec) -> Vec<String>;

    /// Builds the model from its checked files on `device`.
    fn build(&self, files: &ModelFiles<'_>, device: DeviceSpec) -> Result<Built, ModelError>;

    /// A line on the kind's own keys for `scorer models list`, when they say more than the kind.
    fn describe(&self) -> Option<String> {
        None
    }
}

/// What a kind's `build` gets: the spec, its main artifact (read and checked against its
/// sha256), the declared outputs, and the other artifacts on request.
pub struct ModelFiles<'a> {
    /// `model <name> version <version>`, for messages.
    pub model: String,
    pub spec: &'a ModelSpec,
    /// The model's `model.toml`, for messages about it.
    pub model_toml: &'a Path,
    pub main: &'a Artifact,
    pub outputs: &'a [OutputColumn],
    /// Reads and checks another artifact by role.
    pub artifact: &'a dyn Fn(&str) -> Result<Artifact, ModelError>,
}

/// A built model, and the device it ended up on.
pub struct Built {
    pub model: Box<dyn ScoringModel>,
    /// Never `auto`.
    pub device: DeviceSpec,
    /// The GPU's name when `device` is a GPU.
    pub gpu_name: Option<String>,
}

impl Built {
    /// `model`, built on the device `opened` opened.
    pub fn on(opened: OpenedDevice, model: impl ScoringModel + 'static) -> Self {
        Self {
            model: Box::new(model),
            device: opened.spec,
            gpu_name: opened.gpu_name,
        }
    }
}

/// Declares the model kinds: each kind's name in `model.toml`, its variant, and the section type
/// in its folder. Generates [`ModelKind`] (the kind alone), [`KindSpec`] (the kind with its keys)
/// and the one `match` that hands out a kind's [`KindSection`].
macro_rules! model_kinds {
    ($($(#[$doc:meta])* $variant:ident($section:ty) = $name:literal,)+) => {
        /// The model kinds scorer can run.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ModelKind {
            $($(#[$doc])* $variant,)+
        }

        impl ModelKind {
            /// As `model.toml`'s `kind` names it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }

        /// A model kind with its own keys of `model.toml`.
        #[derive(Debug, Clone, PartialEq)]
        pub enum KindSpec {
            $($(#[$doc])* $variant($section),)+
        }

        impl KindSpec {
            /// Each kind's name in `model.toml`, and its section's keys.
            pub(crate) fn kinds() -> Vec<(&'static str, &'static [&'static str])> {
                vec![$(($name, crate::config_keys::field_names::<$section>()),)+]
            }

            /// The kind alone.
            pub fn kind(&self) -> ModelKind {
                match self {
                    $(Self::$variant(_) => ModelKind::$variant,)+
                }
            }

            /// The kind's section, which validates and builds it.
            pub fn section(&self) -> &dyn KindSection {
                match self {
                    $(Self::$variant(section) => section,)+
                }
            }

            /// Parses the keys of kind `name`.
            pub(crate) fn parse(name: &str, keys: toml::Table) -> Result<Self, String> {
                match name {
                    $($name => toml::Value::Table(keys)
                        .try_into()
                        .map(Self::$variant)
                        .map_err(|e| crate::config_keys::one_line(&e)),)+
                    other => Err(format!(
                        "kind: unknown model kind `{other}`, expected one of {}",
                        crate::config_keys::or_list(&[$(concat!("`", $name, "`"),)+])
                    )),
                }
            }

            /// The kind's keys as a table, for writing `model.toml`.
            pub(crate) fn to_table(&self) -> Result<toml::Table, toml::ser::Error> {
                match self {
                    $(Self::$variant(section) => toml::Table::try_from(section),)+
                }
            }
        }
    };
}

model_kinds! {
    /// One dense layer, no activation: `y = xWᵀ + b`.
    Linear(super::dense::section::Linear) = "linear",
    /// One dense layer followed by a sigmoid.
    Logistic(super::dense::section::Logistic) = "logistic",
    /// Dense layers, each with its own activation.
    Mlp(super::dense::section::Mlp) = "mlp",
    /// An ONNX graph run by ONNX Runtime (scikit-learn pipelines through skl2onnx, PyTorch
    /// exports through `torch.onnx`).
    Onnx(super::onnx::section::OnnxSection) = "onnx",
    /// Gradient-boosted trees from an XGBoost JSON or LightGBM text model file, scored natively.
    Gbdt(super::gbdt::section::GbdtSection) = "gbdt",
    /// A BERT-family encoder (safetensors, `config.json`, `tokenizer.json`) over one string
    /// column, mean-pooled (and L2-normalised) into one embedding per row, as
    /// sentence-transformers computes it.
    TextEmbedding(super::text_embedding::section::TextEmbeddingSection) = "text_embedding",
}

impl Serialize for KindSpec {
    /// The kind's name: `model.toml`'s `kind` key (the kind's own keys sit beside it, see
    /// [`ModelSpec::to_toml`]).
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.kind().name())
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

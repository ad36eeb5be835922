//! The `text_embedding` kind's part of `model.toml`: `[text_embedding]`, the sequence length,
//! normalisation and GPU precision of the encoder.

use serde::{Deserialize, Serialize};

use super::TextEmbeddingSpec;
use crate::model::ModelError;
use crate::model::device::DeviceSpec;
use crate::model::kind::{Built, KindSection, ModelFiles};
use crate::model::spec::ModelSpec;

/// `kind = "text_embedding"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TextEmbeddingSection {
    /// `[text_embedding]`: `max_seq_len`, `normalize`, `dtype`.
    pub text_embedding: TextEmbeddingSpec,
}

/// The artifacts an encoder needs besides its weights.
const OTHER_FILES: [&str; 2] = ["config", "tokenizer"];

impl KindSection for TextEmbeddingSection {
    fn main_artifact(&self) -> &'static str {
        "weights"
    }

    fn problems(&self, spec: &ModelSpec) -> Vec<String> {
        let mut p = Vec::new();
        if spec.preprocess.is_some() {
            p.push("a text_embedding model has no [preprocess]".into());
        }
        for role in OTHER_FILES {
            if !spec.artifacts.contains_key(role) {
                p.push(format!(
                    "a text_embedding model needs [artifacts.{role}] (config.json, tokenizer.json)"
                ));
            }
        }
        if spec.inputs.len() != 1 {
            p.push("a text_embedding model reads exactly one string input".into());
        }
        p
    }

    #[cfg(feature = "text-embedding")]
    fn build(&self, files: &ModelFiles<'_>, device: DeviceSpec) -> Result<Built, ModelError> {
        let [config, tokenizer] = OTHER_FILES.map(|role| (files.artifact)(role));
        let (config, tokenizer) = (config?, tokenizer?);
        let opened = device.open()?;
        let main = files.main;
        let encoder_files = super::TextEmbeddingFiles {
            weights: (&main.bytes, &main.path),
            config: (&config.bytes, &config.path),
            tokenizer: (&tokenizer.bytes, &tokenizer.path),
        };
        let model = super::TextEmbeddingModel::build(
            &encoder_files,
            &self.text_embedding,
            &files.spec.inputs,
            files.outputs,
            &opened.device,
        )?;
        Ok(Built::on(opened, model))
    }

    #[cfg(not(feature = "text-embedding"))]
    fn build(&self, files: &ModelFiles<'_>, _device: DeviceSpec) -> Result<Built, ModelError> {
        Err(ModelError::Runtime(format!(
            "{}: {}",
            files.model,
            crate::error::not_built("the text_embedding model kind", "text-embedding")
        )))
    }
}

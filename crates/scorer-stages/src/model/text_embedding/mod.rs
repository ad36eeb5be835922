//! The `text_embedding` kind: a BERT-family encoder over one string column, computing what
//! sentence-transformers computes for such a model: the tokenizer's ids (with `[CLS]`/`[SEP]`,
//! truncated to `max_seq_len`), the encoder's last hidden states, their mean over the real
//! tokens (padding masked out), and, unless switched off, an L2 normalisation.
//!
//! A batch is encoded in chunks of rows of similar token length (sorted by length, so little
//! of each chunk is padding: 512 rows on a GPU; the CPU's packed encoder has none, 128 texts), and the embeddings are written
//! back in input order.
//!
//! ```toml
//! kind = "text_embedding"
//! inputs = ["text"]                          # the string column (a job maps it with input.features)
//! outputs = [{ name = "embedding", size = 384 }]
//! [text_embedding]
//! max_seq_len = 256                          # sentence_bert_config.json's max_seq_length
//! normalize = true                           # a Normalize module follows the pooling
//! dtype = "f32"                              # or "bf16" / "f16" on a GPU
//! [artifacts.weights]   # model.safetensors
//! [artifacts.config]    # config.json (the encoder's shape)
//! [artifacts.tokenizer] # tokenizer.json
//! ```

#[cfg(feature = "text-embedding")]
pub mod cpu;
#[cfg(feature = "text-embedding")]
mod encoder;
pub mod section;

#[cfg(feature = "text-embedding")]
pub use encoder::{
    GpuBert, ROWS_PER_CHUNK_CPU, ROWS_PER_CHUNK_GPU, TextEmbeddingFiles, TextEmbeddingModel,
};

use serde::{Deserialize, Serialize};

/// `[text_embedding]` in model.toml.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TextEmbeddingSpec {
    /// Tokens per text at most, `[CLS]` and `[SEP]` included; longer texts are truncated.
    pub max_seq_len: usize,
    /// L2-normalise each embedding (sentence-transformers' `Normalize` module).
    #[serde(default = "default_normalize")]
    pub normalize: bool,
    /// The encoder's arithmetic on a GPU: `f32` (default), `bf16` or `f16` (half the memory
    /// traffic; pooling and normalising stay in f32). The CPU always computes in f32.
    #[serde(default)]
    pub dtype: Precision,
}

/// `[text_embedding] dtype`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    Bf16,
    F16,
}

impl Precision {
    /// As written in model.toml.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::F16 => "f16",
        }
    }
}

fn default_normalize() -> bool {
    true
}

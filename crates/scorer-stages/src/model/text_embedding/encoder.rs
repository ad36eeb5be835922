//! The encoder behind the `text_embedding` kind (built with the `text-embedding` feature): the
//! tokenizer, the BERT layers (packed on the CPU, candle-transformers' on a GPU), pooling and
//! normalisation.

use std::path::Path;

use arrow::array::{Array, ArrayRef, FixedSizeListArray, Float32Array, StringArray};
use arrow::datatypes::{DataType, Field};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use tokenizers::Tokenizer;

use super::cpu::PackedBert;
use super::{Precision, TextEmbeddingSpec};
use crate::contract::{ExecutionPolicy, InputContract, MissingValues, OutputColumn, OutputType};
use crate::features::FeatureBatch;
use crate::model::{ModelError, ScoringModel};

/// Texts encoded per pass on the CPU, packed without padding: enough rows (~4,600 tokens at 36
/// per text) for the matrix products to run at the kernels' speed on every core, few enough that
/// the intermediate activations stay tens of MB.
pub const ROWS_PER_CHUNK_CPU: usize = 128;
/// Rows per forward pass on a GPU: kernel launches are the cost there, so far larger chunks.
pub const ROWS_PER_CHUNK_GPU: usize = 512;

impl Precision {
    /// The candle dtype the encoder computes in.
    fn candle(self) -> DType {
        match self {
            Self::F32 => DType::F32,
            Self::Bf16 => DType::BF16,
            Self::F16 => DType::F16,
        }
    }
}

/// The encoder on a GPU: candle-transformers' BERT layers, with the embeddings and the
/// attention mask built here. (Its `BertModel` builds the mask as (1 - mask) × f32::MIN in the
/// encoder's dtype; f32::MIN is -inf in bf16 and f16, and 0 × -inf is NaN: measured on an H200,
/// every bf16 embedding came out NaN. The mask here is (1 - mask) × -10,000, which every dtype
/// holds and which softmax turns into 0 as surely.)
pub struct GpuBert {
    word: candle_nn::Embedding,
    position: candle_nn::Embedding,
    token_type: candle_nn::Embedding,
    norm: candle_nn::LayerNorm,
    encoder: candle_transformers::models::bert::BertEncoder,
    dtype: DType,
}

impl GpuBert {
    fn load(vb: VarBuilder, config: &Config) -> candle_core::Result<Self> {
        let vb = if vb.contains_tensor("bert.embeddings.word_embeddings.weight") {
            vb.pp("bert")
        } else {
            vb
        };
        let e = vb.pp("embeddings");
        let h = config.hidden_size;
        Ok(Self {
            word: candle_nn::embedding(config.vocab_size, h, e.pp("word_embeddings"))?,
            position: candle_nn::embedding(
                config.max_position_embeddings,
                h,
                e.pp("position_embeddings"),
            )?,
            token_type: candle_nn::embedding(
                config.type_vocab_size,
                h,
                e.pp("token_type_embeddings"),
            )?,
            norm: candle_nn::layer_norm(h, config.layer_norm_eps, e.pp("LayerNorm"))?,
            encoder: candle_transformers::models::bert::BertEncoder::load(
                vb.pp("encoder"),
                config,
            )?,
            dtype: vb.dtype(),
        })
    }

    /// Last hidden states `[rows, len, hidden]` (in the encoder's dtype) of padded `ids`, with
    /// `mask` 1 for real tokens and 0 for padding (f32, `[rows, len]`).
    fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        use candle_core::Module;
        let (_, len) = ids.dims2()?;
        let positions = Tensor::arange(0u32, len as u32, ids.device())?;
        let x = self
            .word
            .forward(ids)?
            .broadcast_add(&self.position.forward(&positions)?)?
            .broadcast_add(&self.token_type.forward(&ids.zeros_like()?)?)?;
        let x = self.norm.forward(&x)?;
        let extended = ((mask.ones_like()? - mask)? * -10_000.0)?
            .unsqueeze(1)?
            .unsqueeze(1)?
            .to_dtype(self.dtype)?;
        self.encoder.forward(&x, &extended)
    }
}

/// How the encoder runs: packed on the CPU (`super::cpu`), padded batches through
/// candle-transformers' layers on a GPU (or on the CPU for an encoder the packed form does not
/// cover).
enum Encoder {
    Packed(PackedBert),
    Candle(Box<GpuBert>),
}

/// A loaded encoder with its tokenizer.
pub struct TextEmbeddingModel {
    encoder: Encoder,
    tokenizer: Tokenizer,
    device: Device,
    spec: TextEmbeddingSpec,
    /// What the encoder computes in here (f32 on the CPU whatever `spec.dtype` says).
    precision: Precision,
    hidden: usize,
    contract: InputContract,
    outputs: Vec<OutputColumn>,
}

/// The artifacts' bytes and the paths they came from (for messages).
pub struct TextEmbeddingFiles<'a> {
    pub weights: (&'a [u8], &'a Path),
    pub config: (&'a [u8], &'a Path),
    pub tokenizer: (&'a [u8], &'a Path),
}

impl TextEmbeddingModel {
    /// Builds the encoder on `device` from the model's files, checking that the declared output
    /// is one vector as wide as the encoder's hidden states.
    pub fn build(
        files: &TextEmbeddingFiles<'_>,
        spec: &TextEmbeddingSpec,
        inputs: &[String],
        outputs: &[OutputColumn],
        device: &Device,
    ) -> Result<Self, ModelError> {
        let bad = |path: &Path, message: String| ModelError::Spec {
            path: path.to_path_buf(),
            message,
        };
        let config: Config = serde_json::from_slice(files.config.0)
            .map_err(|e| bad(files.config.1, format!("not a BERT config.json: {e}")))?;
        let hidden = config.hidden_size;
        match (inputs, outputs) {
            (
                [_],
                [
                    OutputColumn {
                        ty: OutputType::Float32Vector(n),
                        ..
                    },
                ],
            ) if *n == hidden => {}
            _ => {
                return Err(bad(
                    files.weights.1,
                    format!(
                        "a text_embedding model reads one string input and writes one vector of \
                         the encoder's width: inputs = [\"text\"], outputs = [{{ name = \
                         \"embedding\", size = {hidden} }}]"
                    ),
                ));
            }
        }
        if spec.max_seq_len < 2 || spec.max_seq_len > config.max_position_embeddings {
            return Err(bad(
                files.config.1,
                format!(
                    "text_embedding.max_seq_len must be between 2 and the encoder's \
                     max_position_embeddings ({}), got {}",
                    config.max_position_embeddings, spec.max_seq_len
                ),
            ));
        }
        let mut tokenizer = Tokenizer::from_bytes(files.tokenizer.0).map_err(|e| {
            bad(
                files.tokenizer.1,
                format!("not a readable tokenizer.json: {e}"),
            )
        })?;
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: spec.max_seq_len,
                ..Default::default()
            }))
            .map_err(|e| bad(files.tokenizer.1, format!("cannot set truncation: {e}")))?;
        // Padding is this module's own, per chunk.
        tokenizer.with_padding(None);
        let precision = match spec.dtype {
            Precision::F32 => Precision::F32,
            other if device.is_cpu() => {
                tracing::info!(dtype = ?other, "text_embedding: reduced precision is for GPUs; the CPU computes in f32");
                Precision::F32
            }
            other => other,
        };
        // SCORER_TEXT_ENCODER=candle runs the GPU's encoder on the CPU too (tests and diagnosis).
        let forced_candle = std::env::var("SCORER_TEXT_ENCODER").as_deref() == Ok("candle");
        let packed = if device.is_cpu() && !forced_candle {
            match PackedBert::load(files.weights.0, &config) {
                Ok(p) => Some(p),
                Err(why) => {
                    tracing::info!(%why, "text_embedding: the packed CPU encoder does not cover this model; using candle-transformers'");
                    None
                }
            }
        } else {
            None
        };
        let encoder = match packed {
            Some(p) => Encoder::Packed(p),
            None => {
                let vb = VarBuilder::from_buffered_safetensors(
                    files.weights.0.to_vec(),
                    precision.candle(),
                    device,
                )
                .map_err(|e| {
                    bad(
                        files.weights.1,
                        format!("not a readable safetensors file: {e}"),
                    )
                })?;
                let model = GpuBert::load(vb, &config)
                    .map_err(|e| bad(files.weights.1, format!("not a BERT encoder: {e}")))?;
                Encoder::Candle(Box::new(model))
            }
        };
        Ok(Self {
            encoder,
            tokenizer,
            device: device.clone(),
            spec: spec.clone(),
            precision,
            hidden,
            contract: InputContract {
                features: inputs.to_vec(),
                missing: MissingValues::JobPolicy,
                types: vec![crate::contract::FeatureType::Text],
            },
            outputs: outputs.to_vec(),
        })
    }

    /// Token ids of each text, truncated, special tokens added.
    fn tokenize(&self, texts: &StringArray) -> Result<Vec<Vec<u32>>, ModelError> {
        let inputs: Vec<&str> = (0..texts.len()).map(|i| texts.value(i)).collect();
        let encodings = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| ModelError::Runtime(format!("tokenizing: {e}")))?;
        Ok(encodings.iter().map(|e| e.get_ids().to_vec()).collect())
    }

    /// Mean-pooled (and, unless switched off, L2-normalised) embeddings of `ids`, row-major
    /// `[ids.len(), hidden]`.
    fn encode_chunk(&self, ids: &[&[u32]]) -> Result<Vec<f32>, ModelError> {
        let mut pooled = match &self.encoder {
            Encoder::Packed(p) => p.mean_pooled(ids).map_err(ModelError::Runtime)?,
            Encoder::Candle(m) => self.padded_mean_pooled(m, ids)?,
        };
        if self.spec.normalize {
            pooled.chunks_mut(self.hidden).for_each(|row| {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                row.iter_mut().for_each(|v| *v /= norm);
            });
        }
        Ok(pooled)
    }

    /// Mean-pooled last hidden states of `ids` through the GPU's encoder: padded to the longest
    /// text of the chunk, the padding masked out of attention and of the mean (pooled in f32
    /// whatever the encoder computed in).
    fn padded_mean_pooled(
        &self,
        encoder: &GpuBert,
        ids: &[&[u32]],
    ) -> Result<Vec<f32>, ModelError> {
        let candle = |e: candle_core::Error| ModelError::Candle(e.to_string());
        let rows = ids.len();
        let len = ids.iter().map(|t| t.len()).max().unwrap_or(0).max(1);
        let mut flat = vec![0u32; rows * len];
        let mut mask = vec![0f32; rows * len];
        for (r, t) in ids.iter().enumerate() {
            flat[r * len..r * len + t.len()].copy_from_slice(t);
            mask[r * len..r * len + t.len()].fill(1.0);
        }
        let input = Tensor::from_vec(flat, (rows, len), &self.device).map_err(candle)?;
        let mask = Tensor::from_vec(mask, (rows, len), &self.device).map_err(candle)?;
        let hidden = encoder
            .forward(&input, &mask)
            .and_then(|h| h.to_dtype(DType::F32))
            .map_err(candle)?;
        // Mean over the real tokens: sum(h * mask) / count(mask).
        let m = mask.unsqueeze(2).map_err(candle)?;
        let summed = hidden
            .broadcast_mul(&m)
            .and_then(|t| t.sum(1))
            .map_err(candle)?;
        let counts = m
            .sum(1)
            .and_then(|c| c.clamp(1e-9, f64::MAX))
            .map_err(candle)?;
        summed
            .broadcast_div(&counts)
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(candle)
    }
}

impl ScoringModel for TextEmbeddingModel {
    fn inputs(&self) -> &InputContract {
        &self.contract
    }

    fn outputs(&self) -> &[OutputColumn] {
        &self.outputs
    }

    fn execution(&self) -> ExecutionPolicy {
        // The matrix products use every core of the pool themselves.
        ExecutionPolicy::WholeBatches
    }

    fn score(&self, batch: &FeatureBatch) -> Result<Vec<ArrayRef>, ModelError> {
        let texts = batch.text().ok_or_else(|| {
            ModelError::Runtime("a text_embedding model was given no text column".into())
        })?;
        let ids = self.tokenize(texts)?;
        // Longest first, so each chunk holds texts of about one length.
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = vec![0f32; ids.len() * self.hidden];
        let rows_per_chunk = if self.device.is_cpu() {
            ROWS_PER_CHUNK_CPU
        } else {
            ROWS_PER_CHUNK_GPU
        };
        for chunk in order.chunks(rows_per_chunk) {
            let chunk_ids: Vec<&[u32]> = chunk.iter().map(|&i| ids[i].as_slice()).collect();
            let pooled = self.encode_chunk(&chunk_ids)?;
            for (k, &row) in chunk.iter().enumerate() {
                out[row * self.hidden..(row + 1) * self.hidden]
                    .copy_from_slice(&pooled[k * self.hidden..(k + 1) * self.hidden]);
            }
        }
        Ok(vec![vectors(out, self.hidden)?])
    }

    fn describe(&self) -> Option<String> {
        Some(format!(
            "BERT encoder, {} wide, max_seq_len {}, {}, mean pooling{}",
            self.hidden,
            self.spec.max_seq_len,
            self.precision.name(),
            if self.spec.normalize {
                ", L2-normalised"
            } else {
                ""
            }
        ))
    }
}

/// Row-major embeddings as a `FixedSizeList<Float32>[width]` column.
fn vectors(flat: Vec<f32>, width: usize) -> Result<ArrayRef, ModelError> {
    let size = i32::try_from(width)
        .map_err(|_| ModelError::Runtime(format!("embedding width {width} is too large")))?;
    let field = std::sync::Arc::new(Field::new_list_field(DataType::Float32, false));
    let values = std::sync::Arc::new(Float32Array::from(flat));
    FixedSizeListArray::try_new(field, size, values, None)
        .map(|a| std::sync::Arc::new(a) as ArrayRef)
        .map_err(|e| ModelError::Runtime(format!("packing embeddings: {e}")))
}

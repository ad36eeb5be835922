//! The BERT encoder on the CPU, packed: the tokens of every text in a chunk are rows of one
//! `[tokens, hidden]` matrix (no padding), so each linear layer is one large `gemm` call over all
//! of them, multithreaded on the scoring pool, and attention runs per text on its own length.
//!
//! Why not candle-transformers' `BertModel` on the CPU: it pads every chunk to its longest text
//! and runs each linear layer as a batch of small `[len, hidden]` products (one per text), each
//! allocating fresh tensors; measured on all-MiniLM-L6-v2 it reached 221 sentences/s on 16 cores,
//! below sentence-transformers on 2. The same arithmetic as large products reaches the matrix
//! kernels' speed. candle-transformers still runs the encoder on CUDA, where padded batches suit.
//!
//! The formulas are BERT's (as `transformers` computes them, which sentence-transformers runs):
//! embeddings = LayerNorm(word + position + token type 0); per layer, self-attention with
//! softmax(QKᵀ/√d)V over the text's own tokens, a dense projection, residual and LayerNorm, then
//! GELU (erf) between two dense layers, residual and LayerNorm.

use std::collections::HashMap;

use rayon::prelude::*;

use candle_transformers::models::bert::{Config, HiddenAct, PositionEmbeddingType};

/// One dense layer, its weight transposed to `[in, out]` so products read it row by row.
struct Dense {
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

struct LayerNorm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

struct Layer {
    /// Query, key and value in one `[hidden, 3 × hidden]` product.
    qkv: Dense,
    attention_out: Dense,
    attention_norm: LayerNorm,
    intermediate: Dense,
    output: Dense,
    output_norm: LayerNorm,
}

/// The encoder's weights, read once from the safetensors file.
pub struct PackedBert {
    word: Vec<f32>,
    position: Vec<f32>,
    token_type: Vec<f32>,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    hidden: usize,
    heads: usize,
    eps: f32,
    vocab: usize,
    max_positions: usize,
}

/// Tensors by name: shape and values.
type TensorMap = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// The tensors of a safetensors file by name, as f32 (f16 and bf16 widened).
fn read_tensors(bytes: &[u8]) -> Result<TensorMap, String> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut out = HashMap::new();
    for (name, view) in st.tensors() {
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            safetensors::Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            safetensors::Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            // Integer buffers (position ids) are not weights the encoder needs.
            _ => continue,
        };
        out.insert(name.to_string(), (view.shape().to_vec(), values));
    }
    Ok(out)
}

/// The weights file's tensors, taken out by name as the encoder is assembled.
struct Tensors {
    map: TensorMap,
    /// `bert.` when the file was saved from a model with heads (`BertForMaskedLM`, …).
    prefix: &'static str,
}

impl Tensors {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let full = format!("{}{name}", self.prefix);
        let (got, values) = self
            .map
            .remove(&full)
            .ok_or_else(|| format!("tensor `{full}` is missing"))?;
        if got != shape {
            return Err(format!("tensor `{full}` is {got:?}, expected {shape:?}"));
        }
        Ok(values)
    }

    /// A LayerNorm's scale and shift: `weight`/`bias`, or `gamma`/`beta` in older checkpoints.
    fn norm(&mut self, name: &str, hidden: usize) -> Result<LayerNorm, String> {
        let gamma = self
            .take(&format!("{name}.weight"), &[hidden])
            .or_else(|_| self.take(&format!("{name}.gamma"), &[hidden]))?;
        let beta = self
            .take(&format!("{name}.bias"), &[hidden])
            .or_else(|_| self.take(&format!("{name}.beta"), &[hidden]))?;
        Ok(LayerNorm { gamma, beta })
    }

    fn dense(&mut self, name: &str, inputs: usize, outputs: usize) -> Result<Dense, String> {
        let w = self.take(&format!("{name}.weight"), &[outputs, inputs])?;
        let bias = self.take(&format!("{name}.bias"), &[outputs])?;
        Ok(Dense {
            weight_t: transpose(&w, outputs, inputs),
            bias,
            inputs,
            outputs,
        })
    }
}

impl PackedBert {
    /// Reads the encoder described by `config` from safetensors `bytes` (names as `transformers`
    /// saves a `BertModel`, with or without the `bert.` prefix; LayerNorm as weight/bias or
    /// gamma/beta). Only BERT with GELU (erf) and absolute positions is packed; anything else is
    /// `Err` (the caller then keeps candle-transformers' model).
    pub fn load(bytes: &[u8], config: &Config) -> Result<Self, String> {
        if config.hidden_act != HiddenAct::Gelu {
            return Err(format!(
                "hidden_act {:?} (packed: gelu only)",
                config.hidden_act
            ));
        }
        if config.position_embedding_type != PositionEmbeddingType::Absolute {
            return Err("position_embedding_type (packed: absolute only)".into());
        }
        let hidden = config.hidden_size;
        let heads = config.num_attention_heads;
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return Err(format!(
                "hidden_size {hidden} is not a multiple of {heads} heads"
            ));
        }
        let mut t = Tensors {
            map: read_tensors(bytes)?,
            prefix: "",
        };
        if t.map.contains_key("bert.embeddings.word_embeddings.weight") {
            t.prefix = "bert.";
        }
        let inter = config.intermediate_size;
        let embedding_norm = t.norm("embeddings.LayerNorm", hidden)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for i in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            let q = t.dense(&format!("{p}.attention.self.query"), hidden, hidden)?;
            let k = t.dense(&format!("{p}.attention.self.key"), hidden, hidden)?;
            let v = t.dense(&format!("{p}.attention.self.value"), hidden, hidden)?;
            layers.push(Layer {
                qkv: concat_outputs(&[q, k, v]),
                attention_out: t.dense(&format!("{p}.attention.output.dense"), hidden, hidden)?,
                attention_norm: t.norm(&format!("{p}.attention.output.LayerNorm"), hidden)?,
                intermediate: t.dense(&format!("{p}.intermediate.dense"), hidden, inter)?,
                output: t.dense(&format!("{p}.output.dense"), inter, hidden)?,
                output_norm: t.norm(&format!("{p}.output.LayerNorm"), hidden)?,
            });
        }
        let word = t.take(
            "embeddings.word_embeddings.weight",
            &[config.vocab_size, hidden],
        )?;
        let position = t.take(
            "embeddings.position_embeddings.weight",
            &[config.max_position_embeddings, hidden],
        )?;
        let token_type = t.take(
            "embeddings.token_type_embeddings.weight",
            &[config.type_vocab_size, hidden],
        )?;
        Ok(Self {
            word,
            position,
            token_type,
            embedding_norm,
            layers,
            hidden,
            heads,
            eps: config.layer_norm_eps as f32,
            vocab: config.vocab_size,
            max_positions: config.max_position_embeddings,
        })
    }

    /// Mean-pooled last hidden states of each text (token ids per text), row-major
    /// `[texts, hidden]`.
    pub fn mean_pooled(&self, texts: &[&[u32]]) -> Result<Vec<f32>, String> {
        let h = self.hidden;
        let lens: Vec<usize> = texts.iter().map(|t| t.len()).collect();
        let total: usize = lens.iter().sum();
        let mut x = vec![0f32; total * h];
        // Embeddings: word + position + token type 0, then LayerNorm.
        let mut row = 0;
        for t in texts {
            if t.len() > self.max_positions {
                return Err(format!(
                    "a text of {} tokens is longer than the {} positions",
                    t.len(),
                    self.max_positions
                ));
            }
            for (pos, &id) in t.iter().enumerate() {
                let id = id as usize;
                if id >= self.vocab {
                    return Err(format!("token id {id} is outside the vocabulary"));
                }
                let out = &mut x[row * h..(row + 1) * h];
                let w = &self.word[id * h..(id + 1) * h];
                let p = &self.position[pos * h..(pos + 1) * h];
                let ty = &self.token_type[..h];
                for j in 0..h {
                    out[j] = w[j] + p[j] + ty[j];
                }
                row += 1;
            }
        }
        layer_norm_rows(&mut x, h, &self.embedding_norm, self.eps);

        let mut qkv = vec![0f32; total * 3 * h];
        let mut ctx = vec![0f32; total * h];
        let mut inter = Vec::new();
        let mut y = vec![0f32; total * h];
        for layer in &self.layers {
            linear(&x, total, &layer.qkv, &mut qkv);
            self.attention(&qkv, &lens, &mut ctx);
            linear(&ctx, total, &layer.attention_out, &mut y);
            add_rows(&mut y, &x);
            layer_norm_rows(&mut y, h, &layer.attention_norm, self.eps);
            std::mem::swap(&mut x, &mut y);
            inter.resize(total * layer.intermediate.outputs, 0.0);
            linear(&x, total, &layer.intermediate, &mut inter);
            inter
                .par_chunks_mut(4096)
                .for_each(|c| c.iter_mut().for_each(|v| *v = gelu_erf(*v)));
            linear(&inter, total, &layer.output, &mut y);
            add_rows(&mut y, &x);
            layer_norm_rows(&mut y, h, &layer.output_norm, self.eps);
            std::mem::swap(&mut x, &mut y);
        }
        // Mean over each text's tokens.
        let mut pooled = vec![0f32; texts.len() * h];
        let mut start = 0;
        for (i, &len) in lens.iter().enumerate() {
            let out = &mut pooled[i * h..(i + 1) * h];
            for r in start..start + len {
                for (o, v) in out.iter_mut().zip(&x[r * h..(r + 1) * h]) {
                    *o += v;
                }
            }
            let n = len.max(1) as f32;
            out.iter_mut().for_each(|v| *v /= n);
            start += len;
        }
        Ok(pooled)
    }

    /// Self-attention of each text over its own tokens: `ctx = softmax(QKᵀ/√d) V` per head, from
    /// the packed `[tokens, 3 × hidden]` projections, into `[tokens, hidden]`.
    fn attention(&self, qkv: &[f32], lens: &[usize], ctx: &mut [f32]) {
        let h = self.hidden;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        // Each text's rows of ctx, so the texts run in parallel on disjoint slices.
        let mut parts: Vec<(usize, &mut [f32])> = Vec::with_capacity(lens.len());
        let mut rest = ctx;
        let mut start = 0;
        for &len in lens {
            let (mine, tail) = rest.split_at_mut(len * h);
            parts.push((start, mine));
            rest = tail;
            start += len;
        }
        parts.into_par_iter().for_each(|(start, out)| {
            let len = out.len() / h;
            if len == 0 {
                return;
            }
            let rows = &qkv[start * 3 * h..(start + len) * 3 * h];
            let mut scores = vec![0f32; len * len];
            for head in 0..self.heads {
                let (qo, ko, vo) = (head * d, h + head * d, 2 * h + head * d);
                // scores = Q Kᵀ (Q and K strided views of the text's packed rows)
                strided_matmul(
                    len,
                    len,
                    d,
                    (&mut scores, len, 0),
                    (&rows[qo..], 3 * h, 1),
                    (&rows[ko..], 1, 3 * h),
                );
                for row in scores.chunks_mut(len) {
                    let max = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v * scale));
                    let mut sum = 0.0;
                    for v in row.iter_mut() {
                        *v = (*v * scale - max).exp();
                        sum += *v;
                    }
                    let inv = 1.0 / sum;
                    row.iter_mut().for_each(|v| *v *= inv);
                }
                // this head's columns of ctx = P V
                strided_matmul(
                    len,
                    d,
                    len,
                    (out, h, head * d),
                    (&scores, len, 1),
                    (&rows[vo..], 3 * h, 1),
                );
            }
        });
    }
}

/// `dst[m×n] = lhs[m×k] · rhs[k×n]` on the calling thread, each operand given as (slice, row
/// stride, column stride) — and `dst` as (slice, row stride, column offset), unit column stride:
/// the per-head views of attention without copying them out.
fn strided_matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: (&mut [f32], usize, usize),
    lhs: (&[f32], usize, usize),
    rhs: (&[f32], usize, usize),
) {
    let (dst, dst_rs, dst_off) = dst;
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
    };
    assert!(
        m > 0
            && n > 0
            && k > 0
            && dst_off + last(m, n, dst_rs, 1) < dst.len()
            && last(m, k, lhs.1, lhs.2) < lhs.0.len()
            && last(k, n, rhs.1, rhs.2) < rhs.0.len(),
        "strided matmul out of bounds: {m}×{k}·{k}×{n}"
    );
    // SAFETY: the assert above proves the largest index gemm forms from each operand's strides
    // (row m-1 / k-1, column n-1 / k-1) lies inside its slice; `dst` is borrowed mutably and so
    // aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(dst_off),
            1,
            dst_rs as isize,
            false,
            lhs.0.as_ptr(),
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0.as_ptr(),
            rhs.2 as isize,
            rhs.1 as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `[rows, cols]` row-major into `[cols, rows]`.
fn transpose(w: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0f32; w.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = w[r * cols + c];
        }
    }
    t
}

/// Several dense layers over the same input as one, their outputs side by side.
fn concat_outputs(parts: &[Dense]) -> Dense {
    let inputs = parts[0].inputs;
    let outputs: usize = parts.iter().map(|p| p.outputs).sum();
    let mut weight_t = vec![0f32; inputs * outputs];
    let mut bias = Vec::with_capacity(outputs);
    let mut offset = 0;
    for p in parts {
        for r in 0..inputs {
            weight_t[r * outputs + offset..r * outputs + offset + p.outputs]
                .copy_from_slice(&p.weight_t[r * p.outputs..(r + 1) * p.outputs]);
        }
        bias.extend_from_slice(&p.bias);
        offset += p.outputs;
    }
    Dense {
        weight_t,
        bias,
        inputs,
        outputs,
    }
}

/// `out[rows, outputs] = x[rows, inputs] · Wᵀ + b`, one `gemm` call on every thread of the pool.
fn linear(x: &[f32], rows: usize, dense: &Dense, out: &mut [f32]) {
    let (k, n) = (dense.inputs, dense.outputs);
    if rows == 0 {
        return;
    }
    out.par_chunks_mut(n * 64)
        .for_each(|c| c.chunks_mut(n).for_each(|r| r.copy_from_slice(&dense.bias)));
    let threads = rayon::current_num_threads().max(1);
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    crate::model::dense::cpu::accumulate_matmul(out, x, &dense.weight_t, (rows, k, n), parallelism);
}

fn add_rows(y: &mut [f32], x: &[f32]) {
    y.par_chunks_mut(4096)
        .zip(x.par_chunks(4096))
        .for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
}

/// LayerNorm of each `width`-long row in place (mean and variance over the row, as PyTorch).
fn layer_norm_rows(x: &mut [f32], width: usize, norm: &LayerNorm, eps: f32) {
    x.par_chunks_mut(width).for_each(|row| {
        let n = width as f32;
        let mean = row.iter().sum::<f32>() / n;
        let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
        let inv = 1.0 / (var + eps).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&norm.gamma).zip(&norm.beta) {
            *v = (*v - mean) * inv * g + b;
        }
    });
}

/// GELU with erf, as BERT's `gelu`: `0.5 v (1 + erf(v / √2))`.
fn gelu_erf(v: f32) -> f32 {
    0.5 * v * (1.0 + erf(v * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf as a rational function of x (odd numerator over even denominator, x clamped to ±4, where
/// erf is ±1 in f32): no branch and no call, so the GELU loop vectorises. Within 5e-7 (a few ULP near ±1) of libm's
/// `erff` everywhere (`erf_matches_libm`); the intermediate layer's GELU was the encoder's
/// largest cost after the matrix products with a call to `erff` per value.
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let p = -2.726_142_3e-10_f32;
    let p = p * x2 + 2.770_681_4e-8;
    let p = p * x2 - 2.101_024e-6;
    let p = p * x2 - 5.692_506_4e-5;
    let p = p * x2 - 7.349_906_3e-4;
    let p = p * x2 - 2.954_600_1e-3;
    let p = p * x2 - 1.609_603_3e-2;
    let q = -1.456_607_2e-5_f32;
    let q = q * x2 - 2.133_740_6e-4;
    let q = q * x2 - 1.682_827e-3;
    let q = q * x2 - 7.373_329e-3;
    let q = q * x2 - 1.426_474e-2;
    x * p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0f32;
        for i in -60_000..=60_000 {
            let x = i as f32 / 10_000.0;
            worst = worst.max((erf(x) - libm::erff(x)).abs());
        }
        assert!(worst < 6e-7, "worst |erf - erff| = {worst}");
    }

    #[test]
    fn transposes_and_concatenates_dense_layers() {
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // [2 out, 3 in]
        assert_eq!(transpose(&w, 2, 3), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let a = Dense {
            weight_t: transpose(&w, 2, 3),
            bias: vec![0.5, 0.25],
            inputs: 3,
            outputs: 2,
        };
        let b = Dense {
            weight_t: vec![7.0, 8.0, 9.0],
            bias: vec![1.0],
            inputs: 3,
            outputs: 1,
        };
        let both = concat_outputs(&[a, b]);
        assert_eq!(both.weight_t, [1.0, 4.0, 7.0, 2.0, 5.0, 8.0, 3.0, 6.0, 9.0]);
        assert_eq!(both.bias, [0.5, 0.25, 1.0]);
        let mut out = vec![0.0; 3];
        linear(&[1.0, 1.0, 1.0], 1, &both, &mut out);
        assert_eq!(out, [6.5, 15.25, 25.0]);
    }
}

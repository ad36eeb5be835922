//! What a text encoder costs and, in reduced precision, what it loses, for `scorer models
//! verify`: sample texts are encoded by the model as loaded and timed; when it computes in bf16
//! or f16 (on a GPU), the same weights are loaded again in f32 on the same device, and the
//! report gives the speed-up and the worst cosine between the two embeddings of a text. A user
//! can so decide on `dtype` with figures from their own card and, with `--texts`, their own
//! texts.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, FixedSizeListArray, Float32Array, StringArray};

use crate::features::FeatureBatch;
use crate::model::text_embedding::Precision;
use crate::model::{ModelError, ScoringModel};

/// The fixture sentences CI's parity test compares with sentence-transformers (empty, one
/// character, non-ASCII, longer than `max_seq_len`), one JSON string per line.
const FIXTURE_SENTENCES: &str =
    include_str!("../../../../tests/fixtures/text_embedding/sentences.jsonl");

/// On a GPU the sample is repeated up to this many texts per batch, so that the encoder runs
/// full chunks as in a run rather than one short launch.
const GPU_BATCH_TEXTS: usize = 4096;

/// Each precision is timed over passes until this much time has gone (after one untimed pass).
const MIN_TIMED_SECONDS: f64 = 2.0;

/// The texts verified when the user names none: the fixture sentences.
pub fn fixture_texts() -> Vec<String> {
    parse_texts(FIXTURE_SENTENCES)
}

/// Texts from `path`, one per line; a line that is a JSON string is decoded (so a text can hold
/// a newline), any other line is taken as it is. Empty files are refused.
pub fn read_texts(path: &Path) -> Result<Vec<String>, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let texts = parse_texts(&text);
    if texts.is_empty() {
        return Err(ModelError::Spec {
            path: path.to_path_buf(),
            message: "no texts to verify with (one text per line)".into(),
        });
    }
    Ok(texts)
}

fn parse_texts(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| serde_json::from_str::<String>(line).unwrap_or_else(|_| line.to_string()))
        .collect()
}

/// One precision's embeddings of the sample and its speed.
pub struct Timed {
    /// Row-major, one embedding per sample text.
    pub embeddings: Vec<f32>,
    pub width: usize,
    pub texts_per_second: f64,
}

/// Encodes `texts` with `model` once untimed (its embeddings are returned), then times passes
/// over the batch until `MIN_TIMED_SECONDS` have gone. On a GPU the batch is the sample
/// repeated to `GPU_BATCH_TEXTS`.
pub fn time_encoder(
    model: &dyn ScoringModel,
    texts: &[String],
    on_gpu: bool,
) -> Result<Timed, ModelError> {
    let copies = if on_gpu {
        GPU_BATCH_TEXTS.div_ceil(texts.len().max(1))
    } else {
        1
    };
    let batch = FeatureBatch::from_texts(
        texts
            .iter()
            .cycle()
            .take(texts.len() * copies)
            .map(|t| Some(t.as_str()))
            .collect::<StringArray>(),
    );
    let first = model.score(&batch)?;
    let (embeddings, width) = flat_vectors(first.first().map(Arc::as_ref))?;
    let start = Instant::now();
    let mut passes = 0usize;
    while passes == 0 || start.elapsed().as_secs_f64() < MIN_TIMED_SECONDS {
        model.score(&batch)?;
        passes += 1;
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(Timed {
        embeddings: embeddings[..texts.len() * width].to_vec(),
        width,
        texts_per_second: (batch.rows * passes) as f64 / seconds,
    })
}

/// The worst (lowest) cosine similarity between corresponding rows of `a` and `b`. Two zero
/// vectors agree (cosine 1); a zero against a non-zero vector does not (0).
pub fn worst_cosine(a: &[f32], b: &[f32], width: usize) -> f64 {
    a.chunks(width.max(1))
        .zip(b.chunks(width.max(1)))
        .map(|(x, y)| {
            let dot: f64 = x.iter().zip(y).map(|(p, q)| *p as f64 * *q as f64).sum();
            let nx = x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
            let ny = y.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
            match (nx == 0.0, ny == 0.0) {
                (true, true) => 1.0,
                (true, false) | (false, true) => 0.0,
                _ => dot / (nx * ny),
            }
        })
        .fold(1.0, f64::min)
}

/// The report line on a text encoder: its speed as loaded, and against f32 when `reference`
/// (the same weights in f32) is given.
pub fn report(
    precision: Precision,
    texts: usize,
    loaded: &Timed,
    reference: Option<&Timed>,
) -> String {
    let name = precision.name();
    match reference {
        None => format!(
            "{texts} texts: {name} {:.0} texts/s",
            loaded.texts_per_second
        ),
        Some(f32s) => format!(
            "{texts} texts: {name} {:.0} texts/s, f32 {:.0} texts/s, speed-up {:.2}x, worst cosine against f32 {:.6}",
            loaded.texts_per_second,
            f32s.texts_per_second,
            loaded.texts_per_second / f32s.texts_per_second,
            worst_cosine(&loaded.embeddings, &f32s.embeddings, loaded.width)
        ),
    }
}

/// A `FixedSizeList<Float32>` column as row-major values and its width.
fn flat_vectors(column: Option<&dyn Array>) -> Result<(Vec<f32>, usize), ModelError> {
    let list = column
        .and_then(|c| c.as_any().downcast_ref::<FixedSizeListArray>())
        .ok_or_else(|| ModelError::Runtime("the encoder returned no vector column".into()))?;
    let values = list
        .values()
        .as_any()
        .downcast_ref::<Float32Array>()
        .ok_or_else(|| ModelError::Runtime("the encoder's vectors are not f32".into()))?;
    Ok((values.values().to_vec(), list.value_length() as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_texts_are_the_parity_sentences() {
        let texts = fixture_texts();
        assert_eq!(texts.len(), 210);
        assert_eq!(texts[0], "");
        assert_eq!(texts[3], "a");
    }

    #[test]
    fn worst_cosine_finds_the_worst_row() {
        let a = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let b = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let worst = worst_cosine(&a, &b, 2);
        assert!(
            (worst - std::f64::consts::FRAC_1_SQRT_2).abs() < 1e-12,
            "{worst}"
        );
        assert_eq!(worst_cosine(&[0.0, 0.0], &[0.0, 0.0], 2), 1.0);
        assert_eq!(worst_cosine(&[0.0, 0.0], &[1.0, 0.0], 2), 0.0);
    }

    #[test]
    fn json_lines_are_decoded_and_plain_lines_kept() {
        let texts = parse_texts("\"a\\nb\"\nplain text\n\"\"");
        assert_eq!(texts, vec!["a\nb", "plain text", ""]);
    }
}

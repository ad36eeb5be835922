//! The ONNX kind's model: one ONNX Runtime session per scoring thread over the graph, fed the
//! features and fetching the declared outputs as `mapping` planned.

use std::path::Path;
use std::sync::Mutex;

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array};
use arrow::datatypes::{DataType, Field};
use ort::session::{Session, SessionInputValue};
use ort::value::{TensorElementType, TensorRef};

use super::{mapping, runtime, typed};
use crate::contract::{
    ExecutionPolicy, FeatureType, InputContract, MissingValues, OutputColumn, OutputType,
};
use crate::features::FeatureBatch;
use crate::model::{ModelError, ScoringModel};
use mapping::{Feed, Fetch, plan_feeds, plan_fetches};

/// Smallest row slice the scoring stage hands one call: below this the per-call overhead shows.
const MIN_SLICE_ROWS: usize = 4096;
/// Rows per graph run within a call: a tile's input (W1: 512 KB) and activations stay in the L2
/// cache; ~20 µs of ONNX Runtime overhead per run is under 1% of a tile's work.
const TILE_ROWS: usize = 4096;

/// An ONNX graph ready to score.
pub struct OnnxModel {
    sessions: Vec<Mutex<Session>>,
    contract: InputContract,
    outputs: Vec<OutputColumn>,
    feeds: Vec<Feed>,
    fetches: Vec<Fetch>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("sessions", &self.sessions.len())
            .field("feeds", &self.feeds)
            .field("fetches", &self.fetches)
            .finish()
    }
}

impl OnnxModel {
    /// Opens `graph` (the .onnx bytes) in `sessions` sessions and checks its inputs and outputs
    /// against the declared ones and the `[onnx]` mapping. Unsupported operators,
    /// inputs of a type scorer cannot feed and unmapped outputs are refused here, before any row
    /// is read.
    pub fn build(
        graph: &[u8],
        path: &Path,
        inputs: &[String],
        outputs: &[OutputColumn],
        mapping: &super::section::OnnxSpec,
        sessions: usize,
    ) -> Result<Self, ModelError> {
        let spec_err = |message: String| ModelError::Spec {
            path: path.to_path_buf(),
            message,
        };
        let env = runtime::environment().map_err(ModelError::Runtime)?;
        let mut opened = Vec::with_capacity(sessions.max(1));
        for _ in 0..sessions.max(1) {
            let session = runtime::open_session(env, graph)
                .map_err(|e| spec_err(format!("ONNX Runtime refused the graph: {e}")))?;
            opened.push(session);
        }
        let first = &opened[0];
        let (feeds, types) = plan_feeds(first, inputs, mapping).map_err(spec_err)?;
        let fetches = plan_fetches(first, outputs, mapping).map_err(spec_err)?;
        Ok(Self {
            sessions: opened.into_iter().map(Mutex::new).collect(),
            contract: InputContract {
                features: inputs.to_vec(),
                missing: MissingValues::JobPolicy,
                types,
            },
            outputs: outputs.to_vec(),
            feeds,
            fetches,
        })
    }
}

impl ScoringModel for OnnxModel {
    fn inputs(&self) -> &InputContract {
        &self.contract
    }

    fn outputs(&self) -> &[OutputColumn] {
        &self.outputs
    }

    fn execution(&self) -> ExecutionPolicy {
        ExecutionPolicy::RowSlices {
            min_rows: MIN_SLICE_ROWS,
        }
    }

    fn score(&self, batch: &FeatureBatch) -> Result<Vec<ArrayRef>, ModelError> {
        let rows = batch.rows;
        let run_err = |m: String| ModelError::Runtime(format!("ONNX Runtime: {m}"));
        // One session per scoring thread: a thread only waits if more threads than sessions.
        let slot = rayon::current_thread_index().unwrap_or(0) % self.sessions.len();
        let mut session = self.sessions[slot]
            .lock()
            .map_err(|_| run_err("a previous call panicked".into()))?;
        // The graph runs tile by tile, so its input and activations stay in the cache; each
        // fetched tensor's tiles are concatenated, then split into the declared outputs.
        let mut inputs: Vec<Vec<f32>> = self
            .feeds
            .iter()
            .map(|f| match f.ty {
                FeatureType::Float32 => vec![0f32; TILE_ROWS.min(rows) * f.columns.len()],
                _ => Vec::new(),
            })
            .collect();
        let mut floats: Vec<Vec<f32>> = self
            .fetches
            .iter()
            .map(|f| Vec::with_capacity(rows * f.width))
            .collect();
        let mut ints: Vec<Vec<i64>> = self.fetches.iter().map(|_| Vec::new()).collect();
        for start in (0..rows).step_by(TILE_ROWS) {
            let len = TILE_ROWS.min(rows - start);
            let mut feeds: Vec<(&str, SessionInputValue<'_>)> =
                Vec::with_capacity(self.feeds.len());
            for (feed, buf) in self.feeds.iter().zip(inputs.iter_mut()) {
                let k = feed.columns.len();
                let shape = if feed.vector { vec![len] } else { vec![len, k] };
                let value: SessionInputValue<'_> = if feed.ty == FeatureType::Float32 {
                    batch.write_row_major(&feed.columns, start, len, &mut buf[..len * k]);
                    TensorRef::from_array_view((shape, &buf[..len * k]))
                        .map_err(|e| run_err(e.to_string()))?
                        .into()
                } else {
                    typed::tile(batch, feed, start, len, shape).map_err(run_err)?
                };
                feeds.push((feed.name.as_str(), value));
            }
            let results = session.run(feeds).map_err(|e| run_err(e.to_string()))?;
            for (i, fetch) in self.fetches.iter().enumerate() {
                let value = results
                    .get(&fetch.name)
                    .ok_or_else(|| run_err(format!("no output `{}`", fetch.name)))?;
                let at = |e: ort::Error| run_err(format!("output `{}`: {e}", fetch.name));
                if fetch.ty == TensorElementType::Int64 {
                    let (shape, data) = value.try_extract_tensor::<i64>().map_err(at)?;
                    check_shape(shape, len, fetch).map_err(run_err)?;
                    ints[i].extend_from_slice(data);
                } else if fetch.ty == TensorElementType::Float64 {
                    // A graph computing in double (a scikit-learn pipeline fed doubles): its
                    // outputs are declared f32, like every other model's scores.
                    let (shape, data) = value.try_extract_tensor::<f64>().map_err(at)?;
                    check_shape(shape, len, fetch).map_err(run_err)?;
                    floats[i].extend(data.iter().map(|v| *v as f32));
                } else {
                    let (shape, data) = value.try_extract_tensor::<f32>().map_err(at)?;
                    check_shape(shape, len, fetch).map_err(run_err)?;
                    floats[i].extend_from_slice(data);
                }
            }
        }
        let mut columns: Vec<Option<ArrayRef>> = vec![None; self.outputs.len()];
        for ((fetch, f), n) in self.fetches.iter().zip(floats).zip(ints) {
            if fetch.ty == TensorElementType::Int64 {
                columns[fetch.targets[0]] = Some(std::sync::Arc::new(Int64Array::from(n)));
                continue;
            }
            let mut offset = 0;
            for &target in &fetch.targets {
                let ty = self.outputs[target].ty;
                columns[target] =
                    Some(split_column(&f, fetch.width, offset, ty, rows).map_err(run_err)?);
                offset += ty.width();
            }
        }
        columns
            .into_iter()
            .zip(&self.outputs)
            .map(|(c, o)| c.ok_or_else(|| run_err(format!("output `{}` was not produced", o.name))))
            .collect()
    }
}

fn check_shape(shape: &[i64], rows: usize, fetch: &Fetch) -> Result<(), String> {
    let expected = [rows as i64, fetch.width as i64];
    let ok = match shape {
        [n] => *n == rows as i64 && fetch.width == 1,
        [n, w] => [*n, *w] == expected,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "output `{}` has shape {shape:?}, expected {expected:?}",
            fetch.name
        ))
    }
}

/// Columns `offset..offset + ty.width()` of a row-major `[rows, width]` tensor as one output.
fn split_column(
    data: &[f32],
    width: usize,
    offset: usize,
    ty: OutputType,
    rows: usize,
) -> Result<ArrayRef, String> {
    Ok(match ty {
        OutputType::Float32Vector(n) => {
            let flat: Vec<f32> = (0..rows)
                .flat_map(|r| {
                    data[r * width + offset..r * width + offset + n]
                        .iter()
                        .copied()
                })
                .collect();
            let field = std::sync::Arc::new(Field::new_list_field(DataType::Float32, false));
            let size = i32::try_from(n).map_err(|_| format!("vector of {n} is too long"))?;
            let list = FixedSizeListArray::try_new(
                field,
                size,
                std::sync::Arc::new(Float32Array::from(flat)),
                None,
            )
            .map_err(|e| e.to_string())?;
            std::sync::Arc::new(list)
        }
        _ => {
            let column: Vec<f32> = (0..rows).map(|r| data[r * width + offset]).collect();
            std::sync::Arc::new(Float32Array::from(column))
        }
    })
}

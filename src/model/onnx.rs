//! The `onnx` kind: an ONNX graph run by ONNX Runtime through the `ort` crate. ONNX Runtime has
//! the `ai.onnx.ml` operators scikit-learn exports use (LinearClassifier, Scaler, TreeEnsemble…),
//! which candle's ONNX support lacks.
//!
//! The library is loaded at run time (`load-dynamic`): from `ORT_DYLIB_PATH`, else
//! `libonnxruntime.so` beside the executable or on the loader's search path. The README's set-up
//! takes it from the `onnxruntime` wheel on PyPI; nothing is downloaded at build time.
//!
//! Threads: one session per scoring thread, each with one intra-op thread and spinning off, so
//! ONNX Runtime adds no threads of its own to rayon's (one per core) and the scoring stage splits
//! batches into row slices exactly as for the native kinds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use arrow::array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array};
use arrow::datatypes::{DataType, Field};
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorElementType, TensorRef, ValueType};

use super::ModelError;
use super::ScoringModel;
use crate::contract::{ExecutionPolicy, InputContract, MissingValues, OutputColumn, OutputType};
use crate::features::FeatureBatch;

/// The ONNX Runtime version whose C API `ort` was built for (the oldest library it accepts).
pub const MIN_ONNXRUNTIME: &str = "1.31";

/// Smallest row slice the scoring stage hands one call: below this the per-call overhead shows.
const MIN_SLICE_ROWS: usize = 4096;
/// Rows per graph run within a call: a tile's input (W1: 512 KB) and activations stay in the L2
/// cache; ~20 µs of ONNX Runtime overhead per run is under 1% of a tile's work.
const TILE_ROWS: usize = 4096;

/// How to get the library, for error messages.
const INSTALL_HINT: &str = "install ONNX Runtime >= 1.31 and point ORT_DYLIB_PATH at libonnxruntime.so, e.g. `pip download --no-deps onnxruntime==1.31.1 -d /tmp/ort && unzip -j /tmp/ort/onnxruntime-*.whl 'onnxruntime/capi/libonnxruntime.so*' -d ~/.local/lib && export ORT_DYLIB_PATH=$(ls ~/.local/lib/libonnxruntime.so.*)` (scripts/onnxruntime.sh does this)";

/// The process's ONNX Runtime environment, created on first use.
fn environment() -> Result<&'static Environment, String> {
    static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let path: PathBuf = std::env::var_os("ORT_DYLIB_PATH")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("libonnxruntime.so"));
        let builder = ort::init_from(&path)
            .map_err(|e| format!("cannot load the ONNX Runtime library ({e}); {INSTALL_HINT}"))?;
        builder
            .with_name("scorer")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("ONNX Runtime did not start: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Where a graph input's values come from: positions in the model's input features.
#[derive(Debug)]
struct Feed {
    name: String,
    columns: Vec<usize>,
}

/// Where a graph output's columns go: declared outputs in order, by index.
#[derive(Debug)]
struct Fetch {
    name: String,
    ty: TensorElementType,
    width: usize,
    targets: Vec<usize>,
}

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
    /// against the declared ones and the `[onnx]` mapping. Unsupported operators, non-float
    /// inputs and unmapped outputs are refused here, before any row is read.
    pub fn build(
        graph: &[u8],
        path: &Path,
        inputs: &[String],
        outputs: &[OutputColumn],
        mapping: &crate::model::spec::OnnxSpec,
        sessions: usize,
    ) -> Result<Self, ModelError> {
        let spec_err = |message: String| ModelError::Spec {
            path: path.to_path_buf(),
            message,
        };
        let env = environment().map_err(ModelError::Runtime)?;
        let mut opened = Vec::with_capacity(sessions.max(1));
        for _ in 0..sessions.max(1) {
            let session = open_session(env, graph)
                .map_err(|e| spec_err(format!("ONNX Runtime refused the graph: {e}")))?;
            opened.push(session);
        }
        let first = &opened[0];
        let feeds = plan_feeds(first, inputs, mapping).map_err(spec_err)?;
        let fetches = plan_fetches(first, outputs, mapping).map_err(spec_err)?;
        Ok(Self {
            sessions: opened.into_iter().map(Mutex::new).collect(),
            contract: InputContract {
                features: inputs.to_vec(),
                missing: MissingValues::JobPolicy,
            },
            outputs: outputs.to_vec(),
            feeds,
            fetches,
        })
    }
}

/// One session: all graph optimizations, one intra-op thread, no spinning (see the module doc).
fn open_session(env: &Environment, graph: &[u8]) -> Result<Session, String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    let builder = Session::builder(env).map_err(|e| text(&e))?;
    let builder = builder
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(|e| text(&e))?;
    let builder = builder.with_intra_threads(1).map_err(|e| text(&e))?;
    let builder = builder.with_inter_threads(1).map_err(|e| text(&e))?;
    // ONNX Runtime's CPU arena stays on: without it W1 took 2.43 s instead of 2.07 s and peaked
    // at 326 MB instead of 236 MB (benches/README.md, "Model kinds").
    let mut builder = builder
        .with_intra_op_spinning(false)
        .map_err(|e| text(&e))?;
    builder.commit_from_memory(graph).map_err(|e| text(&e))
}

fn describe(ty: &ValueType) -> String {
    match ty {
        ValueType::Tensor { ty, shape, .. } => format!("tensor({ty:?}) {shape:?}"),
        other => format!("{other:?}"),
    }
}

/// Maps each graph input to its features; every graph input must be a float tensor.
fn plan_feeds(
    session: &Session,
    inputs: &[String],
    mapping: &crate::model::spec::OnnxSpec,
) -> Result<Vec<Feed>, String> {
    let graph_inputs = session.inputs();
    let names: Vec<&str> = graph_inputs.iter().map(|o| o.name()).collect();
    let by_input: BTreeMap<String, Vec<String>> = if mapping.inputs.is_empty() {
        match graph_inputs {
            [only] => BTreeMap::from([(only.name().to_string(), inputs.to_vec())]),
            _ => {
                return Err(format!(
                    "the graph has {} inputs ({}); say which features feed each in [onnx] inputs = {{ <input> = [\"feature\", …] }}",
                    names.len(),
                    names.join(", ")
                ));
            }
        }
    } else {
        mapping.inputs.clone()
    };
    let mut feeds = Vec::new();
    let mut used = vec![false; inputs.len()];
    for outlet in graph_inputs {
        let features = by_input.get(outlet.name()).ok_or_else(|| {
            format!(
                "graph input `{}` is not mapped in [onnx] inputs",
                outlet.name()
            )
        })?;
        match outlet.dtype() {
            ValueType::Tensor {
                ty: TensorElementType::Float32,
                shape,
                ..
            } => {
                let width = shape.get(1).copied().unwrap_or(1);
                if shape.len() > 2 || (width >= 0 && width as usize != features.len()) {
                    return Err(format!(
                        "graph input `{}` is {} but {} features are mapped to it",
                        outlet.name(),
                        describe(outlet.dtype()),
                        features.len()
                    ));
                }
            }
            other => {
                return Err(format!(
                    "graph input `{}` is {}; scorer feeds float32 tensors [rows, features] (encode string columns with [[preprocess.categorical]] instead)",
                    outlet.name(),
                    describe(other)
                ));
            }
        }
        let mut columns = Vec::new();
        for f in features {
            let i = inputs.iter().position(|x| x == f).ok_or_else(|| {
                format!(
                    "[onnx] inputs.{}: `{f}` is not one of the model's inputs",
                    outlet.name()
                )
            })?;
            used[i] = true;
            columns.push(i);
        }
        feeds.push(Feed {
            name: outlet.name().to_string(),
            columns,
        });
    }
    for name in by_input.keys() {
        if !names.contains(&name.as_str()) {
            return Err(format!(
                "[onnx] inputs: the graph has no input `{name}` (it has: {})",
                names.join(", ")
            ));
        }
    }
    if let Some(i) = used.iter().position(|u| !u) {
        return Err(format!(
            "input `{}` feeds no graph input; map it in [onnx] inputs",
            inputs[i]
        ));
    }
    Ok(feeds)
}

/// Maps graph outputs to the declared outputs; each declared output is filled exactly once.
fn plan_fetches(
    session: &Session,
    outputs: &[OutputColumn],
    mapping: &crate::model::spec::OnnxSpec,
) -> Result<Vec<Fetch>, String> {
    let graph_outputs = session.outputs();
    let names: Vec<&str> = graph_outputs.iter().map(|o| o.name()).collect();
    let by_output: BTreeMap<String, Vec<String>> = if mapping.outputs.is_empty() {
        match graph_outputs {
            [only] => BTreeMap::from([(
                only.name().to_string(),
                outputs.iter().map(|o| o.name.clone()).collect(),
            )]),
            _ => {
                return Err(format!(
                    "the graph has {} outputs ({}); say which declared outputs each fills in [onnx] outputs = {{ <output> = [\"name\", …] }}",
                    names.len(),
                    names.join(", ")
                ));
            }
        }
    } else {
        mapping.outputs.clone()
    };
    let mut filled = vec![false; outputs.len()];
    let mut fetches = Vec::new();
    for (graph_name, declared) in &by_output {
        let outlet = graph_outputs
            .iter()
            .find(|o| o.name() == graph_name)
            .ok_or_else(|| {
                format!(
                    "[onnx] outputs: the graph has no output `{graph_name}` (it has: {})",
                    names.join(", ")
                )
            })?;
        let (ty, shape) = match outlet.dtype() {
            ValueType::Tensor { ty, shape, .. }
                if matches!(ty, TensorElementType::Float32 | TensorElementType::Int64) =>
            {
                (*ty, shape.clone())
            }
            other => {
                return Err(format!(
                    "graph output `{graph_name}` is {}; scorer reads float32 or int64 tensors (export scikit-learn classifiers with options={{'zipmap': False}})",
                    describe(other)
                ));
            }
        };
        let mut targets = Vec::new();
        let mut width = 0;
        for d in declared {
            let i = outputs.iter().position(|o| &o.name == d).ok_or_else(|| {
                format!("[onnx] outputs.{graph_name}: `{d}` is not a declared output")
            })?;
            if std::mem::replace(&mut filled[i], true) {
                return Err(format!("output `{d}` is filled by two graph outputs"));
            }
            let ok = matches!(
                (ty, outputs[i].ty),
                (TensorElementType::Int64, OutputType::Int64)
                    | (
                        TensorElementType::Float32,
                        OutputType::Float32 | OutputType::Float32Vector(_)
                    )
            );
            if !ok {
                return Err(format!(
                    "output `{d}` is declared {} but graph output `{graph_name}` holds {ty:?}",
                    outputs[i].ty
                ));
            }
            width += outputs[i].ty.width();
            targets.push(i);
        }
        let graph_width = if shape.len() <= 1 { 1 } else { shape[1] };
        if shape.len() > 2 || (graph_width >= 0 && graph_width as usize != width) {
            return Err(format!(
                "graph output `{graph_name}` is {} but the outputs mapped to it take {width} columns",
                describe(outlet.dtype())
            ));
        }
        fetches.push(Fetch {
            name: graph_name.clone(),
            ty,
            width,
            targets,
        });
    }
    if let Some(i) = filled.iter().position(|f| !f) {
        return Err(format!(
            "declared output `{}` is filled by no graph output; map it in [onnx] outputs",
            outputs[i].name
        ));
    }
    Ok(fetches)
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
            .map(|f| vec![0f32; TILE_ROWS.min(rows) * f.columns.len()])
            .collect();
        let mut floats: Vec<Vec<f32>> = self
            .fetches
            .iter()
            .map(|f| Vec::with_capacity(rows * f.width))
            .collect();
        let mut ints: Vec<Vec<i64>> = self.fetches.iter().map(|_| Vec::new()).collect();
        for start in (0..rows).step_by(TILE_ROWS) {
            let len = TILE_ROWS.min(rows - start);
            let mut feeds = Vec::with_capacity(self.feeds.len());
            for (feed, buf) in self.feeds.iter().zip(inputs.iter_mut()) {
                let k = feed.columns.len();
                batch.write_row_major(&feed.columns, start, len, &mut buf[..len * k]);
                let view = TensorRef::from_array_view(([len, k], &buf[..len * k]))
                    .map_err(|e| run_err(e.to_string()))?;
                feeds.push((feed.name.as_str(), view));
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

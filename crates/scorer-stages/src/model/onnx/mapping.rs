//! How a graph's inputs and outputs map to the model's declared features and outputs, checked
//! against the graph's own types and shapes when the model loads.

use std::collections::BTreeMap;

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

use crate::contract::{FeatureType, OutputColumn, OutputType};

/// Where a graph input's values come from: positions in the model's input features, all read
/// as the type the graph declares.
#[derive(Debug)]
pub(super) struct Feed {
    pub(super) name: String,
    pub(super) columns: Vec<usize>,
    /// The graph's element type for this input, as the feature type scorer delivers.
    pub(super) ty: FeatureType,
    /// Whether the graph takes a `[rows]` vector rather than a `[rows, features]` matrix.
    pub(super) vector: bool,
}

/// The feature type that feeds a graph input of element type `ty`, if scorer can feed it.
fn feature_type(ty: TensorElementType) -> Option<FeatureType> {
    Some(match ty {
        TensorElementType::Float32 => FeatureType::Float32,
        TensorElementType::Float64 => FeatureType::Float64,
        TensorElementType::Int64 => FeatureType::Int64,
        TensorElementType::Bool => FeatureType::Boolean,
        TensorElementType::String => FeatureType::Text,
        _ => return None,
    })
}

/// Where a graph output's columns go: declared outputs in order, by index.
#[derive(Debug)]
pub(super) struct Fetch {
    pub(super) name: String,
    pub(super) ty: TensorElementType,
    pub(super) width: usize,
    pub(super) targets: Vec<usize>,
}

fn describe(ty: &ValueType) -> String {
    match ty {
        ValueType::Tensor { ty, shape, .. } => format!("tensor({ty:?}) {shape:?}"),
        other => format!("{other:?}"),
    }
}

/// The `[onnx]` map as declared, or, when it is left out and the graph has a single tensor on
/// this side, that tensor taking `all`. `Err` holds how many tensors there are when one must be
/// declared.
fn declared_or_single(
    declared: &BTreeMap<String, Vec<String>>,
    graph_names: &[&str],
    all: Vec<String>,
) -> Result<BTreeMap<String, Vec<String>>, usize> {
    match graph_names {
        _ if !declared.is_empty() => Ok(declared.clone()),
        [only] => Ok(BTreeMap::from([(only.to_string(), all)])),
        _ => Err(graph_names.len()),
    }
}

/// The graph's inputs taken by name when each is one of the model's inputs (a scikit-learn
/// pipeline exported whole by skl2onnx has one graph input per DataFrame column).
fn by_name(graph_names: &[&str], inputs: &[String]) -> Option<BTreeMap<String, Vec<String>>> {
    let all_named = graph_names.len() > 1
        && graph_names.len() == inputs.len()
        && graph_names.iter().all(|n| inputs.iter().any(|i| i == n));
    all_named.then(|| {
        graph_names
            .iter()
            .map(|n| (n.to_string(), vec![n.to_string()]))
            .collect()
    })
}

/// Maps each graph input to its features, and says which type each feature is read as: the
/// graph's element type (f32, f64, i64, bool or string) for every feature feeding that input.
pub(super) fn plan_feeds(
    session: &Session,
    inputs: &[String],
    mapping: &super::section::OnnxSpec,
) -> Result<(Vec<Feed>, Vec<FeatureType>), String> {
    let graph_inputs = session.inputs();
    let names: Vec<&str> = graph_inputs.iter().map(|o| o.name()).collect();
    let named = by_name(&names, inputs).filter(|_| mapping.inputs.is_empty());
    let by_input = match named {
        Some(named) => named,
        None => declared_or_single(&mapping.inputs, &names, inputs.to_vec()).map_err(|n| {
            format!(
                "the graph has {n} inputs ({}); name the model's inputs after them, or say which features feed each in [onnx] inputs = {{ <input> = [\"feature\", …] }}",
                names.join(", ")
            )
        })?,
    };
    let mut types: Vec<Option<FeatureType>> = vec![None; inputs.len()];
    let mut feeds = Vec::new();
    let mut used = vec![false; inputs.len()];
    for outlet in graph_inputs {
        let features = by_input.get(outlet.name()).ok_or_else(|| {
            format!(
                "graph input `{}` is not mapped in [onnx] inputs",
                outlet.name()
            )
        })?;
        let (ty, vector) = match outlet.dtype() {
            ValueType::Tensor { ty, shape, .. } if feature_type(*ty).is_some() => {
                let width = shape.get(1).copied().unwrap_or(1);
                if shape.len() > 2
                    || shape.is_empty()
                    || (width >= 0 && width as usize != features.len())
                    || (shape.len() == 1 && features.len() != 1)
                {
                    return Err(format!(
                        "graph input `{}` is {} but {} features are mapped to it",
                        outlet.name(),
                        describe(outlet.dtype()),
                        features.len()
                    ));
                }
                (feature_type(*ty).unwrap_or_default(), shape.len() == 1)
            }
            other => {
                return Err(format!(
                    "graph input `{}` is {}; scorer feeds tensors of float, double, int64, bool or string [rows, features]",
                    outlet.name(),
                    describe(other)
                ));
            }
        };
        let mut columns = Vec::new();
        for f in features {
            let i = inputs.iter().position(|x| x == f).ok_or_else(|| {
                format!(
                    "[onnx] inputs.{}: `{f}` is not one of the model's inputs",
                    outlet.name()
                )
            })?;
            used[i] = true;
            if let Some(other) = types[i].replace(ty)
                && other != ty
            {
                return Err(format!(
                    "input `{f}` feeds graph inputs of two types ({other} and {ty})"
                ));
            }
            columns.push(i);
        }
        feeds.push(Feed {
            name: outlet.name().to_string(),
            columns,
            ty,
            vector,
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
    Ok((
        feeds,
        types.into_iter().map(Option::unwrap_or_default).collect(),
    ))
}

/// Maps graph outputs to the declared outputs; each declared output is filled exactly once.
pub(super) fn plan_fetches(
    session: &Session,
    outputs: &[OutputColumn],
    mapping: &super::section::OnnxSpec,
) -> Result<Vec<Fetch>, String> {
    let graph_outputs = session.outputs();
    let names: Vec<&str> = graph_outputs.iter().map(|o| o.name()).collect();
    let all: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
    let by_output = declared_or_single(&mapping.outputs, &names, all).map_err(|n| {
        format!(
            "the graph has {n} outputs ({}); say which declared outputs each fills in [onnx] outputs = {{ <output> = [\"name\", …] }}",
            names.join(", ")
        )
    })?;
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
                if matches!(
                    ty,
                    TensorElementType::Float32
                        | TensorElementType::Float64
                        | TensorElementType::Int64
                ) =>
            {
                (*ty, shape.clone())
            }
            other => {
                return Err(format!(
                    "graph output `{graph_name}` is {}; scorer reads float, double or int64 tensors (export scikit-learn classifiers with options={{'zipmap': False}})",
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
                        TensorElementType::Float32 | TensorElementType::Float64,
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

//! The `gbdt` kind: gradient-boosted trees from XGBoost JSON or LightGBM text model files,
//! scored natively. The file is read into one [`forest::Forest`] whatever its format; on the CPU
//! it runs through the compiled evaluator ([`cpu::CpuForest`]), on a GPU in a fused CUDA kernel
//! (`cuda_kernel`, CUDA builds) or, for deeper forests, as tensor operations
//! ([`tensor::TensorForest`]). Missing feature values reach the trees as NaN and follow the
//! learned default directions, so the job's `on_null` policy does not drop or fill them.

pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda_kernel;
pub mod error;
pub mod explain;
pub mod forest;
pub mod lightgbm;
pub mod section;
pub mod shap;
pub mod shap_tables;
pub mod tensor;
pub mod ubjson;
pub mod xgboost;

use std::path::Path;

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::{ModelError, ScoringModel};
use crate::contract::{
    ExecutionPolicy, InputContract, MissingValues, OutputColumn, OutputType, pack_outputs,
};
use crate::features::FeatureBatch;
use crate::model::spec::ExplainedColumn;
use error::ForestFileError;
use forest::{Forest, Link, apply_link};

/// `[gbdt]` in model.toml.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GbdtSpec {
    /// How the `model` artifact is written.
    pub format: GbdtFormat,
    /// What the outputs hold.
    #[serde(default)]
    pub output: GbdtOutput,
}

/// The model file formats the `gbdt` kind reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GbdtFormat {
    /// `Booster.save_model("model.json")` from XGBoost.
    XgboostJson,
    /// `Booster.save_model("model.ubj")` from XGBoost (UBJSON; MLflow's default). Either XGBoost
    /// format reads either file: the reader tells them apart by their first bytes.
    XgboostUbj,
    /// `Booster.save_model("model.txt")` from LightGBM.
    LightgbmText,
}

/// Whether the outputs are what the library's `predict` returns or the raw summed margins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GbdtOutput {
    /// `predict()`: probabilities for classifiers, the prediction for regressors (through the
    /// objective's link: sigmoid, softmax, exp).
    #[default]
    Prediction,
    /// `predict(output_margin=True)` / `predict(raw_score=True)`: the summed margins.
    Margin,
}

/// Reads a model file in `format`.
pub fn parse(format: GbdtFormat, bytes: &[u8]) -> Result<Forest, ForestFileError> {
    match format {
        GbdtFormat::XgboostJson | GbdtFormat::XgboostUbj => xgboost::parse(bytes),
        GbdtFormat::LightgbmText => lightgbm::parse(bytes),
    }
}

/// Smallest row slice worth its own rayon task: a row costs a walk through every tree, so small
/// slices already carry plenty of work.
const MIN_SLICE_ROWS: usize = 1024;

enum Evaluator {
    Cpu(cpu::CpuForest),
    Tensor(tensor::TensorForest),
    /// The fused CUDA kernel (numeric splits, depth <= 12).
    #[cfg(feature = "cuda")]
    Kernel(cuda_kernel::KernelForest),
}

/// The explanation outputs by position in the model's outputs, and the forest that computes
/// them.
type Explained = (Vec<(usize, ExplainedColumn)>, Arc<explain::Explainer>);

/// A forest ready to score.
pub struct GbdtModel {
    evaluator: Evaluator,
    about: String,
    contract: InputContract,
    /// Every declared output, in order.
    outputs: Vec<OutputColumn>,
    /// The outputs the evaluator's margins make (all but the explanations), in order.
    predictions: Vec<OutputColumn>,
    /// The explanation outputs, when declared (contributions, reason codes): their positions in
    /// `outputs`, and the forest TreeSHAP walks.
    explained: Option<Explained>,
    groups: usize,
    link: Link,
    output: GbdtOutput,
}

impl GbdtModel {
    /// Reads `bytes` (the `model` artifact at `path`) and checks it against the declared inputs
    /// and outputs: as many features as inputs (and, when the file names its features, the same
    /// names in the same order), outputs that take exactly one value per class.
    pub fn build(
        bytes: &[u8],
        path: &Path,
        spec: &GbdtSpec,
        inputs: &[String],
        outputs: &[OutputColumn],
        device: &Device,
    ) -> Result<Self, ModelError> {
        Self::build_explained(bytes, path, spec, inputs, outputs, &[], device)
    }

    /// [`GbdtModel::build`] where the outputs at the positions `explained` lists explain each
    /// row's score ([`crate::model::spec::ModelSpec::explained_columns`]): its SHAP
    /// contributions, `(inputs + 1) × groups` f32 values, or reason codes; the file must record
    /// its nodes' covers.
    pub fn build_explained(
        bytes: &[u8],
        path: &Path,
        spec: &GbdtSpec,
        inputs: &[String],
        outputs: &[OutputColumn],
        explained: &[(usize, ExplainedColumn)],
        device: &Device,
    ) -> Result<Self, ModelError> {
        let file_err = |source: ForestFileError| ModelError::ForestFile {
            path: path.to_path_buf(),
            source,
        };
        let predictions: Vec<OutputColumn> = outputs
            .iter()
            .enumerate()
            .filter(|(i, _)| !explained.iter().any(|(at, _)| at == i))
            .map(|(_, o)| o.clone())
            .collect();
        let forest = read_checked(bytes, spec, inputs, &predictions).map_err(file_err)?;
        let explained = if explained.is_empty() {
            None
        } else {
            forest.check_covers().map_err(file_err)?;
            check_explained(&forest, outputs, explained).map_err(file_err)?;
            Some((
                explained.to_vec(),
                Arc::new(explain::Explainer::new(forest.clone())),
            ))
        };
        let evaluator = if device.is_cpu() {
            Evaluator::Cpu(
                cpu::CpuForest::compile(&forest)
                    .map_err(|e| file_err(ForestFileError::Layout(e)))?,
            )
        } else {
            gpu_evaluator(&forest, device).map_err(|e| file_err(ForestFileError::Layout(e)))?
        };
        let mut model = Self::from_parts(forest, evaluator, inputs, &predictions, spec.output);
        model.outputs = outputs.to_vec();
        model.explained = explained;
        Ok(model)
    }

    /// The same model run through the tensor formulation on `device` (the CPU too): the GPU path,
    /// testable without a GPU.
    pub fn build_tensor(
        bytes: &[u8],
        spec: &GbdtSpec,
        inputs: &[String],
        outputs: &[OutputColumn],
        device: &Device,
    ) -> Result<Self, ForestFileError> {
        let forest = read_checked(bytes, spec, inputs, outputs)?;
        let evaluator = Evaluator::Tensor(
            tensor::TensorForest::build(&forest.plain(), device)
                .map_err(ForestFileError::Layout)?,
        );
        Ok(Self::from_parts(
            forest,
            evaluator,
            inputs,
            outputs,
            spec.output,
        ))
    }

    fn from_parts(
        forest: Forest,
        evaluator: Evaluator,
        inputs: &[String],
        outputs: &[OutputColumn],
        output: GbdtOutput,
    ) -> Self {
        let how = match &evaluator {
            Evaluator::Cpu(c) => {
                let (perfect, linked, reference) = c.layouts();
                format!(
                    "CPU evaluator ({:?} kernel; {perfect} trees laid out perfect, {linked} linked, {reference} walked as written)",
                    c.kernel()
                )
            }
            Evaluator::Tensor(_) => "tensor evaluator (perfect trees on the device)".into(),
            #[cfg(feature = "cuda")]
            Evaluator::Kernel(_) => "fused CUDA kernel (one thread per row)".into(),
        };
        let about = format!(
            "{} trees, objective {}, {} value(s) per row, depth <= {}; {how}",
            forest.trees.len(),
            forest.objective,
            forest.groups,
            forest.max_depth()
        );
        tracing::debug!(model = %about, "gbdt model compiled");
        Self {
            evaluator,
            about,
            contract: InputContract {
                features: inputs.to_vec(),
                missing: MissingValues::NaN,
                types: Vec::new(),
            },
            outputs: outputs.to_vec(),
            predictions: outputs.to_vec(),
            explained: None,
            groups: forest.groups,
            link: forest.link,
            output,
        }
    }
}

/// The GPU evaluator for `forest` (its plain form, computed once): the fused CUDA kernel where it
/// fits, else the tensor form.
fn gpu_evaluator(forest: &Forest, device: &Device) -> Result<Evaluator, String> {
    let plain = forest.plain();
    #[cfg(feature = "cuda")]
    if device.is_cuda() && cuda_kernel::KernelForest::fits(&plain.forest) {
        return Ok(Evaluator::Kernel(cuda_kernel::KernelForest::build(
            &plain, device,
        )?));
    }
    Ok(Evaluator::Tensor(tensor::TensorForest::build(
        &plain, device,
    )?))
}

/// The model file read and checked against the declared inputs and outputs.
fn read_checked(
    bytes: &[u8],
    spec: &GbdtSpec,
    inputs: &[String],
    outputs: &[OutputColumn],
) -> Result<Forest, ForestFileError> {
    let forest = parse(spec.format, bytes)?;
    check_inputs(&forest, inputs).map_err(ForestFileError::Mismatch)?;
    check_outputs(&forest, outputs).map_err(ForestFileError::Mismatch)?;
    Ok(forest)
}

/// The declared inputs must be the file's features: same count, and the same names in order when
/// the file records names (a reordered feature list scores silently wrong otherwise).
fn check_inputs(forest: &Forest, inputs: &[String]) -> Result<(), String> {
    if forest.features != inputs.len() {
        return Err(format!(
            "the model file has {} features but model.toml declares {} inputs",
            forest.features,
            inputs.len()
        ));
    }
    if let Some(names) = &forest.feature_names
        && let Some((i, (file, declared))) = names
            .iter()
            .zip(inputs)
            .enumerate()
            .find(|(_, (a, b))| a != b)
    {
        return Err(format!(
            "input {i} is `{declared}` in model.toml but `{file}` in the model file; list the inputs in the order the model was trained on ({})",
            names.join(", ")
        ));
    }
    Ok(())
}

/// f32 outputs whose widths add up to the number of classes (one score, or one vector), and at
/// most one i64 output for a classifier: the predicted class, as `predict` gives it for
/// `multi:softmax` (the largest margin; for a binary model, 1 when the margin is above 0).
fn check_outputs(forest: &Forest, outputs: &[OutputColumn]) -> Result<(), String> {
    let labels: Vec<&OutputColumn> = outputs
        .iter()
        .filter(|o| o.ty == OutputType::Int64)
        .collect();
    if labels.len() > 1 {
        return Err("a gbdt model has at most one integer output (the predicted class)".into());
    }
    if let Some(label) = labels.first()
        && !matches!(forest.link, Link::Sigmoid { .. } | Link::Softmax)
    {
        return Err(format!(
            "output `{}`: an integer output is the predicted class, and objective {} is not a classifier",
            label.name, forest.objective
        ));
    }
    let width: usize = outputs
        .iter()
        .filter(|o| o.ty != OutputType::Int64)
        .map(|o| o.ty.width())
        .sum();
    if width != forest.groups {
        return Err(format!(
            "the model computes {} value(s) per row (objective {}) but the outputs declare {width}; declare {}",
            forest.groups,
            forest.objective,
            if forest.groups == 1 {
                "one scalar output".to_string()
            } else {
                format!("{{ name = \"proba\", size = {} }}", forest.groups)
            }
        ));
    }
    Ok(())
}

/// The explanation outputs agree with the forest: contributions as long as its features and
/// groups make them, reason codes naming a group it has (`class`, needed when it has several).
fn check_explained(
    forest: &Forest,
    outputs: &[OutputColumn],
    explained: &[(usize, ExplainedColumn)],
) -> Result<(), ForestFileError> {
    let width = (forest.features + 1) * forest.groups;
    for &(i, what) in explained {
        let name = outputs.get(i).map_or("?", |o| o.name.as_str());
        match what {
            ExplainedColumn::Contributions => {
                if outputs.get(i).map(|o| o.ty) != Some(OutputType::Float32Vector(width)) {
                    return Err(format!(
                        "contributions take {width} values per row ({} inputs and the bias, for \
                         each of {} output groups)",
                        forest.features, forest.groups
                    )
                    .into());
                }
            }
            ExplainedColumn::Reasons { class, .. } => match (class, forest.groups) {
                (None | Some(0), 1) => {}
                (Some(c), g) if g > 1 && c < g => {}
                (None, g) => {
                    return Err(format!(
                        "output `{name}`: the model computes {g} values per row (one per \
                         class); say whose reasons with `class = 0` to `class = {}`",
                        g - 1
                    )
                    .into());
                }
                (Some(c), g) => {
                    return Err(format!(
                        "output `{name}`: class = {c}, but the model computes {g} value(s) per \
                         row (classes 0 to {})",
                        g - 1
                    )
                    .into());
                }
            },
        }
    }
    Ok(())
}

/// The predicted class of each row from its margins: the largest (the first of equals, as
/// numpy's argmax), or for one group 1 when the margin is above 0 (probability above 0.5).
fn classes(margins: &[f64], groups: usize) -> Vec<i64> {
    margins
        .chunks_exact(groups.max(1))
        .map(|row| {
            if groups == 1 {
                i64::from(row[0] > 0.0)
            } else {
                let mut best = 0;
                for (k, v) in row.iter().enumerate() {
                    if *v > row[best] {
                        best = k;
                    }
                }
                best as i64
            }
        })
        .collect()
}

impl ScoringModel for GbdtModel {
    fn inputs(&self) -> &InputContract {
        &self.contract
    }

    fn outputs(&self) -> &[OutputColumn] {
        &self.outputs
    }

    fn execution(&self) -> ExecutionPolicy {
        match self.evaluator {
            Evaluator::Cpu(_) => ExecutionPolicy::RowSlices {
                min_rows: MIN_SLICE_ROWS,
            },
            Evaluator::Tensor(_) => ExecutionPolicy::WholeBatches,
            #[cfg(feature = "cuda")]
            Evaluator::Kernel(_) => ExecutionPolicy::WholeBatches,
        }
    }

    fn describe(&self) -> Option<String> {
        Some(self.about.clone())
    }

    fn score(&self, batch: &FeatureBatch) -> Result<Vec<ArrayRef>, ModelError> {
        let mut margins = match &self.evaluator {
            Evaluator::Cpu(f) => f.margins(batch),
            Evaluator::Tensor(f) => f.margins(batch)?,
            #[cfg(feature = "cuda")]
            Evaluator::Kernel(f) => f.margins(batch)?,
        };
        let labels = self
            .predictions
            .iter()
            .any(|o| o.ty == OutputType::Int64)
            .then(|| classes(&margins, self.groups));
        if self.output == GbdtOutput::Prediction {
            apply_link(self.link, self.groups, &mut margins);
        }
        let g = self.groups;
        let columns: Vec<Vec<f32>> = (0..g)
            .map(|k| {
                margins
                    .iter()
                    .skip(k)
                    .step_by(g)
                    .map(|&v| v as f32)
                    .collect()
            })
            .collect();
        let floats: Vec<OutputColumn> = self
            .predictions
            .iter()
            .filter(|o| o.ty != OutputType::Int64)
            .cloned()
            .collect();
        let mut packed = pack_outputs(&floats, columns, batch.rows)
            .map_err(ModelError::Runtime)?
            .into_iter();
        // in declared order: the label where it was declared, the f32 outputs around it
        let mut labels = labels;
        let predicted: Vec<ArrayRef> = self
            .predictions
            .iter()
            .map(|o| {
                if o.ty == OutputType::Int64 {
                    let l = labels.take().ok_or_else(|| {
                        ModelError::Runtime(format!("output `{}` was declared twice", o.name))
                    })?;
                    Ok(Arc::new(Int64Array::from(l)) as ArrayRef)
                } else {
                    packed.next().ok_or_else(|| {
                        ModelError::Runtime(format!("output `{}` was not produced", o.name))
                    })
                }
            })
            .collect::<Result<_, ModelError>>()?;
        let Some((explained, explainer)) = &self.explained else {
            return Ok(predicted);
        };
        let contributions = explainer.contributions(batch);
        let mut explanations = explain::columns(
            explained,
            contributions,
            explainer.width(),
            &self.contract.features,
        )?
        .into_iter()
        .peekable();
        let mut predicted = predicted.into_iter();
        (0..self.outputs.len())
            .map(|i| {
                if explanations.peek().is_some_and(|(at, _)| *at == i) {
                    explanations.next().map(|(_, a)| a)
                } else {
                    predicted.next()
                }
                .ok_or_else(|| ModelError::Runtime(format!("output {i} was not produced")))
            })
            .collect()
    }
}

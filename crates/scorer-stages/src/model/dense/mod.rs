//! Linear, logistic and MLP models: a stack of dense layers, so one implementation serves all three
//! kinds. candle loads the weights and runs the network on CUDA; on the CPU the same layers run
//! through `CpuNetwork` (`cpu.rs`) (gemm with bias and activation fused in place).

pub(crate) mod cpu;
pub mod section;

use std::collections::HashMap;

use arrow::array::ArrayRef;
use candle_core::{DType, Device, Tensor};

use super::spec::{Activation, LayerSpec};
use super::{ModelError, ScoringModel};
use crate::contract::{ExecutionPolicy, InputContract, MissingValues, OutputColumn, pack_outputs};
use crate::features::FeatureBatch;
use cpu::{CpuLayerWeights, CpuNetwork};

/// On the CPU, rows go through the network in tiles of this many: a 2048 x 64 f32 activation
/// (512 KiB) stays in L2 across the matmul, bias and activation, where a 64k-row batch would stream
/// every intermediate through memory. Measured in benches/README.md (2x faster than 64k rows).
const CPU_TILE_ROWS: usize = 2048;
/// Smallest slice of a batch worth its own rayon task on the CPU: one tile.
const MIN_ROWS_PER_TASK: usize = CPU_TILE_ROWS;

struct DenseLayer {
    /// `[out, in]` as stored: activations are feature-major (`[in, rows]`), so each layer is
    /// `W · X`, and the last layer's output is already one contiguous row per model output.
    weight: Tensor,
    /// `[out, 1]`, broadcast along the rows.
    bias: Option<Tensor>,
    activation: Activation,
}

/// Where the network runs.
enum Executor {
    Cpu(CpuNetwork),
    Candle {
        layers: Vec<DenseLayer>,
        device: Device,
    },
}

/// A feed-forward network of dense layers.
pub struct DenseModel {
    executor: Executor,
    inputs: InputContract,
    outputs: Vec<OutputColumn>,
    /// Values the last layer gives per row (the outputs' widths summed).
    values: usize,
}

impl DenseModel {
    /// Builds the network from named tensors, checking every shape against its neighbour.
    pub fn build(
        tensors: &HashMap<String, Tensor>,
        layers: &[LayerSpec],
        inputs: Vec<String>,
        outputs: Vec<OutputColumn>,
        file: &str,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let take = |name: &str| -> Result<Tensor, ModelError> {
            let t = tensors.get(name).ok_or_else(|| ModelError::MissingTensor {
                file: file.to_string(),
                tensor: name.to_string(),
                available: {
                    let mut names: Vec<_> = tensors.keys().cloned().collect();
                    names.sort();
                    names
                },
            })?;
            t.to_dtype(DType::F32)
                .and_then(|t| t.to_device(device))
                .map_err(|e| ModelError::Candle(format!("tensor `{name}` in {file}: {e}")))
        };
        let input_width = inputs.len();
        let mut width = input_width;
        let mut built = Vec::with_capacity(layers.len());
        for (i, spec) in layers.iter().enumerate() {
            let w = take(&spec.weight)?;
            let (out, inp) = w.dims2().map_err(|_| ModelError::Shape {
                file: file.to_string(),
                message: format!(
                    "layer {i}: `{}` has shape {:?}, expected [out, in]",
                    spec.weight,
                    w.dims()
                ),
            })?;
            if inp != width {
                return Err(ModelError::Shape {
                    file: file.to_string(),
                    message: format!(
                        "layer {i}: `{}` takes {inp} inputs but the previous stage gives {width}",
                        spec.weight
                    ),
                });
            }
            let bias = match &spec.bias {
                Some(name) => {
                    let b = take(name)?;
                    if b.dims() != [out] {
                        return Err(ModelError::Shape {
                            file: file.to_string(),
                            message: format!(
                                "layer {i}: bias `{name}` has shape {:?}, expected [{out}]",
                                b.dims()
                            ),
                        });
                    }
                    Some(
                        b.reshape((out, 1))
                            .map_err(|e| ModelError::Candle(e.to_string()))?,
                    )
                }
                None => None,
            };
            built.push(DenseLayer {
                weight: w,
                bias,
                activation: spec.activation,
            });
            width = out;
        }
        let values: usize = outputs.iter().map(|o| o.ty.width()).sum();
        if width != values {
            return Err(ModelError::Shape {
                file: file.to_string(),
                message: format!(
                    "the last layer gives {width} values but model.toml's outputs take {values}"
                ),
            });
        }
        let executor = if device.is_cpu() {
            Executor::Cpu(cpu_network(&built, input_width, file)?)
        } else {
            Executor::Candle {
                layers: built,
                device: device.clone(),
            }
        };
        Ok(Self {
            executor,
            // A dense network has no notion of a missing input: the job's null policy applies.
            inputs: InputContract {
                features: inputs,
                missing: MissingValues::JobPolicy,
                types: Vec::new(),
            },
            outputs,
            values,
        })
    }
}

/// The checked layers as plain `f32` for the CPU executor.
fn cpu_network(
    layers: &[DenseLayer],
    input_width: usize,
    file: &str,
) -> Result<CpuNetwork, ModelError> {
    let values = |t: &Tensor| {
        t.flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| ModelError::Candle(format!("reading weights from {file}: {e}")))
    };
    let mut weights = Vec::with_capacity(layers.len());
    for layer in layers {
        let (outputs, inputs) = layer
            .weight
            .dims2()
            .map_err(|e| ModelError::Candle(e.to_string()))?;
        weights.push(CpuLayerWeights {
            weight: values(&layer.weight)?,
            bias: layer.bias.as_ref().map(values).transpose()?,
            inputs,
            outputs,
            activation: layer.activation,
        });
    }
    Ok(CpuNetwork::new(weights, input_width))
}

/// The network through candle's ops (the CUDA path).
fn candle_forward(layers: &[DenseLayer], x: Tensor) -> candle_core::Result<Tensor> {
    let mut x = x;
    for layer in layers {
        x = layer.weight.matmul(&x)?;
        if let Some(b) = &layer.bias {
            x = x.broadcast_add(b)?;
        }
        x = match layer.activation {
            Activation::None => x,
            Activation::Relu => x.relu()?,
            Activation::Sigmoid => candle_nn::ops::sigmoid(&x)?,
            Activation::Tanh => x.tanh()?,
            Activation::Gelu => x.gelu_erf()?,
        };
    }
    Ok(x)
}

impl ScoringModel for DenseModel {
    fn inputs(&self) -> &InputContract {
        &self.inputs
    }

    fn outputs(&self) -> &[OutputColumn] {
        &self.outputs
    }

    fn execution(&self) -> ExecutionPolicy {
        match self.executor {
            // One gemm tile per rayon task; smaller slices cost more in scheduling than they gain.
            Executor::Cpu(_) => ExecutionPolicy::RowSlices {
                min_rows: MIN_ROWS_PER_TASK,
            },
            Executor::Candle { .. } => ExecutionPolicy::WholeBatches,
        }
    }

    fn score(&self, batch: &FeatureBatch) -> Result<Vec<ArrayRef>, ModelError> {
        let values = self.forward(batch)?;
        pack_outputs(&self.outputs, values, batch.rows).map_err(ModelError::Candle)
    }
}

impl DenseModel {
    /// The last layer's values, one vector of `batch.rows` per column.
    fn forward(&self, batch: &FeatureBatch) -> Result<Vec<Vec<f32>>, ModelError> {
        let rows = batch.rows;
        let width = self.inputs.features.len();
        let mut outs = vec![Vec::with_capacity(rows); self.values];
        if rows == 0 {
            return Ok(outs);
        }
        if batch.width() != width {
            return Err(ModelError::Candle(format!(
                "batch has {} features, the model takes {width}",
                batch.width()
            )));
        }
        match &self.executor {
            Executor::Cpu(net) => {
                let tile = CPU_TILE_ROWS.min(rows);
                let mut input = vec![0f32; tile * net.tile_width()];
                let mut scratch = vec![0f32; tile * net.tile_width()];
                for start in (0..rows).step_by(tile) {
                    let len = tile.min(rows - start);
                    batch.write_tile(start, len, &mut input[..len * width]);
                    let y = net.forward_tile(len, &mut input, &mut scratch);
                    for (out, values) in outs.iter_mut().zip(y.chunks_exact(len)) {
                        out.extend_from_slice(values);
                    }
                }
            }
            Executor::Candle { layers, device } => {
                // The whole batch in one forward pass: the device is the parallelism.
                let candle = |e: candle_core::Error| ModelError::Candle(e.to_string());
                let mut x = vec![0f32; rows * width];
                batch.write_tile(0, rows, &mut x);
                let x = Tensor::from_slice(&x, (width, rows), device).map_err(candle)?;
                let y = candle_forward(layers, x)
                    .and_then(|y| y.flatten_all())
                    .and_then(|y| y.to_vec1::<f32>())
                    .map_err(candle)?;
                for (out, values) in outs.iter_mut().zip(y.chunks_exact(rows)) {
                    out.extend_from_slice(values);
                }
            }
        }
        Ok(outs)
    }
}

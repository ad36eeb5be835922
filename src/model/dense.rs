//! Linear, logistic and MLP models: a stack of dense layers run with candle, so one implementation
//! serves all three kinds and runs unchanged on CPU or CUDA.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use super::spec::{Activation, LayerSpec};
use super::{ModelError, ScoringModel};
use crate::features::FeatureBatch;

/// On the CPU, rows go through the network in tiles of this many: a 2048 x 64 f32 activation
/// (512 KiB) stays in L2 across the matmul, bias and activation, where a 64k-row batch would stream
/// every intermediate through memory. Measured in benches/README.md (2x faster than 64k rows).
const CPU_TILE_ROWS: usize = 2048;

struct DenseLayer {
    /// `[out, in]` as stored: activations are feature-major (`[in, rows]`), so each layer is
    /// `W · X`, and the last layer's output is already one contiguous row per model output.
    weight: Tensor,
    /// `[out, 1]`, broadcast along the rows.
    bias: Option<Tensor>,
    activation: Activation,
}

/// A feed-forward network of dense layers.
pub struct DenseModel {
    layers: Vec<DenseLayer>,
    input_width: usize,
    outputs: Vec<String>,
    device: Device,
}

impl DenseModel {
    /// Builds the network from named tensors, checking every shape against its neighbour.
    pub fn build(
        tensors: &HashMap<String, Tensor>,
        layers: &[LayerSpec],
        input_width: usize,
        outputs: Vec<String>,
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
        if width != outputs.len() {
            return Err(ModelError::Shape {
                file: file.to_string(),
                message: format!(
                    "the last layer gives {width} values but model.toml names {} outputs",
                    outputs.len()
                ),
            });
        }
        Ok(Self {
            layers: built,
            input_width,
            outputs,
            device: device.clone(),
        })
    }

    fn forward(&self, x: Tensor) -> candle_core::Result<Tensor> {
        let mut x = x;
        for layer in &self.layers {
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
}

impl ScoringModel for DenseModel {
    fn input_width(&self) -> usize {
        self.input_width
    }

    fn output_names(&self) -> &[String] {
        &self.outputs
    }

    fn score(&self, batch: &FeatureBatch) -> Result<Vec<Vec<f32>>, ModelError> {
        let rows = batch.rows;
        let width = self.input_width;
        let mut outs = vec![Vec::with_capacity(rows); self.outputs.len()];
        if rows == 0 {
            return Ok(outs);
        }
        if batch.width() != width {
            return Err(ModelError::Candle(format!(
                "batch has {} features, the model takes {width}",
                batch.width()
            )));
        }
        let tile = if self.device.is_cpu() {
            CPU_TILE_ROWS.min(rows)
        } else {
            rows
        };
        let candle = |e: candle_core::Error| ModelError::Candle(e.to_string());
        let mut buf = vec![0f32; tile * width];
        for start in (0..rows).step_by(tile) {
            let len = tile.min(rows - start);
            let x = &mut buf[..len * width];
            batch.write_tile(start, len, x);
            let x = Tensor::from_slice(x, (width, len), &self.device).map_err(candle)?;
            let y = self
                .forward(x)
                .and_then(|y| y.flatten_all())
                .and_then(|y| y.to_vec1::<f32>())
                .map_err(candle)?;
            for (out, values) in outs.iter_mut().zip(y.chunks_exact(len)) {
                out.extend_from_slice(values);
            }
        }
        Ok(outs)
    }
}

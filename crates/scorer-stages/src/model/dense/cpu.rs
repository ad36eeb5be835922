//! The dense network on the CPU: each layer is one `gemm` call that accumulates `W · X` onto the
//! bias already written into the output tile, followed by the activation applied in place.
//!
//! Why not candle's CPU backend: for these small layers (k = 32 to 64) candle's per-operation cost
//! showed: every matmul, bias add and activation allocated a fresh zeroed tensor, and the
//! element-wise ops went through its own thread pool. In a W1 run those were ~12% of the scorer's
//! CPU samples (perf: element-wise maps, pool hand-offs, zeroing fresh outputs). Running the same
//! `gemm` kernels on two preallocated tiles removes them. candle still loads the weights and runs
//! the network on CUDA.

use crate::model::spec::Activation;

/// A feed-forward network of dense layers, evaluated tile by tile on the calling thread.
pub struct CpuNetwork {
    layers: Vec<CpuLayerWeights>,
    /// The widest activation (input or any layer's output), for sizing the tiles.
    max_width: usize,
}

/// What one layer is made of, as read from the weights file.
pub struct CpuLayerWeights {
    /// `[out, in]`, row-major.
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
    pub inputs: usize,
    pub outputs: usize,
    pub activation: Activation,
}

impl CpuNetwork {
    /// Takes the layers in order; the caller has checked that each layer's inputs match the
    /// previous layer's outputs and that weight and bias lengths match their shapes.
    pub fn new(layers: Vec<CpuLayerWeights>, input_width: usize) -> Self {
        let max_width = layers
            .iter()
            .map(|l| l.outputs)
            .fold(input_width, usize::max);
        Self { layers, max_width }
    }

    /// Runs one tile of `rows` rows. `input` holds the tile feature-major (`[width, rows]`) and is
    /// overwritten: the two tiles take turns as input and output. Returns the last layer's output
    /// (`[outputs, rows]`, feature-major), a slice of whichever tile holds it.
    pub fn forward_tile<'a>(
        &self,
        rows: usize,
        input: &'a mut [f32],
        scratch: &'a mut [f32],
    ) -> &'a [f32] {
        let (mut x, mut y) = (input, scratch);
        for layer in &self.layers {
            let out = &mut y[..layer.outputs * rows];
            match &layer.bias {
                Some(bias) => {
                    for (row, b) in out.chunks_exact_mut(rows).zip(bias) {
                        row.fill(*b);
                    }
                }
                None => out.fill(0.0),
            }
            accumulate_matmul(
                out,
                &layer.weight,
                &x[..layer.inputs * rows],
                (layer.outputs, layer.inputs, rows),
                gemm::Parallelism::None,
            );
            activate(layer.activation, out);
            std::mem::swap(&mut x, &mut y);
        }
        let width = self.layers.last().map_or(0, |l| l.outputs);
        let x: &'a [f32] = x;
        &x[..width * rows]
    }

    /// Scratch length needed per row of a tile (both tiles are this long times the tile rows).
    pub fn tile_width(&self) -> usize {
        self.max_width
    }
}

/// `dst[m×n] += lhs[m×k] · rhs[k×n]`, all row-major and contiguous. The dense network runs it
/// single-threaded (`Parallelism::None`: the pipeline already runs one tile per rayon task); the
/// packed text encoder on the whole pool.
pub(crate) fn accumulate_matmul(
    dst: &mut [f32],
    lhs: &[f32],
    rhs: &[f32],
    (m, k, n): (usize, usize, usize),
    parallelism: gemm::Parallelism,
) {
    assert!(
        dst.len() == m * n && lhs.len() == m * k && rhs.len() == k * n,
        "matmul shapes: dst {} lhs {} rhs {} for {m}×{k}·{k}×{n}",
        dst.len(),
        lhs.len(),
        rhs.len()
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assert above proves every index gemm forms from these strides lies inside the
    // three slices: dst (i, j) at i*n + j < m*n, lhs (i, l) at i*k + l < m*k, rhs (l, j) at
    // l*n + j < k*n. dst is borrowed mutably and so aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            true,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Applies an activation to every value in place (the same formulas as candle's CPU ops).
fn activate(activation: Activation, values: &mut [f32]) {
    match activation {
        Activation::None => {}
        Activation::Relu => values.iter_mut().for_each(|v| *v = v.max(0.0)),
        Activation::Sigmoid => values
            .iter_mut()
            .for_each(|v| *v = 1.0 / (1.0 + (-*v).exp())),
        Activation::Tanh => values.iter_mut().for_each(|v| *v = v.tanh()),
        Activation::Gelu => values
            .iter_mut()
            .for_each(|v| *v = 0.5 * *v * (1.0 + libm::erff(*v * std::f32::consts::FRAC_1_SQRT_2))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};
    use rand::{Rng, SeedableRng};

    fn random(n: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.5f32..1.5)).collect()
    }

    /// The same two layers through candle's CPU ops, the implementation this module replaced.
    fn candle_forward(
        layers: &[CpuLayerWeights],
        x: &[f32],
        width: usize,
        rows: usize,
    ) -> Vec<f32> {
        let dev = Device::Cpu;
        let mut t = Tensor::from_slice(x, (width, rows), &dev).unwrap();
        for l in layers {
            let w = Tensor::from_slice(&l.weight, (l.outputs, l.inputs), &dev).unwrap();
            let b = l.bias.as_ref().unwrap();
            let b = Tensor::from_slice(b, (l.outputs, 1), &dev).unwrap();
            t = w.matmul(&t).unwrap().broadcast_add(&b).unwrap();
            t = match l.activation {
                Activation::None => t,
                Activation::Relu => t.relu().unwrap(),
                Activation::Sigmoid => candle_nn::ops::sigmoid(&t).unwrap(),
                Activation::Tanh => t.tanh().unwrap(),
                Activation::Gelu => t.gelu_erf().unwrap(),
            };
        }
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn every_activation_matches_candle() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let (width, hidden, rows) = (5, 7, 37);
        for act in [
            Activation::None,
            Activation::Relu,
            Activation::Sigmoid,
            Activation::Tanh,
            Activation::Gelu,
        ] {
            let mut layer = |inputs: usize, outputs: usize| CpuLayerWeights {
                weight: random(outputs * inputs, &mut rng),
                bias: Some(random(outputs, &mut rng)),
                inputs,
                outputs,
                activation: act,
            };
            let layers = vec![layer(width, hidden), layer(hidden, 2)];
            let x = random(width * rows, &mut rng);
            let expected = candle_forward(&layers, &x, width, rows);
            let net = CpuNetwork::new(layers, width);
            let mut input = vec![0f32; net.tile_width() * rows];
            input[..x.len()].copy_from_slice(&x);
            let mut scratch = vec![0f32; net.tile_width() * rows];
            let got = net.forward_tile(rows, &mut input, &mut scratch);
            assert_eq!(got.len(), expected.len());
            for (g, e) in got.iter().zip(&expected) {
                assert!((g - e).abs() <= 1e-5, "{act:?}: {g} vs candle {e}");
            }
        }
    }

    #[test]
    fn a_layer_without_bias_adds_nothing() {
        let net = CpuNetwork::new(
            vec![CpuLayerWeights {
                weight: vec![2.0, -1.0],
                bias: None,
                inputs: 2,
                outputs: 1,
                activation: Activation::None,
            }],
            2,
        );
        // two rows, feature-major: f0 = [1, 3], f1 = [4, 5]
        let mut input = vec![1.0, 3.0, 4.0, 5.0];
        let mut scratch = vec![0.0; 4];
        assert_eq!(net.forward_tile(2, &mut input, &mut scratch), &[-2.0, 1.0]);
    }
}

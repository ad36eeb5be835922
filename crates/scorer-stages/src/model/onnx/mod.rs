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
//!
//! The job file's keys ([`section`]) are parsed whether or not the binary has the `onnx` feature,
//! so every binary validates an onnx model, and one without the feature refuses it as not built.

#[cfg(feature = "onnx")]
mod graph;
#[cfg(feature = "onnx")]
mod mapping;
#[cfg(feature = "onnx")]
mod runtime;
pub mod section;
#[cfg(feature = "onnx")]
mod typed;

#[cfg(feature = "onnx")]
pub use graph::OnnxModel;

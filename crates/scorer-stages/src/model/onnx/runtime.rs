//! ONNX Runtime itself: the shared library, loaded once per process, and sessions opened with
//! scorer's thread settings.

use std::path::PathBuf;
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

/// How to get the library, for error messages.
const INSTALL_HINT: &str = "install ONNX Runtime >= 1.31 and point ORT_DYLIB_PATH at libonnxruntime.so, e.g. `pip download --no-deps onnxruntime==1.31.1 -d /tmp/ort && unzip -j /tmp/ort/onnxruntime-*.whl 'onnxruntime/capi/libonnxruntime.so*' -d ~/.local/lib && export ORT_DYLIB_PATH=$(ls ~/.local/lib/libonnxruntime.so.*)` (scripts/onnxruntime.sh does this)";

/// The process's ONNX Runtime environment, created on first use.
pub(super) fn environment() -> Result<&'static Environment, String> {
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

/// One session: all graph optimizations, one intra-op thread, no spinning (see the module doc).
pub(super) fn open_session(env: &Environment, graph: &[u8]) -> Result<Session, String> {
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

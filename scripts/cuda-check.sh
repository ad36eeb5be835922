#!/usr/bin/env bash
# Compiles the CUDA path (`--features cuda`) on a machine without a GPU, so it cannot rot between
# the rare occasions it meets one. CI runs this; so can anyone, idempotently:
#   1. installs nvcc 13.0 from PyPI into a cached virtualenv (the CUDA 12 wheels carry no nvcc);
#   2. `cargo check --all-targets --features cuda` and `cargo build --lib --features cuda`;
#   3. links every target (binaries, tests including the GPU tests, benches) against link-time
#      stubs of the CUDA libraries, generated here from the symbols cudarc references. The stubs
#      only satisfy the linker: at run time the real driver and toolkit libraries are loaded by
#      their sonames. Set SCORER_CUDA_STUBS=0 to skip this step.
# Environment: CUDA_COMPUTE_CAP (default 90: H100/H200), CARGO_PROFILE_FLAG (e.g. --release, to
# build binaries for a GPU host), SCORER_CUDA_SKIP_CHECK=1 (skip step 2's `cargo check`).
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${SCORER_CACHE:-$HOME/.cache/scorer}"
venv="$cache/cuda-venv"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"
profile="${CARGO_PROFILE_FLAG:-}"

# CUDA 13.0 throughout: its PTX loads on every driver >= 580, and cudarc 0.19 knows this version.
# nvvm and crt must match nvcc's minor version or ptxas rejects the PTX that cicc writes.
pins=(nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88
      nvidia-cuda-cccl==13.0.85 nvidia-cuda-runtime==13.0.96)
stamp="$venv/.scorer-pins"
if [ "$(cat "$stamp" 2>/dev/null)" != "${pins[*]}" ]; then
  echo "cuda-check: installing ${pins[*]} into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
  echo "${pins[*]}" >"$stamp"
fi
cuda_home="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
[ -x "$cuda_home/bin/nvcc" ] || { echo "cuda-check: no nvcc under $cuda_home" >&2; exit 1; }
export PATH="$cuda_home/bin:$PATH" CUDA_HOME="$cuda_home" CUDA_ROOT="$cuda_home" CUDA_PATH="$cuda_home"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
nvcc --version | tail -n 2 >&2

if [ "${SCORER_CUDA_SKIP_CHECK:-0}" != "1" ]; then
  # shellcheck disable=SC2086
  cargo check --locked --all-targets --features cuda $profile
fi
# shellcheck disable=SC2086
cargo build --locked --lib --features cuda $profile

if [ "${SCORER_CUDA_STUBS:-1}" = "0" ]; then
  echo "cuda-check: OK (library checked and built; linking skipped)" >&2
  exit 0
fi

# Link-time stubs: one shared library per CUDA library cudarc links, with the soname of the CUDA 13
# release and an empty function for every symbol cudarc's compiled code references.
stubs="$cache/cuda-stubs"
mkdir -p "$stubs"
dir="target/debug"; [ "$profile" = "--release" ] && dir="target/release"
out="$CARGO_TARGET_DIR/${dir#target/}"
# cudarc's bindings, and candle-kernels' static CUDA-runtime kernels (libmoe.a, linked with -lcudart)
rlib="$(ls -t "$out"/deps/libcudarc-*.rlib | head -n 1)"
moe="$(ls -t "$out"/build/candle-kernels-*/out/libmoe.a | head -n 1)"
nm -u --format=just-symbols "$rlib" "$moe" 2>/dev/null | sort -u >"$stubs/symbols.txt"
make_stub() { # lib soname regex
  local lib="$1" soname="$2" pattern="$3"
  grep -E "$pattern" "$stubs/symbols.txt" | sed 's/.*/void &(void) {}/' >"$stubs/$lib.c"
  gcc -shared -fPIC -o "$stubs/lib$lib.so" -Wl,-soname,"$soname" "$stubs/$lib.c"
}
make_stub cuda libcuda.so.1 '^cu[A-Z]'
make_stub nvrtc libnvrtc.so.13 '^nvrtc'
make_stub curand libcurand.so.10 '^curand'
make_stub cublasLt libcublasLt.so.13 '^cublasLt'
make_stub cublas libcublas.so.13 '^cublas[^L]|^cublas$'
make_stub cudart libcudart.so.13 '^cuda[A-Z_]|^__cuda'
echo "cuda-check: $(wc -l <"$stubs/symbols.txt") undefined symbols in cudarc, stubs in $stubs" >&2
# shellcheck disable=SC2086
LIBRARY_PATH="$stubs${LIBRARY_PATH:+:$LIBRARY_PATH}" cargo build --locked --all-targets --features cuda $profile
echo "cuda-check: OK (library, binaries, tests and benches compiled and linked with --features cuda)" >&2

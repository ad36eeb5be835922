#!/usr/bin/env bash
# ONNX Runtime for the `onnx` model kind: the C library from the `onnxruntime` wheel on PyPI
# (nothing else is reachable from a build machine, and scorer downloads nothing at build time).
# Fetches the pinned wheel once into the cache and extracts libonnxruntime.so there.
#
#   source scripts/onnxruntime.sh && onnxruntime_up    # exports ORT_DYLIB_PATH
#   bash scripts/onnxruntime.sh                        # prints the library's path
ONNXRUNTIME_VERSION="${ONNXRUNTIME_VERSION:-1.31.1}"

# Prints the path of libonnxruntime.so of version $1, fetching it into the cache first if absent.
onnxruntime_lib() {
  local version="$1"
  local dir="${SCORER_CACHE:-$HOME/.cache/scorer}/onnxruntime-$version"
  local lib="$dir/libonnxruntime.so.$version"
  if [ ! -f "$lib" ]; then
    local tmp
    tmp="$(mktemp -d)"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --python-version 3.11 --platform manylinux_2_28_x86_64 \
      "onnxruntime==$version" -d "$tmp" >&2
    mkdir -p "$dir"
    python3 - "$tmp" "$dir" <<'PY'
import glob, os, sys, zipfile
wheel = glob.glob(os.path.join(sys.argv[1], "onnxruntime-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime.so"):
            dest = os.path.join(sys.argv[2], base)
            with z.open(name) as src, open(dest + ".part", "wb") as out:
                out.write(src.read())
            os.replace(dest + ".part", dest)
PY
    rm -rf "$tmp"
  fi
  echo "$lib"
}

onnxruntime_up() {
  ORT_DYLIB_PATH="$(onnxruntime_lib "$ONNXRUNTIME_VERSION")"
  export ORT_DYLIB_PATH
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  onnxruntime_up
  echo "$ORT_DYLIB_PATH"
fi

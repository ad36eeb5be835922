# shellcheck shell=bash
# Sourced by scripts/test.sh: says which CPU the suite runs on and which of scorer's instruction-set
# paths it therefore exercises, and stops at once, with the reason, on a CPU below the suite's
# baseline. scorer itself needs only baseline x86-64 (its AVX2 and AVX-512 kernels are chosen at
# run time); the suite's third-party servers and wheels (the pgvector server, polars) need AVX2,
# that is x86-64-v3: every Intel CPU since Haswell (2013), every AMD CPU since Excavator (2015).

# Prints one line about this CPU; returns 1, with the reason, where the suite cannot run here.
cpu_report() {
  [ "$(uname -m)" = x86_64 ] || { echo "scorer: CPU $(uname -m): not x86-64, no SIMD kernels" >&2; return 0; }
  local model flags avx2=no avx512=no kernels="scalar"
  model="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  flags=" $(awk -F': ' '/^flags/ {print $2; exit}' /proc/cpuinfo) "
  case "$flags" in *" avx2 "*) avx2=yes; kernels="$kernels, avx2" ;; esac
  case "$flags" in *" avx512f "*) avx512=yes; kernels="$kernels, avx512" ;; esac
  # SCORER_GBDT_KERNEL=avx2 (or scalar) masks the faster kernels for the whole run.
  [ -n "${SCORER_GBDT_KERNEL:-}" ] && kernels="$kernels (runs forced to $SCORER_GBDT_KERNEL)"
  echo "scorer: CPU $model: AVX2 $avx2, AVX-512 $avx512; GBDT kernels tested: $kernels" >&2
  if [ "$avx2" = no ]; then
    echo "scorer: the test suite needs an x86-64-v3 CPU (AVX2): its pgvector server and the polars" \
      "wheel use AVX2 (scorer itself runs on any x86-64)" >&2
    return 1
  fi
}

#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the text_embedding kind on CUDA against sentence-transformers'
# embeddings of the fixture sentences (cosine >= 0.9999 each, the CI parity test's bar), then
# `scorer models verify` of the 16-bit models (speed-up and worst cosine against f32), then
# throughput on cuda (f32, bf16, f16) and on the CPU cores, into the embedded SQLite file (vectors
# as BLOBs).
#
#   scripts/gpu-embeddings.sh DIR
#
# DIR holds `scorer` built with --features cuda (scripts/cuda-check.sh with
# CARGO_PROFILE_FLAG=--release), all-MiniLM-L6-v2's model.safetensors, config.json and
# tokenizer.json (scripts/minilm.sh), fixture.parquet (tests/fixtures/text_embedding's sentences
# as `id`, `body`), bench.parquet for the GPU and bench_cpu.parquet (fewer rows) for the CPU
# cores (both `benches/embeddings.py --write-parquet`). Needs python3
# (standard library only). Fails, never skips, when no GPU is visible.
set -euo pipefail
cd "$(dirname "$0")/.."
DATE=2026-11-24
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader ||
  { echo "gpu-embeddings: no NVIDIA GPU visible" >&2; exit 1; }
d="$(cd "${1:?usage: scripts/gpu-embeddings.sh DIR}" && pwd)"
fixtures="$(pwd)/tests/fixtures/text_embedding"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/models/minilm/1" "$work/jobs"
artifacts=""
for pair in weights:model.safetensors config:config.json tokenizer:tokenizer.json; do
  role="${pair%%:*}" file="${pair#*:}"
  ln -s "$d/$file" "$work/models/minilm/1/$file"
  artifacts+="[artifacts.$role]"$'\n'"file = \"$file\""$'\n'"sha256 = \"$(sha256sum "$d/$file" | cut -d' ' -f1)\""$'\n'
done
printf 'kind = "text_embedding"\ninputs = ["text"]\noutputs = [{ name = "embedding", size = 384 }]\n[text_embedding]\nmax_seq_len = 256\n%s' \
  "$artifacts" >"$work/models/minilm/1/model.toml"
# The same files computed in bf16 and in f16 on the GPU.
for dtype in bf16 f16; do
  mkdir -p "$work/models/minilm_$dtype/1"
  ln -s "$work"/models/minilm/1/*.safetensors "$work"/models/minilm/1/*.json "$work/models/minilm_$dtype/1/"
  sed "s/^max_seq_len = 256\$/max_seq_len = 256\ndtype = \"$dtype\"/" "$work/models/minilm/1/model.toml" \
    >"$work/models/minilm_$dtype/1/model.toml"
done
for set in fixture bench bench_cpu; do
  mkdir -p "$work/data/$set/dt=$DATE"
  ln -s "$d/$set.parquet" "$work/data/$set/dt=$DATE/part-0.parquet"
done
job() { # name set device batch_size [model]
  printf 'name = "%s"\n[input]\nurl = "data/%s/dt={{ ds }}/*.parquet"\nid_column = "id"\nfeatures = ["body"]\n[model]\nname = "%s"\nversion = "1"\ndevice = "%s"\nbatch_size = %s\n[output]\ntable = "%s"\nvector_type = "blob"\n' \
    "$1" "$2" "${5:-minilm}" "$3" "$4" "$1" >"$work/jobs/$1.toml"
}
job fixture_cuda fixture cuda 256
job bench_cuda bench cuda 8192
job bench_cpu bench_cpu cpu 1024
for dtype in bf16 f16; do
  job "fixture_$dtype" fixture cuda 256 "minilm_$dtype"
  job "bench_$dtype" bench cuda 8192 "minilm_$dtype"
done
cd "$work"
for j in fixture_cuda fixture_bf16 fixture_f16; do
  "$d/scorer" run "$j" --date "$DATE" --quiet
done
# `scorer models verify` on the card: each 16-bit model against its own weights in f32 on the
# fixture sentences (speed-up and worst cosine).
for dtype in bf16 f16; do
  "$d/scorer" models verify "minilm_$dtype" --device cuda
done
for j in bench_cuda bench_bf16 bench_f16 bench_cpu; do
  /usr/bin/time -f "$j wall %e s" "$d/scorer" run "$j" --date "$DATE" --quiet
done
python3 - "$work/scorer.db" "$fixtures" <<'PY'
import json, math, sqlite3, struct, sys
db = sqlite3.connect(sys.argv[1])
meta = json.load(open(f"{sys.argv[2]}/expected.json"))
dim = meta["dim"]
raw = open(f"{sys.argv[2]}/expected_f32.bin", "rb").read()
want = [struct.unpack_from(f"<{dim}f", raw, i * dim * 4) for i in range(meta["sentences"])]
def worst_cosine(table):
    worst = (1.0, -1)
    for i, emb in db.execute(f"SELECT id, embedding FROM {table} ORDER BY id"):
        got = struct.unpack(f"<{dim}f", emb)
        dot = sum(a * b for a, b in zip(got, want[i]))
        na = math.sqrt(sum(a * a for a in got)); nb = math.sqrt(sum(b * b for b in want[i]))
        c = dot / (na * nb) if na > 0 and nb > 0 else float("nan")
        if math.isnan(worst[0]):
            continue  # a NaN is the worst there is
        if math.isnan(c) or c < worst[0]:
            worst = (c, i)
    return worst
worst = worst_cosine("fixture_cuda")
n = db.execute("SELECT count(*) FROM fixture_cuda").fetchone()[0]
print(f"parity on cuda: {n} sentences, worst cosine {worst[0]:.12f} (sentence {worst[1]})")
for dtype in ["bf16", "f16"]:
    w = worst_cosine(f"fixture_{dtype}")
    print(f"{dtype} on cuda: worst cosine {w[0]:.6f} (sentence {w[1]}) against sentence-transformers' f32")
for job, device, gpu, rows, stages in db.execute(
    "SELECT job, device, gpu_name, rows_written, stage_seconds FROM scorer_runs WHERE job LIKE 'bench%' ORDER BY started_at"
):
    s = json.loads(stages)
    print(f"{job}: {device} {gpu or ''}: {rows} sentences, score stage {s['score']:.2f} s = {rows / s['score']:.0f} sentences/s, total {s['total']:.2f} s = {rows / s['total']:.0f} sentences/s")
if n != meta["sentences"] or not worst[0] >= 0.9999:
    sys.exit("gpu-embeddings: parity on cuda FAILED")
PY

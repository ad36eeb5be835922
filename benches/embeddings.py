"""Text embeddings on the CPU: sentence-transformers against scorer's `text_embedding` kind, the
same sentences, model and threads, measured in one run (benches/README.md, "Text embeddings").

  ~/.cache/scorer/st-venv/bin/python benches/embeddings.py [--sentences 4000] [--threads 2]
  ~/.cache/scorer/st-venv/bin/python benches/embeddings.py --sentences 200000 --write-parquet bench.parquet

Needs the sentence-transformers virtualenv (scripts/embedding_reference.py says how), the model
(scripts/minilm.sh) and release binaries (cargo build --release --bins; CARGO_TARGET_DIR as for
benches/e2e.sh). Prints sentences/s of each, with the mean token count.
"""

import argparse
import json
import os
import pathlib
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from embedding_reference import WORDS  # noqa: E402


def sentences(n, seed=7):
    """Support-ticket-like sentences of 12 to 45 words: about 36 tokens on average."""
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 45))).capitalize() + "."
        for _ in range(n)
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sentences", type=int, default=4000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--write-parquet", metavar="PATH", help="only write the sentences (id, body) there")
    args = ap.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    if args.write_parquet:
        texts = sentences(args.sentences)
        pq.write_table(
            pa.table({"id": pa.array(range(len(texts)), pa.int64()), "body": texts}),
            args.write_parquet,
            compression="zstd",
        )
        return
    import sentence_transformers
    import torch

    model_dir = subprocess.run(
        ["bash", str(ROOT / "scripts/minilm.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/scorer/target"))
    scorer = os.path.join(target, "release", "scorer")
    texts = sentences(args.sentences)

    torch.set_num_threads(args.threads)
    st = sentence_transformers.SentenceTransformer(model_dir, device="cpu")
    tokens = [len(ids) for ids in st.tokenizer(texts)["input_ids"]]
    mean_tokens = sum(tokens) / len(tokens)
    st.encode(texts[:64], batch_size=32)  # warm-up

    with tempfile.TemporaryDirectory() as work:
        work = pathlib.Path(work)
        data = work / "data/docs/dt=2026-11-24"
        data.mkdir(parents=True)
        pq.write_table(
            pa.table({"id": pa.array(range(len(texts)), pa.int64()), "body": texts}),
            data / "part-0.parquet",
        )
        model = work / "models/minilm/1"
        model.mkdir(parents=True)
        artifacts = ""
        import hashlib

        for role, name in [("weights", "model.safetensors"), ("config", "config.json"), ("tokenizer", "tokenizer.json")]:
            src = pathlib.Path(model_dir) / name
            (model / name).symlink_to(src)
            sha = hashlib.sha256(src.read_bytes()).hexdigest()
            artifacts += f'[artifacts.{role}]\nfile = "{name}"\nsha256 = "{sha}"\n'
        (model / "model.toml").write_text(
            'kind = "text_embedding"\ninputs = ["text"]\noutputs = [{ name = "embedding", size = 384 }]\n'
            f"[text_embedding]\nmax_seq_len = 256\n{artifacts}"
        )
        (work / "jobs").mkdir()
        (work / "jobs/embed.toml").write_text(
            'name = "embed"\n[input]\nurl = "data/docs/dt={{ ds }}/*.parquet"\nid_column = "id"\n'
            'features = ["body"]\n[model]\nname = "minilm"\nversion = "1"\nbatch_size = 1024\n'
            '[output]\ntable = "embeddings"\n'
        )
        env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
        results = {"sentence-transformers": [], "scorer score stage": [], "scorer end to end": []}
        for _ in range(args.runs):
            t = time.perf_counter()
            st.encode(texts, batch_size=32)
            results["sentence-transformers"].append(len(texts) / (time.perf_counter() - t))
            t = time.perf_counter()
            subprocess.run(
                [scorer, "run", "embed", "--date", "2026-11-24", "--quiet"],
                cwd=work, env=env, check=True, capture_output=True,
            )
            wall = time.perf_counter() - t
            db = sqlite3.connect(work / "scorer.db")
            (stages,) = db.execute(
                "SELECT stage_seconds FROM scorer_runs ORDER BY started_at DESC LIMIT 1"
            ).fetchone()
            score = json.loads(stages)["score"]
            results["scorer score stage"].append(len(texts) / score)
            results["scorer end to end"].append(len(texts) / wall)

    print(f"sentences           {len(texts)}, mean {mean_tokens:.1f} tokens ([CLS] and [SEP] included), {args.threads} threads, median of {args.runs}")
    print(f"versions            sentence-transformers {sentence_transformers.__version__}, torch {torch.__version__}")
    for name, rates in results.items():
        rates.sort()
        print(f"{name:<20}{rates[len(rates) // 2]:.1f} sentences/s  (min {rates[0]:.1f}, max {rates[-1]:.1f})")


if __name__ == "__main__":
    main()

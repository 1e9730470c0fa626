#!/usr/bin/env python3
"""Float64 reference of Hugging Face's MixtralForCausalLM (transformers' modeling_mixtral), in numpy.

Independent of the C++ runtime: it reads a checkpoint directory (model.safetensors + config.json,
docs/architecture.md 3.5) and prints the mean next-byte cross-entropy in nats of a text, computed as
`moe-runtime eval` defines it: the bytes are the tokens (no BOS), windows of seq_len + 1 bytes
(seq_len = max_position_embeddings) sharing their boundary byte, dropless routing, no noise.

Mixtral's function: pre-norm RMSNorm, rotate-half RoPE, causal attention with grouped KV heads
scaled by 1/sqrt(head_dim), softmax over all experts, top-k, the k weights renormalised,
SwiGLU experts w2(silu(w1 x) * w3 x), untied lm_head unless tie_word_embeddings.
Extensions (DeepSeek spelling in config.json): n_shared_experts (always-on expert under
block_sparse_moe.shared_expert), first_k_dense_replace (dense layers under mlp.{gate,up,down}_proj),
scoring_func sigmoid, norm_topk_prob, routed_scaling_factor.

usage: mixtral_ref.py CHECKPOINT_DIR (--text STRING | --file PATH)
"""
import argparse
import json
import os
import struct
import sys

import numpy as np


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise SystemExit(f"{path}: tensor {name}: dtype {entry['dtype']} not supported")
        begin, end = entry["data_offsets"]
        arr = np.frombuffer(body[begin:end], dtype="<f4").astype(np.float64)
        tensors[name] = arr.reshape(entry["shape"])
    return tensors


def resolve_dir(path):
    if os.path.exists(os.path.join(path, "model.safetensors")):
        return path
    with open(os.path.join(path, "latest")) as f:
        return os.path.join(path, f.read().strip())


def rms_norm(x, weight, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def silu(x):
    return x / (1.0 + np.exp(-x))


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rope(x, theta):  # x: [heads, T, head_dim]
    dim = x.shape[-1]
    inv_freq = 1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    freqs = np.outer(np.arange(x.shape[1], dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return x * np.cos(emb) + rotate_half(x) * np.sin(emb)


class Mixtral:
    def __init__(self, ckpt_dir):
        ckpt_dir = resolve_dir(ckpt_dir)
        with open(os.path.join(ckpt_dir, "config.json")) as f:
            self.c = json.load(f)
        self.w = read_safetensors(os.path.join(ckpt_dir, "model.safetensors"))

    def attention(self, x, p):
        c = self.c
        T = x.shape[0]
        H, KV = c["num_attention_heads"], c["num_key_value_heads"]
        hd = c.get("head_dim") or c["hidden_size"] // H
        q = (x @ self.w[p + "q_proj.weight"].T).reshape(T, H, hd).transpose(1, 0, 2)
        k = (x @ self.w[p + "k_proj.weight"].T).reshape(T, KV, hd).transpose(1, 0, 2)
        v = (x @ self.w[p + "v_proj.weight"].T).reshape(T, KV, hd).transpose(1, 0, 2)
        q, k = rope(q, c["rope_theta"]), rope(k, c["rope_theta"])
        group = H // KV  # repeat_kv: query head h reads kv head h // group
        k, v = np.repeat(k, group, axis=0), np.repeat(v, group, axis=0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
        scores = np.where(np.tril(np.ones((T, T), dtype=bool)), scores, -np.inf)
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        probs = scores / scores.sum(axis=-1, keepdims=True)
        out = (probs @ v).transpose(1, 0, 2).reshape(T, H * hd)
        return out @ self.w[p + "o_proj.weight"].T

    def ffn(self, x, w1, w2, w3):
        return (silu(x @ w1.T) * (x @ w3.T)) @ w2.T

    def moe(self, x, p):
        c = self.c
        E, k = c["num_local_experts"], c["num_experts_per_tok"]
        logits = x @ self.w[p + "gate.weight"].T  # [T, E]
        if c.get("scoring_func", "softmax") == "sigmoid":
            scores = 1.0 / (1.0 + np.exp(-logits))
        else:
            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            scores = e / e.sum(axis=-1, keepdims=True)
        bias = self.w.get(p + "gate.e_score_correction_bias")
        select = scores + bias if bias is not None else scores
        top = np.argsort(-select, axis=-1, kind="stable")[:, :k]
        weights = np.take_along_axis(scores, top, axis=-1)
        if c.get("norm_topk_prob", True):
            weights = weights / weights.sum(axis=-1, keepdims=True)
        weights = weights * c.get("routed_scaling_factor", 1.0)
        y = np.zeros_like(x)
        for j in range(E):
            rows, slot = np.nonzero(top == j)
            if rows.size == 0:
                continue
            q = p + f"experts.{j}."
            out = self.ffn(x[rows], self.w[q + "w1.weight"], self.w[q + "w2.weight"], self.w[q + "w3.weight"])
            y[rows] += weights[rows, slot][:, None] * out
        if c.get("n_shared_experts", 0):
            q = p + "shared_expert."
            y += self.ffn(x, self.w[q + "w1.weight"], self.w[q + "w2.weight"], self.w[q + "w3.weight"])
        return y

    def logits(self, tokens):
        c = self.c
        eps = c["rms_norm_eps"]
        h = self.w["model.embed_tokens.weight"][tokens]
        for i in range(c["num_hidden_layers"]):
            p = f"model.layers.{i}."
            h = h + self.attention(rms_norm(h, self.w[p + "input_layernorm.weight"], eps), p + "self_attn.")
            x = rms_norm(h, self.w[p + "post_attention_layernorm.weight"], eps)
            if i < c.get("first_k_dense_replace", 0):
                m = p + "mlp."
                h = h + self.ffn(x, self.w[m + "gate_proj.weight"], self.w[m + "down_proj.weight"], self.w[m + "up_proj.weight"])
            else:
                h = h + self.moe(x, p + "block_sparse_moe.")
        h = rms_norm(h, self.w["model.norm.weight"], eps)
        head = self.w["model.embed_tokens.weight"] if c.get("tie_word_embeddings") else self.w["lm_head.weight"]
        return h @ head.T

    def mean_nats(self, data):
        seq_len = self.c["max_position_embeddings"]
        total, count = 0.0, 0
        for begin in range(0, len(data) - 1, seq_len):
            window = np.frombuffer(data[begin:begin + seq_len + 1], dtype=np.uint8).astype(np.int64)
            logits = self.logits(window[:-1])
            m = logits.max(axis=-1, keepdims=True)
            logz = (m + np.log(np.exp(logits - m).sum(axis=-1, keepdims=True)))[:, 0]
            total += float(np.sum(logz - logits[np.arange(len(window) - 1), window[1:]]))
            count += len(window) - 1
        return total / count


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--text")
    g.add_argument("--file")
    a = ap.parse_args()
    data = a.text.encode("utf-8") if a.text is not None else open(a.file, "rb").read()
    if len(data) < 2:
        sys.exit("mixtral_ref: the text needs at least 2 bytes")
    print(f"{Mixtral(a.checkpoint).mean_nats(data):.12f}")


if __name__ == "__main__":
    main()

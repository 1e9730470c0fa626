#!/usr/bin/env python3
"""PyTorch eager reference of the MoE layer on the GPU (the baseline the CUDA layer must beat by
1.5x): router (softmax, top-2, renormalised), token permutation by expert (argsort), per-expert
SwiGLU FFN with torch.matmul, weighted combine (index_add_), forward + backward, bf16.
Usage: torch_moe_layer_cuda.py [--tokens 8192 --d-model 4096 --d-expert 14336 --experts 8 --top-k 2]
Prints the median forward+backward time (CUDA events, 3 warm-ups, 10 timed) and TFLOP/s of the
expert GEMMs."""
import argparse
import sys

import torch


def moe_layer(x, gate_w, w1, w2, w3, k):
    T, d = x.shape
    E = gate_w.shape[0]
    scores = torch.softmax(x.float() @ gate_w.float().t(), dim=-1)
    top_w, top_e = torch.topk(scores, k, dim=-1)
    top_w = (top_w / top_w.sum(dim=-1, keepdim=True)).to(x.dtype)
    flat_e = top_e.reshape(-1)
    order = torch.argsort(flat_e, stable=True)
    token_of = order // k
    counts = torch.bincount(flat_e, minlength=E).tolist()
    xs = x[token_of]
    outs = []
    start = 0
    for e in range(E):
        n = counts[e]
        if n == 0:
            continue
        xe = xs[start:start + n]
        h = torch.nn.functional.silu(xe @ w1[e].t()) * (xe @ w3[e].t())
        outs.append(h @ w2[e].t())
        start += n
    ys = torch.cat(outs) * top_w.reshape(-1)[order].unsqueeze(1)
    y = torch.zeros_like(x).index_add_(0, token_of, ys)
    return y


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tokens", type=int, default=8192)
    p.add_argument("--d-model", type=int, default=4096)
    p.add_argument("--d-expert", type=int, default=14336)
    p.add_argument("--experts", type=int, default=8)
    p.add_argument("--top-k", type=int, default=2)
    a = p.parse_args()
    if not torch.cuda.is_available():
        print("torch_moe_layer_cuda: no CUDA device: nothing measured")
        return 0
    dev, dt = "cuda", torch.bfloat16
    torch.manual_seed(0)
    T, d, f, E, k = a.tokens, a.d_model, a.d_expert, a.experts, a.top_k
    x = torch.randn(T, d, device=dev, dtype=dt, requires_grad=True)
    gate_w = (torch.randn(E, d, device=dev) * 0.02).to(dt).requires_grad_()
    w1 = (torch.randn(E, f, d, device=dev) * 0.02).to(dt).requires_grad_()
    w2 = (torch.randn(E, d, f, device=dev) * 0.02).to(dt).requires_grad_()
    w3 = (torch.randn(E, f, d, device=dev) * 0.02).to(dt).requires_grad_()
    dy = torch.randn(T, d, device=dev, dtype=dt)

    def step():
        y = moe_layer(x, gate_w, w1, w2, w3, k)
        y.backward(dy)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(10):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        step()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    ms = times[len(times) // 2]
    flops = 3 * 6.0 * T * k * d * f
    print(f"| torch eager MoE layer fwd+bwd | {ms:.3f} ms | {flops / ms * 1e-9:.1f} TFLOP/s (expert GEMMs) |"
          f" {torch.cuda.get_device_name()} torch {torch.__version__} |")
    print(f"torch_ms={ms:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

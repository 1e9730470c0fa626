#!/usr/bin/python3
"""A straightforward PyTorch CPU implementation of the MoE layer that runtime/moe implements,
timed forward+backward on the same synthetic problem as moe_layer_bench (baseline for run.sh).

Same function: bias-free router, softmax scores, top-k with the k weights renormalised
(Hugging Face Mixtral), SwiGLU experts w2(silu(w1 x) * w3 x) visited one by one with index_add_
(the Mixtral implementation's loop), the Switch aux loss and the router z-loss. Dropless.
Run with Debian's torch: OPENBLAS_NUM_THREADS=2 /usr/bin/python3 torch_moe_layer.py
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F


class MoeLayer(torch.nn.Module):
    def __init__(self, d, f, experts, top_k, aux_coef, z_coef, std=0.02):
        super().__init__()
        self.e, self.k, self.aux_coef, self.z_coef = experts, top_k, aux_coef, z_coef
        self.gate = torch.nn.Linear(d, experts, bias=False)
        self.w1 = torch.nn.ModuleList(torch.nn.Linear(d, f, bias=False) for _ in range(experts))
        self.w2 = torch.nn.ModuleList(torch.nn.Linear(f, d, bias=False) for _ in range(experts))
        self.w3 = torch.nn.ModuleList(torch.nn.Linear(d, f, bias=False) for _ in range(experts))
        for p in self.parameters():
            torch.nn.init.normal_(p, 0.0, std)

    def forward(self, x):
        logits = self.gate(x)
        probs = F.softmax(logits, dim=-1)
        weights, chosen = torch.topk(probs, self.k, dim=-1)
        weights = weights / weights.sum(dim=-1, keepdim=True)
        y = torch.zeros_like(x)
        mask = F.one_hot(chosen, self.e).permute(2, 1, 0)  # [E, k, T]
        for e in range(self.e):
            slot, token = torch.where(mask[e])
            if token.numel() == 0:
                continue
            h = x[token]
            out = self.w2[e](F.silu(self.w1[e](h)) * self.w3[e](h))
            y.index_add_(0, token, out * weights[token, slot, None])
        counts = mask.sum(dim=(1, 2)).to(x.dtype)
        aux = self.aux_coef * self.e * torch.sum(counts / counts.sum() * probs.mean(dim=0))
        z = self.z_coef * torch.logsumexp(logits, dim=-1).pow(2).mean()
        return y, aux, z


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--d-model", type=int, default=1024)
    ap.add_argument("--d-expert", type=int, default=2048)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1234)
    layer = MoeLayer(args.d_model, args.d_expert, args.experts, args.top_k, 0.01, 0.001)
    x = torch.randn(args.tokens, args.d_model, requires_grad=True)
    g = torch.randn(args.tokens, args.d_model)

    def step():
        layer.zero_grad(set_to_none=False)
        x.grad = None
        y, aux, z = layer(x)
        ((y * g).sum() + aux + z).backward()

    step()  # warm-up
    seconds = float("inf")  # best iteration, as moe_layer_bench reports
    cpu0 = time.process_time()  # CPU time of all threads, as moe_layer_bench reports
    for _ in range(args.iterations):
        t0 = time.perf_counter()
        step()
        seconds = min(seconds, time.perf_counter() - t0)
    cpu_seconds = (time.process_time() - cpu0) / args.iterations
    flops = 18.0 * args.tokens * args.top_k * args.d_model * args.d_expert
    print(f"torch moe layer: tokens {args.tokens}, d_model {args.d_model}, d_expert {args.d_expert}, "
          f"experts {args.experts}, top_k {args.top_k}, threads {args.threads}, iterations {args.iterations}, "
          f"torch {torch.__version__}")
    print(f"{'layer fwd+bwd (ms)':<34} {seconds * 1e3:.1f}")
    print(f"{'tokens/s (fwd+bwd)':<34} {args.tokens / seconds:.0f}")
    print(f"{'layer fwd+bwd CPU time (ms)':<34} {cpu_seconds * 1e3:.1f}")
    print(f"{'expert GEMMs GFLOP/s (whole layer)':<34} {flops / seconds / 1e9:.1f}")


if __name__ == "__main__":
    main()

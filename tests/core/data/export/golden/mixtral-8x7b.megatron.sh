#!/usr/bin/env bash
# Megatron-Core pretrain_gpt.py for the MoE Studio spec 'mixtral-8x7b' (moe export megatron;
# flag names as in Megatron-LM main at commit 000c4ac (the Megatron-Core 0.14 line), megatron/training/arguments.py).
# 32 GPUs = dp 1 x tp 1 x pp 4 x ep 8, 4 node(s) x 8 GPUs; rank order tp, ep, dp, pp
# (Megatron's default order tp-cp-ep-dp-pp).
#
# Not exported as designed (no Megatron-Core counterpart):
#   train.data.kind = "text": MoE Studio's byte-level text corpus has no Megatron counterpart; exported as --mock-data: replace it with --data-path PREFIX (a Megatron indexed dataset), your tokenizer and --split 950,50,0
# Run on each node with your launcher's --node-rank/--master-addr; extra flags pass through.
set -euo pipefail
args=(
  # model
  --num-layers 32
  --hidden-size 4096
  --ffn-hidden-size 14336
  --num-attention-heads 32
  --seq-length 4096
  --max-position-embeddings 4096
  --group-query-attention
  --num-query-groups 8
  --position-embedding-type rope
  --rotary-base 1000000
  --normalization RMSNorm
  --norm-epsilon 1e-05
  --swiglu
  --disable-bias-linear
  --untie-embeddings-and-output-weights
  --init-method-std 0.02
  # mixture of experts
  --num-experts 8
  --moe-ffn-hidden-size 14336
  --moe-router-topk 2
  --moe-router-score-function softmax
  --moe-router-load-balancing-type aux_loss
  --moe-aux-loss-coeff 0.02
  --moe-token-dispatcher-type alltoall
  --moe-grouped-gemm
  # parallelism (Megatron's data-parallel size is dp·ep = 8)
  --tensor-model-parallel-size 1
  --pipeline-model-parallel-size 4
  --expert-model-parallel-size 8
  --expert-tensor-parallel-size 1
  # training
  --micro-batch-size 1
  --global-batch-size 128
  --train-iters 10000
  --optimizer adam
  --lr 0.0003
  --min-lr 3e-05
  --lr-decay-style cosine
  --lr-warmup-iters 500
  --lr-decay-iters 10000
  --weight-decay 0.1
  --adam-beta1 0.9
  --adam-beta2 0.95
  --adam-eps 1e-08
  --clip-grad 1
  --seed 1234
  --eval-interval 10000
  --tokenizer-type NullTokenizer
  --vocab-size 31999
  --mock-data
  # precision, logging, checkpoints
  --bf16
  --log-interval 1
)
exec torchrun --nnodes 4 --nproc-per-node 8 pretrain_gpt.py "${args[@]}" "$@"

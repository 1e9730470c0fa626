#!/usr/bin/env bash
# Megatron-Core pretrain_gpt.py for the MoE Studio spec 'switch-base-128' (moe export megatron;
# flag names as in Megatron-LM main at commit 000c4ac (the Megatron-Core 0.14 line), megatron/training/arguments.py).
# 8 GPUs = dp 1 x tp 1 x pp 1 x ep 8, 1 node(s) x 8 GPUs; rank order tp, ep, dp, pp
# (Megatron's default order tp-cp-ep-dp-pp).
#
# Not exported as designed (no Megatron-Core counterpart):
#   train.data.kind = "text": MoE Studio's byte-level text corpus has no Megatron counterpart; exported as --mock-data: replace it with --data-path PREFIX (a Megatron indexed dataset), your tokenizer and --split 950,50,0
# Run on each node with your launcher's --node-rank/--master-addr; extra flags pass through.
set -euo pipefail
args=(
  # model
  --num-layers 12
  --hidden-size 768
  --ffn-hidden-size 3072
  --num-attention-heads 12
  --seq-length 512
  --max-position-embeddings 512
  --position-embedding-type rope
  --rotary-base 10000
  --normalization RMSNorm
  --norm-epsilon 1e-06
  --swiglu
  --disable-bias-linear
  --untie-embeddings-and-output-weights
  --init-method-std 0.02
  # mixture of experts
  --num-experts 128
  --moe-ffn-hidden-size 3072
  --moe-router-topk 1
  --moe-router-score-function softmax
  --moe-router-pre-softmax
  --moe-router-load-balancing-type aux_loss
  --moe-aux-loss-coeff 0.01
  --moe-z-loss-coeff 0.001
  --moe-input-jitter-eps 0.01
  --moe-expert-capacity-factor 1.25
  --moe-token-drop-policy position
  --moe-token-dispatcher-type alltoall
  --moe-grouped-gemm
  # parallelism (Megatron's data-parallel size is dp·ep = 8)
  --tensor-model-parallel-size 1
  --pipeline-model-parallel-size 1
  --expert-model-parallel-size 8
  --expert-tensor-parallel-size 1
  # training
  --micro-batch-size 32
  --global-batch-size 2048
  --train-iters 100000
  --optimizer adam
  --lr 0.001
  --min-lr 0.0001
  --lr-decay-style cosine
  --lr-warmup-iters 10000
  --lr-decay-iters 100000
  --weight-decay 0
  --adam-beta1 0.9
  --adam-beta2 0.95
  --adam-eps 1e-08
  --clip-grad 1
  --seed 1234
  --eval-interval 100000
  --tokenizer-type NullTokenizer
  --vocab-size 32127
  --mock-data
  # precision, logging, checkpoints
  --bf16
  --log-interval 1
)
exec torchrun --nnodes 1 --nproc-per-node 8 pretrain_gpt.py "${args[@]}" "$@"

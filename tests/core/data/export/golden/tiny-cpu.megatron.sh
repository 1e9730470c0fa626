#!/usr/bin/env bash
# Megatron-Core pretrain_gpt.py for the MoE Studio spec 'tiny-cpu' (moe export megatron;
# flag names as in Megatron-LM main at commit 000c4ac (the Megatron-Core 0.14 line), megatron/training/arguments.py).
# 1 GPUs = dp 1 x tp 1 x pp 1 x ep 1, 1 node(s) x 1 GPUs; rank order tp, ep, dp, pp
# (Megatron's default order tp-cp-ep-dp-pp).
#
# Not exported as designed (no Megatron-Core counterpart):
#   train.data.kind = "text": MoE Studio's byte-level text corpus has no Megatron counterpart; exported as --mock-data: replace it with --data-path PREFIX (a Megatron indexed dataset), your tokenizer and --split 950,50,0
#   runtime.backend = "cpu": Megatron-Core trains on CUDA GPUs only; the export assumes GPUs
# Run on each node with your launcher's --node-rank/--master-addr; extra flags pass through.
set -euo pipefail
args=(
  # model
  --num-layers 4
  --hidden-size 128
  --ffn-hidden-size 256
  --num-attention-heads 4
  --seq-length 128
  --max-position-embeddings 128
  --position-embedding-type rope
  --rotary-base 10000
  --normalization RMSNorm
  --norm-epsilon 1e-05
  --swiglu
  --disable-bias-linear
  --untie-embeddings-and-output-weights
  --init-method-std 0.02
  # mixture of experts
  --num-experts 8
  --moe-ffn-hidden-size 256
  --moe-router-topk 2
  --moe-router-score-function softmax
  --moe-router-load-balancing-type aux_loss
  --moe-aux-loss-coeff 0.01
  --moe-z-loss-coeff 0.001
  --moe-expert-capacity-factor 1.25
  --moe-token-drop-policy position
  --moe-token-dispatcher-type alltoall
  # parallelism (Megatron's data-parallel size is dp·ep = 1)
  --tensor-model-parallel-size 1
  --pipeline-model-parallel-size 1
  --expert-model-parallel-size 1
  --expert-tensor-parallel-size 1
  # training
  --micro-batch-size 8
  --global-batch-size 8
  --train-iters 2500
  --optimizer adam
  --lr 0.003
  --min-lr 0.0003
  --lr-decay-style cosine
  --lr-warmup-iters 50
  --lr-decay-iters 2500
  --weight-decay 0.1
  --adam-beta1 0.9
  --adam-beta2 0.95
  --adam-eps 1e-08
  --clip-grad 1
  --seed 1234
  --eval-interval 2500
  --tokenizer-type NullTokenizer
  --vocab-size 255
  --mock-data
  # precision, logging, checkpoints
  --deterministic-mode
  --log-interval 1
)
exec torchrun --nnodes 1 --nproc-per-node 1 pretrain_gpt.py "${args[@]}" "$@"

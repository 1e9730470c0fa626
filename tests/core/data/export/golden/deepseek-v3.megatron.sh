#!/usr/bin/env bash
# Megatron-Core pretrain_gpt.py for the MoE Studio spec 'deepseek-v3' (moe export megatron;
# flag names as in Megatron-LM main at commit 000c4ac (the Megatron-Core 0.14 line), megatron/training/arguments.py).
# 2048 GPUs = dp 1 x tp 4 x pp 8 x ep 64, 256 node(s) x 8 GPUs; rank order tp, ep, dp, pp
# (Megatron's default order tp-cp-ep-dp-pp).
#
# Not exported as designed (no Megatron-Core counterpart):
#   model.n_layers = 61: MoE Studio splits 61 layers over 8 stages as 7,8,7,8,8,7,8,8; Megatron's first/last-stage flags give 9,7,7,7,7,7,7,10
#   parallel.hierarchical_a2a = true: no two-stage (node, then GPU) all-to-all in the alltoall dispatcher; --moe-token-dispatcher-type flex with --moe-enable-deepep is the closest (DeepEP's NVLink/RDMA kernels)
#   train.data.kind = "text": MoE Studio's byte-level text corpus has no Megatron counterpart; exported as --mock-data: replace it with --data-path PREFIX (a Megatron indexed dataset), your tokenizer and --split 950,50,0
# Run on each node with your launcher's --node-rank/--master-addr; extra flags pass through.
set -euo pipefail
export CUDA_DEVICE_MAX_CONNECTIONS=1  # Megatron requires it with tp > 1 (before Blackwell)
args=(
  # model
  --num-layers 61
  --hidden-size 7168
  --ffn-hidden-size 18432
  --num-attention-heads 128
  --seq-length 4096
  --max-position-embeddings 4096
  --multi-latent-attention
  --q-lora-rank 1536
  --kv-lora-rank 512
  --qk-head-dim 128
  --qk-pos-emb-head-dim 64
  --v-head-dim 128
  --position-embedding-type rope
  --rotary-base 10000
  --normalization RMSNorm
  --norm-epsilon 1e-06
  --swiglu
  --disable-bias-linear
  --untie-embeddings-and-output-weights
  --init-method-std 0.02
  # mixture of experts
  --num-experts 256
  --moe-ffn-hidden-size 2048
  --moe-router-topk 8
  --moe-shared-expert-intermediate-size 2048
  --moe-layer-freq '([0]*3+[1]*58)'
  --moe-router-score-function sigmoid
  --moe-router-topk-scaling-factor 2.5
  --moe-router-num-groups 8
  --moe-router-group-topk 4
  --moe-router-load-balancing-type none
  --moe-router-enable-expert-bias
  --moe-router-bias-update-rate 0.001
  --moe-token-dispatcher-type alltoall
  --moe-grouped-gemm
  # parallelism (Megatron's data-parallel size is dp·ep = 64)
  --tensor-model-parallel-size 4
  --sequence-parallel
  --pipeline-model-parallel-size 8
  --expert-model-parallel-size 64
  --expert-tensor-parallel-size 4
  --decoder-first-pipeline-num-layers 9
  --decoder-last-pipeline-num-layers 10
  # training
  --micro-batch-size 1
  --global-batch-size 4096
  --train-iters 14800
  --optimizer adam
  --lr 0.00022
  --min-lr 2.2e-05
  --lr-decay-style cosine
  --lr-warmup-iters 2000
  --lr-decay-iters 14800
  --weight-decay 0.1
  --adam-beta1 0.9
  --adam-beta2 0.95
  --adam-eps 1e-08
  --clip-grad 1
  --seed 1234
  --eval-interval 14800
  --tokenizer-type NullTokenizer
  --vocab-size 129279
  --mock-data
  # precision, logging, checkpoints
  --bf16
  --log-interval 1
)
exec torchrun --nnodes 256 --nproc-per-node 8 pretrain_gpt.py "${args[@]}" "$@"

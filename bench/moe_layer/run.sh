#!/usr/bin/env bash
# Times our MoE layer (moe_layer_bench) and the straightforward PyTorch layer (torch_moe_layer.py)
# forward+backward on the same shape, in one run, same thread count, and prints the speed-up.
#   bench/moe_layer/run.sh [--tokens N] [--threads T] [--iterations I] [--rounds R]
# BUILD_DIR (default: build) must hold a configured build; the target is built if needed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="${BUILD_DIR:-$root/build}"
tokens=4096 threads=2 iterations=3 rounds=2
while (($#)); do
  case "$1" in
    --tokens) tokens="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --iterations) iterations="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch' 2>/dev/null ||
  { echo "run.sh: Debian's python3-torch is missing (scripts/setup installs it)" >&2; exit 1; }
cmake --build "$build" --target moe_layer_bench >/dev/null

# Debian's OpenBLAS 0.3.21 does not know this CPU (family 6, model 207) and loads its SSE3 kernels;
# moe-runtime re-executes itself with the right core type (runtime/ops/gemm.h). Both sides here use
# the same system OpenBLAS, so give both the same AVX-512 kernels.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
echo "OpenBLAS core type: ${OPENBLAS_CORETYPE:-auto}" >&2

# Alternate the two sides `rounds` times and keep each side's best round: on a shared machine the
# load changes during a run, and the minimum is the least disturbed measurement of each.
best_ours="" best_torch="" ours="" torch=""
for ((round = 1; round <= rounds; ++round)); do
  o="$(OPENBLAS_NUM_THREADS="$threads" "$build/bench/moe_layer/moe_layer_bench" --tokens "$tokens" \
       --threads "$threads" --iterations "$iterations")"
  t="$(OPENBLAS_NUM_THREADS="$threads" OMP_NUM_THREADS="$threads" /usr/bin/python3 "$here/torch_moe_layer.py" \
       --tokens "$tokens" --threads "$threads" --iterations "$iterations")"
  o_ms="$(awk '/^layer fwd\+bwd \(ms\)/ {print $NF}' <<<"$o")"
  t_ms="$(awk '/^layer fwd\+bwd \(ms\)/ {print $NF}' <<<"$t")"
  echo "round $round: ours $o_ms ms, pytorch $t_ms ms" >&2
  if [ -z "$best_ours" ] || awk -v a="$o_ms" -v b="$best_ours" 'BEGIN {exit !(a < b)}'; then best_ours="$o_ms" ours="$o"; fi
  if [ -z "$best_torch" ] || awk -v a="$t_ms" -v b="$best_torch" 'BEGIN {exit !(a < b)}'; then best_torch="$t_ms" torch="$t"; fi
done
echo "$ours"
echo
echo "$torch"
echo
ours_ms="$best_ours"
torch_ms="$best_torch"
ratio="$(awk '/^ratio experts \/ same shapes/ {print $NF}' <<<"$ours")"
ours_cpu="$(awk '/^layer fwd\+bwd CPU time/ {print $NF}' <<<"$ours")"
torch_cpu="$(awk '/^layer fwd\+bwd CPU time/ {print $NF}' <<<"$torch")"
awk -v o="$ours_ms" -v t="$torch_ms" -v r="$ratio" -v oc="$ours_cpu" -v tc="$torch_cpu" 'BEGIN {
  printf "%-34s %s\n", "summary", "value"
  printf "%-34s %.1f\n", "ours fwd+bwd (ms, best round)", o
  printf "%-34s %.1f\n", "pytorch fwd+bwd (ms, best round)", t
  printf "%-34s %.2fx (target >= 1.5)\n", "speed-up over pytorch", t / o
  printf "%-34s %.3f (target >= 0.85)\n", "expert GEMMs / sgemm same shapes", r
  printf "%-34s %.2fx (those rounds; CPU time of all threads)\n", "CPU-time ratio pytorch / ours", tc / oc
}'

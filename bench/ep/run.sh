#!/usr/bin/env bash
# Expert-parallel benchmarks (issue 4), printed as tables:
#   1. the dispatcher's all-to-all vs a raw gloo::alltoallv of the same bytes (ep 4);
#   2. weak scaling: tokens/s of moe-runtime train with ep = 1, 2, 4 (micro_batch per rank fixed);
#   3. overlap: the share of all-to-all time hidden behind expert compute with 4 chunks;
#   4. hierarchical all-to-all on 2 virtual nodes: measured inter-node bytes vs `moe plan`'s.
# usage: bench/ep/run.sh [BUILD_DIR]   (default: build); EP_BENCH_SECTIONS=4 runs only section 4
# (its bytes do not depend on the machine's load; 1–3 are timings: run them on a quiet machine).
# EP_BENCH_MICRO_BATCH=N sets the sequences of 128 tokens per rank and step (default 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build}
rt=$build/runtime/app/moe-runtime
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sections=${EP_BENCH_SECTIONS:-1234}
if [[ $sections == *1* ]]; then
echo "== 1. dispatcher all-to-all vs raw gloo::alltoallv (4 processes) =="
"$build/bench/ep/ep_dispatch_bench" --procs 4 --iters 30 --tokens 8192 --d 512
fi

# tiny-cpu, 1 GEMM thread per rank (4 ranks share the 2 cores), 8 steps, 2 sequences of 128 per rank.
common=(--set train.steps=8 --set train.micro_batch=${EP_BENCH_MICRO_BATCH:-2} --set runtime.threads=1 --set routing.capacity_factor=0
        --set train.data.val_fraction=0.002 --set cluster.nodes.0.slots=4 --set train.warmup_steps=2)
median_tps() {  # median tokens_per_s of steps 3.. (the first ones warm caches and connections)
  python3 - "$1" <<'PY'
import json, sys, statistics
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
steps = [r for r in recs if r.get("type") == "step" and r["step"] >= 3]
a2a = [r for r in recs if r.get("type") == "a2a" and r["step"] >= 3]
ms = statistics.median(r["step_ms"] for r in steps)
us = sum(sum(r["rank_us"]) for r in a2a); exp = sum(sum(r.get("rank_exposed_us", r["rank_us"])) for r in a2a)
ranks = len(a2a[0]["rank_us"]) if a2a else 1
print(f'{statistics.median(r["tokens_per_s"] for r in steps):.0f} {ms:.1f} {us/1e3/ranks/len(steps) if steps else 0:.1f} {exp/1e3/ranks/len(steps) if steps else 0:.1f}')
PY
}
port=29850
if [[ $sections == *2* ]]; then
echo
echo "== 2. weak scaling (tiny-cpu, ${EP_BENCH_MICRO_BATCH:-2} x 128 tokens per rank per step, 1 thread per rank) =="
printf "%4s %10s %10s %14s %14s\n" ep tokens/s step_ms "a2a ms/rank" "vs ep 1"
base=""
for ep in 1 2 4; do
  port=$((port + 1))
  if [ "$ep" = 1 ]; then
    "$rt" train tiny-cpu "${common[@]}" --metrics "$tmp/ep$ep.jsonl" 2>/dev/null
  else
    "$rt" train tiny-cpu "${common[@]}" --set parallel.ep=$ep --nproc-per-node $ep --master 127.0.0.1:$port \
      --metrics "$tmp/ep$ep.jsonl" 2>/dev/null
  fi
  read -r tps ms a2a _ < <(median_tps "$tmp/ep$ep.jsonl")
  [ -z "$base" ] && base=$tps
  printf "%4s %10s %10s %14s %13.2fx\n" "$ep" "$tps" "$ms" "$a2a" "$(echo "$tps / $base" | bc -l)"
done

fi

if [[ $sections == *3* ]]; then
echo
echo "== 3. overlap (ep 4, tiny-cpu as above): all-to-all time per rank per step =="
echo "   flat, and hierarchical on 2 virtual nodes of 2 (parallel.gpus_per_node=2)"
printf "%14s %8s %10s %14s %16s %10s\n" all-to-all chunks step_ms "a2a ms/rank" "waited ms/rank" hidden
for hier in false true; do
  for chunks in 1 4; do
    port=$((port + 1))
    "$rt" train tiny-cpu "${common[@]}" --set parallel.ep=4 --set parallel.overlap_chunks=$chunks \
      --set parallel.gpus_per_node=2 --set parallel.hierarchical_a2a=$hier --nproc-per-node 4 \
      --master 127.0.0.1:$port --metrics "$tmp/ov$hier$chunks.jsonl" 2>/dev/null
    read -r tps ms a2a exposed < <(median_tps "$tmp/ov$hier$chunks.jsonl")
    printf "%14s %8s %10s %14s %16s %9.0f%%\n" "$([ $hier = true ] && echo hierarchical || echo flat)" "$chunks" "$ms" \
      "$a2a" "$exposed" "$(echo "100 * (1 - $exposed / $a2a)" | bc -l)"
  done
done

fi

if [[ $sections == *4* ]]; then
echo
echo "== 4. hierarchical all-to-all (ep 4 on 2 virtual nodes of 2, tiny-cpu top-2): inter-node bytes =="
echo "   measured: mean over steps of the a2a records' inter_bytes per rank per MoE layer (4 phases);"
echo "   plan: moe plan's flat_inter / hier_inter (expectation under uniform routing)"
printf "%14s %14s %14s %10s %12s\n" hierarchical measured plan "ratio" step_ms
moe=$build/cli/moe
for hier in false true; do
  port=$((port + 1))
  set2=("${common[@]}" --set parallel.ep=4 --set parallel.gpus_per_node=2 --set parallel.hierarchical_a2a=$hier)
  "$rt" train tiny-cpu "${set2[@]}" --nproc-per-node 4 --master 127.0.0.1:$port --metrics "$tmp/h$hier.jsonl" 2>/dev/null
  plan=$("$moe" plan "$root/resources/presets/tiny-cpu.json" "${set2[@]}" --json | python3 -c '
import json, sys
p = json.load(sys.stdin)["plan"]["a2a"]
print(p["hier_inter"] if p["hierarchical"] else p["flat_inter"])')
  python3 - "$tmp/h$hier.jsonl" "$plan" "$hier" <<'PY'
import json, sys, statistics
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
a2a = [r for r in recs if r.get("type") == "a2a"]
steps = sorted({r["step"] for r in a2a}); layers = len({r["layer"] for r in a2a}); ranks = len(a2a[0]["rank_us"])
per = sum(r["inter_bytes"] for r in a2a) / len(steps) / layers / ranks
plan = float(sys.argv[2])
ms = statistics.median(r["step_ms"] for r in recs if r.get("type") == "step" and r["step"] >= 3)
print(f"{sys.argv[3]:>14} {per:14.0f} {plan:14.0f} {per / plan:10.3f} {ms:12.1f}")
PY
done
fi

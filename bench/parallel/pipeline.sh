#!/usr/bin/env bash
# Pipeline parallelism's bubble, measured against the cost model (issue 15): tiny-cpu with
# 4 layers split over pp stages (v = 2: the interleaved schedule, 2 chunks per stage),
# train.grad_accum micro-batches of 2 sequences of 64 tokens. Each step record carries every
# stage's busy time (forward, recompute, backward) and idle time. Prints per layout the measured
# idle share (median over steps 3.., the mean over stages of 1 − busy / the longest stage's
# schedule: a stage that ends early waits for it) beside
#   - plan: moe plan's pp_idle_share with train.recompute stage (what moe-runtime runs): every
#     stage's schedule played out with its chunks' FLOP times and recomputed forwards;
#   - equal stages: the formula (pp − 1)/(v·m + pp − 1);
#   - replayed: the recorded ops replayed (each stage runs its ops in the recorded order with their
#     recorded durations, a forward after the previous stage's forward of that micro-batch, a
#     backward after the next stage's backward, a recompute right away, transfers free);
# then the idle share per stage, the bytes each stage sent and moe plan's pp_bytes, and the
# tokens/s against one process. Ranks share cores on a small machine (1 GEMM thread each): a
# layout with more ranks than cores measures the sharing, not the schedule; read the shares, not
# the rates.
#   bench/parallel/pipeline.sh [STEPS] [--set k=v]...   (BUILD=build by default)
set -euo pipefail
# shellcheck source=run_layout.sh
source "$(dirname "$0")/run_layout.sh"
common=(--set "train.steps=$steps" --set model.seq_len=64 --set runtime.threads=1 --set routing.capacity_factor=0
        --set train.micro_batch=2 --set train.data.val_fraction=0.002 --set cluster.nodes.0.slots=4
        --set train.warmup_steps=2 "${extra[@]}")
echo "tiny-cpu (4 layers), $steps steps, micro-batches of 2 sequences, 1 GEMM thread per rank ${extra[*]}; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
plan_figures() {  # the plan's pp_bytes and idle share, with the recomputation moe-runtime runs
  "$build/cli/moe" plan "$root/resources/presets/tiny-cpu.json" "${common[@]}" --set train.recompute=stage "$@" --json |
    python3 -c 'import json,sys; t = json.load(sys.stdin)["plan"]["time"]; print(int(t["pp_bytes"]), t["pp_idle_share"])'
}
layouts=("one4 1 4 --set train.grad_accum=4" "one8 1 8 --set train.grad_accum=8"
         "pp2m4 2 4 --set parallel.pp=2 --set train.grad_accum=4" "pp2m8 2 8 --set parallel.pp=2 --set train.grad_accum=8"
         "pp2v2m4 2 4 --set parallel.pp=2 --set parallel.vpp=2 --set train.grad_accum=4"
         "pp2v2m8 2 8 --set parallel.pp=2 --set parallel.vpp=2 --set train.grad_accum=8"
         "pp4m8 4 8 --set parallel.pp=4 --set train.grad_accum=8")
for l in "${layouts[@]}"; do
  read -r name procs _ sets <<<"$l"
  # shellcheck disable=SC2086
  run "$name" "$procs" $sets
done
# shellcheck disable=SC2046
printf '%s\n' "pp2m4 $(plan_figures --set parallel.pp=2 --set train.grad_accum=4)" \
  "pp2m8 $(plan_figures --set parallel.pp=2 --set train.grad_accum=8)" \
  "pp2v2m4 $(plan_figures --set parallel.pp=2 --set parallel.vpp=2 --set train.grad_accum=4)" \
  "pp2v2m8 $(plan_figures --set parallel.pp=2 --set parallel.vpp=2 --set train.grad_accum=8)" \
  "pp4m8 $(plan_figures --set parallel.pp=4 --set train.grad_accum=8)" >"$tmp/planned"
python3 - "$tmp" <<'PY'
import json, statistics, sys
d = sys.argv[1]
planned = {name: (int(b), float(share)) for name, b, share in (line.split() for line in open(f"{d}/planned"))}
def steps(name):
    return [r for r in map(json.loads, open(f"{d}/{name}.jsonl")) if r.get("type") == "step" and r["step"] >= 3]
def replayed(r, v):
    ops = r["pp_timeline"]
    pp = len(ops)
    last = pp * v - 1  # the last virtual stage (chunk c of stage s is virtual stage c·pp + s)
    done, clock, nxt = {}, [0.0] * pp, [0] * pp
    progress = True
    while progress:
        progress = False
        for s in range(pp):
            if nxt[s] == len(ops[s]):
                continue
            kind, m, start, end = ops[s][nxt[s]][:4]
            j = (ops[s][nxt[s]][4] if len(ops[s][nxt[s]]) > 4 else 0) * pp + s
            dep = None if kind == 1 else (("f", j - 1, m) if kind == 0 else ("b", j + 1, m))
            if dep and 0 <= dep[1] <= last and dep not in done:
                continue
            t0 = max(clock[s], done.get(dep, 0.0) if dep else 0.0)
            clock[s] = t0 + (end - start)
            if kind != 1:
                done[("f" if kind == 0 else "b", j, m)] = clock[s]
            nxt[s] += 1
            progress = True
    makespan = max(clock)
    return sum(1 - sum(op[3] - op[2] for op in ops[s]) / makespan for s in range(pp)) / pp
print(f"{'layout':<7} {'pp':>2} {'v':>1} {'m':>2} {'idle share':>10} {'plan':>6} {'equal stages':>12} {'replayed':>9} {'per stage':>24} {'bytes/stage/step':>22} {'plan pp_bytes':>13} {'tokens/s vs one':>15}")
for name, pp, v, m, base in (("pp2m4", 2, 1, 4, "one4"), ("pp2m8", 2, 1, 8, "one8"), ("pp2v2m4", 2, 2, 4, "one4"),
                              ("pp2v2m8", 2, 2, 8, "one8"), ("pp4m8", 4, 1, 8, "one8")):
    rs = steps(name)
    # The step is the longest stage's schedule: a stage that ends early waits for it.
    step = lambda r: max(b + i for b, i in zip(r["pp_busy_ms"], r["pp_idle_ms"]))
    per_stage = [statistics.median(1 - r["pp_busy_ms"][s] / step(r) for r in rs) for s in range(pp)]
    share = sum(per_stage) / pp
    formula = (pp - 1) / (v * m + pp - 1)
    uneven = statistics.median(replayed(r, v) for r in rs)
    sent = sorted({b for r in rs for b in r["pp_bytes"]})
    speed = statistics.median(r["tokens_per_s"] for r in rs) / statistics.median(r["tokens_per_s"] for r in steps(base))
    print(f"{name:<7} {pp:>2} {v:>1} {m:>2} {share:>10.3f} {planned[name][1]:>6.3f} {formula:>12.3f} {uneven:>9.3f} {' '.join(f'{x:.2f}' for x in per_stage):>24} "
          f"{'/'.join(str(b) for b in sent):>22} {planned[name][0]:>13} {speed:>15.2f}")
PY

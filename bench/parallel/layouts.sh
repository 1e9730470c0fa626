#!/usr/bin/env bash
# The layouts moe-runtime trains, side by side on one machine (issue 15): tiny-cpu at the same
# global batch (8 sequences of 64 tokens per step) as one process, dp 2, ep 2, tp 2 (plain, with
# sequence parallelism, with experts split over tp), tp 2 × ep 2 and dp 2 × ep 2. Prints per layout
# the median tokens/s and step time of steps 3.., the ratio to one process, what tp communicates
# (the step records' tp_bytes and etp_bytes, and moe plan's figure) and rank 0's peak RSS.
# Every layout gets 1 GEMM thread per rank; on a machine with fewer cores than ranks the ranks
# share cores, so read the ratios, not the absolute rates.
#   bench/parallel/layouts.sh [STEPS] [--set k=v]...   (BUILD=build by default)
set -euo pipefail
# shellcheck source=run_layout.sh
source "$(dirname "$0")/run_layout.sh"
common=(--set "train.steps=$steps" --set model.seq_len=64 --set runtime.threads=1 --set routing.capacity_factor=0
        --set train.data.val_fraction=0.002 --set cluster.nodes.0.slots=4 --set train.warmup_steps=2 "${extra[@]}")
echo "tiny-cpu, $steps steps of 8 x 64 tokens, 1 GEMM thread per rank ${extra[*]}; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
run one 1 --set train.micro_batch=8
run dp2 2 --set parallel.dp=2 --set train.micro_batch=4
run ep2 2 --set parallel.ep=2 --set train.micro_batch=4
run tp2 2 --set parallel.tp=2 --set train.micro_batch=8
run tp2sp 2 --set parallel.tp=2 --set parallel.sequence_parallel=true --set train.micro_batch=8
run tp2etp2 2 --set parallel.tp=2 --set parallel.etp=2 --set train.micro_batch=8
run tp2ep2 4 --set parallel.tp=2 --set parallel.ep=2 --set train.micro_batch=4
run dp2ep2 4 --set parallel.dp=2 --set parallel.ep=2 --set train.micro_batch=2
planned=$("$build/cli/moe" plan "$root/resources/presets/tiny-cpu.json" "${common[@]}" --set parallel.tp=2 \
          --set train.micro_batch=8 --json | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["plan"]["time"]["tp_bytes"]))')
python3 - "$tmp" "$planned" <<'PY'
import json, statistics, sys
d, planned = sys.argv[1], int(sys.argv[2])
rows = {}
ranks = {"one": 1, "dp2": 2, "ep2": 2, "tp2": 2, "tp2sp": 2, "tp2etp2": 2, "tp2ep2": 4, "dp2ep2": 4}
for name in ranks:
    records = [json.loads(line) for line in open(f"{d}/{name}.jsonl")]
    steps = [r for r in records if r.get("type") == "step" and r["step"] >= 3]
    tps = statistics.median(r["tokens_per_s"] for r in steps)
    ms = statistics.median(r["step_ms"] for r in steps)
    tp_bytes = {r.get("tp_bytes") for r in steps} - {None}
    etp = [r["etp_bytes"] for r in steps if "etp_bytes" in r]
    rss = [r.get("peak_rss_bytes", 0) for r in records if r.get("type") == "run_end"]
    rows[name] = (tps, ms, tp_bytes, statistics.median(etp) if etp else None, max(rss) / 2**20 if rss else 0)
base = rows["one"][0]
print(f"{'layout':<8} {'ranks':>5} {'tokens/s':>9} {'step ms':>8} {'vs one':>7} {'tp bytes/step (rank 0)':>23} "
      f"{'etp bytes/step (median)':>24} {'peak RSS MiB':>12}")
for name, (tps, ms, tp_bytes, etp, rss) in rows.items():
    tb = ", ".join(str(b) for b in sorted(tp_bytes)) if tp_bytes else "-"
    eb = f"{etp:.0f}" if etp is not None else "-"
    print(f"{name:<8} {ranks[name]:>5} {tps:>9.0f} {ms:>8.1f} {tps / base:>7.2f} {tb:>23} {eb:>24} {rss:>12.1f}")
print(f"moe plan's tp_bytes for tp 2 at micro_batch 8: {planned}")
PY

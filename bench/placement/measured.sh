#!/usr/bin/env bash
# Placement measured by the runtime (issue 14): tiny-cpu (8 experts, top-2, dropless) on ep 4 over
# two virtual nodes × 2 ranks with the hierarchical exchange. It trains once with the uniform
# placement, recording the expert loads and co-selection; asks `moe placement suggest` for the
# replicate (3 slots per rank) and data_driven plans of that run; trains again with each. The seed
# and data are the same and placement never changes the math (tests/runtime/ep/
# placement_equivalence_test.cpp), so the runs route identically and only where rows are computed
# differs. Prints per run, from the store: the ranks' measured load (a2a rank_rows, max/mean per
# layer and step, averaged) and the cross-node bytes of the exchanges (a2a inter_bytes, summed).
#   bench/placement/measured.sh [STEPS] [--set k=v]...   (BUILD=build by default)
# The --set arguments change every run (e.g. the model or the data); REPLICATE_SETS adds settings
# to the replicate run only (e.g. "--set placement.replace_every=5"), SLOTS its slots per rank (3).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD:-$root/build}"
steps="${1:-60}"
shift || true
extra=("$@")
slots="${SLOTS:-3}"
read -r -a replicate_sets <<< "${REPLICATE_SETS:-}"
moe="$build/cli/moe"
dir="$(mktemp -d /tmp/moe-placement-measured.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
db="$dir/runs.sqlite"
layout=(--set "train.steps=$steps" --set model.seq_len=64 --set train.micro_batch=4 --set routing.capacity_factor=0
        --set parallel.ep=4 --set parallel.gpus_per_node=2 --set parallel.hierarchical_a2a=true
        --set cluster.nodes.0.slots=4 --set placement.stats_every=5 --set train.eval_every=0 "${extra[@]}")
echo "tiny-cpu, $steps steps, ep 4 = 2 nodes x 2, hierarchical exchange ${extra[*]}; replicate: $slots slots per rank ${replicate_sets[*]}"
echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$moe" run "$root/resources/presets/tiny-cpu.json" --db "$db" --name uniform "${layout[@]}" > "$dir/uniform.log"
"$moe" placement suggest uniform --db "$db" --set "placement.slots_per_rank=$slots" \
  --write-spec "$dir/replicate.json" --strategy replicate
"$moe" placement suggest uniform --db "$db" --write-spec "$dir/data_driven.json" --strategy data_driven
"$moe" run "$dir/replicate.json" --db "$db" --name replicate "${replicate_sets[@]}" > "$dir/replicate.log"
"$moe" run "$dir/data_driven.json" --db "$db" --name data_driven > "$dir/data_driven.log"
for run in uniform replicate data_driven; do "$moe" runs export "$run" --db "$db" --format jsonl -o "$dir/$run.jsonl"; done
/usr/bin/python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
rows = {}
for run in ("uniform", "replicate", "data_driven"):
    ratios, inter, intra, steps = [], 0, 0, set()
    loss, total = {}, {}
    for line in open(f"{d}/{run}.jsonl"):
        r = json.loads(line)
        if r["type"] == "a2a":
            inter += r.get("inter_bytes", 0)
            intra += r.get("intra_bytes", 0)
            if r["phase"] == "dispatch" and r["pass"] == "fwd":
                rr = r["rank_rows"]
                ratios.append(max(rr) / (sum(rr) / len(rr)))
                acc = total.setdefault(r["layer"], [0] * len(rr))
                for i, v in enumerate(rr): acc[i] += v
        if r["type"] == "step":
            loss[r["step"]] = r["loss"]
    whole = sum(max(a) / (sum(a) / len(a)) for a in total.values()) / len(total)
    rows[run] = (sum(ratios) / len(ratios), max(ratios), whole, inter, intra, loss)
base = rows["uniform"]
# per step: max/mean of the ranks' rows in each (step, layer), averaged, and the worst; whole run:
# the ranks' rows summed over the run per layer, max/mean, averaged over the layers.
print(f"{'placement':<12} {'load max/mean per step':>23} {'worst':>6} {'whole run':>10} {'cross-node MB':>14} {'vs uniform':>11} {'intra-node MB':>14} {'same losses':>12}")
for run, (mean_ratio, worst, whole, inter, intra, loss) in rows.items():
    same = "yes" if loss == base[5] else "NO"
    print(f"{run:<12} {mean_ratio:>23.3f} {worst:>6.3f} {whole:>10.3f} {inter / 1e6:>14.3f} {inter / base[3] - 1:>+11.1%} {intra / 1e6:>14.3f} {same:>12}")
PY

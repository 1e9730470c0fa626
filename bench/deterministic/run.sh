#!/usr/bin/env bash
# The price of deterministic arithmetic (runtime.deterministic): tiny-cpu training steps with it
# on and off, one process and ep 4 (4 processes), interleaved `rounds` times; prints the median
# step time of each (steps after the first 3) and the ratio measured in the same round.
#   bench/deterministic/run.sh [--steps N] [--rounds R]
# BUILD_DIR (default: build) must hold a built moe-runtime.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
build="${BUILD_DIR:-$root/build}"
rt="$build/runtime/app/moe-runtime"
steps=15 rounds=3
while (($#)); do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    *) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$rt" ] || { echo "run.sh: $rt is not built" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Median step_ms of a stream, skipping the first 3 steps (warm-up).
median_ms() {
  python3 - "$1" <<'PY'
import json, statistics, sys
ms = [r["step_ms"] for r in map(json.loads, open(sys.argv[1])) if r.get("type") == "step"][3:]
print(f"{statistics.median(ms):.1f}")
PY
}

# run LAYOUT DETERMINISTIC → median ms
run() {
  local sets=(--set "train.steps=$steps" --set train.data.val_fraction=0.0001 --set "runtime.deterministic=$2")
  if [ "$1" = ep4 ]; then
    sets+=(--set parallel.ep=4 --set train.micro_batch=2 --set cluster.nodes.0.slots=4 --nproc-per-node 4
           --master "127.0.0.1:$((29300 + RANDOM % 400))")
  fi
  "$rt" train tiny-cpu "${sets[@]}" --metrics "$tmp/m.jsonl" 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  median_ms "$tmp/m.jsonl"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)   $(nproc) cores   tiny-cpu, $steps steps per run"
printf '%-8s %-6s %14s %14s %8s\n' layout round "fast ms/step" "determ. ms/step" ratio
for layout in one ep4; do
  for ((r = 1; r <= rounds; ++r)); do
    fast="$(run "$layout" false)"
    det="$(run "$layout" true)"
    printf '%-8s %-6s %14s %14s %8s\n' "$layout" "$r" "$fast" "$det" "$(python3 -c "print(f'{$det/$fast:.2f}')")"
  done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

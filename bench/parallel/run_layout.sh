# Sourced by the bench/parallel scripts: the paths, the arguments ([STEPS] [--set k=v]...) and
# `run NAME PROCS SETS...`, which trains tiny-cpu with the caller's `common` settings plus SETS on
# PROCS ranks (a free-ish local port each) and writes $tmp/NAME.jsonl (stops the script on failure).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${BUILD:-$root/build}"
steps="${1:-12}"
shift || true
extra=("$@")
rt="$build/runtime/app/moe-runtime"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
run() {  # name procs sets...
  local name=$1 procs=$2
  shift 2
  local launch=()
  [ "$procs" -gt 1 ] && launch=(--nproc-per-node "$procs" --master "127.0.0.1:$((29900 + RANDOM % 500))")
  "$rt" train tiny-cpu "${common[@]}" "$@" "${launch[@]}" --metrics "$tmp/$name.jsonl" 2>"$tmp/$name.err" ||
    { echo "$name failed:"; tail -3 "$tmp/$name.err"; exit 1; }
}

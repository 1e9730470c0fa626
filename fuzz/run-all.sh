#!/usr/bin/env bash
# Builds the libFuzzer targets in build-fuzz (clang, ASan + UBSan) and runs each for SECONDS, one
# after the other (nice -n 19), from seed corpora made here. See docs/fuzzing.md.
#
#   fuzz/run-all.sh [SECONDS [TARGET...]]      default: 600 s, every target
#
# Environment: OUT (default /tmp/moe-fuzz) holds seed/, corpus/ (kept between runs, so a second run
# continues), art/ (crashing inputs), log/; MOE_RUNTIME (default build/runtime/app/moe-runtime) makes
# real metrics streams and checkpoints for the seeds when it exists; JOBS (default 2) for the build.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${1:-600}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(spec_fuzzer hf_config_fuzzer hostfile_fuzzer metrics_fuzzer ingest_fuzzer
                                     safetensors_fuzzer checkpoint_fuzzer)
OUT=${OUT:-/tmp/moe-fuzz}
RUNTIME=${MOE_RUNTIME:-build/runtime/app/moe-runtime}
SEP=$'\n--8<--\n'  # checkpoint_fuzzer's part separator

if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DMOE_FUZZ=ON -DMOE_BUILD_TESTS=OFF -DMOE_CUDA=OFF >/dev/null
fi
nice -n 19 cmake --build build-fuzz --target "${TARGETS[@]}" -j "${JOBS:-2}"

mkdir -p "$OUT"/{seed,corpus,art,log,gen}
# The targets' scratch files (tmpfs when there is one), removed at the end.
MOE_FUZZ_TMP=$(mktemp -d "$( [ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/moe-fuzz-run.XXXXXX")
export MOE_FUZZ_TMP
trap 'rm -rf "$MOE_FUZZ_TMP"' EXIT
seed() { mkdir -p "$OUT/seed/$1"; echo "$OUT/seed/$1"; }

# Real streams and checkpoints from the runtime (tiny models, so a checkpoint is ~50 KB).
SMALL=(--set model.d_model=4 --set model.n_layers=2 --set model.n_heads=1 --set model.n_kv_heads=1
       --set model.seq_len=8 --set model.moe.num_experts=2 --set model.moe.top_k=1 --set model.moe.d_expert=4
       --set train.micro_batch=2 --set train.steps=2)
TINY=resources/presets/tiny-cpu.json
if [ -x "$RUNTIME" ] && [ ! -f "$OUT/gen/done" ]; then
  rm -rf "$OUT/gen"/*
  nice -n 19 "$RUNTIME" train $TINY --set train.steps=3 --set runtime.checkpoint_every=3 \
    --metrics "$OUT/gen/tiny.jsonl" 2>/dev/null
  nice -n 19 "$RUNTIME" train $TINY "${SMALL[@]}" --set runtime.checkpoint_every=2 \
    --metrics "$OUT/gen/small.jsonl" --checkpoint-dir "$OUT/gen/ck-plain" 2>/dev/null
  nice -n 19 "$RUNTIME" train $TINY "${SMALL[@]}" --set runtime.checkpoint_every=1 --set model.moe.shared_experts=1 \
    --set model.moe.d_shared_expert=4 --set model.moe.first_dense_layers=1 --set model.d_ff=8 \
    --set routing.score=sigmoid --set routing.bias_balancing.enabled=true \
    --metrics "$OUT/gen/ext.jsonl" --checkpoint-dir "$OUT/gen/ck-ext" 2>/dev/null
  nice -n 19 "$RUNTIME" train $TINY "${SMALL[@]}" --set parallel.ep=2 --set parallel.gpus_per_node=2 \
    --set cluster.nodes.0.slots=2 --nproc-per-node 2 --metrics "$OUT/gen/ep2.jsonl" 2>/dev/null
  touch "$OUT/gen/done"
fi

# spec: presets and --set lines.
d=$(seed spec_fuzzer)
cp resources/presets/*.json "$d/"
printf 'SET parallel.ep=4' >"$d/set1"
printf 'SET routing.type=expert_choice' >"$d/set2"
printf 'SET model.moe.top_k=3' >"$d/set3"
# Hugging Face configs: the test set, the shared set, our own config.json files.
d=$(seed hf_config_fuzzer)
cp tests/core/data/hf-configs/*.json "$d/"
if [ -d ../shared/data/hf-configs ]; then for f in ../shared/data/hf-configs/*.json; do cp "$f" "$d/shared-$(basename "$f")"; done; fi
for ck in "$OUT"/gen/ck-*/step-*; do [ -d "$ck" ] && cp "$ck/config.json" "$d/ours-$(basename "$(dirname "$ck")")-$(basename "$ck").json"; done
# Hostfiles, as in tests/remote.
d=$(seed hostfile_fuzzer)
printf '# cluster\nnode-a slots=4\n\n  node-b   slots=8 user=alice port=2222 key=~/.ssh/id_cluster addr=10.0.0.2  # fast one\r\nnode-c\n' >"$d/h1"
printf 'a slots=2 user=u port=22 key=/k addr=1.2.3.4\nb slots=1\n' >"$d/h2"
printf '127.0.0.1 slots=2 port=2222 key=/tmp/id\n127.0.0.1 slots=2 port=2223 key=/tmp/id\n' >"$d/h3"
printf 'localhost\n' >"$d/h4"
# Metrics streams: the runtime's (one process, shared experts, ep = 2 with a2a records).
for t in metrics_fuzzer ingest_fuzzer; do
  d=$(seed $t)
  for f in "$OUT"/gen/*.jsonl; do [ -f "$f" ] && cp "$f" "$d/"; done
  printf '{"type":"log","level":"warning","message":"hi"}\n{"type":"run_end","status":"failed","steps":0,"reason":"x"}\n' >"$d/log"
done
# safetensors: the runtime's checkpoint files and a few small hand-made ones.
d=$(seed safetensors_fuzzer)
for ck in "$OUT"/gen/ck-*/step-*; do
  [ -d "$ck" ] || continue
  n="$(basename "$(dirname "$ck")")-$(basename "$ck")"
  cp "$ck/model.safetensors" "$d/model-$n"
  cp "$ck/optimizer.safetensors" "$d/optimizer-$n"
done
python3 - "$d" <<'EOF'
import json, struct, sys
def st(path, tensors, meta=None):
    header, data, off = {}, b"", 0
    for name, shape, values in tensors:
        raw = struct.pack("<%df" % len(values), *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw); data += raw
    if meta is not None: header["__metadata__"] = meta
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + data)
st(sys.argv[1] + "/small", [("a", [2, 3], [1, 2, 3, 4, 5, 6]), ("b", [2], [7, 8])], {"format": "pt"})
st(sys.argv[1] + "/empty", [])
st(sys.argv[1] + "/scalar", [("s", [], [1.5]), ("z", [0, 4], [])])
EOF
# Checkpoints: the runtime's directories, packed into one input (see checkpoint_fuzzer.cpp).
d=$(seed checkpoint_fuzzer)
pack() {  # DIR OUTFILE [latest-text]
  { cat "$1/config.json"; printf '%s' "$SEP"; cat "$1/trainer_state.json"; printf '%s' "$SEP"
    cat "$1/model.safetensors"; printf '%s' "$SEP"; cat "$1/optimizer.safetensors"
    if [ $# -ge 3 ]; then printf '%s' "$SEP"; printf '%s' "$3"; fi; } >"$2"
}
for ck in "$OUT"/gen/ck-*/step-*; do
  [ -d "$ck" ] || continue
  n="$(basename "$(dirname "$ck")")-$(basename "$ck")"
  pack "$ck" "$d/dir-$n"
  pack "$ck" "$d/root-$n" "step-00000001"$'\n'
  { cat "$ck/config.json"; printf '%s' "$SEP"; printf '%s' "$SEP"; cat "$ck/model.safetensors"; } >"$d/weights-only-$n"
done
# Regression inputs of earlier findings are seeds too.
for pair in hf_config_fuzzer:tests/runtime/io/data/fuzz/hf-config metrics_fuzzer:tests/store/data/fuzz \
            ingest_fuzzer:tests/store/data/fuzz safetensors_fuzzer:tests/runtime/io/data/fuzz/safetensors \
            checkpoint_fuzzer:tests/runtime/io/data/fuzz/checkpoint; do
  t=${pair%%:*} dir=${pair#*:}
  if [ -d "$dir" ]; then for f in "$dir"/*; do [ -f "$f" ] && cp "$f" "$(seed "$t")/regression-$(basename "$f")"; done; fi
done

declare -A DICT=([spec_fuzzer]=fuzz/spec.dict [hf_config_fuzzer]=fuzz/spec.dict [hostfile_fuzzer]=fuzz/hostfile.dict
                 [metrics_fuzzer]=fuzz/metrics.dict [ingest_fuzzer]=fuzz/metrics.dict
                 [safetensors_fuzzer]=fuzz/safetensors.dict [checkpoint_fuzzer]=fuzz/checkpoint.dict)
declare -A MAXLEN=([spec_fuzzer]=8192 [hf_config_fuzzer]=8192 [hostfile_fuzzer]=4096 [metrics_fuzzer]=16384
                   [ingest_fuzzer]=16384 [safetensors_fuzzer]=32768 [checkpoint_fuzzer]=65536)

for t in "${TARGETS[@]}"; do
  mkdir -p "$OUT/corpus/$t" "$OUT/art/$t"
  cmd=(build-fuzz/fuzz/$t -dict="${DICT[$t]}" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048
       -max_len="${MAXLEN[$t]}" -print_final_stats=1 -artifact_prefix="$OUT/art/$t/" "$OUT/corpus/$t" "$OUT/seed/$t")
  echo "== $t: nice -n 19 ${cmd[*]}"
  start=$(date +%s)
  set +e
  nice -n 19 "${cmd[@]}" >"$OUT/log/$t.log" 2>&1
  rc=$?
  set -e
  end=$(date +%s)
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$OUT/log/$t.log" | awk '{print $2}' | tail -1 || true)
  last=$(grep -E '^#[0-9]+' "$OUT/log/$t.log" | tail -1 || true)
  echo "   rc=$rc seconds=$((end - start)) execs=${execs:-?} corpus_files=$(ls "$OUT/corpus/$t" | wc -l) last: $last"
  ls "$OUT/art/$t" | sed 's/^/   artifact: /'
done

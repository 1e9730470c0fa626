#!/usr/bin/env python3
"""Writes run-store-schema3.sqlite: a run store as schema version 3 wrote it (2026-11-29), for the
migration test (tests/store/store_scale_test.cpp, StoreMigration.*). The schema SQL is taken from
core/store/store_schema.cpp (old migrations never change); the blobs use the byte-aligned codec of
those versions. One completed run "old-run": 40 steps, 2 layers x 8 experts, 2 ranks of a2a.
The values follow the formulas the test recomputes:
  count(step, layer, expert) = 10 + (7*step + 3*expert + layer) % 13
  dropped = 1 for expert 0 on steps divisible by 5, else 0
  rank_us(step, layer, phase k, rank) = 100 + step + 10*rank + layer + k   (k = 0..3)
  rank_bytes(step, rank) = 1000*(rank + 1) + step
  loss(step) = 5 - step/100
Run: python3 make_schema3.py (from this directory)."""
import os
import re
import sqlite3

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "../../../../core/store/store_schema.cpp")
OUT = os.path.join(HERE, "run-store-schema3.sqlite")
STEPS, LAYERS, EXPERTS, RANKS, BLOCK = 40, 2, 8, 2, 16
KINDS = [("dispatch", "fwd"), ("combine", "fwd"), ("dispatch", "bwd"), ("combine", "bwd")]


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def zigzag(v):
    return (v << 1) ^ (v >> 63) if v >= 0 else ((-v) << 1) - 1


def old_ints(values):
    """The byte-aligned frame-of-reference blob of schema versions 1-7."""
    lo = min(values) if values else 0
    rng = (max(values) - lo) if values else 0
    width = 0 if rng == 0 else 1 if rng <= 0xFF else 2 if rng <= 0xFFFF else 4 if rng <= 0xFFFFFFFF else 8
    body = b"".join((v - lo).to_bytes(width, "little") for v in values) if width else b""
    return bytes([width]) + varint(len(values)) + varint(zigzag(lo)) + body


def old_doubles_whole(values):
    """encode_doubles of whole numbers: tag 0xd0 (k = 0 decimals), then the int blob."""
    return bytes([0xD0]) + old_ints([int(v) for v in values])


def count(step, layer, e):
    return 10 + (7 * step + 3 * e + layer) % 13


def main():
    src = open(SRC, encoding="utf-8").read()
    sql = {name: body for name, body in re.findall(r'const char\* (kV\d) = R"sql\((.*?)\)sql";', src, re.S)}
    if os.path.exists(OUT):
        os.remove(OUT)
    db = sqlite3.connect(OUT)
    db.execute("PRAGMA page_size=1024")
    for v in ("kV1", "kV2", "kV3"):
        db.executescript(sql[v])
    spec = '{"schema":1,"name":"old-run","model":{"n_layers":2,"moe":{"num_experts":8,"top_k":2}},"parallel":{"ep":2}}'
    db.execute("INSERT INTO runs(id, name, spec, status, created_at, started_at, ended_at, world_size, backend,"
               " stream_schema, end_steps, has_run_start) VALUES(1, 'old-run', ?, 'completed',"
               " '2026-11-29T12:00:00Z', '2026-11-29T12:00:00Z', '2026-11-29T12:05:00Z', 2, 'cpu', 1, ?, 1)",
               (spec, STEPS))
    routed = dropped_total = 0
    for s in range(1, STEPS + 1):
        db.execute("INSERT INTO steps(run_id, step, loss, aux_loss, z_loss, lr, tokens, step_ms, tokens_per_s)"
                   " VALUES(1, ?, ?, 1.0, 0.25, 0.003, 64, 100.0, 640.0)", (s, 5 - s / 100))
        for layer in range(LAYERS):
            counts = [count(s, layer, e) for e in range(EXPERTS)]
            drops = [1 if e == 0 and s % 5 == 0 else 0 for e in range(EXPERTS)]
            total = sum(counts)
            mean = total / EXPERTS
            cv = (sum((c - mean) ** 2 for c in counts) / EXPERTS) ** 0.5 / mean
            routed += total
            dropped_total += sum(drops)
            db.execute("INSERT INTO expert_load(run_id, layer, step, n_experts, total, max_count, dropped_total, cv,"
                       " counts, dropped) VALUES(1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (layer, s, EXPERTS, total, max(counts), sum(drops), cv, old_ints(counts), old_ints(drops)))
            for k, (phase, pas) in enumerate(KINDS):
                us = [100 + s + 10 * r + layer + k for r in range(RANKS)]
                by = [1000 * (r + 1) + s for r in range(RANKS)]
                db.execute("INSERT INTO a2a(run_id, step, layer, phase, pass, rank_us, rank_bytes) VALUES(1, ?, ?, ?, ?, ?, ?)",
                           (s, layer, phase, pas, old_doubles_whole(us), old_ints(by)))
    # Rollups of the complete blocks (steps 16-31 = block 1; block 0 holds steps 1-15, also complete).
    for block in (0, 1):
        steps = [s for s in range(1, STEPS + 1) if s // BLOCK == block]
        for layer in range(LAYERS):
            sums = [sum(count(s, layer, e) for s in steps) for e in range(EXPERTS)]
            drops = [sum(1 for s in steps if s % 5 == 0) if e == 0 else 0 for e in range(EXPERTS)]
            db.execute("INSERT INTO expert_load_blocks(run_id, layer, block, n, counts, dropped) VALUES(1, ?, ?, ?, ?, ?)",
                       (layer, block, len(steps), old_ints(sums), old_ints(drops)))
    db.execute("INSERT INTO run_summary(run_id, n_steps, last_step, last_loss, last_tokens_per_s, total_tokens,"
               " n_layers, n_experts, routed_total, dropped_total) VALUES(1, ?, ?, ?, 640.0, ?, ?, ?, ?, ?)",
               (STEPS, STEPS, 5 - STEPS / 100, 64 * STEPS, LAYERS, EXPERTS, routed, dropped_total))
    db.execute("PRAGMA user_version=3")
    db.commit()
    db.execute("VACUUM")
    db.close()
    print(OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()

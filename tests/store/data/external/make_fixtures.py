#!/usr/bin/env python3
"""Writes the event-file and log fixtures of tests/store/external_import_test.cpp with the real
writers, and expected.json with the values each must yield.

Made with Debian 12's python3-torch 1.13 (torch.utils.tensorboard) and tensorboard 2.21.0 from PyPI
(not a build or test dependency: the files are committed):
  python3 -m pip install --target /tmp/tbmin --no-deps tensorboard protobuf six absl-py
  PYTHONPATH=/tmp/tbmin /usr/bin/python3 tests/store/data/external/make_fixtures.py
"""
import glob
import json
import math
import os
import shutil
import struct
import tempfile

import torch
from torch.utils.tensorboard import SummaryWriter
from tensorboard.compat.proto import event_pb2
from tensorboard.summary.writer.event_file_writer import EventFileWriter
from tensorboard.compat.proto import summary_pb2
from tensorboard.util import tensor_util
import tensorboard

HERE = os.path.dirname(os.path.abspath(__file__))


def f32(x):
    return struct.unpack("f", struct.pack("f", x))[0]


def megatron_like(tmp):
    """What Megatron-LM's training.py writes: add_scalar('lm loss', …) and friends, plus a histogram."""
    w = SummaryWriter(os.path.join(tmp, "megatron"))
    expected = []
    for it in range(1, 41):
        loss = 10.0 * math.exp(-it / 15) + 1.5
        lr = 3e-4 * min(1.0, it / 10)
        w.add_scalar("lm loss", loss, it)
        w.add_scalar("learning-rate", lr, it)
        w.add_scalar("grad-norm", 1.0 / it, it)
        w.add_scalar("iteration-time", 0.25 + 0.001 * it, it)
        w.add_scalar("load_balancing_loss", 1.0 + 0.01 * it, it)
        w.add_scalar("moe/load_balancing_loss_layer_0", 1.0, it)
        if it % 10 == 0:
            w.add_scalar("lm loss validation", loss + 0.1, it)
            w.add_histogram_raw("params/router", min=-1.0, max=1.0, num=32, sum=0.0, sum_squares=11.0,
                                bucket_limits=[-0.5, 0.0, 0.5, 1.0], bucket_counts=[8, 8, 8, 8], global_step=it)
        expected.append({"step": it, "loss": f32(loss), "lr": f32(lr), "grad_norm": f32(1.0 / it),
                         "step_ms": f32(0.25 + 0.001 * it) * 1000.0, "aux_loss": f32(1.0 + 0.01 * it),
                         "val_loss": f32(loss + 0.1) if it % 10 == 0 else None})
    w.add_text("notes", "a text summary is skipped", 0)
    w.close()
    return glob.glob(os.path.join(tmp, "megatron", "events.out.tfevents.*"))[0], expected


def deepspeed_like(tmp):
    """DeepSpeed's monitor tags, written as TF2-style tensor summaries by tensorboard itself."""
    d = os.path.join(tmp, "deepspeed")
    os.makedirs(d)
    w = EventFileWriter(d)
    expected = []
    for samples in range(64, 64 * 21, 64):
        loss = 6.0 - samples / 1000
        for tag, value in (("Train/Samples/train_loss", loss), ("Train/Samples/lr", 1e-4)):
            # A 0-d tensor with the scalars plugin, as TF2's tf.summary.scalar writes it; the loss as
            # float32, the learning rate as float64 (tensorboard's make_tensor_proto packs each its way).
            dtype = "float32" if tag.endswith("loss") else "float64"
            meta = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
            tensor = tensor_util.make_tensor_proto(value, dtype=dtype)
            summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=meta, tensor=tensor)])
            w.add_event(event_pb2.Event(step=samples, wall_time=1.7e9 + samples, summary=summary))
        # One tag packed as tensor_content bytes, as TensorFlow does for arrays.
        scale = summary_pb2.Summary.Value(tag="Train/Samples/loss_scale", tensor=tensor_util.make_tensor_proto(0.0))
        scale.tensor.ClearField("float_val")
        scale.tensor.tensor_content = struct.pack("<f", 1024.0)
        w.add_event(event_pb2.Event(step=samples, summary=summary_pb2.Summary(value=[scale])))
        expected.append({"step": samples, "loss": f32(loss), "lr": 1e-4, "loss_scale": 1024.0})
    w.close()
    return glob.glob(os.path.join(d, "events.out.tfevents.*"))[0], expected


def megatron_log():
    """A Megatron-LM log: the argument block and the lines of training.py's training_log and
    evaluate_and_print_results, with their format strings."""
    lines = ["using world size: 8, data-parallel size: 1, tensor-model-parallel size: 2",
             "------------------------ arguments ------------------------",
             "  global_batch_size ............................... 256",
             "  num_experts ..................................... 8",
             "  seq_length ...................................... 4096",
             "  world_size ...................................... 8",
             "-------------------- end of arguments ---------------------"]
    expected = []
    for it in range(10, 110, 10):
        loss, lr, ms, gn, lb = 9.0 - it / 50, 3e-4, 1234.5 + it, 2.5 - it / 100, 1.02
        if it == 50:  # an iteration whose steps were all skipped: no loss is printed
            lines.append(f" [2026-12-06 10:00:00] iteration {it:8d}/{100:8d} | consumed samples: {it * 256:12d} |"
                         f" elapsed time per iteration (ms): {ms:.1f} | learning rate: {lr:.6E} |"
                         f" global batch size: {256:5d} | loss scale: 1.0 | number of skipped iterations: 10 |")
            continue
        line = f" [2026-12-06 10:00:00] iteration {it:8d}/{100:8d} |"
        line += f" consumed samples: {it * 256:12d} |"
        line += f" elapsed time per iteration (ms): {ms:.1f} |"
        line += f" throughput per GPU (TFLOP/s/GPU): {400.0:.1f} |"
        line += f" learning rate: {lr:.6E} |"
        line += f" global batch size: {256:5d} |"
        line += f" lm loss: {loss:.6E} |"
        line += f" load_balancing_loss: {lb:.6E} |"
        line += f" loss scale: {1.0:.1f} |"
        line += f" grad norm: {gn:.3f} |"
        line += f" number of skipped iterations: {0:3d} |"
        line += f" number of nan iterations: {0:3d} |"
        lines.append(line)
        row = {"step": it, "loss": float(f"{loss:.6E}"), "lr": float(f"{lr:.6E}"), "step_ms": float(f"{ms:.1f}"),
               "grad_norm": float(f"{gn:.3f}"), "aux_loss": float(f"{lb:.6E}"), "tokens": 256 * 4096}
        if it % 40 == 0:
            val = loss + 0.05
            lines.append("-" * 40)
            lines.append(f" validation loss at iteration {it} | lm loss value: {val:.6E} | lm loss PPL: {math.exp(val):.6E} | ")
            lines.append("-" * 40)
            row["val_loss"] = float(f"{val:.6E}")
        expected.append(row)
    with open(os.path.join(HERE, "megatron.log"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return expected


def main():
    tmp = tempfile.mkdtemp()
    try:
        meg, meg_expected = megatron_like(tmp)
        ds, ds_expected = deepspeed_like(tmp)
        shutil.copy(meg, os.path.join(HERE, "megatron.tfevents"))
        shutil.copy(ds, os.path.join(HERE, "deepspeed.tfevents"))
    finally:
        shutil.rmtree(tmp)
    json.dump({"written_by": f"torch {torch.__version__}, tensorboard {tensorboard.__version__}",
               "megatron.tfevents": meg_expected, "deepspeed.tfevents": ds_expected, "megatron.log": megatron_log()},
              open(os.path.join(HERE, "expected.json"), "w"), indent=1)


if __name__ == "__main__":
    main()

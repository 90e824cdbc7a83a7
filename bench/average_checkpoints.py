"""The mean of several checkpoints' trained weights, as a model: weight averaging measured after the fact.

    python -m bench.average_checkpoints runs/feathers/checkpoints/step000{4500,5000,5500,6000}.ckpt \
        --output out/feathers_mean.onnx
    python -m bench.score --style ../shared/data/style/feathers.jpg out/feathers_mean.onnx \
        runs/feathers/feathers.onnx

Each checkpoint's own weights (``net.``, the net as trained at that step, not a running average it
may also hold) are averaged uniformly: what ``--average-steps`` does during training, at the
checkpoints' spacing instead of every step (BENCHMARKS.md, "Recipe decisions"; docs/notebook.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fastnst.checkpoint import read_checkpoint
from fastnst.export import export_onnx
from fastnst.transformer import TransformerNet


def average_checkpoints(paths: list[Path]) -> tuple[TransformerNet, dict]:
    """Lightning checkpoints of one run -> (net with the mean of their ``net.`` weights, the last one's meta)."""
    states, info, meta = [], None, None
    for path in paths:
        obj = read_checkpoint(path)
        states.append({k.removeprefix("net."): v.float() for k, v in obj["state_dict"].items() if k.startswith("net.")})
        info, meta = obj["fastnst"]["model"], obj["fastnst"]["meta"]
    net = TransformerNet(**info)
    net.load_state_dict({k: sum(s[k] for s in states) / len(states) for k in states[0]})
    return net.eval(), meta


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", type=Path, nargs="+", help="step checkpoints of one run")
    p.add_argument("--output", type=Path, required=True, help="the averaged model (.onnx)")
    args = p.parse_args(argv)
    net, meta = average_checkpoints(args.checkpoints)
    export_onnx(net, args.output, meta, replace=True)
    print(f"wrote {args.output}: the mean of {len(args.checkpoints)} checkpoints")


if __name__ == "__main__":
    main()

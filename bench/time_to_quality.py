"""Quality against training wall time: every periodic checkpoint of a run, through the fixed scorer.

    python -m bench.time_to_quality runs/wave --style ../shared/data/style/wave_lengstrom.jpg \
        --peer ../shared/peers/wave.onnx --plot docs/time_to_quality_wave.png --limit 10

A run trained with ``--keep-checkpoints -1`` keeps ``checkpoints/stepNNNNNNN.ckpt`` every
``--checkpoint-every`` steps; its CSV logs hold ``time/train_seconds`` (callbacks.TrainingClock:
wall time since the run started, summed over resumes). Each checkpoint is scored like any model
(bench/score.py: style, content, structure on the held-out photos at 512 px) and drawn against
its wall time, with the peer model's values as horizontal lines. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from bench.score import HOLDOUT, means, onnx_model, score_models
from fastnst.checkpoint import load_transformer
from fastnst.training import logged_rows
from fastnst.train_config import read_holdout

REPO = Path(__file__).resolve().parents[1]

METRICS = ("style", "content", "structure")


def wall_seconds(run_dir: Path) -> dict[int, float]:
    """{global step: training seconds} from every CSV log version of the run (resumes add versions).

    Lightning logs step s's metrics under "step" = s - 1 (before the counter moves on)."""
    return {int(row["step"]) + 1: float(row["time/train_seconds"])
            for row in logged_rows(run_dir) if row.get("time/train_seconds")}


def at_step(seconds: dict[int, float], step: int) -> float:
    """Seconds at ``step``, or at the nearest logged step before it."""
    before = [s for s in seconds if s <= step]
    return seconds[max(before)] if before else float("nan")


def torch_model(path: Path):
    net, _ = load_transformer(path)
    return lambda x: net(torch.from_numpy(x)).numpy()


def plot(rows: list[dict], peer: dict | None, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    minutes = [r["seconds"] / 60 for r in rows]
    for ax, key in zip(axes, METRICS):
        ax.plot(minutes, [r[key] for r in rows], "o-", label="ours")
        if peer:
            ax.axhline(peer[key], color="tab:red", ls="--", label="published")
        ax.set_title(key + {"style": " (lower is better)", "content": " (relu2_2 MSE)",
                            "structure": " (relu3_4 cos)"}[key], fontsize=10)
        ax.set_xlabel("training wall time, minutes (2-core CPU)")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="run directory")
    p.add_argument("--style", type=Path, required=True)
    p.add_argument("--peer", type=Path, default=None, help="a published model's ONNX file, drawn as lines")
    p.add_argument("--content", type=Path, default=REPO.parent / "shared" / "data" / "content")
    p.add_argument("--holdout", type=Path, default=HOLDOUT)
    p.add_argument("--limit", type=int, default=None, help="only the first N held-out photos")
    p.add_argument("--every", type=int, default=1, help="score every Nth checkpoint only")
    p.add_argument("--vgg-weights", default=None)
    p.add_argument("--plot", type=Path, default=None, help="PNG to write")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    ckpts = sorted(args.run.glob("checkpoints/step*.ckpt"))[:: args.every]
    if not ckpts:
        raise SystemExit(f"error: no checkpoints/step*.ckpt in {args.run} (train with --keep-checkpoints -1)")
    seconds = wall_seconds(args.run)
    runners = {c.name: torch_model(c) for c in ckpts}
    if args.peer:
        runners["peer"] = onnx_model(args.peer)
    photos = read_holdout(args.holdout)[: args.limit]
    scores, _ = score_models(runners, args.style, args.content, photos, args.vgg_weights)
    rows = []
    for c in ckpts:
        step = int(re.search(r"step(\d+)", c.name).group(1))
        rows.append({"step": step, "seconds": at_step(seconds, step)} | means(scores[c.name]))
    peer = means(scores["peer"]) if args.peer else None
    table = "| step | wall time (min) | style | content | structure |\n|---|---|---|---|---|\n"
    for r in rows:
        table += (f"| {r['step']} | {r['seconds'] / 60:.1f} | {r['style']:.1f} | {r['content']:.4g} | "
                  f"{r['structure']:.3f} |\n")
    if peer:
        table += f"| published | | {peer['style']:.1f} | {peer['content']:.4g} | {peer['structure']:.3f} |\n"
    print(table)
    if args.plot:
        plot(rows, peer, args.plot, f"{args.run.name}: {len(photos)} held-out photos at 512 px vs training time")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "peer": peer}, indent=1))


if __name__ == "__main__":
    main()

"""``fastnst train`` (scripts/train.py): flags and YAML -> TrainConfig -> fastnst.train.

Precedence: TrainConfig's defaults < the resumed run's config.yaml < --config FILE < flags. Each
TrainConfig field (the loss's included) is one flag and one YAML key (cli/options.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fastnst.cli.common import base_parser, run_with_train_extra
from fastnst.cli.options import add_flags, build, read_yaml, resolve


def train_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from fastnst.train_config import TrainConfig

    p = base_parser("Train a fast style-transfer network for one style image.", prog)
    p.epilog = ("Writes the run directory: config.yaml (the resolved options), checkpoints/, samples/, "
                "tensorboard/, csv/, then transformer.pt and <style>.onnx. Ctrl-C or SIGTERM saves a "
                "checkpoint first; --resume RUN continues (with a larger --max-steps to train longer).")
    p.add_argument("--config", type=Path, default=None, help="YAML file of options (flags override it)")
    p.add_argument("--resume", type=Path, default=None,
                   help="continue a run: its run directory or a checkpoint file (its config.yaml is reused)")
    add_flags(p.add_argument_group("options (each also a YAML key: --image-size is image_size)"), TrainConfig)
    return p


# Options whose defaults changed after runs were saved without them, with the value such a run
# was trained with: a run from before the style-scale curriculum (no early_style_* keys) or before
# gradient clipping, or before the early stage had crops of its own, or before weight averaging,
# or before the structure floor, resumes the way it started, not with today's defaults.
BEFORE_THE_KEY = {"early_style_steps": 0, "grad_clip": 0.0, "early_image_size": 0, "early_batch_size": 0,
                  "average_steps": 0, "structure_floor": 0.0}


# Below this validation structure (relu3_4 similarity of output and photo, losses.structure) a net
# has painted most of its subjects away: the published fast-style nets score 0.59-0.69 on the fixed
# scorer, blobs 0.58 or less, and the validation crops read about 0.01-0.02 above the scorer
# (BENCHMARKS.md, "The defaults on paintings they were never tuned on").
STRUCTURE_FLOOR = 0.6


def structure_advice(structure: float | None) -> str | None:
    """What to tell the user about a finished run's last validation structure (None: nothing)."""
    if structure is None or structure >= STRUCTURE_FLOOR:
        return None
    return (f"note: the net keeps little of the photos' structure (validation structure {structure:.2f}, "
            f"under {STRUCTURE_FLOOR}: subjects get painted away). Look at the samples; to keep more of "
            "the photo, train again with a lower --early-style-weight (e.g. 1) and a higher "
            "--structure-floor (e.g. 0.7), or a lower --style-weight.")


def saved_run_config(run_dir: Path) -> dict:
    """run_dir/config.yaml as the layer a resumed run starts from (under --config and flags)."""
    return BEFORE_THE_KEY | read_yaml(run_dir / "config.yaml")


def train_command(args: argparse.Namespace) -> int:
    from fastnst.train_config import TrainConfig
    from fastnst.training import find_resume, last_logged, read_resume_checkpoint, train

    layers = []
    if args.resume is not None:
        run_dir, ckpt = find_resume(args.resume)
        read_resume_checkpoint(ckpt)  # a damaged or foreign file stops here, before its config is read
        layers.append((str(run_dir / "config.yaml"), saved_run_config(run_dir)))
    if args.config is not None:
        layers.append((str(args.config), read_yaml(args.config)))
    flags = {k: v for k, v in vars(args).items() if k not in ("config", "resume", "debug")}
    layers.append(("command line", flags))
    config = build(TrainConfig, resolve(TrainConfig, *layers))
    run_dir = train(config, resume=args.resume)
    if os.environ.get("LOCAL_RANK", "0") == "0":  # DDP: the processes Lightning launched stay quiet
        print(f"wrote {run_dir / 'transformer.pt'} and {run_dir / (Path(config.style).stem + '.onnx')}",
              file=sys.stderr)
        advice = structure_advice(last_logged(run_dir, "val/structure"))
        if advice:
            print(advice, file=sys.stderr)
    return 0


def train_main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    return run_with_train_extra(train_command, train_parser, argv, prog)

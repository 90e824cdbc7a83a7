"""``fastnst train`` (scripts/train.py): flags and YAML -> TrainConfig -> fastnst.train.

Precedence: TrainConfig's defaults < the resumed run's config.yaml < --config FILE < flags. Each
TrainConfig field (the loss's included) is one flag and one YAML key (cli/options.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from fastnst.cli.common import base_parser, run_with_train_extra
from fastnst.cli.options import add_flags, build, read_yaml, resolve


def train_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from fastnst.train_config import GROUPS, TrainConfig

    p = base_parser("Train a fast style-transfer network for one style image. Each option is also a YAML "
                    "key for --config (--image-size is image_size).", prog)
    p.epilog = ("Writes the run directory: config.yaml (the resolved options), checkpoints/, samples/, "
                "tensorboard/, csv/, then transformer.pt and <style>.onnx. Ctrl-C or SIGTERM saves a "
                "checkpoint first; --resume RUN continues (with a larger --max-steps to train longer).")
    p.add_argument("--config", type=Path, default=None, help="YAML file of options (flags override it)")
    p.add_argument("--resume", type=Path, default=None,
                   help="continue a run: its run directory or a checkpoint file (its config.yaml is reused)")
    for group, title in GROUPS.items():
        add_flags(p.add_argument_group(title), TrainConfig, group)
    return p


# Options a saved config.yaml (or an older --config file) may hold that fastnst no longer has:
# each with the value today's code trains as. A run saved with another value cannot be continued
# as it started, so it is refused rather than silently trained as something else.
REMOVED = {"lr_warmup_steps": 0, "style_ramp_steps": 0, "reconstruct_steps": 0, "photo_size": 0,
           "style_octaves": 1, "content_top": 1.0, "downsamples": 2, "n_residual": 5}
# Options renamed since, old name -> new.
RENAMED = {"early_style_steps": "early_steps"}
# Options whose defaults changed after runs were saved without them, with the value such a run was
# trained with (today's names): it resumes the way it started, not with today's defaults.
VALUE_BEFORE_THE_KEY = {"early_steps": 0, "grad_clip": 0.0, "early_image_size": 0, "early_batch_size": 0,
                        "average_steps": 0, "structure_floor": 0.0, "lr_decay_steps": 0}


def upgrade(source: str, values: dict) -> dict:
    """A config mapping written by an older fastnst -> today's keys (see REMOVED, RENAMED), or a
    one-line FastNSTError where it asks for something today's code does not train."""
    from fastnst.errors import FastNSTError

    out = {RENAMED.get(k, k): v for k, v in values.items() if k not in REMOVED}
    for key, neutral in REMOVED.items():
        if key in values and values[key] != neutral:
            raise FastNSTError(f"{source}: {key} {values[key]!r} is an option fastnst no longer has (only "
                               f"{neutral!r} trains today); remove it to train without it")
    decay = out.pop("lr_decay", None)
    if decay not in (None, "cosine", "constant"):
        raise FastNSTError(f"{source}: lr_decay must be cosine or constant, got {decay!r}")
    if decay == "constant":
        out["lr_decay_steps"] = 0
    # Older runs: 0 meant "image_size" / "the batch size" in the first stage.
    for key, fallback in (("early_image_size", "image_size"), ("early_batch_size", "batch_size")):
        if out.get(key) == 0 and out.get("early_steps"):
            out[key] = out.get(fallback)
    if "style_size" in out and out["style_size"] is None:
        out["style_size"] = out.get("image_size", 256)
    return out


# Below this validation structure (relu3_4 similarity of output and photo, losses.structure) a net
# has painted most of its subjects away (bench/score.py's scale; BENCHMARKS.md).
PAINTED_AWAY = 0.6
# A net trained for fewer steps is still learning: its structure says nothing yet.
ADVICE_MIN_STEPS = 1000


def structure_advice(structure: float | None) -> str | None:
    """What to tell the user about a finished run's last validation structure (None: nothing)."""
    if structure is None or structure >= PAINTED_AWAY:
        return None
    return (f"note: the net keeps little of the photos' structure (validation structure {structure:.2f}, "
            f"under {PAINTED_AWAY}: subjects get painted away). Look at the samples; to keep more of "
            "the photo, train again with a lower --early-style-weight (e.g. 1) and a higher "
            "--structure-floor (e.g. 0.7), or a lower --style-weight.")


def saved_run_config(run_dir: Path) -> dict:
    """run_dir/config.yaml as the layer a resumed run starts from (under --config and flags)."""
    path = run_dir / "config.yaml"
    # Its keys in today's names first, so a saved key (or the older key it replaced) wins over the fill-in.
    saved = upgrade(str(path), VALUE_BEFORE_THE_KEY | upgrade(str(path), read_yaml(path)))
    saved.pop("run_dir", None)  # a run folder is where it is: moved or copied, it resumes there
    return saved


def train_command(args: argparse.Namespace) -> int:
    from fastnst.train_config import TrainConfig
    from fastnst.training import find_resume, last_logged, read_resume_checkpoint, run_dir_of, train

    layers = []
    if args.resume is not None:
        run_dir, ckpt = find_resume(args.resume)
        read_resume_checkpoint(ckpt)  # a damaged or foreign file stops here, before its config is read
        layers.append((str(run_dir / "config.yaml"), saved_run_config(run_dir)))
    if args.config is not None:
        layers.append((str(args.config), upgrade(str(args.config), read_yaml(args.config))))
    flags = {k: v for k, v in vars(args).items() if k not in ("config", "resume", "debug")}
    layers.append(("command line", flags))
    config = build(TrainConfig, resolve(TrainConfig, *layers))
    quiet_lightning()
    rank0 = os.environ.get("LOCAL_RANK", "0") == "0"  # DDP: the processes Lightning launched stay quiet
    if args.resume is None and rank0:
        config = dataclasses.replace(config, run_dir=str(run_dir_of(config)))  # named now, said first
    if rank0:
        where = find_resume(args.resume)[0] if config.run_dir is None else config.run_dir
        print(f"training into {where} (Ctrl-C saves a checkpoint; --resume {where} continues)", file=sys.stderr)
    run_dir = train(config, resume=args.resume)
    if rank0:
        print(f"wrote {run_dir / 'transformer.pt'} and {run_dir / (Path(config.style).stem + '.onnx')}",
              file=sys.stderr)
        advice = structure_advice(last_logged(run_dir, "val/structure"))
        if advice and config.max_steps >= ADVICE_MIN_STEPS:
            print(advice, file=sys.stderr)
    return 0


# Lightning's info lines that say nothing about this run: hardware a CPU run does not use, adverts.
LIGHTNING_NOISE = ("GPU available", "TPU available", "HPU available", "\N{ELECTRIC LIGHT BULB} Tip")


def _not_noise(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(LIGHTNING_NOISE)


def quiet_lightning() -> None:
    """Drop LIGHTNING_NOISE from Lightning's console log (its warnings and other lines stay)."""
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning.pytorch.utilities.rank_zero"):
        log = logging.getLogger(name)
        if _not_noise not in log.filters:
            log.addFilter(_not_noise)


def train_main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    return run_with_train_extra(train_command, train_parser, argv, prog)

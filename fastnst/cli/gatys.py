"""``fastnst gatys`` (scripts/gatys.py): optimize the pixels of one image (Gatys et al.; the slow reference)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from fastnst.cli.common import (base_parser, nonnegative_int, output_path, positive_float, positive_int,
                                run_with_train_extra)
from fastnst.cli.options import add_flags, build, resolve
from fastnst.errors import FastNSTError


def gatys_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from fastnst.perceptual import LossConfig

    p = base_parser("Gatys et al. neural style transfer: optimize the pixels of one image (slow reference path).",
                    prog)
    p.add_argument("--content", required=True, type=Path, help="content photo")
    p.add_argument("--style", required=True, type=Path, help="style image (painting)")
    p.add_argument("-o", "--output", type=output_path, default=None,
                   help="output image (unset: out/<content>_<style>.jpg)")
    p.add_argument("--size", type=positive_int, default=512, help="longer side of the output, px")
    p.add_argument("--style-size", type=positive_int, default=None,
                   help="longer side the style image is resized to (unset: --size)")
    p.add_argument("--iterations", type=positive_int, default=300, help="optimizer iterations")
    p.add_argument("--optimizer", choices=["lbfgs", "adam", "sgd"], default="lbfgs",
                   help="lbfgs (Gatys); adam; sgd with the learning rate decayed by 0.96 every 100 steps")
    p.add_argument("--lr", type=positive_float, default=None,
                   help="step size (unset: 1 for L-BFGS, 0.02 for Adam; SGD's is per pixel, 3/(128·128), times H·W)")
    p.add_argument("--init", choices=["content", "noise", "smooth-noise"], default="content",
                   help="the starting image: the photo, white noise, or noise smoothed by a median filter")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise starts")
    p.add_argument("--save-every", type=nonnegative_int, default=0, metavar="N",
                   help="also save the image every N iterations (0: only the result)")
    p.add_argument("--vgg-weights", default=None,
                   help="torchvision-layout VGG weights (unset: $FASTNST_VGG_WEIGHTS, else download)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_flags(p.add_argument_group("loss"), LossConfig)
    return p


def gatys_command(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fastnst import gatys
    from fastnst.image import check_output_path, from_tensor, load_image, save_image, to_tensor
    from fastnst.perceptual import LossConfig, PerceptualLoss
    from fastnst.runtime import check_new_output
    from fastnst.stylize import pick_device
    from fastnst.vgg import load_vgg

    # Validate everything cheap before the slow parts start.
    existing = "replace" if args.overwrite else "refuse"
    output = args.output or Path("out") / f"{args.content.stem}_{args.style.stem}.jpg"
    check_output_path(output)
    check_new_output(output, [args.content, args.style], existing)
    snapshots = {step: output.with_name(f"{output.stem}_{step:05d}{output.suffix}")
                 for step in range(args.save_every or args.iterations, args.iterations, args.save_every or 1)}
    for path in snapshots.values():
        check_new_output(path, [args.content, args.style], existing)
    flags = {k: v for k, v in vars(args).items() if k in LossConfig.__dataclass_fields__}
    config = build(LossConfig, resolve(LossConfig, ("command line", flags)))
    device = pick_device(args.device)
    content = to_tensor(load_image(args.content, args.size, upscale=True)).to(device)
    style = to_tensor(load_image(args.style, args.style_size or args.size, upscale=True)).to(device)
    vgg = load_vgg(config.layers, arch=config.vgg_arch, weights=args.vgg_weights).to(device)
    loss = PerceptualLoss(vgg, style, config)

    def save(image, path: Path) -> None:
        try:
            save_image(from_tensor(image), path, replace=args.overwrite)
        except FileExistsError:
            raise FastNSTError(f"{path}: appeared while gatys ran (another process?); kept it, and did not "
                               f"write ours (pass --overwrite to replace it)") from None

    bar = tqdm(total=args.iterations, desc="gatys", unit="it", dynamic_ncols=True)
    latest = {}

    def on_step(step: int, terms: dict[str, float], image) -> None:
        latest.update(step=step, image=image)
        bar.update(1)
        bar.set_postfix({k: f"{v:.4g}" for k, v in terms.items()})
        if step in snapshots:
            save(image, snapshots[step])

    try:
        image, history = gatys.stylize(content, loss, iterations=args.iterations, optimizer=args.optimizer,
                                       lr=args.lr, init=args.init, seed=args.seed, callback=on_step)
    except KeyboardInterrupt:
        # Minutes of optimization are the user's work: keep the latest image rather than nothing.
        bar.close()
        if latest:
            save(latest["image"], output)
            raise KeyboardInterrupt(f"interrupted: wrote the image after {latest['step']} iterations to {output}") \
                from None
        raise
    except gatys.NonFiniteLoss as e:
        # Keep the last finite image as well, and say so: the error still makes the exit status 2.
        bar.close()
        if latest:
            save(latest["image"], output)
            raise FastNSTError(f"{e}; wrote the image of iteration {latest['step']} to {output}") from None
        raise
    finally:
        bar.close()
    save(image, output)
    print(f"wrote {output}  (final loss: " + ", ".join(f"{k} {v:.4g}" for k, v in history[-1].items()) + ")")
    return 0


def gatys_main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    return run_with_train_extra(gatys_command, gatys_parser, argv, prog)

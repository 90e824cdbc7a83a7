"""Quality benchmark: fast models against the Gatys reference on held-out photos, same loss.

    python bench/quality.py exported/*.onnx --content ../shared/data/content \
        --styles ../shared/data/style --vgg-weights ../shared/weights/vgg19-imagenet-conv1_1-conv3_4.pth

For each model: its loss config comes from the ONNX metadata (``fastnst.loss``), its style image
is found by name in --styles and checked against ``fastnst.style_sha256``, and the photos are the
``holdout`` list of ``configs/<style>.yaml`` (never trained on). Each photo is scaled to --size
(512) on its longer side and scored (content, style, TV, total) as: the photo itself, the fast
model's output, and Gatys L-BFGS from the photo after 100 and 300 iterations (one run, recorded at
both points). Seconds per image are wall time on this machine. The table goes into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastnst import gatys  # noqa: E402
from fastnst.cli import sha256_file  # noqa: E402
from fastnst.image import load_image, to_tensor  # noqa: E402
from fastnst.perceptual import LossConfig, PerceptualLoss  # noqa: E402
from fastnst.runtime import OnnxStylizer  # noqa: E402
from fastnst.vgg import load_vgg  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MARK_BEGIN, MARK_END = "<!-- quality begin -->", "<!-- quality end -->"
CHECKPOINTS = (100, 300)  # Gatys iterations reported


def score(loss: PerceptualLoss, image: torch.Tensor, targets) -> dict[str, float]:
    with torch.no_grad():
        return {k: float(v) for k, v in loss(image, targets).items()}


def evaluate(model_path: Path, args) -> list[dict]:
    model = OnnxStylizer(model_path)
    meta = model.meta
    name = meta.get("style_name") or model_path.stem
    style_path = args.styles / f"{name}.jpg"
    candidates = [p for p in args.styles.iterdir() if p.stem == name] if not style_path.exists() else [style_path]
    if not candidates:
        raise SystemExit(f"{model_path}: style image {name}.* not found in {args.styles}")
    style_path = candidates[0]
    if meta.get("style_sha256") and sha256_file(style_path) != meta["style_sha256"]:
        raise SystemExit(f"{model_path}: {style_path} is not the style image the model was trained on")
    loss_cfg = meta.get("loss") or {}
    cfg = LossConfig(**(json.loads(loss_cfg) if isinstance(loss_cfg, str) else loss_cfg))
    config_file = REPO / "configs" / f"{name}.yaml"
    photos = yaml.safe_load(config_file.read_text())["holdout"][: args.limit]
    vgg = load_vgg(cfg.layers, arch=cfg.vgg_arch, weights=args.vgg_weights)
    loss = PerceptualLoss(vgg, to_tensor(load_image(style_path, args.size, upscale=True)), cfg)

    rows = []
    for photo_name in photos:
        content = to_tensor(load_image(args.content / photo_name, args.size, upscale=True))
        targets = loss.content_targets(content)
        row = {"photo": score(loss, content, targets)}
        t = time.perf_counter()
        fast = torch.from_numpy(model(content.numpy()))
        row["fast"] = score(loss, fast, targets) | {"seconds": time.perf_counter() - t}
        t = time.perf_counter()

        def record(step, terms, image, t0=t):
            if step in CHECKPOINTS:
                row[f"gatys{step}"] = score(loss, image.clamp(0, 1), targets) | {"seconds": time.perf_counter() - t0}

        gatys.stylize(content, loss, iterations=max(CHECKPOINTS), callback=record)
        rows.append(row)
        print(name, photo_name, {k: round(v["total"], 4) for k, v in row.items()}, flush=True)
    return [{"style": name, "rows": rows}]


def table(results: list[dict]) -> str:
    out = ("| style | image | content | style | TV | total | s/image |\n"
           "|---|---|---|---|---|---|---|\n")
    for res in results:
        for kind in ("photo", "fast", *[f"gatys{c}" for c in CHECKPOINTS]):
            vals = [r[kind] for r in res["rows"]]
            mean = {k: statistics.mean(v[k] for v in vals) for k in vals[0]}
            secs = f"{mean['seconds']:.2f}" if "seconds" in mean else ""
            out += (f"| {res['style']} | {kind} | {mean['content']:.3f} | {mean['style']:.3f} | {mean['tv']:.4f} | "
                    f"{mean['total']:.3f} | {secs} |\n")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--content", type=Path, default=REPO.parent / "shared" / "data" / "content")
    p.add_argument("--styles", type=Path, default=REPO.parent / "shared" / "data" / "style")
    p.add_argument("--vgg-weights", default=None)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--limit", type=int, default=None, help="only the first N held-out photos per style")
    p.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    args = p.parse_args()
    results = [r for m in args.models for r in evaluate(m, args)]
    n = min(len(r["rows"]) for r in results)
    body = (f"### Quality on held-out photos ({args.size} px, means over {n} photo(s) per style)\n\n"
            f"Reproduce: `python bench/quality.py {' '.join(sys.argv[1:])}`\n\n" + table(results))
    text = args.output.read_text() if args.output.exists() else "# Benchmarks\n"
    if MARK_BEGIN in text:
        text = text[: text.index(MARK_BEGIN)] + MARK_BEGIN + "\n" + body + text[text.index(MARK_END):]
    else:
        text = text.rstrip() + f"\n\n{MARK_BEGIN}\n{body}{MARK_END}\n"
    args.output.write_text(text)
    print(table(results))


if __name__ == "__main__":
    main()

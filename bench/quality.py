"""Quality benchmark: fast models against the Gatys reference on held-out photos, same loss.

    python -m bench.quality exported/*.onnx --vgg-weights ../shared/weights/vgg19-imagenet-conv1_1-conv3_4.pth

For each model ``exported/<name>.onnx``: its loss config comes from the ONNX metadata
(``fastnst.loss``), its style image is found by name (``fastnst.style_name``) in --styles and
checked against ``fastnst.style_sha256``, and the photos are the holdout of ``configs/<name>.yaml``
(its ``holdout_file``, configs/holdout.txt, or an inline ``holdout`` list; never trained on). Each photo is scaled to --size (512) on its longer side
(the style image to the training run's style size, ``fastnst.style_size``) and scored (content,
style, TV, total) as: the photo itself, the fast model's output (onnxruntime fp32, and PyTorch bf16
where ``<name>.pt`` sits beside the .onnx), and Gatys L-BFGS after each of --gatys-iterations (one
run per --gatys-init, recorded at each point): from white noise, the start of Gatys et al. and of
Johnson's own implementation, and from the photo, gatys.py's default. Gatys at 512 px costs minutes
per photo on a CPU, so --gatys-limit runs it on the first N photos only; the table then shows both
the fast model on every photo and, side by side, fast vs Gatys on the same N photos. Seconds per
image are wall time on this machine. The table goes into BENCHMARKS.md; --json keeps every
per-photo number.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import yaml

from bench.sections import write_section
from fastnst import gatys
from fastnst.image import load_image, to_tensor
from fastnst.perceptual import LossConfig, PerceptualLoss, loss_config
from fastnst.runtime import open_model
from fastnst.train_config import read_holdout
from fastnst.training import sha256_file
from fastnst.vgg import load_vgg

REPO = Path(__file__).resolve().parents[1]
MARK_BEGIN, MARK_END = "<!-- quality begin -->", "<!-- quality end -->"
GATYS_CACHE: dict[str, dict] = {}


# Where each Gatys run starts: white noise, as in Gatys et al. and Johnson's own implementation
# (jcjohnson/neural-style; his paper's "the fast net matches 50-100 L-BFGS iterations" is the bar),
# or the photo itself, gatys.py's default (content loss 0 at iteration 0).
INIT_LABEL = {"noise": "from noise", "content": "from the photo", "smooth-noise": "from smooth noise"}


def gatys_kind(init: str, step: int) -> str:
    return f"gatys {init} {step}"


def score(loss: PerceptualLoss, image: torch.Tensor, targets) -> dict[str, float]:
    with torch.no_grad():
        return {k: float(v) for k, v in loss(image, targets).items()}


def find_style(styles: Path, name: str, sha256: str | None, model_path: Path) -> Path:
    candidates = sorted(p for p in styles.iterdir() if p.stem == name)
    if not candidates:
        raise SystemExit(f"{model_path}: style image {name}.* not found in {styles}")
    if sha256 and sha256_file(candidates[0]) != sha256:
        raise SystemExit(f"{model_path}: {candidates[0]} is not the style image the model was trained on")
    return candidates[0]


def evaluate(model_path: Path, args) -> dict:
    model = open_model(model_path)
    meta = model.meta
    name = model_path.stem
    style_path = find_style(args.styles, meta.get("style_name") or name, meta.get("style_sha256"), model_path)
    cfg = loss_config(meta.get("loss") or {})
    config = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    photos = list(config.get("holdout") or []) + (read_holdout(REPO / config["holdout_file"])
                                                  if config.get("holdout_file") else [])
    photos = photos[: args.limit]
    # The style target as in training: the style image at the run's style size (a Gram's texture
    # scale follows the style image's size), whatever size the photos are scored at.
    style_size = meta.get("style_size") or config.get("style_size") or config.get("image_size") or args.size
    vgg = load_vgg(cfg.layers, arch=cfg.vgg_arch, weights=args.vgg_weights)
    # eval: the palette term's directions fixed, so every image is scored on the same function.
    loss = PerceptualLoss(vgg, to_tensor(load_image(style_path, style_size, upscale=True)), cfg).eval()
    checkpoints = sorted(args.gatys_iterations)
    # What a Gatys run depends on besides the photo (see the cache below).
    gatys_setup = [style_path.name, sha256_file(style_path), style_size, dataclasses.asdict(cfg), args.size, checkpoints]
    # The model as shipped (onnxruntime fp32) and, where its PyTorch twin sits beside it, the bf16
    # variant that stylize.py runs by default on CPUs with native bf16.
    stylizers = {"fast": model}
    if model_path.with_suffix(".pt").is_file():
        stylizers["fast bf16"] = open_model(model_path.with_suffix(".pt"), device="cpu", precision="bf16")

    rows = []
    for i, photo_name in enumerate(photos):
        content = to_tensor(load_image(args.content / photo_name, args.size, upscale=True))
        targets = loss.content_targets(content)
        row = {"name": photo_name, "photo": score(loss, content, targets)}
        for kind, stylizer in stylizers.items():
            t = time.perf_counter()
            fast = torch.from_numpy(stylizer(content.numpy()))
            row[kind] = score(loss, fast, targets) | {"seconds": time.perf_counter() - t}
        # Gatys depends only on the style target, the loss and the photo: two models of one style
        # (e.g. width 16 and 32) share its runs, and --gatys-cache keeps them across runs.
        for init in args.gatys_init:
            key = json.dumps([*gatys_setup, init, photo_name])
            if i < args.gatys_limit and checkpoints and key not in GATYS_CACHE:
                t = time.perf_counter()
                found: dict = {}

                def record(step, terms, image, t0=t, found=found, init=init):
                    if step in checkpoints:
                        found[gatys_kind(init, step)] = (score(loss, image.clamp(0, 1), targets)
                                                         | {"seconds": time.perf_counter() - t0})

                gatys.stylize(content, loss, iterations=checkpoints[-1], init=init, callback=record)
                GATYS_CACHE[key] = found
                if args.gatys_cache:  # after every run: an interrupted benchmark keeps what it computed
                    args.gatys_cache.write_text(json.dumps(GATYS_CACHE, indent=0))
            row |= GATYS_CACHE.get(key, {})
        rows.append(row)
        print(model_path, photo_name, {k: round(v["total"], 4) for k, v in row.items() if isinstance(v, dict)}, flush=True)
    width = (meta.get("model") or {}).get("width")
    return {"style": f"{name} (width {width})", "style_name": meta.get("style_name") or name, "model": meta.get("model"),
            "style_size": style_size, "rows": rows}


def mean_terms(rows: list[dict], kind: str) -> dict[str, float]:
    vals = [r[kind] for r in rows if kind in r]
    return {k: statistics.mean(v[k] for v in vals) for k in vals[0]}


def table(results: list[dict], checkpoints: list[int], inits: list[str]) -> str:
    # palette: the loss's palette term where its net was trained with one (else 0).
    out = ("| style | photos | image | content | style | TV | palette | total | s/image |\n"
           "|---|---|---|---|---|---|---|---|---|\n")

    def line(style, n, kind, m):
        secs = f"{m['seconds']:.2f}" if "seconds" in m else ""
        return (f"| {style} | {n} | {kind} | {m['content']:.3f} | {m['style']:.3f} | {m['tv']:.4f} | "
                f"{m.get('palette', 0):.3f} | {m['total']:.3f} | {secs} |\n")

    for res in results:
        rows = res["rows"]
        for kind in ("photo", "fast", "fast bf16"):
            if kind in rows[0]:
                out += line(res["style"], len(rows), kind, mean_terms(rows, kind))
        kinds = [(f"Gatys {c} it {INIT_LABEL[init]}", gatys_kind(init, c)) for init in inits for c in checkpoints]
        with_gatys = [r for r in rows if any(k in r for _, k in kinds)]
        if with_gatys and len(with_gatys) < len(rows):  # the same photos for fast and Gatys
            out += line(res["style"], len(with_gatys), "fast", mean_terms(with_gatys, "fast"))
        for label, kind in kinds:
            reached = [r for r in with_gatys if kind in r]  # L-BFGS can stop early (line search)
            if reached:
                out += line(res["style"], len(reached), label, mean_terms(reached, kind))
    return out


def verdicts(results: list[dict], checkpoints: list[int], inits: list[str], bars: argparse.Namespace) -> str:
    """Each style against the bars (--style-bar, --gatys-bar): fast style loss <= the photo's / style_bar,
    fast total <= that of Gatys after gatys_bar iterations (same photos)."""
    out = ""
    for res in results:
        rows = res["rows"]
        fast, photo = mean_terms(rows, "fast"), mean_terms(rows, "photo")
        parts = [f"style loss {fast['style']:.3f} vs photo's {photo['style']:.3f}: "
                 f"{'meets' if fast['style'] <= photo['style'] / bars.style_bar else 'misses'} "
                 f"the 1/{bars.style_bar:g} bar"]
        n = bars.gatys_bar
        for init in inits if n in checkpoints else []:
            g = [r for r in rows if gatys_kind(init, n) in r]
            if g:
                f100, g100 = mean_terms(g, "fast")["total"], mean_terms(g, gatys_kind(init, n))
                # Gatys's own style ratio says whether the style bar is reachable at this style weight.
                ratio = mean_terms(g, "photo")["style"] / g100["style"]
                parts.append(f"total {f100:.3f} vs Gatys-{n} {INIT_LABEL[init]} {g100['total']:.3f} on {len(g)} "
                             f"photo(s): {'meets' if f100 <= g100['total'] else 'misses'} the bar "
                             f"(that Gatys's style loss: 1/{ratio:.1f} of the photo's)")
        out += f"- **{res['style']}** (model {res['model']}): " + "; ".join(parts) + "\n"
    return out


def versus_full_width(results: list[dict], tolerance: float) -> str:
    """A faster variant's bar (--width-tolerance): style and content loss within ``tolerance`` of the
    width-32 fp32 model's of the same style."""
    out = ""
    for full in (r for r in results if (r["model"] or {}).get("width") == 32):
        ref = mean_terms(full["rows"], "fast")
        for res in (r for r in results if r is not full and r["style_name"] == full["style_name"]):
            for kind in ("fast", "fast bf16"):
                if kind not in res["rows"][0]:
                    continue
                m = mean_terms(res["rows"], kind)
                c, st = m["content"] / ref["content"], m["style"] / ref["style"]
                ok = c <= 1 + tolerance and st <= 1 + tolerance
                out += (f"- **{res['style']} {kind}** vs {full['style']} fp32: content x{c:.3f}, style x{st:.3f}: "
                        f"{'within' if ok else 'outside'} {tolerance:.0%}\n")
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--content", type=Path, default=REPO.parent / "shared" / "data" / "content")
    p.add_argument("--styles", type=Path, default=REPO.parent / "shared" / "data" / "style")
    p.add_argument("--vgg-weights", default=None)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--limit", type=int, default=None, help="only the first N held-out photos per style")
    p.add_argument("--gatys-limit", type=int, default=1 << 30, help="run Gatys on the first N photos only")
    p.add_argument("--gatys-iterations", type=int, nargs="*", default=[100, 300])
    p.add_argument("--gatys-init", nargs="*", choices=list(INIT_LABEL), default=["noise", "content"],
                   help="where Gatys starts; one run per init (default: both)")
    # No default file: the section is rewritten whole, so a run over a subset of models would drop the
    # others' rows from BENCHMARKS.md. Pass --output BENCHMARKS.md with every shipped model to update it.
    p.add_argument("--output", type=Path, default=None,
                   help="rewrite the quality section of this Markdown file (e.g. BENCHMARKS.md); "
                        "default: print only")
    p.add_argument("--json", type=Path, default=None, help="also write every per-photo number here")
    p.add_argument("--gatys-cache", type=Path, default=None,
                   help="JSON file of Gatys results to reuse and extend (keyed by style file, loss, photo, size)")
    p.add_argument("--style-bar", type=float, default=10,
                   help="a fast model meets the style bar when its style loss is at most the photo's / this")
    p.add_argument("--gatys-bar", type=int, default=100,
                   help="a fast model meets the Gatys bar when its total loss is at most Gatys's after this "
                        "many iterations (one of --gatys-iterations)")
    p.add_argument("--width-tolerance", type=float, default=0.10,
                   help="a slimmer or bf16 variant is within bar when its style and content loss are at most "
                        "(1 + this) x the width-32 fp32 model's")
    args = p.parse_args()
    if args.gatys_cache and args.gatys_cache.is_file():
        GATYS_CACHE.update(json.loads(args.gatys_cache.read_text()))
    torch.manual_seed(0)
    results = [evaluate(m, args) for m in args.models]
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    checkpoints = sorted(args.gatys_iterations)
    tbl = table(results, checkpoints, args.gatys_init)
    verdict = verdicts(results, checkpoints, args.gatys_init, args) + versus_full_width(results, args.width_tolerance)
    body = (f"### Quality on held-out photos ({args.size} px longer side)\n\n"
            f"Reproduce: `python -m bench.quality {' '.join(sys.argv[1:])}`\n\n"
            f"Means per style; *photos* is how many held-out photos each row averages. *s/image* is wall "
            f"time inside this scoring process, between VGG passes (torch's idle threads compete with "
            f"onnxruntime's): the speed section has the clean timings.\n\n"
            + tbl + "\n" + verdict)
    if args.output:
        write_section(args.output, MARK_BEGIN, MARK_END, body)
    print(tbl)
    print(verdict)


if __name__ == "__main__":
    main()

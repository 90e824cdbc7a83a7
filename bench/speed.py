"""Speed benchmark: the pytorch/examples reference against fastnst, on this machine, in one run.

    python -m bench.speed                 # CPU; writes the table into BENCHMARKS.md
    python -m bench.speed --device cuda   # the same on a GPU (its own section)
    python -m bench.speed --quick         # fewer repeats and sizes, for a smoke run

Every number is the median of --repeats timed runs after --warmup untimed ones. Ratios are what
count: these machines are noisy. Weights are random (speed does not depend on their values); the
quality side of each variant is bench/quality.py's job.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.reference import ReferenceTrainer, ReferenceTransformerNet
from bench.sections import write_section
from fastnst.perceptual import LossConfig, PerceptualLoss, loss_config
from fastnst.stylize import TorchStylizer, native_bf16
from fastnst.train_config import TrainConfig
from fastnst.training import training_precision
from fastnst.transformer import TransformerNet
from fastnst.vgg import VGGFeatures

MARK_BEGIN, MARK_END = "<!-- speed:{} begin -->", "<!-- speed:{} end -->"
REPO = Path(__file__).resolve().parents[1]
SHIPPED_WIDTH = TrainConfig.width  # the models in exported/ use the default width (tests/test_shipped.py)
ORT_SHIPPED = f"ours ONNX Runtime fp32 (width {SHIPPED_WIDTH}, shipped .onnx)"
BF16 = f"ours PyTorch bf16 channels-last (width {SHIPPED_WIDTH}, shipped .pt)"


def timeit(fn, warmup: int, repeats: int, sync=lambda: None) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def peak_gflops(device: torch.device, dtype: torch.dtype, sync) -> float:
    """Measured matmul throughput: the practical ceiling we compare against (not a datasheet number)."""
    n = 4096 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timeit(lambda: a @ b, 2, 5, sync) / 1e9


def ort_session(net: torch.nn.Module, tmp: Path, name: str):
    """Export ``net`` (verified) and open it with the runtime's tuned onnxruntime session."""
    from fastnst.export import export_onnx
    from fastnst.runtime import open_model

    path = tmp / f"{name}.onnx"
    export_onnx(net, path, {"style_name": name, "style_sha256": "", "image_size": 256, "loss": {},
                            "fastnst_version": "bench"})
    return open_model(path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    p.add_argument("--model", type=Path, default=REPO / "exported" / "mosaic.onnx",
                   help="shipped model whose loss Gatys must reach (with its style image from --styles)")
    p.add_argument("--styles", type=Path, default=REPO.parent / "shared" / "data" / "style")
    p.add_argument("--vgg-weights", default=None, help="else $FASTNST_VGG_WEIGHTS, else download")
    p.add_argument("--gatys-iterations", type=int, default=40, help="Gatys iterations to run and time")
    args = p.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sizes = [256, 512] if args.quick else [256, 512, 1024]
    W, R = (1, 2) if args.quick else (args.warmup, args.repeats)
    torch.manual_seed(0)
    rows: list[tuple[str, str, str]] = []

    def row(what: str, value: str, note: str = "") -> None:
        rows.append((what, value, note))
        print(f"{what:70s} {value:>14s}  {note}", flush=True)

    peak32 = peak_gflops(dev, torch.float32, sync)
    peak16 = peak_gflops(dev, torch.bfloat16, sync)
    row("machine peak, fp32 matmul", f"{peak32:.0f} GFLOP/s", "measured 2048² matmul")
    row("machine peak, bf16 matmul", f"{peak16:.0f} GFLOP/s", "measured 2048² matmul")

    # ---- inference ------------------------------------------------------------------------
    # Variants: the reference (pytorch/examples, eager fp32, width 32); ours at full width (eager
    # and ONNX Runtime); the shipped slim net (width 16) in ONNX Runtime, and in eager PyTorch bf16
    # channels-last (AVX-512 bf16). Weights are random: speed does not depend on their values.
    ref = ReferenceTransformerNet().to(dev).eval()
    full = TransformerNet(width=32).eval().to(dev)
    slim = TransformerNet(width=SHIPPED_WIDTH).eval().to(dev)
    # Exactly what stylize.py runs: TorchStylizer (autocast bf16, channels-last), numpy in and out.
    slim_bf16 = TorchStylizer(TransformerNet(width=SHIPPED_WIDTH), device=dev, precision="bf16")
    on_cpu = dev.type == "cpu"
    with tempfile.TemporaryDirectory() as tmp:
        # {label: (first-layer width, run)}: the width says which net's FLOPs a variant runs.
        variants = {
            "ours eager fp32 (width 32)": (32, lambda x: full(x)),
            BF16: (SHIPPED_WIDTH, lambda x: slim_bf16(x.cpu().numpy())),
        }
        if on_cpu:
            w32, w16 = ort_session(full, Path(tmp), "w32"), ort_session(slim, Path(tmp), "w16")
            variants["ours ONNX Runtime fp32 (width 32)"] = (32, lambda x: w32(x.numpy()))
            variants[ORT_SHIPPED] = (SHIPPED_WIDTH, lambda x: w16(x.numpy()))
        for size in sizes:
            x = torch.rand(1, 3, size, size, device=dev)
            with torch.inference_mode():
                t_ref = timeit(lambda: ref(x * 255), W, R, sync)
                gf = flops(lambda: ref(x * 255)) / 1e9
                row(f"inference {size}²: reference eager fp32 (width 32)", f"{t_ref * 1e3:.0f} ms",
                    f"{gf:.1f} GFLOP, {gf / t_ref:.0f} GFLOP/s")
                gflop = {w: flops(lambda: n(x)) / 1e9 for w, n in ((32, full), (SHIPPED_WIDTH, slim))}
                for name, (width, fn) in variants.items():
                    t = timeit(lambda: fn(x), W, R, sync)
                    g = gflop[width]
                    row(f"inference {size}²: {name}", f"{t * 1e3:.0f} ms",
                        f"**{t_ref / t:.2f}x** vs reference; {g:.1f} GFLOP, {g / t:.0f} GFLOP/s")
        x8 = torch.rand(8, 3, 256, 256, device=dev)
        with torch.inference_mode():
            t_ref = timeit(lambda: ref(x8 * 255), W, R, sync)
            row("batch 8 at 256²: reference eager fp32", f"{8 / t_ref:.1f} img/s")
            for name, (_, fn) in variants.items():
                t = timeit(lambda: fn(x8), W, R, sync)
                row(f"batch 8 at 256²: {name}", f"{8 / t:.1f} img/s", f"{t_ref / t:.2f}x")

        # ---- training ---------------------------------------------------------------------
        style = torch.rand(1, 3, 256, 256, device=dev)
        batch = torch.rand(4, 3, 256, 256, device=dev)
        trainer = ReferenceTrainer(style)
        trainer.net.to(dev), trainer.vgg.to(dev)
        trainer.gram_style = [g.to(dev) for g in trainer.gram_style]
        t_ref = timeit(lambda: trainer.step(batch * 255), 1, max(2, R - 2), sync)
        gf_ref = flops(lambda: trainer.step(batch * 255)) / 1e9
        row("training 256² batch 4: reference (fp32, VGG16 to relu4_3, width 32)", f"{4 / t_ref:.2f} img/s",
            f"{gf_ref:.0f} GFLOP/step, {gf_ref / t_ref:.0f} GFLOP/s")
        for width in (None, 32):
            t_ours, gf_ours, w = time_lightning_step(dev, batch, style, W, R, width)
            what = "defaults" if width is None else "defaults but width 32"
            row(f"training 256² batch 4: ours (Lightning, {what}: width {w})", f"{4 / t_ours:.2f} img/s",
                f"**{t_ref / t_ours:.2f}x**; {gf_ours:.0f} GFLOP/step, {gf_ours / t_ours:.0f} GFLOP/s")

        # ---- Gatys ------------------------------------------------------------------------
        # The fastest forward pass of a shipped style: bf16 where native or on a GPU (`fastnst
        # stylize --precision bf16` / `--device cuda`), else onnxruntime, what it runs by default
        # (models.wants_torch: per call, importing torch costs more than the pass).
        fastest = BF16 if native_bf16(dev) or not on_cpu else ORT_SHIPPED
        x512 = torch.rand(1, 3, 512, 512, device=dev)
        with torch.inference_mode():
            t_fast = timeit(lambda: variants[fastest][1](x512), W, R, sync)
        gatys_rows(row, dev, args, t_fast, fastest, sync)

    write_table(args.output, dev, rows, " ".join(["python", "-m", "bench.speed", *sys.argv[1:]]))


def gatys_rows(row, dev, args, t_fast: float, fastest: str, sync) -> None:
    """Gatys L-BFGS at 512²: seconds per iteration, and iterations/seconds until it reaches the
    shipped model's loss on the bundled sample photo (the fast path's quality, so equal quality)."""
    from fastnst import gatys
    from fastnst.image import load_image, to_tensor
    from fastnst.runtime import open_model
    from fastnst.vgg import load_vgg

    content = to_tensor(load_image(REPO / "fastnst" / "assets" / "sample_photo.jpg", 512, upscale=True)).to(dev)
    model, style_file = None, None
    if args.model.is_file():
        model = open_model(args.model)
        style_file = next((p for p in sorted(args.styles.glob("*")) if p.stem == model.meta["style_name"]), None)
    try:
        if model is None:
            raise FileNotFoundError(f"no model {args.model}")
        if style_file is None:
            raise FileNotFoundError(f"style image of {args.model} not found in {args.styles}")
        cfg = loss_config(model.meta["loss"])
        vgg = load_vgg(cfg.layers, arch=cfg.vgg_arch, weights=args.vgg_weights)
        style = to_tensor(load_image(style_file, model.meta.get("style_size") or 256, upscale=True))
    except Exception as e:  # no shipped model, style image or VGG weights: time per iteration only
        print(f"(Gatys equal-loss row skipped: {e})", flush=True)
        model, cfg, vgg, style = None, LossConfig(), VGGFeatures(LossConfig().layers), torch.rand(1, 3, 256, 256)
    loss = PerceptualLoss(vgg, style, cfg).to(dev)
    target = None
    if model is not None:
        with torch.no_grad():
            fast = torch.from_numpy(model(content.cpu().numpy())).to(dev)
            target = float(loss(fast, loss.content_targets(content))["total"])
    cap = 5 if args.quick else args.gatys_iterations
    reached: dict[str, float] = {}

    def callback(step, terms, image):
        reached["steps"], reached["seconds"] = step, time.perf_counter() - t0
        if target is not None and terms["total"] <= target and "hit" not in reached:
            reached["hit"], reached["hit_seconds"] = step, reached["seconds"]

    t0 = time.perf_counter()
    gatys.stylize(content, loss, iterations=cap, callback=callback)  # all of them: a steady s/iter
    sync()
    per_iter = reached["seconds"] / reached["steps"]
    row("Gatys 512², L-BFGS", f"{per_iter:.2f} s/iter", f"{reached['steps']} iterations timed")
    if target is not None:
        what = f"Gatys 512² until it matches {args.model.name}'s loss ({target:.3f}) on the sample photo"
        if "hit" in reached:
            row(what, f"{reached['hit_seconds']:.1f} s",
                f"{reached['hit']} iteration(s); {reached['hit_seconds'] / t_fast:.0f}x the fast pass")
        else:
            row(what, f"> {reached['seconds']:.0f} s", f"not within {cap} iterations")
    row("fast pass vs Gatys 500 iterations at 512²", f"**{500 * per_iter / t_fast:.0f}x**",
        f"{500 * per_iter:.0f} s vs {t_fast * 1e3:.0f} ms ({fastest})")


def time_lightning_step(dev, batch, style, warmup, repeats, width=None) -> tuple[float, float, int]:
    """Median seconds per optimizer step of StyleTransferModule under a real pl.Trainer, defaults
    (all but ``width`` when given); also its GFLOP per step and the width used."""
    import pytorch_lightning as pl

    from fastnst.module import StyleTransferModule

    run = TrainConfig(early_steps=0, **({} if width is None else {"width": width}))
    cfg = run.loss
    model = StyleTransferModule(VGGFeatures(cfg.layers), style.cpu(), run)
    if run.channels_last:
        model = model.to(memory_format=torch.channels_last)
    times: list[float] = []

    class Clock(pl.Callback):
        def on_train_batch_start(self, *a):
            self.t = time.perf_counter()

        def on_train_batch_end(self, *a):
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)

    loader = torch.utils.data.DataLoader([b for b in batch.cpu()] * (warmup + repeats), batch_size=len(batch))
    trainer = pl.Trainer(max_steps=warmup + repeats, precision=training_precision(run.precision, dev.type), accelerator=dev.type, devices=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[Clock()])
    trainer.fit(model, loader)
    x = batch.to(dev)
    model = model.to(dev)

    def one_step():
        with torch.autocast(dev.type, dtype=torch.bfloat16):
            total = model.loss(model.net(x), model.loss.content_targets(x))["total"]
        total.backward()

    return statistics.median(times[warmup:]), flops(one_step) / 1e9, model.net.width


def write_table(path: Path, dev: torch.device, rows, command: str) -> None:
    label = dev.type if dev.type == "cpu" else torch.cuda.get_device_name(dev)
    cpu = platform.processor() or platform.machine()
    header = (f"### Speed on {label}\n\nMachine: {os.cpu_count()} CPU threads ({cpu}), torch {torch.__version__}, "
              f"{time.strftime('%Y-%m-%d')}. Reproduce: `{command}`\n\n| measurement | value | note |\n|---|---|---|\n")
    table = header + "".join(f"| {a} | {b} | {c} |\n" for a, b, c in rows)
    write_section(path, MARK_BEGIN.format(dev.type), MARK_END.format(dev.type), table)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

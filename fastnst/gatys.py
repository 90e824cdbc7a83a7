"""The slow reference path (Gatys et al. 2015): optimize the pixels of one image.

Same ``PerceptualLoss`` as the fast path, so it is the yardstick the trained nets are measured
against (bench/quality.py). No file I/O here: the caller gets each step through ``callback``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F

from fastnst.errors import FastNSTError
from fastnst.perceptual import PerceptualLoss

Init = Literal["content", "noise", "smooth-noise"]
Optimizer = Literal["lbfgs", "adam", "sgd"]
# SGD's schedule, Keras' ExponentialDecay (not staircase), as the Keras neural style transfer
# examples use it: lr · 0.96^(step / 100).
SGD_DECAY_RATE, SGD_DECAY_STEPS = 0.96, 100
# SGD's default step per pixel: the loss terms are means over pixels, so each pixel's gradient
# shrinks as 1/(H·W); the step is this times H·W, one default for every image size. Keras' lr of
# 100 is for 0..255 pixels and summed losses.
SGD_LR = 3.0 / (128 * 128)
# Called after each iteration with (iteration starting at 1, weighted loss terms, current image [1,3,H,W]).
Callback = Callable[[int, dict[str, float], torch.Tensor], None]


class NonFiniteLoss(FastNSTError):
    """The loss became NaN or infinite at ``iteration``; the image of the one before is the last good one."""

    def __init__(self, iteration: int, loss: float):
        self.iteration = iteration
        super().__init__(f"the loss became {loss} at iteration {iteration} (the optimization diverged; "
                         f"a smaller --lr may help)")


def median_filter(x: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Per-channel k x k median of [B, C, H, W] (reflect-padded): noise -> blotchy low-frequency noise."""
    b, c, h, w = x.shape
    patches = F.unfold(F.pad(x, (k // 2,) * 4, mode="reflect"), k)  # [B, C*k*k, H*W]
    return patches.view(b, c, k * k, h * w).median(dim=2).values.view(b, c, h, w)


def initial_image(content: torch.Tensor, init: Init, generator: torch.Generator) -> torch.Tensor:
    """The starting pixels, [1, 3, H, W] in [0, 1]."""
    if init == "content":
        return content.clone()
    noise = torch.rand(content.shape, generator=generator).to(content.device, content.dtype)
    if init == "noise":
        return noise
    if init == "smooth-noise":
        # Median-filtered noise: fewer high-frequency speckles for the optimizer to undo.
        return median_filter(noise)
    raise FastNSTError(f"unknown init {init!r}; choose content, noise or smooth-noise")


def step_schedule(optimizer: str, lr: float | None, n_pixels: int) -> tuple[float, float]:
    """(first learning rate, factor per step) for Adam or SGD on an image of ``n_pixels`` (H·W).

    Adam: ``lr`` (default 0.02), constant. SGD: ``lr`` per pixel (default SGD_LR) times H·W, times
    0.96 every 100 steps, continuously (gamma = 0.96^(1/100) per step)."""
    if optimizer == "adam":
        return lr or 0.02, 1.0
    return (lr or SGD_LR) * n_pixels, SGD_DECAY_RATE ** (1 / SGD_DECAY_STEPS)


def stylize(
    content: torch.Tensor,
    loss: PerceptualLoss,
    *,
    iterations: int = 300,
    optimizer: Optimizer = "lbfgs",
    lr: float | None = None,
    init: Init = "content",
    seed: int = 0,
    callback: Callback | None = None,
) -> tuple[torch.Tensor, list[dict[str, float]]]:
    """Optimize an image [1, 3, H, W] in [0, 1] against ``loss`` for ``content``.

    L-BFGS (default, lr 1, strong-Wolfe line search) counts one outer iteration per step; Adam
    (lr default 0.02 in [0, 1] pixel units) and SGD (lr per pixel, default SGD_LR, decayed by 0.96
    every 100 steps) one update per step. Adam's and SGD's pixels are clamped to
    [0, 1] after each step; L-BFGS runs unconstrained as in Gatys (clamping between its steps
    breaks its curvature pairs and stalls it) and is clamped once at the end.
    Returns the final image and the history of weighted loss terms, one dict per iteration.
    Raises NonFiniteLoss if the loss becomes NaN or infinite (the pixels are then not updated).
    """
    if iterations < 1:
        raise FastNSTError(f"iterations must be >= 1, got {iterations}")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise FastNSTError(f"lr must be a finite number > 0, got {lr}")
    generator = torch.Generator().manual_seed(seed)
    targets = loss.content_targets(content)
    image = initial_image(content, init, generator).requires_grad_(True)

    history: list[dict[str, float]] = []
    last: dict = {}

    def evaluate() -> torch.Tensor:
        terms = loss(image, targets)
        if not torch.isfinite(terms["total"]):
            # Stop before a NaN/inf reaches the pixels: every later step would be NaN too, and the
            # result a black image. history and the callback's images stay the last finite ones.
            raise NonFiniteLoss(len(history) + 1, float(terms["total"].detach()))
        terms["total"].backward()
        last["record"] = {k: float(v.detach()) for k, v in terms.items()}
        last["image"] = image.detach().clone()
        return terms["total"]

    def finish_iteration() -> None:
        history.append(last["record"])
        if callback is not None:
            callback(len(history), last["record"], last["image"])

    # Eval mode for a deterministic objective (the palette term's directions fixed): L-BFGS's line
    # search compares values of one function.
    was_training = isinstance(loss, torch.nn.Module) and loss.training
    if was_training:
        loss.train(False)
    try:
        if optimizer == "lbfgs":
            # One step() call runs all iterations: torch's LBFGS re-evaluates the loss at the start of
            # every step(), so stepping once per iteration would cost an extra VGG pass per iteration.
            # max_eval bounds the line searches; zero tolerances keep it from stopping early.
            opt = torch.optim.LBFGS([image], lr=lr or 1.0, max_iter=iterations, max_eval=iterations * 2,
                                    tolerance_grad=0.0, tolerance_change=0.0, history_size=50,
                                    line_search_fn="strong_wolfe")
            state = opt.state[image]

            def closure() -> torch.Tensor:
                # An LBFGS iteration ends where the next begins: state["n_iter"] counts started ones,
                # and the last evaluation of an iteration is its accepted point.
                if state.get("n_iter", 0) > len(history) + 1:
                    finish_iteration()
                opt.zero_grad(set_to_none=True)
                return evaluate()

            opt.step(closure)
            finish_iteration()
        elif optimizer in ("adam", "sgd"):
            rate, gamma = step_schedule(optimizer, lr, content.shape[-2] * content.shape[-1])
            opt = (torch.optim.Adam if optimizer == "adam" else torch.optim.SGD)([image], lr=rate)
            schedule = torch.optim.lr_scheduler.ExponentialLR(opt, gamma)
            for _ in range(iterations):
                opt.zero_grad(set_to_none=True)
                evaluate()
                opt.step()
                schedule.step()
                with torch.no_grad():
                    image.clamp_(0, 1)
                finish_iteration()
        else:
            raise FastNSTError(f"unknown optimizer {optimizer!r}; choose lbfgs, adam or sgd")
    finally:
        if was_training:
            loss.train(True)
    return image.detach().clamp(0, 1), history

"""Will one forward pass fit in memory? Estimate it from the image size and refuse early if not.

Torch-free. Without this, a huge photo run whole gets the process killed by the OS minutes in;
with it, the user gets one line suggesting ``--tile`` before any work starts.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from fastnst.errors import FastNSTError
from fastnst.onnx_contract import DOWNSAMPLES, MIN_SIZE

# Fraction of the available memory one forward pass may use: the rest is for the input and output
# images, the interpreter, and whatever else runs on the machine.
MEMORY_FRACTION = 0.6
# Suggested tiles are multiples of this and at most TILE_CAP px (bigger tiles are slower to
# schedule and barely better).
TILE_STEP = 64
TILE_CAP = 4096


def bytes_per_pixel(width: int) -> int:
    """Peak memory of a TransformerNet forward pass per input pixel, bytes, for first-layer ``width``.

    Measured on CPU at 0.25..2 MP (peak RSS growth): PyTorch ~1020 B/px at width 32 and ~340 B/px
    at width 8 (several float32 maps of width·H·W live at once: pads, conv outputs, the upsampled
    decoder maps); onnxruntime without its arena ~500 B/px at width 32. 128 + 40·width covers both
    with ~30% to spare.
    """
    return 128 + 40 * width


def padded_size(height: int, width: int) -> tuple[int, int]:
    """The size a forward pass really runs at: sides under MIN_SIZE edge-padded to it (runtime.run_image,
    TransformerNet), then reflect-padded to a multiple of 2^DOWNSAMPLES.

    A 1x100000 image runs as 16x100000: 16x the pixels its own size says (measured: ~530 B per
    padded pixel with onnxruntime at width 16, 805 MiB, against 73 MiB estimated on 1x100000).
    """
    step = 2**DOWNSAMPLES
    return tuple(-(-max(MIN_SIZE, side) // step) * step for side in (height, width))


def available_memory() -> int:
    """Bytes this process can still use: MemAvailable (else physical RAM), capped by a cgroup limit."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    available = total
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # containers: the cgroup v2 limit can be far below the host's RAM
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = int(Path("/sys/fs/cgroup/memory.current").read_text())
        if limit != "max":
            available = min(available, int(limit) - used)
    except (OSError, ValueError):
        pass
    return max(0, available)


def default_budget() -> int:
    """Bytes one forward pass may use: MEMORY_FRACTION of the available memory."""
    return int(available_memory() * MEMORY_FRACTION)


def largest_tile(per_pixel: int, budget: int) -> int | None:
    """The biggest square tile (multiple of TILE_STEP, <= TILE_CAP) whose forward pass fits ``budget``."""
    side = min(TILE_CAP, math.isqrt(max(0, budget) // per_pixel)) // TILE_STEP * TILE_STEP
    return side or None


def _human(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_forward_fits(height: int, width: int, per_pixel: int, budget: int, *, tiled: bool) -> None:
    """Raise FastNSTError (with the --tile to use) if a [height, width] forward pass would exceed ``budget``.

    ``tiled``: the size is one tile's (the message then asks for a smaller tile). The estimate is
    for the padded size the pass runs at (padded_size).
    """
    padded_height, padded_width = padded_size(height, width)
    need = padded_height * padded_width * per_pixel
    if need <= budget:
        return
    tile = largest_tile(per_pixel, budget)
    what = f"a {width}x{height} tile" if tiled else f"a {width}x{height} image in one pass"
    msg = f"stylizing {what} needs about {_human(need)}, more than the {_human(budget)} allowed"
    if tile is None:
        raise FastNSTError(f"{msg}, and not even a {TILE_STEP} px tile fits: free some memory")
    raise FastNSTError(f"{msg}; run it in tiles: --tile {tile}")

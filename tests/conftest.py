"""Shared fixtures: repository paths, the optional ../shared assets and real VGG weights, seeding.

Tests never need the network or a GPU. ``../shared`` (beside the checkout) and real VGG weights
($FASTNST_VGG_WEIGHTS) are optional: tests that need them skip cleanly where they are absent.
Installed tools (Chromium, web/node_modules) are optional too outside CI: see ``skip_unless_ci``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"

# The tests use tiny tensors, where intra-op threads buy nothing; on a small machine shared with
# other work (a training run), two OpenMP threads contending for two busy cores were measured
# 10-50x slower than one. Override with FASTNST_TEST_THREADS.
torch.set_num_threads(max(1, int(os.environ.get("FASTNST_TEST_THREADS", "1"))))


IN_CI = os.environ.get("CI") == "true"


def skip_unless_ci(reason: str) -> NoReturn:
    """Skip for a tool missing on a developer's machine; fail under CI=true, whose .ci/run installs
    it: a skip there would hide a broken install step behind a green run."""
    if IN_CI:
        pytest.fail(f"{reason}, and CI=true: .ci/run should have installed it", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` beside the checkout (data and weights gathered for development); skip if absent."""
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared assets not found at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def real_vgg_weights() -> Path:
    """Path to real VGG weights from $FASTNST_VGG_WEIGHTS; skip if unset or missing."""
    value = os.environ.get("FASTNST_VGG_WEIGHTS")
    if not value:
        pytest.skip("FASTNST_VGG_WEIGHTS is not set (real VGG weights)")
    path = Path(value)
    if not path.is_file():
        pytest.skip(f"FASTNST_VGG_WEIGHTS={value} is not a file")
    return path


@pytest.fixture
def seeded() -> int:
    """Seed torch's global RNG so random-init VGGs and random inputs are reproducible in a test."""
    torch.manual_seed(0)
    return 0


class _TouchOnLoad:
    """Unpickling this runs code: it creates ``marker`` (a harmless stand-in for a real payload)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture
def evil_checkpoint(tmp_path):
    """write(path) -> a .ckpt/.pt at ``path`` shaped like ours whose loading with weights_only=False
    runs code; returns the marker file that code creates (assert it does not exist afterwards)."""

    def write(path: Path, legacy: bool = False) -> Path:
        marker = tmp_path / f"ran-code-from-{path.name}"
        obj = {"fastnst": {"model": {"width": 4, "n_residual": 1}, "meta": _TouchOnLoad(marker)},
               "state_dict": {}, "global_step": 3}
        path.parent.mkdir(parents=True, exist_ok=True)
        if legacy:  # a plain pickle, not torch's zip format
            import pickle

            path.write_bytes(pickle.dumps(obj))
        else:
            torch.save(obj, path)
        return marker

    return write


def one_line_error(err: str, *, others: tuple[str, ...] | None = None) -> str:
    """The single ``error: ...`` line of a command's stderr, no traceback, no internal error.

    ``others``: None lets anything else be there (progress bars, warnings); a tuple of prefixes
    that every other non-empty line must start with (e.g. ("stylize:",), a progress bar's; () for
    nothing but the error line).
    """
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err and "internal error" not in err, err
    if others is not None:
        assert all(line.startswith(others) for line in lines if line not in errors), err
    return errors[0]


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    """Exit status 2 and stderr exactly one ``error: ...`` line that holds every fragment; returns it."""
    assert code == 2, (code, err)
    line = one_line_error(err, others=())
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    return line


def write_random_vgg(path: Path) -> Path:
    """A seeded random-init VGG19 state dict covering LossConfig's default layers, saved at ``path``:
    real weights' layout, none of their download (tests never need the network)."""
    from fastnst.perceptual import LossConfig
    from fastnst.vgg import VGGFeatures

    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(VGGFeatures(LossConfig().layers).state_dict(), path)
    return path


@pytest.fixture(scope="session")
def vgg_file(tmp_path_factory) -> Path:
    """write_random_vgg, once per session (read-only by convention)."""
    return write_random_vgg(tmp_path_factory.mktemp("vgg") / "vgg.pth")

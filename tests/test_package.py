"""The wheel: what `pip install fastnst` gets, and that it stylizes a photo without PyTorch."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
STYLES = sorted(p.stem for p in (REPO / "exported").glob("*.onnx"))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the checkout's sources (an in-place build would leave build/
    and *.egg-info in it), with the setuptools already installed: no network."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in ("fastnst", "exported"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(root / "dist"), str(src)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (path,) = (root / "dist").glob("fastnst-*.whl")
    return path


def test_the_wheel_carries_the_styles_and_the_sample_and_nothing_of_the_checkout(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert STYLES and {f"fastnst/styles/{s}.onnx" for s in STYLES} <= set(names)
    assert {"fastnst/assets/sample_photo.jpg", "fastnst/assets/sample_style.png", "fastnst/cli/stylize.py",
            "fastnst/runtime.py", "fastnst/training.py"} <= set(names)
    top = {n.split("/")[0] for n in names}
    assert top == {"fastnst", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}, top
    assert not [n for n in names if n.endswith((".pt", ".ckpt", ".pyc"))], "no PyTorch twins, runs or caches"


def test_the_wheel_asks_only_for_the_light_dependencies_and_has_the_console_command(wheel):
    archive = zipfile.ZipFile(wheel)
    info = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = email.message_from_bytes(archive.read(info))
    required = [r for r in metadata.get_all("Requires-Dist") if "extra ==" not in r]
    assert sorted(r.split(">")[0].split("=")[0].strip().lower() for r in required) == ["numpy", "onnxruntime",
                                                                                       "pillow"]
    train = [r for r in metadata.get_all("Requires-Dist") if 'extra == "train"' in r]
    assert any(r.startswith("torch") for r in train) and any(r.startswith("pytorch-lightning") for r in train)
    entry_points = archive.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "fastnst = fastnst.cli:main" in entry_points


def test_the_unpacked_wheel_stylizes_the_sample_photo_with_a_shipped_style_and_no_torch(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import sys; sys.modules['torch'] = None\n"  # any 'import torch' now raises ImportError
            f"sys.path.insert(0, {str(site)!r})\n"
            "import fastnst\n"
            f"assert fastnst.__file__.startswith({str(site)!r}), fastnst.__file__\n"
            "from fastnst.cli import main\n"
            f"sys.exit(main(['stylize', 'mosaic', {str(site / 'fastnst' / 'assets' / 'sample_photo.jpg')!r},"
            " '--max-size', '64']))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert max(Image.open(tmp_path / "sample_photo_mosaic.jpg").size) == 64


def test_bench_is_a_package_of_modules_that_patch_no_import_path_and_use_no_cli_internals():
    for path in sorted((REPO / "bench").glob("*.py")):
        text = path.read_text()
        assert "sys.path" not in text and "fastnst.cli" not in text, path.name
    assert (REPO / "bench" / "__init__.py").is_file()

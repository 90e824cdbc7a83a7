"""atomic_write: the old file or the new one, never half of one; ordinary permissions."""

import io
import os
from pathlib import Path

import pytest

from fastnst.files import atomic_write, remove_temp_files


def test_atomic_write_replaces_with_usual_permissions(tmp_path):
    target = tmp_path / "sub" / "model.bin"
    old = os.umask(0o022)
    try:
        with atomic_write(target) as f:
            f.write(b"new")
            assert os.path.exists(f.name) and not target.exists()  # readable before it is in place
    finally:
        os.umask(old)
    assert target.read_bytes() == b"new"
    assert target.stat().st_mode & 0o777 == 0o644
    assert list(target.parent.iterdir()) == [target]


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_no_replace_keeps_a_file_that_appeared_during_the_write(tmp_path):
    """Two writers of one path: the second must not silently replace the first (replace=False)."""
    target = tmp_path / "out.png"
    with pytest.raises(FileExistsError):
        with atomic_write(target, replace=False) as f:
            f.write(b"ours")
            target.write_bytes(b"theirs, written after our existence check")
    assert target.read_bytes() == b"theirs, written after our existence check"
    assert list(tmp_path.iterdir()) == [target]
    with atomic_write(tmp_path / "new.png", replace=False) as f:  # nothing there: written as usual
        f.write(b"new")
    assert (tmp_path / "new.png").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.png", "out.png"]


def test_a_255_byte_name_is_written_although_its_temp_name_would_be_longer(tmp_path):
    target = tmp_path / ("é" * 100 + "x" * 51 + ".png")  # 255 bytes in UTF-8
    assert len(os.fsencode(target.name)) == 255
    with atomic_write(target) as f:
        assert len(os.fsencode(os.path.basename(f.name))) <= 255
        f.write(b"data")
    assert target.read_bytes() == b"data"
    assert list(tmp_path.iterdir()) == [target]


def test_atomic_torch_save_lets_an_interrupt_through_as_keyboardinterrupt(tmp_path, monkeypatch):
    """A Ctrl-C/SIGTERM handler may run inside a file write; inside torch's C++ zip writer its
    KeyboardInterrupt became RuntimeError('unexpected pos'), and training crashed instead of saving."""
    import contextlib

    import torch

    from fastnst import checkpoint

    class InterruptedFile(io.BytesIO):  # the signal arrives once the first 100 bytes are written
        def write(self, data):
            if self.tell() + len(memoryview(data).cast("B")) > 100:
                raise KeyboardInterrupt
            return super().write(data)

    monkeypatch.setattr(checkpoint, "atomic_write", lambda path: contextlib.nullcontext(InterruptedFile()))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.atomic_torch_save({"w": torch.zeros(10000)}, tmp_path / "last.ckpt")


def test_remove_temp_files_takes_what_a_killed_write_left_and_nothing_else(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_write(tmp_path / "last.ckpt") as f:
            left = Path(f.name)
            raise RuntimeError("the process dies here")
    left.write_bytes(b"half a checkpoint")  # what SIGKILL leaves: no except clause runs to remove it
    keep = ["last.ckpt", "notes.tmp", ".hidden", ".last.ckpt.tmp", "step0000010.ckpt"]
    for name in keep:
        (tmp_path / name).write_bytes(b"x")
    assert remove_temp_files(tmp_path) == [left]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
    assert remove_temp_files(tmp_path / "missing") == []


@pytest.mark.parametrize("kind", ["file", "dangling symlink"])
def test_a_file_where_the_folder_should_be_is_not_reported_as_an_existing_output(tmp_path, kind):
    """mkdir's FileExistsError would read as "the output appeared meanwhile" (files._publish_new's)."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x") if kind == "file" else blocker.symlink_to(tmp_path / "gone")
    with pytest.raises(NotADirectoryError):
        with atomic_write(blocker / "out.bin", replace=False) as f:
            f.write(b"never")

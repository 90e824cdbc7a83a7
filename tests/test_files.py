"""atomic_write: the old file or the new one, never half of one; ordinary permissions."""

import os

import pytest

from fastnst.files import atomic_write


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

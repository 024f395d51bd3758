"""Private files: mode 0600 from the start, atomic, nothing partial left on failure."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from support.files import create_private, fsync_dir, link_new, write_private_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    """The file is created with mode 0600 whatever the umask, with the bytes given."""
    old = os.umask(0o000)
    try:
        write_private_file(tmp_path / "k.key", b"secret")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "k.key") == 0o600
    assert (tmp_path / "k.key").read_bytes() == b"secret"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]


def test_replace_swaps_the_content_and_keeps_0600(tmp_path: Path) -> None:
    """Writing again replaces the whole file (the default), still mode 0600."""
    target = tmp_path / "k.key"
    write_private_file(target, b"old")
    write_private_file(target, b"new")
    assert target.read_bytes() == b"new"
    assert _mode(target) == 0o600


def test_no_replace_refuses_an_existing_file_and_changes_nothing(tmp_path: Path) -> None:
    """replace=False raises FileExistsError and leaves the existing file and no temp file."""
    target = tmp_path / "k.key"
    target.write_bytes(b"keep")
    with pytest.raises(FileExistsError):
        write_private_file(target, b"other", replace=False)
    assert target.read_bytes() == b"keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]


def test_a_failing_write_leaves_the_old_target_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error during fsync leaves the previous content whole and removes the temp file."""
    target = tmp_path / "k.key"
    write_private_file(target, b"old")

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("support.files.os.fsync", failing_fsync)
    with pytest.raises(OSError, match="No space"):
        write_private_file(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]


def test_a_failing_first_write_leaves_no_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an earlier file, a failed write leaves nothing at the target's name."""
    monkeypatch.setattr("support.files.os.fsync", _raise_eio)
    with pytest.raises(OSError, match="I/O error"):
        write_private_file(tmp_path / "k.key", b"new", replace=False)
    assert list(tmp_path.iterdir()) == []


def _raise_eio(fd: int) -> None:
    raise OSError(errno.EIO, "I/O error")


def test_a_stale_temp_file_from_a_crash_is_replaced(tmp_path: Path) -> None:
    """A temporary file left by an interrupted write does not block the next write."""
    (tmp_path / ".k.key.tmp").write_bytes(b"half")
    write_private_file(tmp_path / "k.key", b"whole")
    assert (tmp_path / "k.key").read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.key"]


def test_create_private_refuses_existing_names_and_symlinks(tmp_path: Path) -> None:
    """create_private never writes through an existing file or a planted symlink."""
    (tmp_path / "there").write_bytes(b"x")
    with pytest.raises(FileExistsError), create_private(tmp_path / "there"):
        pass
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(FileExistsError), create_private(tmp_path / "link"):
        pass
    assert not (tmp_path / "elsewhere").exists()


def test_link_new_copies_where_hard_links_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without hard links the content is copied into a new 0600 file, never over one."""
    src = tmp_path / "src"
    src.write_bytes(b"archive")

    def no_link(a: object, b: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr("support.files.os.link", no_link)
    link_new(src, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b"archive"
    assert _mode(tmp_path / "out") == 0o600
    with pytest.raises(FileExistsError):
        link_new(src, tmp_path / "out")


def test_fsync_dir_accepts_a_directory(tmp_path: Path) -> None:
    """fsync_dir opens and syncs a directory (and closes it again)."""
    fsync_dir(tmp_path)

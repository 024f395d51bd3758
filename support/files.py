"""Private files on disk: created with mode 0600, written whole, durable.

Key files and backup members hold private keys or client data. They are
created with mode 0600 from the first moment (never written and chmod-ed
afterwards), with O_EXCL and O_NOFOLLOW so that neither an existing file nor a
planted symlink is written through.

`write_private_file` is atomic: the bytes go to a temporary file in the same
directory, which is fsynced and renamed (or hard-linked, when an existing file
must not be replaced) onto the target, and then the directory is fsynced so
the new name survives a power cut. A failed write leaves the old target, or
none, and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO

PRIVATE_MODE = 0o600
_CHUNK = 1 << 20


@contextlib.contextmanager
def create_private(path: Path) -> Iterator[IO[bytes]]:
    """Open a new file for writing with mode 0600; FileExistsError if the name is taken."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_MODE)
    try:
        # The umask can only clear bits of 0600; make the mode exact all the same.
        os.fchmod(fd, PRIVATE_MODE)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "wb") as f:
        yield f


def fsync_dir(path: Path) -> None:
    """Make the names in directory `path` (a create, rename or link) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_private_file(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write `data` to `path` atomically with mode 0600; fsync file and directory.

    `replace=False` refuses an existing `path` with FileExistsError (and changes
    nothing), for files whose loss would orphan an identity (a node's or the
    hub's first key file). Other OSErrors propagate; either way nothing partial
    is left at `path` and the temporary file is removed.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    # A temporary file left by a crash holds a complete or partial copy of a
    # previous write; it is ours to remove.
    tmp.unlink(missing_ok=True)
    try:
        with create_private(tmp) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            link_new(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def link_new(src: Path, path: Path) -> None:
    """Give the finished file `src` the new name `path` too; FileExistsError if it is taken.

    Unlike a rename, a hard link never replaces an existing file. Where the
    filesystem has no hard links, the content is copied into a file created with
    O_EXCL and mode 0600 (not atomic against a crash, but never replacing
    anything); a failed copy is removed. The caller removes `src` and fsyncs
    the directory.
    """
    try:
        os.link(src, path)
        return
    except FileExistsError:
        raise
    except OSError:
        pass
    with create_private(path) as dst:
        try:
            with src.open("rb") as f:
                shutil.copyfileobj(f, dst, _CHUNK)
            dst.flush()
            os.fsync(dst.fileno())
        except BaseException:
            path.unlink(missing_ok=True)
            raise


PRIVATE_DIR_MODE = 0o700


def restrict_database(path: Path) -> list[Path]:
    """Make an SQLite database and its -wal/-shm (which SQLite creates with the
    database's mode) private to the owner; return the files that were changed.

    For a database made by an older version, copied in, or created under a
    umask of 022. OSError propagates (the caller says which file).
    """
    changed = []
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if file.stat().st_mode & 0o077:
                os.chmod(file, PRIVATE_MODE)
                changed.append(file)
        except FileNotFoundError:
            continue
    return changed


def restrict_directory(path: Path) -> bool:
    """Make a data directory private to the owner (0700) if others can enter or
    read it; True when its mode was changed. OSError propagates."""
    mode = path.stat().st_mode & 0o777
    if not mode & 0o077:
        return False
    os.chmod(path, PRIVATE_DIR_MODE)
    return True

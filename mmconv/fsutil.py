"""Files: atomic output (a file appears complete or not at all) and mapped input.

Every writer in mmconv goes through :func:`atomic_path` so a failed or
interrupted conversion never leaves a partial file where the user expects a
finished one.  Readers of big files go through :func:`map_file`.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The temporary file lives in the target's folder (so the rename is atomic on
    one filesystem) and is removed if the body raises.  ``suffix`` lets writers
    that insist on a file extension (``numpy.savez`` adds ``.npz``; ONNX tools
    look at ``.onnx``) keep it.
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=folder)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); a finished output gets the usual
        # permissions (0666 less the umask), like any file the user creates.
        tmp.chmod(0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    """The process umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def map_file(path: str | os.PathLike[str]) -> mmap.mmap | bytearray:
    """The file's bytes, mapped privately (copy-on-write) instead of read.

    Pages are read on first touch and shared with the page cache until written, so
    a reader pays no up-front copy of the file, and arrays made over the mapping
    (``np.frombuffer``) are writable without changing the file.  An empty file
    (which mmap refuses) gives an empty bytearray.  Raises OSError as ``open``.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return bytearray()
        return mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY)


@contextlib.contextmanager
def staging(target: str | os.PathLike[str], enabled: bool = True) -> Iterator[Path]:
    """Yield where to write ``target`` (a file, a folder, or a file with companions such as
    PyTorch's ``.pth``): a path in a temporary folder beside it whose contents are moved
    beside ``target`` when the block succeeds and removed when it fails.

    For steps after writing that decide whether the output should exist at all
    (``mmconvert --verify``).  ``enabled=False`` yields ``target`` itself.
    """
    target = Path(target)
    if not enabled:
        yield target
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        yield folder / target.name
        for entry in sorted(folder.iterdir()):
            dest = target.parent / entry.name
            if dest.is_dir() and not dest.is_symlink() and entry.is_dir():
                shutil.rmtree(dest)
            os.replace(entry, dest)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

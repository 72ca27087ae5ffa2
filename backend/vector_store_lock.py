"""One process per embedded vector-store folder: Chroma's PersistentClient keeps its index in memory and does not
see what another process writes, so a second process on the same folder would silently retrieve differently. The
first process to open the folder holds an exclusive lock on a file in it; any other refuses to start."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".prs-process.lock"
_held: dict[Path, int] = {}  # folders this process holds, with the lock file's descriptor


class VectorStoreInUse(RuntimeError):
    """Another process holds the embedded vector-store folder."""


def lock_embedded_vector_store(folder: Path) -> None:
    """Hold the folder's lock for the life of this process, or raise VectorStoreInUse naming PRS_CHROMA_URL."""
    folder = folder.resolve()
    if folder in _held:
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise VectorStoreInUse(
            f"the embedded vector store {folder} is in use by another process (pid {owner}). On embedded defaults "
            "only one process may use it (`prs serve` runs the worker itself). To run several processes (`prs "
            "worker` beside `prs serve`, several replicas), start a Chroma server and set PRS_CHROMA_URL in every "
            "process; see docs/deployment.md"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
    _held[folder] = fd


def release_embedded_vector_store(folder: Path) -> None:
    """Give the folder back (a container that closes before its process ends, e.g. before a backup runs)."""
    fd = _held.pop(folder.resolve(), None)
    if fd is not None:
        os.close(fd)

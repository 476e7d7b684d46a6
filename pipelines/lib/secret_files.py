"""Secrets generated once per install and kept in a file (mode 600): read them, or write them on
first use so that every process of the install, concurrent ones included, gets the same value."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path


def secret_once(path: Path, fresh: str) -> str:
    """The secret kept in ``path``; on first use ``fresh`` is written there (mode 600) and returned.

    The file is complete before it appears (a hard link of a finished, flushed temp file), so a
    concurrent reader never sees it half written; whoever links first wins and every caller
    returns the winner's value. Leading and trailing whitespace of the file is not part of the
    secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # one temp file per process and thread: two writers never share (and truncate) one
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(fresh)
                fh.flush()
                os.fsync(fh.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()

"""Write an artifact through a temp file beside it and rename: a failed export leaves the old one intact; publish
an export's files as one set: an interrupted export leaves the previous set."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_output(out: Path) -> Iterator[Path]:
    """Yield a temp path in ``out``'s folder; on success it replaces ``out``, on failure it is removed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)


@contextmanager
def _sigint_noted() -> Iterator[list[int]]:
    """Ctrl-C (SIGINT) only noted while files are swapped, so the swap can be undone before it interrupts."""
    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda sig, frame: caught.append(sig))
    except ValueError:  # not the main thread: Python delivers signals to the main thread only
        yield caught
        return
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)


def publish_together(ready: Path, out: Path) -> list[Path]:
    """Move every file of ``ready`` into ``out`` as one set. Until the last one is in place, a failure or a Ctrl-C
    puts the previous files of those names back (and then raises): ``out`` holds the old set or the new one."""
    names = sorted(p.name for p in ready.iterdir() if p.is_file())
    backup = Path(tempfile.mkdtemp(prefix=".previous.", dir=out))
    old, new = [], []
    try:
        with _sigint_noted() as caught:
            try:
                for name in names:
                    if (out / name).exists():
                        os.replace(out / name, backup / name)
                        old.append(name)
                    if caught:
                        raise KeyboardInterrupt
                for name in names:
                    os.replace(ready / name, out / name)
                    new.append(name)
                    if caught:
                        raise KeyboardInterrupt
            except BaseException:
                for name in new:
                    os.replace(out / name, ready / name)
                for name in old:
                    os.replace(backup / name, out / name)
                raise
    finally:
        shutil.rmtree(backup, ignore_errors=True)
    return [out / n for n in names]

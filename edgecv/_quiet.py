"""Quiet by default: while a command runs the training frameworks and converters (torch, litert-torch, TensorFlow
Lite's converter, absl, XNNPACK, onnxruntime's quantizer), what they print goes to a log file, and the user's terminal
shows edgecv's own lines, tables, progress bars and errors.

Most of that output never passes through Python: absl and TensorFlow Lite's C++ code, and XNNPACK, write straight
to file descriptor 2. So the descriptor itself is pointed at the log file (``os.dup2``), ``sys.stderr`` included,
and only edgecv's own writers get a stream on the terminal's descriptor: its logger's records and its progress bars
(``progress``, tqdm on ``terminal()``; other libraries' tqdm bars go to the file). Python warnings and other
libraries' log records go to the file too. ``--verbose`` leaves everything where it was. Errors are printed after
the switch back.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

_TERMINAL = None  # while a third_party_log is active: a stream on the terminal's descriptor
_FD2 = threading.RLock()  # one swap of descriptor 2 at a time: two interleaving would leave it at /dev/null


def terminal():
    """Where edgecv's own progress bars go: the terminal, also while other libraries' output is being logged."""
    return _TERMINAL or sys.stderr


def progress(iterable=None, **options):
    """tqdm on ``terminal()`` (shown on a terminal only: ``disable=None`` unless given)."""
    from tqdm import tqdm

    options.setdefault("disable", None)
    return tqdm(iterable, file=terminal(), **options)


class _OwnRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "edgecv" or record.name.startswith("edgecv.")


def _real_stderr() -> bool:
    """Whether ``sys.stderr`` writes to descriptor 2 (not, e.g., a test runner's buffer)."""
    try:
        return sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False


def _open_log(path: Path):
    """The log file opened for appending, line-buffered; None (with a warning) when it cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115  (the caller closes it)
    except OSError as exc:
        logging.getLogger("edgecv").warning(
            "cannot write %s (%s): other libraries' output stays on the terminal", path, exc.strerror or exc
        )
        return None


@contextlib.contextmanager
def third_party_log(path: str | Path, verbose: bool = False) -> Iterator[Path | None]:
    """Within: other libraries' output (descriptor 2, Python warnings, non-edgecv log records) goes to ``path``
    (appended); edgecv's own to the terminal. Yields the log's path, or None with ``verbose`` (nothing moved)."""
    global _TERMINAL
    if verbose or _TERMINAL is not None:  # --verbose, or already inside one (a command calling another)
        yield None
        return
    path = Path(path)
    log = _open_log(path)
    if log is None:
        yield None
        return
    root = logging.getLogger()
    with log:
        sys.stdout.flush()
        sys.stderr.flush()
        moved = _real_stderr()
        saved = os.dup(2) if moved else None
        old_stderr, term = sys.stderr, None
        if moved:
            term = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8", errors="replace")
            os.dup2(log.fileno(), 2)
            _TERMINAL = term
        own = _OwnRecords()
        terminal_handlers = [
            h for h in root.handlers if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
        ]
        streams = [(h, h.stream) for h in terminal_handlers]
        for h in terminal_handlers:
            h.addFilter(own)
            if moved and (h.stream is old_stderr or _is_fd2(h.stream)):
                h.setStream(term)
        to_file = logging.StreamHandler(log)
        to_file.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s"))
        to_file.addFilter(lambda r: not own.filter(r))
        root.addHandler(to_file)
        old_showwarning = warnings.showwarning

        def showwarning(message, category, filename, lineno, file=None, line=None):
            log.write(warnings.formatwarning(message, category, filename, lineno, line))

        warnings.showwarning = showwarning
        try:
            yield path
        finally:
            warnings.showwarning = old_showwarning
            root.removeHandler(to_file)
            for h, stream in streams:
                h.removeFilter(own)
                h.setStream(stream)
            if moved:
                _TERMINAL = None
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
                term.close()


def logging_elsewhere() -> bool:
    """Whether a ``third_party_log`` is catching descriptor 2 right now (its output belongs in that log)."""
    return _TERMINAL is not None


@contextlib.contextmanager
def fd2_silenced() -> Iterator[None]:
    """Descriptor 2 at /dev/null within, for the C++ libraries that print straight to it (OpenCV's FFmpeg writer,
    LiteRT): keep the block to the one call. Errors still arrive, as exceptions."""
    with _FD2:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 2)
                yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def verbose() -> bool:
    """``edgecv --verbose``, for the command being run."""
    import click

    ctx = click.get_current_context(silent=True)
    return bool(ctx and ctx.find_root().params.get("verbose"))


def _is_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False

"""The enrolment gallery: one SQLite file (WAL, one transaction per change) holding every identity's aligned face
chips (PNG) and their embeddings, stamped with the embedder that made them.

Readers (``edgecv run``) never block writers (``edgecv enroll``) under WAL, and a reader sees whole enrolments or
none. A gallery made by another embedder is refused: its vectors live in a different space; ``reembed``
rebuilds every embedding from the stored chips.

A gallery is biometric data: the file is created readable and writable by its owner only (0600, whatever the
umask; SQLite gives its -wal and -shm files the database's mode), every connection has ``secure_delete`` on (a
deleted row's bytes are overwritten with zeros, in its page and in pages freed), and ``remove`` checkpoints the
write-ahead log into the file and truncates it, so a removed person's chips and embeddings leave no bytes behind
(once no reader still holds a snapshot from before the removal: the WAL is then emptied at its next checkpoint).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgecv.errors import EdgecvError

log = logging.getLogger(__name__)

SCHEMA = 1
_TABLES = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identities (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS shots (
    id INTEGER PRIMARY KEY,
    identity INTEGER NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
    chip BLOB NOT NULL,          -- the aligned face chip, PNG
    embedding BLOB NOT NULL,     -- float32, L2-normalised
    source TEXT,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS shots_identity ON shots(identity);
"""


class GalleryMismatch(EdgecvError):
    """The gallery was enrolled with a different embedder."""


@dataclass(frozen=True)
class Identity:
    name: str
    shots: int
    created: float


@dataclass(frozen=True)
class Templates:
    """One L2-normalised template per identity (the mean of its shots' embeddings, renormalised)."""

    names: tuple[str, ...]
    vectors: np.ndarray  # (K, d) float32, C-contiguous

    def __len__(self) -> int:
        return len(self.names)


class Gallery:
    def __init__(self, path: str | Path, create: bool = False, timeout_s: float = 30.0):
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise EdgecvError(f"{self.path}: no such gallery (enrol someone first: edgecv enroll --gallery {self.path} ...)")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if create and not self.path.exists():  # owner only, before SQLite creates it with the umask's mode
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(self.path, 0o600)  # the umask may have taken bits from 0600 too
        self._lock = threading.Lock()
        self.db = sqlite3.connect(str(self.path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
        try:
            self.db.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute("PRAGMA secure_delete=ON")  # deleted faces are zeroed, not just unlinked
            if create:
                self.db.execute("PRAGMA journal_mode=WAL")  # persistent: set once, by the creator
                with self.transaction():
                    for stmt in filter(str.strip, _TABLES.split(";")):
                        self.db.execute(stmt)
                    self.db.execute("INSERT OR IGNORE INTO info VALUES ('schema', ?)", (str(SCHEMA),))
            schema = self.db.execute("SELECT value FROM info WHERE key = 'schema'").fetchone()
        except sqlite3.DatabaseError as exc:  # not SQLite, or SQLite without our tables
            self.db.close()
            raise EdgecvError(f"{self.path}: not an edgecv face gallery ({exc})") from None
        if schema is None or int(schema[0]) > SCHEMA:
            self.db.close()
            raise EdgecvError(f"{self.path}: gallery schema {schema and schema[0]} is not one this edgecv reads ({SCHEMA})")

    # -- plumbing -------------------------------------------------------------------------------------------------
    class _Tx:
        def __init__(self, g: "Gallery"):
            self.g = g

        def __enter__(self):
            self.g._lock.acquire()
            self.g.db.execute("BEGIN IMMEDIATE")  # takes the write lock now: no upgrade deadlock between writers
            return self.g.db

        def __exit__(self, exc_type, *_):
            try:
                self.g.db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.g._lock.release()

    def transaction(self) -> "Gallery._Tx":
        return Gallery._Tx(self)

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Gallery":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the embedder stamp ---------------------------------------------------------------------------------------
    def info(self) -> dict[str, str]:
        return dict(self._query("SELECT key, value FROM info"))

    def check_embedder(self, embedder: "EmbedderStamp", model: str = "this model") -> None:
        """Refuse vectors from another embedder; stamp an empty gallery with this one."""
        info = self.info()
        have = info.get("embedder_id")
        if have is None:
            with self.transaction() as db:
                _stamp(db, embedder)
            return
        embedder_id = embedder.id
        if have != embedder_id:
            raise GalleryMismatch(
                f"{self.path}: enrolled with embedder {have} ({info.get('embedder_name', '?')}) but {model} is embedder "
                f"{embedder_id}; its vectors are not comparable. Rebuild it from the stored face chips: "
                f"edgecv gallery reembed --gallery {self.path} --model {model}"
            )
        variant = info.get("embedder_variant")
        if variant and embedder.variant and variant != embedder.variant:
            log.warning(
                "%s: embedded by the %s artifact of this embedder, %s is its %s one: one face's vectors "
                "differ a little between artifacts (cosine ~0.94 int8 vs fp32, ~0.99 int8 ONNX vs TFLite), "
                "so similarities are a little off; for the best match: edgecv gallery reembed --gallery %s "
                "--model %s",
                self.path,
                variant,
                model,
                embedder.variant,
                self.path,
                model,
            )

    # -- changes (each one transaction) ---------------------------------------------------------------------------
    def enroll(self, name: str, chips: Sequence[np.ndarray], embeddings: np.ndarray, sources: Sequence[str] = ()) -> int:
        """Add shots to ``name`` (created if new); returns the identity's number of shots."""
        return self.enroll_many([(name, chips, embeddings, sources)])[name]

    def enroll_many(self, people: Iterable[tuple[str, Sequence[np.ndarray], np.ndarray, Sequence[str]]]) -> dict[str, int]:
        """Several people in ONE transaction (an import): all land or none; returns each one's number of shots."""
        now, counts = time.time(), {}
        with self.transaction() as db:
            for name, chips, embeddings, sources in people:
                if not name.strip():
                    raise EdgecvError("enrol: the name is empty")
                if len(chips) != len(embeddings) or not len(chips):
                    raise EdgecvError(f"enrol {name!r}: need one embedding per face chip, and at least one")
                sources = list(sources) + [None] * (len(chips) - len(sources))
                db.execute("INSERT OR IGNORE INTO identities (name, created) VALUES (?, ?)", (name, now))
                (ident,) = db.execute("SELECT id FROM identities WHERE name = ?", (name,)).fetchone()
                db.executemany(
                    "INSERT INTO shots (identity, chip, embedding, source, created) VALUES (?, ?, ?, ?, ?)",
                    [
                        (ident, _png(c), np.ascontiguousarray(e, np.float32).tobytes(), src, now)
                        for c, e, src in zip(chips, l2_normalize(embeddings), sources)
                    ],
                )
                counts[name] = db.execute("SELECT COUNT(*) FROM shots WHERE identity = ?", (ident,)).fetchone()[0]
        return counts

    def remove(self, name: str) -> None:
        with self.transaction() as db:
            if not db.execute("DELETE FROM identities WHERE name = ?", (name,)).rowcount:
                raise EdgecvError(f"{self.path}: no identity named {name!r}")
        with self._lock:  # the log still holds the pages from before the delete: fold it in and empty it
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def rename(self, old: str, new: str) -> None:
        with self.transaction() as db:
            if db.execute("SELECT 1 FROM identities WHERE name = ?", (new,)).fetchone():
                raise EdgecvError(f"{self.path}: {new!r} is already enrolled (remove it first, or enrol into it)")
            if not db.execute("UPDATE identities SET name = ? WHERE name = ?", (new, old)).rowcount:
                raise EdgecvError(f"{self.path}: no identity named {old!r}")

    def reembed(self, embed: Callable[[list[np.ndarray]], np.ndarray], embedder: "EmbedderStamp", batch: int = 64) -> int:
        """Recompute every shot's embedding from its stored chip with ``embed`` (chips -> (n, dim)); one transaction,
        so a reader sees the old gallery or the new one, never a mix. Returns the number of shots."""
        with self.transaction() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM shots ORDER BY id")]
            for i in range(0, len(ids), batch):
                part = ids[i : i + batch]
                rows = db.execute(
                    f"SELECT id, chip FROM shots WHERE id IN ({','.join('?' * len(part))}) ORDER BY id", part
                ).fetchall()
                vecs = l2_normalize(embed([_unpng(c) for _, c in rows]))
                db.executemany(
                    "UPDATE shots SET embedding = ? WHERE id = ?",
                    [(v.astype(np.float32).tobytes(), sid) for (sid, _), v in zip(rows, vecs)],
                )
            _stamp(db, embedder)
        return len(ids)

    # -- reads ----------------------------------------------------------------------------------------------------
    def identities(self) -> list[Identity]:
        return [
            Identity(n, k, c)
            for n, k, c in self._query(
                "SELECT i.name, COUNT(s.id), i.created FROM identities i LEFT JOIN shots s ON s.identity = i.id "
                "GROUP BY i.id ORDER BY i.name"
            )
        ]

    def chips(self, name: str) -> list[np.ndarray]:
        return [
            _unpng(c)
            for (c,) in self._query(
                "SELECT s.chip FROM shots s JOIN identities i ON i.id = s.identity WHERE i.name = ? ORDER BY s.id", (name,)
            )
        ]

    def templates(self) -> Templates:
        """Read in one statement (a consistent snapshot under WAL)."""
        names, vecs = self.embeddings()
        if not names:
            return Templates((), vecs)
        start = [0] + [i for i in range(1, len(names)) if names[i] != names[i - 1]]
        means = np.add.reduceat(vecs, start, axis=0)
        return Templates(tuple(names[i] for i in start), np.ascontiguousarray(l2_normalize(means)))

    def embeddings(self) -> tuple[list[str], np.ndarray]:
        """Every shot's identity name and embedding (n, d), in name order (one statement: a consistent snapshot)."""
        rows = self._query("SELECT i.name, s.embedding FROM shots s JOIN identities i ON i.id = s.identity ORDER BY i.name, s.id")
        dim = int(self.info().get("dim", 0))
        if not rows:
            return [], np.zeros((0, dim), np.float32)
        return [r[0] for r in rows], np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), -1)

    def store_calibration(self, values: dict[str, float | int | str]) -> None:
        """Keep a calibrated match threshold (``calibration_*`` keys in ``info``), replacing any earlier one."""
        with self.transaction() as db:
            db.execute("DELETE FROM info WHERE key LIKE 'calibration_%'")
            db.executemany("INSERT INTO info VALUES (?, ?)", [(f"calibration_{k}", str(v)) for k, v in values.items()])

    def calibration(self) -> dict[str, str]:
        """The stored calibration (``store_calibration``'s keys, as strings), or {} if none."""
        return {k[len("calibration_") :]: v for k, v in self.info().items() if k.startswith("calibration_")}

    def version(self) -> int:
        """Changes when another connection commits (SQLite's data_version)."""
        return int(self._query("PRAGMA data_version")[0][0])

    def integrity(self) -> str:
        return str(self._query("PRAGMA integrity_check")[0][0])


@dataclass(frozen=True)
class EmbedderStamp:
    """Which embedder made a gallery's vectors: its id (hash of the trained weights, shared by its fp32 and int8
    artifacts), a readable name, the vector size and which artifact (precision and format)."""

    id: str
    name: str
    dim: int
    variant: str = ""  # which of its artifacts, e.g. "int8 onnx": vectors differ a little between precisions


def _stamp(db: sqlite3.Connection, e: EmbedderStamp) -> None:
    db.executemany(
        "INSERT OR REPLACE INTO info VALUES (?, ?)",
        [("embedder_id", e.id), ("embedder_name", e.name), ("dim", str(e.dim)), ("embedder_variant", e.variant)],
    )


def l2_normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _png(chip: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", chip)
    if not ok:
        raise EdgecvError("cannot encode a face chip as PNG")
    return buf.tobytes()


def _unpng(blob: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)

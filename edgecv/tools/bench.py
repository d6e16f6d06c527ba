"""``edgecv bench``: one table of every artifact of a run (format, precision, size, the task's metric on the
run's test split, latency p50/p99, FPS, speed-up vs the fp32 artifact of the same format), measured in one
run through the runtime backends, and where each stands against this machine's peak (``roofline.py``: MACs,
GMAC/s achieved at p50, % of the peak GEMM throughput of its precision through onnxruntime); written as JSON and
Markdown. Needs no torch: it runs on the device too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from edgecv.data.splits import Split
from edgecv.errors import EdgecvError
from edgecv.export.fidelity import run_backend
from edgecv.runtime.backends import create_backend
from edgecv.tasks import get_task
from edgecv.tools.roofline import artifact_macs, machine_peak, roofline

SUFFIXES = (".onnx", ".tflite", ".engine")


def find_artifacts(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    folder = path / "export" if (path / "export").is_dir() else path
    found = sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES and not p.name.startswith("."))
    if not found:
        raise EdgecvError(f"{path}: no .onnx / .tflite / .engine artifacts (run `edgecv export` first)")
    return found


def bench(
    path: str | Path, run: str | Path | None = None, threads: int | None = None, repeat: int = 1, data: str | Path | None = None
) -> list[dict[str, Any]]:
    """Rows for every artifact under ``path`` (a run dir, an export folder or one file), on the test split of
    ``run`` (default: ``path`` when it is a run dir), read from ``data`` when given (see ``Split.load``)."""
    path = Path(path)
    run_dir = Path(run) if run else path
    if not (run_dir / "split.json").is_file():
        raise EdgecvError(f"{run_dir}: no split.json; pass --run RUN_DIR for the test images")
    split = Split.load(run_dir / "split.json", data)
    rows, sets, peak = [], {}, None
    for artifact in find_artifacts(path):
        backend = create_backend(artifact, threads=threads)
        meta = backend.meta
        key = (meta.task, meta.resize, tuple(meta.input_size))
        if key not in sets:
            sets[key] = get_task(meta.task).eval_set(run_dir, split, "test", meta.input_size)
        es = sets[key]
        images = np.concatenate([es.images] * repeat)
        outputs, ms, _ = run_backend(artifact, images, threads, backend)
        tm = get_task(meta.task).fidelity_metric()
        rows.append(
            {
                "file": artifact.name,
                "format": artifact.suffix.lstrip("."),
                "precision": meta.precision,
                "backend": backend.name,
                "size_mb": round(artifact.stat().st_size / 1e6, 3),
                "metric": tm.name,
                "value": tm.fn([o[: len(es.images)] for o in outputs], es),
                "n": len(es.images),
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
                "fps": 1000.0 / float(np.mean(ms)),
                "threads": threads,
            }
        )
        if backend.name == "onnxruntime" and peak is None:
            peak = machine_peak(threads)
        rows[-1].update(roofline(rows[-1], artifact_macs(artifact), peak))
        backend.close()
    for r in rows:
        base = next((b for b in rows if b["format"] == r["format"] and b["precision"] == "fp32"), None)
        r["speedup_vs_fp32"] = base["p50_ms"] / r["p50_ms"] if base else None
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| artifact | format | precision | threads | MB | metric | p50 ms | p99 ms | FPS | speed-up vs fp32 | "
        "M MACs | GMAC/s | % of peak |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        sp = f"{r['speedup_vs_fp32']:.2f}x" if r["speedup_vs_fp32"] else "-"
        macs, gm, pct = r.get("macs"), r.get("gmacs"), r.get("pct_of_peak")
        lines.append(
            f"| {r['file']} | {r['format']} | {r['precision']} | {r.get('threads') or 'default'} | "
            f"{r['size_mb']:.2f} | {r['metric']} "
            f"{r['value']:.4f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['fps']:.1f} | {sp} | "
            f"{f'{macs / 1e6:.0f}' if macs else '-'} | {f'{gm:.1f}' if gm else '-'} | "
            f"{f'{pct:.1f}%' if pct is not None else '-'} |"
        )
    return "\n".join(lines)


def write_bench(rows: list[dict[str, Any]], out: Path) -> tuple[Path, Path, int]:
    """Merge ``rows`` into ``out/bench.json`` (a row replaces only an earlier one of the same artifact file and
    thread count; rows of other artifacts are kept) and write the table of them all to ``out/bench.md``; returns
    both paths and how many earlier rows were kept."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.json"
    try:
        earlier = json.loads(path.read_text()) if path.is_file() else []
    except json.JSONDecodeError as exc:
        raise EdgecvError(f"{path}: not JSON ({exc}); move it away to start a new table") from None
    key = lambda r: (r["file"], r.get("threads"))  # noqa: E731
    new = {key(r) for r in rows}
    kept = [r for r in earlier if key(r) not in new]
    merged = kept + rows
    (out / "bench.json").write_text(json.dumps(merged, indent=1))
    (out / "bench.md").write_text(to_markdown(merged) + "\n")
    return out / "bench.json", out / "bench.md", len(kept)

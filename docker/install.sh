#!/bin/sh
# Install btsbot-stream with exactly the dependency versions of uv.lock into a virtual
# environment: the one install path of both images (docker/Dockerfile,
# docker/Dockerfile.cuda), run by CI too in a clean environment (tests/deploy/test_install.py).
#
#   docker/install.sh VENV cpu     # onnxruntime (CPU build)
#   docker/install.sh VENV cuda    # onnxruntime-gpu (the `gpu` extra) instead
#
# Needs python3 (3.11+) and uv (UV, default `uv` on PATH; the version is UV_VERSION in
# the Makefile). Runtime dependencies only: no dev or export extra. The project itself is
# installed as a wheel (not editable), as in the images.
set -eu

venv=${1:?usage: install.sh VENV cpu|cuda}
flavour=${2:?usage: install.sh VENV cpu|cuda}
repo=$(cd "$(dirname "$0")/.." && pwd)
uv=${UV:-uv}

case $flavour in
    # onnxruntime and onnxruntime-gpu install the same `onnxruntime` package, file by
    # file: only one of them may be in an environment.
    cpu) set -- --no-install-package onnxruntime-gpu; provider=CPUExecutionProvider ;;
    cuda) set -- --extra gpu --no-install-package onnxruntime; provider=CUDAExecutionProvider ;;
    *) echo "install.sh: flavour must be cpu or cuda, not '$flavour'" >&2; exit 2 ;;
esac

# --locked: refuse a uv.lock that no longer matches pyproject.toml (run `make lock`).
UV_PROJECT_ENVIRONMENT=$venv UV_PYTHON=${UV_PYTHON:-python3} UV_PYTHON_DOWNLOADS=never \
    "$uv" sync --project "$repo" --locked --no-dev --no-editable --compile-bytecode "$@"

"$venv/bin/python" - "$provider" <<'PY'
import sys

import onnxruntime

wanted, found = sys.argv[1], onnxruntime.get_available_providers()
assert wanted in found, f"onnxruntime offers {found}, not {wanted}"
PY
"$venv/bin/btsbot-stream" --version

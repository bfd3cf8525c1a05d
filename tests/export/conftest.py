"""Fixtures of the export tests: synthetic hub checkpoints, an offline hub cache, and
models pulled from it once per session (MaxViT exports take tens of seconds)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from synthetic import (
    FAMILIES,
    checkpoint_files,
    offline_env,
    published_state_dict,
    run_cli,
    train_config,
    write_hub_cache,
)

from btsbot_stream.cli import main
from btsbot_stream.engine.cards import ModelCard, find_card
from btsbot_stream.export.examples import load_examples


@pytest.fixture(scope="session")
def metadata_stats(example_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    metadata = load_examples(example_dir).metadata.astype(np.float64)
    return metadata.mean(axis=0), metadata.std(axis=0)


@pytest.fixture(scope="session")
def states(metadata_stats) -> dict[str, dict]:
    """family -> the synthetic published state_dict."""
    mean, std = metadata_stats
    return {
        key: published_state_dict(family, mean, std, seed=i)
        for i, (key, family) in enumerate(FAMILIES.items())
    }


@pytest.fixture(scope="session")
def hub_files(states) -> dict[str, dict[str, bytes]]:
    """family -> the files of its hub repository."""
    return {key: checkpoint_files(states[key], train_config(FAMILIES[key])) for key in FAMILIES}


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory, hub_files) -> Path:
    """A huggingface_hub cache already holding the four synthetic repositories."""
    cache = tmp_path_factory.mktemp("hf-cache")
    for key, family in FAMILIES.items():
        write_hub_cache(cache, family.repo, hub_files[key])
    return cache


@contextmanager
def offline_hub_at(cache: Path) -> Iterator[None]:
    """In-process offline hub on ``cache``. huggingface_hub reads HF_HUB_* once, at
    import, so its constants are patched besides the environment."""
    import huggingface_hub.constants as hf_constants

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_CACHE", str(cache))
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
        patch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
        yield


@pytest.fixture
def offline_hub(tmp_path: Path) -> Iterator[Path]:
    """An empty offline hub cache of the test's own (tests add repositories to it)."""
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    with offline_hub_at(cache):
        yield cache


# One family runs in a subprocess, with the offline settings coming from the environment
# only, exactly as an operator's shell gives them; the others run in-process through the
# same CLI command (saving a PyTorch import, ~10-20 s, each).
SUBPROCESS_FAMILY = "convnext"


@pytest.fixture(scope="session")
def pulled(
    tmp_path_factory, hub_cache: Path, example_dir: Path, models_dir: Path
) -> Callable[[str], tuple[ModelCard, Path]]:
    """``pulled(family)`` -> (card, models dir): ``btsbot-stream models pull`` run once per
    family from the offline cache."""
    repo = tmp_path_factory.mktemp("models")
    # The production model beside the exported ones, to score with both at once.
    (repo / "btsbot-v1.0.1.onnx").symlink_to(models_dir / "btsbot-v1.0.1.onnx")
    done: dict[str, ModelCard] = {}

    def pull(key: str) -> tuple[ModelCard, Path]:
        if key in done:
            return done[key], repo
        name = FAMILIES[key].name
        args = ["models", "pull", name, "--models-dir", str(repo), "--examples", str(example_dir)]
        if key == SUBPROCESS_FAMILY:
            result = run_cli(*args, env=offline_env(hub_cache))
            assert result.returncode == 0, result.stderr
            output = result.stdout
        else:
            with offline_hub_at(hub_cache):
                invoked = CliRunner().invoke(main, args)
            assert invoked.exit_code == 0, (invoked.output, invoked.exception)
            output = invoked.stdout
        assert f"exported {name}" in output
        done[key] = find_card(name, repo)
        return done[key], repo

    return pull

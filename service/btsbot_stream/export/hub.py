"""Where a checkpoint comes from: the Hugging Face hub (through its cache) or a folder.

Both give the same two files, ``pytorch_model.bin`` (a state_dict) and
``train_config.json``, so everything after this module is one code path. Downloads go
through ``huggingface_hub.hf_hub_download``: it honours ``HF_HUB_CACHE``/``HF_HOME`` and
``HF_HUB_OFFLINE`` (offline, a cached snapshot is used and nothing is fetched).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import hf_hub_download
from huggingface_hub.utils import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from btsbot_stream.engine.cards import sha256_of
from btsbot_stream.export.exceptions import CheckpointError, DownloadError

WEIGHTS_FILE = "pytorch_model.bin"
CONFIG_FILE = "train_config.json"
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class CheckpointFiles:
    """The two files of a BTSbot checkpoint, and where they came from."""

    weights: Path
    config: Path
    repo: str | None = None  # hub repository id, None for a local folder
    revision: str | None = None  # resolved commit sha of the hub snapshot


def from_folder(folder: Path) -> CheckpointFiles:
    """A local folder in the hub layout (``pytorch_model.bin`` + ``train_config.json``)."""
    missing = [name for name in (WEIGHTS_FILE, CONFIG_FILE) if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(
            f"{folder} lacks {' and '.join(missing)}; a BTSbot checkpoint folder holds "
            f"{WEIGHTS_FILE} and {CONFIG_FILE}, as in the Hugging Face repositories"
        )
    return CheckpointFiles(weights=folder / WEIGHTS_FILE, config=folder / CONFIG_FILE)


def from_hub(repo: str, revision: str | None = None) -> CheckpointFiles:
    """Download (or find in the cache) a checkpoint and check the cached bytes.

    Parameters
    ----------
    repo : str
        Hugging Face repository id, e.g. ``nabeelr/BTSbot-convnext-pico-galaxyzoo``.
    revision : str, optional
        Branch, tag or commit sha (default: ``main``).
    """
    weights = _download(repo, WEIGHTS_FILE, revision)
    # A cached file lives at .../snapshots/<commit sha>/<file>: the sha pins the revision
    # actually used, whatever branch or tag was asked for, and the config is taken from
    # that same commit (a push between the two downloads cannot mix two versions).
    commit = weights.parent.name
    resolved = commit if _COMMIT.fullmatch(commit) else revision
    config = _download(repo, CONFIG_FILE, resolved)
    for path in (weights, config):
        check_cached_blob(path)
    return CheckpointFiles(weights=weights, config=config, repo=repo, revision=resolved)


def _download(repo: str, filename: str, revision: str | None) -> Path:
    where = f"{repo}@{revision or 'main'}"
    try:
        return Path(hf_hub_download(repo_id=repo, filename=filename, revision=revision))
    except LocalEntryNotFoundError as exc:
        raise DownloadError(
            f"{filename} of {where} is not in the Hugging Face cache and the hub cannot be "
            "reached (HF_HUB_OFFLINE=1 or no network); pull it once online, or copy the files "
            "to a folder and use 'btsbot-stream models export --from DIR NAME'"
        ) from exc
    except RevisionNotFoundError as exc:
        raise DownloadError(f"{repo} has no revision {revision!r}") from exc
    except RepositoryNotFoundError as exc:
        raise DownloadError(f"the hub has no (public) repository {repo!r}") from exc
    except EntryNotFoundError as exc:
        raise DownloadError(f"{where} has no file {filename}") from exc
    except Exception as exc:  # network and HTTP failures of any transport library
        raise DownloadError(
            f"downloading {filename} of {where} failed: {type(exc).__name__}: {exc}"
        ) from exc


def _git_blob_sha1(path: Path) -> str:
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_cached_blob(path: Path) -> None:
    """Check a cached file against the hash the hub named it by.

    The cache stores each file once as ``blobs/<etag>`` behind a snapshot symlink; the
    etag of an LFS file (the weights) is its sha256, that of a small git file its git
    blob sha1. A mismatch means a damaged or truncated cache entry: torch.load would
    either fail obscurely or, worse, load damaged weights. Files not behind a symlink
    (caches on file systems without links) cannot be checked this way and pass.
    """
    if not path.is_symlink():
        return
    blob = path.resolve()
    name = blob.name
    if _SHA256.fullmatch(name):
        actual, kind = sha256_of(blob), "sha256"
    elif _COMMIT.fullmatch(name):
        actual, kind = _git_blob_sha1(blob), "git sha1"
    else:
        return
    if actual != name:
        raise CheckpointError(
            f"{path.name} in the Hugging Face cache is corrupt or truncated ({kind} {actual}, "
            f"the hub says {name}); delete {blob} and the snapshot link {path}, then pull again"
        )

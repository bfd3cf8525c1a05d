"""Inputs to check exported models on (numpy only: ``models verify`` uses it without torch).

- The BTSbot example set: the 39 preprocessed triplets and candidate rows that the
  BTSbot repository ships as ``example_data/`` (``usage_triplets.npy``, (39, 63, 63, 3)
  float64 NHWC, and ``usage_candidates.csv`` with the 25 feature columns).
- Random triplets preprocessed like real ones (each stamp scaled to unit L2 norm), with
  metadata rows resampled column by column from a pool of real rows when there is one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from btsbot_stream.alerts.features import METADATA_FEATURES, N_FEATURES
from btsbot_stream.export.exceptions import ExportError

TRIPLETS_FILE = "usage_triplets.npy"
CANDIDATES_FILE = "usage_candidates.csv"
STAMP = 63


@dataclass(frozen=True, slots=True)
class InputSet:
    """A named batch of model inputs.

    Attributes
    ----------
    name : str
        What the batch is, for cards and messages.
    triplets : numpy.ndarray
        (N, 63, 63, 3) float32, NHWC (the engine's layout; models taking NCHW get the
        transpose).
    metadata : numpy.ndarray
        (N, 25) float32 in :data:`METADATA_FEATURES` order.
    """

    name: str
    triplets: np.ndarray
    metadata: np.ndarray

    @property
    def nchw(self) -> np.ndarray:
        return np.ascontiguousarray(self.triplets.transpose(0, 3, 1, 2))


def load_examples(folder: Path) -> InputSet:
    """The BTSbot example triplets and their metadata from ``folder``."""
    triplets_path, rows_path = folder / TRIPLETS_FILE, folder / CANDIDATES_FILE
    try:
        triplets = np.load(triplets_path, allow_pickle=False)
        with rows_path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        metadata = np.array(
            [[float(row[f]) for f in METADATA_FEATURES] for row in rows], dtype=np.float32
        )
    except (OSError, ValueError, KeyError) as exc:
        raise ExportError(
            f"cannot read the BTSbot example set in {folder} ({TRIPLETS_FILE} + "
            f"{CANDIDATES_FILE} with the 25 feature columns): {type(exc).__name__}: {exc}"
        ) from exc
    if (
        triplets.ndim != 4
        or triplets.shape[1:] != (STAMP, STAMP, 3)
        or len(triplets) != len(metadata)
    ):
        raise ExportError(
            f"{triplets_path} has shape {triplets.shape} for {len(metadata)} candidate rows; "
            f"expected (N, {STAMP}, {STAMP}, 3) with one row per triplet"
        )
    return InputSet(
        name=f"{len(triplets)} BTSbot example triplets",
        triplets=triplets.astype(np.float32),
        metadata=metadata,
    )


def random_inputs(n: int, seed: int, metadata_pool: np.ndarray | None = None) -> InputSet:
    """``n`` random triplets normalised like real stamps, with plausible metadata.

    Parameters
    ----------
    n : int
        Batch size.
    seed : int
        Seed of the generator (parity is reproducible).
    metadata_pool : numpy.ndarray, optional
        (M, 25) real metadata rows; each column of the result is drawn from the same
        column of the pool, so values keep their real ranges (ra in degrees, jd-derived
        ages in days, -999 sentinels). Without a pool, standard normal values.
    """
    rng = np.random.default_rng(seed)
    stamps = rng.standard_normal((n, STAMP, STAMP, 3))
    stamps /= np.linalg.norm(stamps, axis=(1, 2), keepdims=True)
    if metadata_pool is not None and len(metadata_pool):
        rows = rng.integers(0, len(metadata_pool), size=(n, N_FEATURES))
        metadata = metadata_pool[rows, np.arange(N_FEATURES)]
    else:
        metadata = rng.standard_normal((n, N_FEATURES))
    return InputSet(
        name=f"random batch of {n}",
        triplets=stamps.astype(np.float32),
        metadata=metadata.astype(np.float32),
    )

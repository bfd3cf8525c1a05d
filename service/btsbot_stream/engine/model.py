"""One ONNX Runtime session per model, checked against its card, scoring in batches."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from btsbot_stream.engine import providers
from btsbot_stream.engine.cards import ModelCard, find_card, verify_file
from btsbot_stream.engine.exceptions import ModelIntegrityError

log = logging.getLogger(__name__)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Numerically stable for large |x|; float64 keeps 1e-7 agreement with torch.
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x.astype(np.float64))), dtype=np.float32)


def model_feeds(
    card: ModelCard, triplets: np.ndarray, metadata: np.ndarray
) -> dict[str, np.ndarray]:
    """A batch as the graph's inputs: the card's names, layout and dtype.

    Parameters
    ----------
    card : ModelCard
        The model's card.
    triplets : numpy.ndarray
        (N, 63, 63, 3) float32, NHWC.
    metadata : numpy.ndarray
        (N, 25) float32 (left out for image-only models).
    """
    dtype = np.float16 if card.input_dtype == "float16" else np.float32
    image = triplets if card.image_layout == "NHWC" else triplets.transpose(0, 3, 1, 2)
    feeds = {card.image_input: np.ascontiguousarray(image, dtype=dtype)}
    if card.metadata_input:
        feeds[card.metadata_input] = np.ascontiguousarray(metadata, dtype=dtype)
    return feeds


class OnnxModel:
    """A loaded model: ``predict(triplets, metadata) -> probabilities``.

    Parameters
    ----------
    card : ModelCard
        The model's card (names, layout, output kind).
    path : Path
        The ``.onnx`` file, already checked against the card's sha256.
    device : {"auto", "cpu", "cuda", "tensorrt"}
        Execution-provider preference; a GPU asked for and missing is an error.
    threads : int
        ONNX Runtime intra-op threads (0: ONNX Runtime's default, one per core).
    max_batch : int or None
        Largest batch given to one ``run`` call (default: the card's recommendation, or
        the largest bucket).
    gpu_options : dict
        Per-provider options, e.g. ``{"CUDAExecutionProvider": {"device_id": 0}}``.
    buckets : sequence of int
        Batch sizes the session ever sees: a batch is padded up to the smallest bucket
        that holds it, so a GPU pays each shape's first-run cost (cuDNN search, TensorRT
        engine build) once, at warm-up, never on a live batch. Empty: no padding.
    degrade : bool
        A GPU asked for and missing: run on the CPU with an error log instead of failing.
    spinning : bool
        Whether ONNX Runtime's idle threads spin-wait for work (quickest when the
        session has its cores to itself; it takes CPU from preparation workers on the
        same cores, so those turn it off).
    """

    def __init__(
        self,
        card: ModelCard,
        path: Path,
        device: providers.Device = "auto",
        threads: int = 0,
        max_batch: int | None = None,
        gpu_options: dict[str, Any] | None = None,
        buckets: Sequence[int] = (),
        degrade: bool = False,
        spinning: bool = True,
    ) -> None:
        self.card = card
        self.buckets = sorted(set(buckets))
        # The card's recommendation caps the batch (MaxViT at 224 needs ~18 GB of RAM at
        # 256 on a CPU); fixed GPU buckets are the operator's explicit choice.
        cap = card.recommended_max_batch
        self.max_batch = self.buckets[-1] if self.buckets else min(max_batch or cap, cap)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        if not spinning:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # "auto" means whatever works: it may end on the CPU without failing.
        degrade = degrade or device == "auto"
        requested = providers.resolve(device, degrade)
        self.session = ort.InferenceSession(
            str(path),
            options,
            providers=providers.provider_options(requested, gpu_options or {}),
        )
        self.provider = providers.check_active(self.session, requested, card.name, degrade)
        self._check_graph()
        log.info("model %s loaded from %s on %s", card.name, path, self.provider)

    def _check_graph(self) -> None:
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        wanted = {self.card.image_input} | (
            {self.card.metadata_input} if self.card.metadata_input else set()
        )
        if inputs != wanted or self.card.output not in outputs:
            raise ModelIntegrityError(
                f"model {self.card.name!r}: graph has inputs {sorted(inputs)} and outputs "
                f"{sorted(outputs)}, the card expects inputs {sorted(wanted)} and output "
                f"{self.card.output!r}"
            )

    @property
    def name(self) -> str:
        return self.card.name

    def predict(self, triplets: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        """Probabilities for a batch.

        Parameters
        ----------
        triplets : numpy.ndarray
            (N, 63, 63, 3) float32, NHWC, channels science/template/difference.
        metadata : numpy.ndarray
            (N, 25) float32 in the card's feature order (ignored by image-only models).

        Returns
        -------
        numpy.ndarray
            (N,) float32 probabilities in [0, 1].
        """
        n = len(triplets)
        out = np.empty(n, dtype=np.float32)
        for start in range(0, n, self.max_batch):
            stop = min(start + self.max_batch, n)
            out[start:stop] = self._run(triplets[start:stop], metadata[start:stop])
        return out

    def warm_up(self) -> None:
        """Run every batch shape once, so no live batch pays a first-shape cost."""
        for size in self.buckets or [1, self.max_batch]:
            self._run(np.zeros((size, 63, 63, 3), np.float32), np.zeros((size, 25), np.float32))

    def _pad(self, triplets: np.ndarray, metadata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(triplets)
        size = next((b for b in self.buckets if b >= n), n)
        if size == n:
            return triplets, metadata
        extra = size - n
        return (
            np.concatenate([triplets, np.zeros((extra, *triplets.shape[1:]), triplets.dtype)]),
            np.concatenate([metadata, np.zeros((extra, *metadata.shape[1:]), metadata.dtype)]),
        )

    def _run(self, triplets: np.ndarray, metadata: np.ndarray) -> np.ndarray:
        n = len(triplets)
        triplets, metadata = self._pad(triplets, metadata)
        (raw,) = self.session.run([self.card.output], model_feeds(self.card, triplets, metadata))
        values = np.asarray(raw, dtype=np.float32).reshape(len(triplets), -1)
        if values.shape[1] != 1:
            raise ModelIntegrityError(
                f"model {self.name!r} returned shape {raw.shape}, expected (N, 1)"
            )
        scores = values[:n, 0]  # padding rows dropped
        return _sigmoid(scores) if self.card.output_kind == "logit" else scores


def load_model(
    name: str,
    models_dir: Path,
    device: providers.Device = "auto",
    threads: int = 0,
    max_batch: int | None = None,
    gpu_options: dict[str, Any] | None = None,
    buckets: Sequence[int] = (),
    degrade: bool = False,
    spinning: bool = True,
) -> OnnxModel:
    """Find a model's card, check its file, open its session; fail fast with the fix."""
    card = find_card(name, models_dir)
    path = verify_file(card, models_dir)
    return OnnxModel(
        card, path, device, threads, max_batch, gpu_options, buckets, degrade, spinning
    )

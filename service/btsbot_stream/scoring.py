"""Messages -> scores: decode, prepare, batch the valid alerts, run every model,
scatter results back by index. Shared by the ``score`` CLI and the stream service.

Only valid alerts reach the models; every input gets exactly one :class:`Outcome` per
record (or one for an undecodable message), so counts always reconcile.
:func:`prepare_message` is the boundary of one message: whatever its bytes make the
decoder or the preparation raise ends as that message's (or record's) outcome, an
unforeseen exception as ``internal_error`` naming its type (logged, rate-limited).
Only process-level failures (:class:`BtsbotError` other than ``InvalidAlert``, such as
an unreachable schema registry) go through: they are not the message's fault.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from btsbot_stream import metrics
from btsbot_stream.alerts.avro import AlertDecoder, DecodedAlert
from btsbot_stream.alerts.exceptions import InvalidAlert, Reject
from btsbot_stream.alerts.features import METADATA_FEATURES
from btsbot_stream.alerts.prepare import Prepared, identity, prepare, stack
from btsbot_stream.config import EngineSettings
from btsbot_stream.engine.exceptions import ModelIntegrityError
from btsbot_stream.engine.model import OnnxModel, load_model
from btsbot_stream.engine.providers import gpu_options
from btsbot_stream.errors import BtsbotError, ConfigError
from btsbot_stream.log_limit import LogLimiter

log = logging.getLogger(__name__)
_unforeseen = LogLimiter(log, interval_s=60.0)
_DETAIL_CHARS = 300


@dataclass(slots=True)
class Outcome:
    """The result for one alert record (or one undecodable message)."""

    alert: DecodedAlert | None
    object_id: str | None = None
    candid: int | None = None
    scores: dict[str, float] = field(default_factory=dict)
    reject: Reject | None = None

    @property
    def ok(self) -> bool:
        return self.reject is None


@dataclass(slots=True)
class PreparedMessage:
    """A message after the CPU stage: its records with model inputs or rejects."""

    records: list[tuple[DecodedAlert, Prepared | Reject]]
    failure: Reject | None = None


def check_models(models: Sequence[OnnxModel]) -> None:
    """Refuse models whose metadata order differs from what we compute (fail at start)."""
    for model in models:
        features = model.card.metadata_features
        if model.card.uses_metadata and tuple(features or ()) != METADATA_FEATURES:
            raise ModelIntegrityError(
                f"model {model.name!r} expects metadata {features}, this service computes "
                f"{METADATA_FEATURES}"
            )


def internal_error(exc: Exception, stage: str) -> Reject:
    """An exception nobody foresaw, as this input's outcome (the process goes on)."""
    kind = type(exc).__name__
    _unforeseen.error(
        f"{stage}:{kind}",
        "unforeseen %s in the %s of a message: made it an internal_error outcome",
        kind,
        stage,
        exc_info=exc,
    )
    return Reject("internal_error", f"{stage}: {kind}: {exc}"[:_DETAIL_CHARS])


def prepare_message(decoder: AlertDecoder, data: bytes) -> PreparedMessage:
    """The CPU-bound stage for one message (decode + stamps + features); never raises
    for anything the message contains."""
    try:
        alerts = decoder.decode(data)
    except InvalidAlert as exc:
        return PreparedMessage([], Reject.from_error(exc))
    except BtsbotError:
        raise  # process-level, e.g. the schema registry unreachable
    except Exception as exc:
        return PreparedMessage([], internal_error(exc, "decoding"))
    records: list[tuple[DecodedAlert, Prepared | Reject]] = []
    for alert in alerts:
        try:
            prepared = prepare(alert, decoder.limits.max_stamp_bytes)
        except BtsbotError:
            raise
        except Exception as exc:
            prepared = internal_error(exc, "preparation")
        records.append((alert, prepared))
    return PreparedMessage(records)


def model_inputs(valid: list[Prepared]) -> tuple[np.ndarray, np.ndarray, list[int] | None]:
    """The batch arrays for ``valid`` and the array row of each (None: row i is valid[i]).

    Alerts prepared into one shared-memory slot are rows of it, in order: the slot's rows
    from the first to the last go to the models as they are (no copy), rows of rejected
    or dropped messages between them included and their scores ignored, as long as such
    holes are at most an eighth of the span (a batch of bad messages costs no inference).
    Otherwise the rows are gathered (one copy), or stacked for alerts prepared in-process.
    """
    rows = valid[0].rows
    if rows is not None and all(p.rows is rows for p in valid):
        first, last = valid[0].row, valid[-1].row
        span = last - first + 1
        increasing = all(a.row < b.row for a, b in itertools.pairwise(valid))
        if increasing and (span - len(valid)) * 8 <= span:
            positions = None if span == len(valid) else [p.row - first for p in valid]
            return rows.triplets[first : last + 1], rows.metadata[first : last + 1], positions
        picked = [p.row for p in valid]
        return rows.triplets[picked], rows.metadata[picked], None
    triplets, meta = stack(valid)
    return triplets, meta, None


class Scorer:
    """Runs every model on a batch of prepared alerts."""

    def __init__(self, models: Sequence[OnnxModel]) -> None:
        check_models(models)
        self.models = list(models)

    def score(self, messages: Sequence[PreparedMessage]) -> list[list[Outcome]]:
        """Outcomes per message, in input order (one per record, or one failure)."""
        results: list[list[Outcome]] = []
        valid: list[Prepared] = []
        slots: list[Outcome] = []
        for message in messages:
            if message.failure is not None:
                results.append([Outcome(None, reject=message.failure)])
                continue
            outcomes = []
            for alert, prepared in message.records:
                object_id, candid = identity(alert)
                outcome = Outcome(alert, object_id, candid)
                if isinstance(prepared, Reject):
                    outcome.reject = prepared
                else:
                    valid.append(prepared)
                    slots.append(outcome)
                outcomes.append(outcome)
            results.append(outcomes)
        if valid:
            self._run_models(valid, slots)
        return results

    def _run_models(self, valid: list[Prepared], slots: list[Outcome]) -> None:
        triplets, meta, positions = model_inputs(valid)
        metrics.BATCH_SIZE.observe(len(valid))
        for model in self.models:
            started = time.perf_counter()
            try:
                probabilities = model.predict(triplets, meta)
            except Exception as exc:  # ONNX Runtime errors are not typed; isolate the batch
                log.exception("model %s failed on a batch of %d", model.name, len(valid))
                for outcome in slots:
                    outcome.reject = Reject("inference_failed", f"{model.name}: {exc}")
                return
            metrics.INFERENCE_SECONDS.labels(model.name).observe(time.perf_counter() - started)
            if len(probabilities) != len(triplets):
                raise ModelIntegrityError(
                    f"model {model.name} returned {len(probabilities)} scores for {len(triplets)}"
                )
            if positions is not None:
                probabilities = probabilities[positions]
            for outcome, p in zip(slots, probabilities.tolist(), strict=True):
                outcome.scores[model.name] = p
            metrics.ALERTS_SCORED.labels(model.name).inc(len(slots))
        # NaN can only come from a broken model or input we did not foresee; never publish it.
        for outcome in slots:
            if any(not np.isfinite(v) for v in outcome.scores.values()):
                outcome.reject = Reject("inference_failed", f"non-finite score {outcome.scores}")
                outcome.scores = {}


def load_scorer(engine: EngineSettings, spinning: bool = True) -> Scorer:
    """Load, check and warm up every model (fails fast, with the fix, on any problem).

    ``spinning``: ONNX Runtime's threads spin-wait between batches (off when preparation
    workers share the cores)."""
    names = engine.models
    if not names:
        raise ConfigError("no model given: pass --model NAME (e.g. btsbot-v1.0.1)")
    if len(set(names)) != len(names):
        raise ConfigError(f"a model is named twice in {list(names)}")
    options = gpu_options(
        engine.gpu_device_id,
        engine.cudnn_conv_algo_search,
        engine.tensorrt_fp16,
        str(engine.tensorrt_cache_dir) if engine.tensorrt_cache_dir else None,
    )
    models = []
    for name in names:
        model = load_model(
            name,
            engine.models_dir,
            engine.device,
            engine.threads,
            engine.batch_size,
            options,
            engine.batch_buckets,
            engine.on_missing_gpu == "degrade",
            spinning,
        )
        if engine.warmup:
            model.warm_up()
        models.append(model)
    return Scorer(models)

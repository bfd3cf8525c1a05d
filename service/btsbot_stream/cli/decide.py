"""``btsbot-stream decide``: the decision stage (Kafka), or ``--replay`` over files."""

from __future__ import annotations

import collections
import json
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from pathlib import Path
from typing import IO

import click

from btsbot_stream import config, logs
from btsbot_stream.alerts.sources import expand
from btsbot_stream.cli import options
from btsbot_stream.cli.score import read_chunks, scored_chunks
from btsbot_stream.config import DecideSettings, EngineSettings
from btsbot_stream.decisions.alerts import ScoredAlert
from btsbot_stream.decisions.events import candidate_event
from btsbot_stream.decisions.replay import replay_objects
from btsbot_stream.scoring import Scorer, load_scorer
from btsbot_stream.workers import Decoding, InlinePreparer


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path, exists=True))
@options.config_file("its [kafka] and [decide] sections")
@click.option(
    "--replay",
    is_flag=True,
    envvar="BTSBOT_DECIDE_REPLAY",
    show_envvar=True,
    help="Score PATHS (files, folders, nightly archives) and decide object by object, "
    "in jd order, without Kafka.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    envvar="BTSBOT_DECIDE_OUT",
    show_envvar=True,
    help="--replay: JSON-lines file of candidate events ('-' for standard output).",
)
@options.exit_when_idle
@options.engine_options
@options.schema_dir
@options.schema_registry
def decide(
    paths: tuple[Path, ...],
    config_path: Path | None,
    replay: bool,
    out_path: Path | None,
    exit_when_idle: float | None,
    engine: EngineSettings,
    schema_dir: Path | None,
    schema_registry: str | None,
) -> None:
    """Decide per object, as BTSbot does in production: save and trigger policies
    (default: bts_p1, bts_p2, prod_p1, prod_p2) over each object's scored alerts.

    Streaming (default): consume the scored topic (kafka.output_topic), keep each
    object's alerts in a fault-tolerant state store, publish one candidate event per
    (object, policy) to decide.candidates_topic. SIGTERM/SIGINT commit and exit 0.

    --replay PATHS --out FILE: score alert files with the engine options below (as
    `score` does) and apply the same policy code object by object in jd order; one
    JSON line per fire. The engine options apply to --replay only.
    """
    if replay:
        if not paths or out_path is None:
            raise click.UsageError("--replay needs alert PATHS and --out FILE")
        settings = config.load_decide(config_path)
        _replay(paths, out_path, settings, engine, schema_dir, schema_registry)
        return
    if paths or out_path is not None:
        raise click.UsageError("PATHS and --out go with --replay")
    service = config.load(config_path)
    obs = service.observability
    logs.configure(obs.log_level, obs.log_format)
    from btsbot_stream.stream.decide.run import run_decide  # Kafka clients load only here

    run_decide(service, exit_when_idle)


def _scored_alerts(
    paths: tuple[Path, ...],
    scorer: Scorer,
    decoding: Decoding,
    batch_size: int,
    counts: collections.Counter[str],
) -> Iterator[tuple[str, ScoredAlert]]:
    files = expand(paths)
    counts["files"] = len(files)
    preparer = InlinePreparer(decoding)  # a replay is small: no worker processes
    chunks = read_chunks(files, decoding.limits.max_message_bytes, batch_size, None)
    with closing(preparer):
        for chunk in scored_chunks(chunks, preparer, scorer):
            for _, outcomes in chunk:
                for outcome in outcomes:
                    if outcome.reject is not None or outcome.alert is None:
                        counts[f"unscored:{outcome.reject.reason if outcome.reject else '?'}"] += 1
                        continue
                    counts["scored"] += 1
                    candidate = outcome.alert.record["candidate"]
                    scored = ScoredAlert.from_candidate(candidate, outcome.scores)
                    yield str(outcome.object_id), scored


def _replay(
    paths: tuple[Path, ...],
    out_path: Path,
    settings: DecideSettings,
    engine: EngineSettings,
    schema_dir: Path | None,
    schema_registry: str | None,
) -> None:
    scorer = load_scorer(engine)
    decoding = Decoding(schema_dir=schema_dir, schema_registry=schema_registry)
    models = {m.name: {"version": m.card.version, "sha256": m.card.sha256} for m in scorer.models}
    counts: collections.Counter[str] = collections.Counter()
    alerts = list(_scored_alerts(paths, scorer, decoding, engine.batch_size, counts))
    saved: collections.Counter[str] = collections.Counter()
    with ExitStack() as stack:
        out: IO[str] = (
            sys.stdout if str(out_path) == "-" else stack.enter_context(out_path.open("w"))
        )
        for item in replay_objects(alerts, settings.policies, settings.retention_days):
            saved[item.fire.policy.name] += 1
            event = candidate_event(
                item.object_id, item.fire, item.state, models, int(time.time() * 1000)
            )
            out.write(json.dumps(event) + "\n")
    objects = len({object_id for object_id, _ in alerts})
    per_policy = ", ".join(f"{p.name}={saved[p.name]}" for p in settings.policies)
    skipped = ", ".join(
        f"{k.removeprefix('unscored:')}={v}"
        for k, v in sorted(counts.items())
        if k.startswith("unscored:")
    )
    click.echo(
        f"{counts['scored']} scored alerts of {objects} objects from {counts['files']} files; "
        f"objects saved per policy: {per_policy}" + (f"; not scored: {skipped}" if skipped else ""),
        err=True,
    )

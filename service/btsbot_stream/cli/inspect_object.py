"""``btsbot-stream object ZTF...``: one object's state in the decision stage."""

from __future__ import annotations

import json
from pathlib import Path

import click

from btsbot_stream import config
from btsbot_stream.cli import options


@click.command("object")
@click.argument("object_id")
@options.config_file("the Kafka connection, scored topic and decide group")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="BTSBOT_OBJECT_STATE_DIR",
    show_envvar=True,
    help="Read a stopped stage's local store instead of the changelog topic.",
)
def inspect_object(object_id: str, config_path: Path | None, state_dir: Path | None) -> None:
    """Print OBJECT_ID's state in the decision stage as JSON: its alerts in jd order
    (candid, jd, fid, magpsf, ra, dec, scores), the policies fired and where.

    By default reads the stage's changelog topic (committed state, works while the
    stage runs; reads the whole topic, so it takes a while on a large store). Exits 1
    when the object is not in the state (never seen, or expired).
    """
    settings = config.load(config_path)
    from btsbot_stream.stream.decide import readback  # Kafka clients load only here

    if state_dir is not None:
        objects = readback.from_state_dir(settings, state_dir)
        source = str(state_dir)
    else:
        topic = readback.changelog_topic(settings)
        client = {"bootstrap.servers": settings.kafka.bootstrap_servers}
        objects = readback.from_changelog({**client, **settings.kafka.client_properties()}, topic)
        source = topic
    found = next((o for o in objects if o.object_id == object_id), None)
    if found is None:
        raise click.ClickException(f"{object_id} is not in the decision state ({source})")
    state = found.state
    columns = ("candid", "jd", "fid", "magpsf", "ra", "dec", "scores")
    columns_fired = ("candid", "jd", "magpsf", "late")
    out = {
        "objectId": object_id,
        "source": source,
        "expires_at_ms": found.expires_at_ms,
        "alerts": [dict(zip(columns, row, strict=True)) for row in state["alerts"]],
        "fired": {
            name: dict(zip(columns_fired, row, strict=True)) for name, row in state["fired"].items()
        },
    }
    click.echo(json.dumps(out, indent=2))

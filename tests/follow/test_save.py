"""``watch --save``: files readable by fastavro and astropy, a CSV that survives crashes."""

from __future__ import annotations

import csv
from pathlib import Path

import fastavro
import numpy as np
from astropy.io import fits
from PIL import Image

from btsbot_stream.follow.alert_view import PAGE, AlertReader
from btsbot_stream.follow.items import header_view, with_alert
from btsbot_stream.follow.save import CSV_NAME, Saver, safe_name
from scored_alerts import MODEL, demo_scored, record_of, score_of


def _save_all(saver: Saver) -> None:
    reader = AlertReader(PAGE)
    for offset, msg in enumerate(demo_scored()):
        record = reader.read(msg.value)
        item = header_view("alert", "scored", 0, offset, 0, msg.key, msg.headers)
        saver.save(with_alert(item, record), msg.value, record)


def test_saved_alert_cutouts_and_scores_are_readable(tmp_path: Path) -> None:
    saver = Saver(tmp_path)
    _save_all(saver)
    saver.close()
    for msg in demo_scored():
        want = record_of(msg)
        folder = tmp_path / want["objectId"]
        with (folder / f"{want['candid']}.avro").open("rb") as fh:
            (got,) = fastavro.reader(fh)
        assert got["candid"] == want["candid"] and got["btsbot"]["scores"][0]["model"] == MODEL
        for kind in ("science", "template", "difference"):
            with fits.open(folder / f"{want['candid']}_{kind}.fits.gz") as hdul:
                data = hdul[0].data
            assert data.ndim == 2 and max(data.shape) <= 63
            png = np.asarray(Image.open(folder / f"{want['candid']}_{kind}.png"))
            assert png.shape[:2] == data.shape
    with (tmp_path / CSV_NAME).open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(demo_scored())
    by_candid = {int(r["candid"]): r for r in rows}
    for msg in demo_scored():
        row = by_candid[record_of(msg)["candid"]]
        assert row["model"] == MODEL and float(row["score"]) == score_of(msg)
        assert float(row["magpsf"]) == record_of(msg)["candidate"]["magpsf"]


def test_a_row_cut_short_by_a_crash_is_dropped_and_saved_keys_known(tmp_path: Path) -> None:
    saver = Saver(tmp_path)
    _save_all(saver)
    saver.close()
    path = tmp_path / CSV_NAME
    whole = path.read_bytes()
    path.write_bytes(whole + b"alert,ZTF99zzzzzzz,12345,,btsbot-v1.0.1,0.5")  # no newline
    again = Saver(tmp_path)
    assert path.read_bytes() == whole
    keys = list(again.saved_keys())
    assert keys == [("alert", record_of(m)["candid"]) for m in demo_scored()]
    again.close()
    with path.open(newline="") as fh:
        assert len(list(csv.reader(fh))) == len(demo_scored()) + 1  # header + rows


def test_names_from_the_stream_cannot_leave_the_folder() -> None:
    assert safe_name("../../etc/passwd") == "_.._etc_passwd"
    assert safe_name("..") == "_"
    assert safe_name("ZTF20aajcdad") == "ZTF20aajcdad"
    assert "/" not in safe_name("a/b\\c") and "\x00" not in safe_name("a\x00b")

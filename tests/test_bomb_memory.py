"""The resource bombs, measured as the process sees them: in a fresh interpreter, peak
resident memory (``ru_maxrss``) after each bomb against the idle process, and the time
each takes to be refused. Before the limits, the 2 GiB stamp drove ``score`` to 2.4 GiB
and the record and array bombs kept a thread busy for minutes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from corpus import DEMO_ALERTS

HERE = Path(__file__).parent
ABOVE_IDLE_MIB = 256  # the ceiling above the idle process
BOMB_SECONDS = 2.0  # each refusal; milliseconds expected, minutes without the limits

_PROGRAM = r"""
import gc, json, resource, sys, time, zlib
sys.path.insert(0, sys.argv[1])
import hostile_fits
import hostile_payloads as payloads
from btsbot_stream.alerts.avro import AlertDecoder
from btsbot_stream.scoring import prepare_message

real = open(sys.argv[2], "rb").read()
bombs = list(payloads.bombs(real))
schema, record = payloads.parts(real)
odd = next(hostile_fits.fits_cases(real, "warm-up"))  # astropy imported, as after odd traffic
decoder = AlertDecoder()
for data in (real, odd.data, real):
    prepare_message(decoder, data)
gc.collect()
def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
idle = peak_mib()
results = []
for bomb in bombs:
    start = time.perf_counter()
    message = prepare_message(decoder, bomb.data)
    seconds = time.perf_counter() - start
    reject = message.failure or next(p for _, p in message.records if hasattr(p, "reason"))
    results.append({"name": bomb.name, "reason": reject.reason, "seconds": seconds,
                    "bytes": len(bomb.data), "expected": sorted(bomb.reasons),
                    "above_idle_mib": peak_mib() - idle})
# The stamp bomb really holds 2 GiB: inflate it in 64 MiB steps, counting.
stamp = payloads.zeros_deflate(2 << 30, gzip=True)
inflater, total, pending = zlib.decompressobj(31), 0, stamp
while not inflater.eof:
    total += len(inflater.decompress(pending, 64 << 20))
    pending = inflater.unconsumed_tail
print(json.dumps({"idle_mib": idle, "bombs": results, "stamp_inflates_to": total}))
"""


def test_bombs_are_refused_fast_within_256_mib_above_idle():
    real = DEMO_ALERTS / "20200202" / "1105522281015015000.avro"
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, str(HERE), str(real)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["stamp_inflates_to"] == 2 << 30
    names = [b["name"] for b in report["bombs"]]
    for kind in ("bomb-stamp-2GiB", "bomb-records-1099511627776", "bomb-array-null-1e8"):
        assert kind in names
    for bomb in report["bombs"]:
        print(  # the figures, for docs/benchmarks.md (pytest -s)
            f"{bomb['name']:<32} {bomb['bytes']:>9} B  {bomb['reason']:<22} "
            f"{bomb['seconds'] * 1000:8.1f} ms  peak +{bomb['above_idle_mib']:.0f} MiB"
        )
        assert bomb["reason"] in bomb["expected"], bomb
        assert bomb["seconds"] < BOMB_SECONDS, bomb
        assert bomb["above_idle_mib"] < ABOVE_IDLE_MIB, bomb

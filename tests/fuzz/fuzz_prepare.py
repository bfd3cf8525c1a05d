"""Open-ended fuzzing of decode + prepare with atheris (libFuzzer for Python), run by
hand outside CI: the longer search beside the derandomized property tests.

Set up once, from the repository root (atheris ships wheels for Linux x86-64)::

    python3 -m venv /tmp/fuzz && /tmp/fuzz/bin/pip install atheris -e .
    mkdir -p /tmp/fuzz-corpus && cp deploy/demo/alerts/*/*.avro /tmp/fuzz-corpus/

Run (libFuzzer options: ``-max_total_time`` seconds, ``-rss_limit_mb`` makes a memory
blow-up a crash, ``-timeout`` a hang; new interesting inputs are added to the corpus)::

    /tmp/fuzz/bin/python tests/fuzz/fuzz_prepare.py /tmp/fuzz-corpus \\
        -max_total_time=3600 -rss_limit_mb=1024 -timeout=10 -max_len=400000

A finding is written to ``crash-<sha1>`` (or ``oom-``/``timeout-``): an exception that
escaped ``prepare_message``, a message without an outcome, an ``internal_error`` outcome
(every input should meet a foreseen reason), or memory/time past the limits above.
Reproduce one with ``/tmp/fuzz/bin/python tests/fuzz/fuzz_prepare.py crash-<sha1>``;
add what it teaches to ``tests/hostile.py``.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from btsbot_stream.alerts.avro import AlertDecoder
    from btsbot_stream.scoring import prepare_message

DECODER = AlertDecoder()


def test_one_input(data: bytes) -> None:
    message = prepare_message(DECODER, data)
    outcomes = [message.failure] if message.failure else [p for _, p in message.records]
    if not outcomes:
        raise AssertionError("a message without any outcome")
    for outcome in outcomes:
        if getattr(outcome, "reason", None) == "internal_error":
            raise AssertionError(f"internal_error: {outcome.detail}")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

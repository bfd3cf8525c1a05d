"""The guides quote names the service defines (headers, fields, anchors) and code that
runs: keep them in step with the code."""

from __future__ import annotations

import ast
import re

from tests.deploy.conftest import REPO

from btsbot_stream.stream import compact, enrich

FOLLOW_UP = REPO / "docs" / "follow-up-guide.md"
OPERATOR = REPO / "docs" / "operator-guide.md"


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)


def test_follow_up_code_is_python() -> None:
    blocks = _python_blocks(FOLLOW_UP.read_text())
    assert blocks
    for block in blocks:
        ast.parse(block)
    consumer = blocks[0]
    assert len(consumer.strip().splitlines()) <= 30


def test_follow_up_guide_uses_the_service_names() -> None:
    text = FOLLOW_UP.read_text()
    assert f'f"{enrich.HEADER_PREFIX}{{MODEL}}"' in text
    assert f"{enrich.FIELD}: null | record {enrich.SCORES_RECORD['name']} {{" in text
    record_fields = [f["name"] for f in enrich.SCORES_RECORD["fields"]]
    score_fields = [f["name"] for f in enrich.SCORES_RECORD["fields"][0]["type"]["items"]["fields"]]
    for name in record_fields + score_fields:
        assert re.search(rf"^\s+{name}:", text, re.MULTILINE), name
    compact_json = re.search(r"```json\n(.*?)```", text, re.DOTALL)
    assert compact_json
    for key in ("objectId", "candid", *compact.CANDIDATE_FIELDS, "scores"):
        assert f'"{key}"' in compact_json[1], key


def test_operator_guide_links_resolve() -> None:
    text = OPERATOR.read_text()
    anchors = {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#{1,6}\s+(.*)$", text, re.MULTILINE)
    }
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in anchors, anchor
    for path in re.findall(r"`((?:deploy|docker|docs|service|tests)/[\w./-]+)`", text):
        assert (REPO / path).exists() or path == "docs/benchmarks.md", path

"""The decide section: policies as configuration, one default each, bad values refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from btsbot_stream import config
from btsbot_stream.errors import ConfigError

KAFKA = '[kafka]\ninput_topics = ["t"]\n'


def _load(tmp_path: Path, text: str) -> config.ServiceSettings:
    path = tmp_path / "service.toml"
    path.write_text(KAFKA + text)
    return config.load(path)


def test_policies_from_the_config_file(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        """
[decide]
retention_days = 30
[[decide.policies]]
name = "bright_once"
model = "btsbot-v1.0.1"
score_threshold = 0.9
comparison = ">="
min_count = 1
mag_cut = 18.0
brightest_mag = 17.5
window_days = 3
""",
    )
    (policy,) = settings.decide.policies
    assert (policy.name, policy.score_threshold, policy.comparison) == ("bright_once", 0.9, ">=")
    assert (policy.mag_cut, policy.brightest_mag, policy.window_days) == (18.0, 17.5, 3)
    assert settings.decide.retention_days == 30


def test_decide_only_loader_ignores_other_sections(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "service.toml"
    path.write_text("[engine]\nbatch_size = 8\n[decide]\nretention_days = 10\n")
    monkeypatch.setenv("BTSBOT_DECIDE__CANDIDATES_TOPIC", "cands")
    decide = config.load_decide(path)
    assert (decide.retention_days, decide.candidates_topic) == (10, "cands")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[decide]\npolicies = []\n", "decide.policies is empty"),
        ("[decide]\nretention_days = 0\n", "decide.retention_days"),
        ("[decide]\nprocessing_guarantee = 'sometimes'\n", "decide.processing_guarantee"),
        (
            "[[decide.policies]]\nname='a'\nmodel='m'\nscore_threshold=0.5\n"
            "[[decide.policies]]\nname='a'\nmodel='m'\nscore_threshold=0.6\n",
            "a name is used twice",
        ),
        (
            "[[decide.policies]]\nname='a'\nmodel='m'\nscore_threshold=1.5\n",
            "score_threshold",
        ),
        ("[[decide.policies]]\nname='a'\nmodel='m'\nscore_threshold=0.5\nbogus=1\n", "bogus"),
    ],
)
def test_bad_decide_settings_say_what_to_fix(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, text)

"""The four published policies and the decision step on hand-built alert sequences.

Expected values are written from the rules (BTSbot's bts_val.py: after each alert in jd
order, the policy on all alerts so far; rint(score) == 1; magpsf < 19; min magpsf <=
18.5; score > 0.85), never computed by the code under test."""

from __future__ import annotations

import itertools

import pytest

from btsbot_stream.config import DecideSettings
from btsbot_stream.decisions.alerts import ScoredAlert
from btsbot_stream.decisions.decide import Observation, observe
from btsbot_stream.decisions.policies import BUILTIN_POLICIES, PolicySpec
from btsbot_stream.decisions.state import ObjectState

MODEL = "btsbot-v1.0.1"
POLICIES = {p.name: p for p in BUILTIN_POLICIES}
_candids = itertools.count(1000)


def alert(jd: float, score: float, mag: float = 18.0, candid: int | None = None) -> ScoredAlert:
    return ScoredAlert(
        candid=next(_candids) if candid is None else candid,
        jd=jd,
        fid=1,
        magpsf=mag,
        ra=10.0,
        dec=20.0,
        scores={MODEL: score},
    )


def run(alerts: list[ScoredAlert], names: tuple[str, ...] = tuple(POLICIES)) -> list[Observation]:
    """Observe the alerts in the given (arrival) order with the named built-ins."""
    policies = [POLICIES[n] for n in names]
    state = None
    out = []
    for a in alerts:
        seen = observe(state, a, policies, retention_days=60)
        state = seen.state
        out.append(seen)
    return out


def fired(observations: list[Observation]) -> dict[str, int]:
    """policy -> candid of the trigger, over all observations."""
    return {f.policy.name: f.trigger.candid for o in observations for f in o.fires}


def test_builtins_are_the_published_policies() -> None:
    spec = {p.name: p.model_dump() for p in BUILTIN_POLICIES}
    common = {"model": MODEL, "comparison": ">", "mag_cut": 19.0, "window_days": None}
    assert spec["bts_p1"] == {
        "name": "bts_p1",
        **common,
        "score_threshold": 0.5,
        "min_count": 2,
        "brightest_mag": None,
    }
    assert spec["bts_p2"] == {
        "name": "bts_p2",
        **common,
        "score_threshold": 0.5,
        "min_count": 2,
        "brightest_mag": 18.5,
    }
    assert spec["prod_p1"] == {
        "name": "prod_p1",
        **common,
        "score_threshold": 0.85,
        "min_count": 1,
        "brightest_mag": None,
    }
    assert spec["prod_p2"] == {
        "name": "prod_p2",
        **common,
        "score_threshold": 0.85,
        "min_count": 1,
        "brightest_mag": 18.5,
    }
    assert DecideSettings().policies == BUILTIN_POLICIES


@pytest.mark.parametrize(
    ("score", "positive"),
    [(0.5, False), (0.5000001, True), (0.4999, False), (1.0, True), (0.0, False)],
)
def test_bts_positive_is_rint_of_the_score(score: float, positive: bool) -> None:
    first, second = alert(1.0, 0.9), alert(2.0, score)
    assert fired(run([first, second], ("bts_p1",))) == (
        {"bts_p1": second.candid} if positive else {}
    )


@pytest.mark.parametrize(("mag", "counts"), [(19.0, False), (18.999, True), (19.2, False)])
def test_bts_counts_only_alerts_brighter_than_19(mag: float, counts: bool) -> None:
    first, second = alert(1.0, 0.9, 18.8), alert(2.0, 0.9, mag)
    assert fired(run([first, second], ("bts_p1",))) == ({"bts_p1": second.candid} if counts else {})


def test_bts_p1_fires_once_at_the_second_positive() -> None:
    seq = [alert(1.0, 0.2), alert(2.0, 0.7), alert(3.0, 0.1), alert(4.0, 0.6), alert(5.0, 0.9)]
    observations = run(seq, ("bts_p1",))
    assert [len(o.fires) for o in observations] == [0, 0, 0, 1, 0]
    fire = observations[3].fires[0]
    assert (fire.trigger.candid, fire.trigger.jd, fire.trigger.magpsf) == (seq[3].candid, 4.0, 18.0)
    assert fire.late is False


def test_bts_p2_waits_for_the_object_to_reach_18_5() -> None:
    seq = [
        alert(1.0, 0.9, 18.7),
        alert(2.0, 0.9, 18.6),
        alert(3.0, 0.1, 18.5001),
        alert(4.0, 0.1, 18.5),
    ]
    observations = run(seq, ("bts_p1", "bts_p2"))
    assert fired(observations) == {"bts_p1": seq[1].candid, "bts_p2": seq[3].candid}
    # the gate is the brightest alert of all so far, even one that does not count
    assert observations[3].fires[0].brightest_mag == 18.5


def test_bts_p2_gate_on_a_faint_positive_history() -> None:
    # the brightest alert (18.4) scores low: it opens the gate without counting
    seq = [alert(1.0, 0.1, 18.4), alert(2.0, 0.9, 18.9), alert(3.0, 0.9, 18.95)]
    assert fired(run(seq, ("bts_p2",))) == {"bts_p2": seq[2].candid}


@pytest.mark.parametrize(("score", "fires"), [(0.85, False), (0.8500001, True), (0.99, True)])
def test_prod_p1_threshold_is_strictly_above_0_85(score: float, fires: bool) -> None:
    one = alert(1.0, score, 18.9)
    assert fired(run([one], ("prod_p1",))) == ({"prod_p1": one.candid} if fires else {})


def test_prod_p1_needs_magpsf_below_19() -> None:
    assert fired(run([alert(1.0, 0.99, 19.0)], ("prod_p1",))) == {}


def test_prod_p2_fires_when_a_later_alert_is_bright_enough() -> None:
    seq = [alert(1.0, 0.95, 18.9), alert(2.0, 0.1, 18.6), alert(3.0, 0.05, 18.4)]
    observations = run(seq, ("prod_p1", "prod_p2"))
    assert fired(observations) == {"prod_p1": seq[0].candid, "prod_p2": seq[2].candid}
    assert [f.policy.name for o in observations for f in o.fires] == ["prod_p1", "prod_p2"]


def test_equal_jd_is_ordered_by_candid_whatever_the_arrival() -> None:
    low, high = alert(5.0, 0.9, candid=10), alert(5.0, 0.9, candid=20)
    in_order, reversed_order = run([low, high], ("bts_p1",)), run([high, low], ("bts_p1",))
    assert fired(in_order) == fired(reversed_order) == {"bts_p1": 20}
    assert in_order[1].fires[0].late is False
    assert reversed_order[1].fires[0].late is True
    assert reversed_order[1].fires[0].arrived.candid == 10


def test_a_late_alert_can_be_the_trigger() -> None:
    first, last, middle = alert(1.0, 0.9), alert(3.0, 0.1), alert(2.0, 0.9)
    observations = run([first, last, middle], ("bts_p1",))
    assert [len(o.fires) for o in observations] == [0, 0, 1]
    fire = observations[2].fires[0]
    assert fire.trigger.candid == middle.candid and fire.late and observations[2].late
    assert [a.jd for a in observations[2].state.alerts] == [1.0, 2.0, 3.0]


def test_a_late_alert_makes_a_newer_one_the_trigger() -> None:
    newer, older = alert(3.0, 0.9), alert(1.0, 0.9)
    fire = run([newer, older], ("bts_p1",))[1].fires[0]
    assert fire.trigger.candid == newer.candid and fire.arrived.candid == older.candid
    assert fire.late


def test_duplicate_candid_changes_nothing() -> None:
    first = alert(1.0, 0.9)
    again = ScoredAlert(first.candid, 1.0, 1, 18.0, 10.0, 20.0, {MODEL: 0.95})
    twice = run([first, again], ("bts_p1", "prod_p1"))
    assert twice[1].duplicate and not twice[1].fires
    assert twice[1].state.alerts == [first]  # the first copy kept, its score unchanged
    second = alert(2.0, 0.9)
    observations = run([first, again, second], ("bts_p1", "prod_p1"))
    assert fired(observations) == {"prod_p1": first.candid, "bts_p1": second.candid}


def test_no_policy_fires_twice() -> None:
    observations = run([alert(float(jd), 0.99, 17.0) for jd in range(1, 8)])
    names = [f.policy.name for o in observations for f in o.fires]
    assert sorted(names) == ["bts_p1", "bts_p2", "prod_p1", "prod_p2"]


def test_retention_forgets_an_object_silent_for_longer() -> None:
    kept = run([alert(1.0, 0.9), alert(60.9, 0.9)], ("bts_p1",))
    assert len(kept[1].fires) == 1 and not kept[1].expired
    forgotten = run([alert(1.0, 0.9), alert(61.1, 0.9)], ("bts_p1",))
    assert forgotten[1].expired and not forgotten[1].fires
    assert len(forgotten[1].state.alerts) == 1


def test_window_counts_only_recent_alerts() -> None:
    policy = PolicySpec(name="w", model=MODEL, score_threshold=0.5, min_count=2, window_days=2)
    seq = [alert(0.0, 0.9), alert(3.0, 0.9), alert(4.5, 0.9)]
    state, fires = None, []
    for a in seq:
        seen = observe(state, a, [policy], 60)
        state, fires = seen.state, fires + seen.fires
    assert [f.trigger.candid for f in fires] == [seq[2].candid]


def test_comparison_at_least() -> None:
    policy = PolicySpec(name="ge", model=MODEL, score_threshold=0.5, comparison=">=")
    assert observe(None, alert(1.0, 0.5), [policy], 60).fires


def test_a_policy_for_a_model_that_did_not_score_never_fires() -> None:
    policy = PolicySpec(name="other", model="convnext-pico", score_threshold=0.1)
    assert not observe(None, alert(1.0, 0.99), [policy], 60).fires


def test_state_round_trips_through_json() -> None:
    observations = run([alert(2.0, 0.9), alert(1.0, 0.9, 18.2)])
    state = observations[-1].state
    again = ObjectState.from_json(state.to_json())
    assert again.alerts == state.alerts and again.fired == state.fired
    assert again.has(state.alerts[0].candid)

"""An independent, plain implementation of BTSbot's four published policies, written
from the rules (BTSbot's bts_val.py) for the tests to compare the service against."""

from __future__ import annotations

import numpy as np


def reference_fires(rows: list[tuple[str, int, float, float, float]]) -> set[tuple]:
    """The four rules as BTSbot's evaluation applies them: per object, alerts sorted by
    jd; after each, the policy on all alerts so far; the first pass saves the object at
    that alert. rows: (objectId, candid, jd, magpsf, score)."""

    def bts_p1(alerts):
        return sum(1 for a in alerts if np.rint(a[4]) == 1 and a[3] < 19) >= 2

    def bts_p2(alerts):
        return min(a[3] for a in alerts) <= 18.5 and bts_p1(alerts)

    def prod_p1(alerts):
        return sum(1 for a in alerts if a[4] > 0.85 and a[3] < 19) >= 1

    def prod_p2(alerts):
        return min(a[3] for a in alerts) <= 18.5 and prod_p1(alerts)

    policies = {"bts_p1": bts_p1, "bts_p2": bts_p2, "prod_p1": prod_p1, "prod_p2": prod_p2}
    fires = set()
    for obj in {r[0] for r in rows}:
        alerts = sorted((r for r in rows if r[0] == obj), key=lambda r: (r[2], r[1]))
        for name, policy in policies.items():
            for i in range(len(alerts)):
                if policy(alerts[: i + 1]):
                    fires.add((obj, name, alerts[i][1], alerts[i][2], alerts[i][3]))
                    break
    return fires

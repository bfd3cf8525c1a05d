#!/usr/bin/env python3
"""The demo's last step when no one is at a terminal (CI, scripts): wait until the
scanning page has read the demo's topics, then print what it shows, through its own JSON
API, and exit (0 when it lists every scored alert and candidate event, 1 otherwise).

Usage: page_check.py URL SCORED CANDIDATES [TIMEOUT_S]
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def main() -> int:
    base, scored, candidates = sys.argv[1].rstrip("/"), int(sys.argv[2]), int(sys.argv[3])
    deadline = time.monotonic() + (float(sys.argv[4]) if len(sys.argv) > 4 else 90.0)
    status: dict = {}
    while time.monotonic() < deadline:
        try:
            status = _get(f"{base}/api/status")
        except (OSError, urllib.error.URLError, ValueError):
            status = {}
        if status.get("alerts", 0) >= scored and status.get("candidates", 0) >= candidates:
            break
        time.sleep(1.0)
    alerts = _get(f"{base}/api/alerts?per_page=5") if status else {"items": []}
    print(
        f"the scanning page at {base}/ lists {status.get('alerts', 0)} scored alerts of "
        f"{status.get('objects', 0)} objects and {status.get('candidates', 0)} candidate events"
    )
    for item in alerts["items"]:
        scores = ", ".join(f"{m} {p:.3f}" for m, p in item.get("scores", {}).items())
        print(f"  {item['objectId']}: {base}/objects/{item['objectId']}  ({scores})")
    ok = status.get("alerts", 0) >= scored and status.get("candidates", 0) >= candidates
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

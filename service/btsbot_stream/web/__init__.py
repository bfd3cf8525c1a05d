"""``btsbot-stream web``: the scanning page (FastAPI + Jinja2) over a bounded window of
the scored topic and the decision stage's candidate events."""

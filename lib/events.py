"""Signals the lower apps send when something changed that a person may have to act on.

connections and assistants cannot import dashboard (pyproject.toml's layers), so they announce
the change here and `dashboard.alerts` listens and queues the alert (a Huey task). A receiver
must never talk to the network or write much: the sender is in the middle of its work.

Each is sent after the change is saved, with keyword arguments:
- `connection_health_stored(connection_id=…, team_id=…, health=…)`: a key check stored its outcome;
- `run_failed(run_id=…)`: a run reached the status failed;
- `month_spend_stored(connection_id=…, team_id=…)`: this month's spend was stored on a connection;
- `member_standing_changed(team_id=…, user_id=…, role=…, actor=…, via=…)`: a member's role
  changed (`role`, the new one) or they left the team (`role` None), sent inside the
  transaction of the change (the gateway revokes the tokens they may no longer use);
- `run_stored(run_id=…, team_id=…)`: a run's status was written without `save()` (a guarded
  UPDATE), so that what shows runs (the team home's cached figures) is refreshed;
- `gateway_calls_stored(team_ids=…)`: calls through the gateway were written (in a batch).
"""

from django.dispatch import Signal

connection_health_stored = Signal()
run_failed = Signal()
month_spend_stored = Signal()
member_standing_changed = Signal()
run_stored = Signal()
gateway_calls_stored = Signal()

"""The dashboard's periodic tasks (Huey), every minute: the consumer's heartbeat (whichever
consumer runs the periodic tasks notes that it is alive; the team home tells admins when it
stopped, and /healthz reports its age, `lib.taskqueue`), and the gateway's alerts."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, periodic_task

from dashboard.gateway_alerts import gateway_alerts_run
from lib.taskqueue import heartbeat_record


@periodic_task(crontab(minute="*"))
def consumer_heartbeat() -> None:
    heartbeat_record()


@db_periodic_task(crontab(minute="*"))
def gateway_alerts() -> None:
    """Every minute: budgets reached (80 %, 100 %) and bursts of errors on the gateway
    (`dashboard.gateway_alerts`)."""
    gateway_alerts_run()

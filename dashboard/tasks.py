"""The consumer's heartbeat (a Huey periodic task): every minute, whichever consumer runs the
periodic tasks notes that it is alive. The team home tells admins when it stopped, and
/healthz reports its age (`lib.taskqueue`)."""

from huey import crontab
from huey.contrib.djhuey import periodic_task

from lib.taskqueue import heartbeat_record


@periodic_task(crontab(minute="*"))
def consumer_heartbeat() -> None:
    heartbeat_record()

"""Background work on gateway tokens (Huey tasks, run by `manage.py run_huey`).

A token stops working the moment it expires: the grant check compares its expiry with the
clock. This sweep notes each expiry once, afterwards: an audit event (TOKEN_EXPIRE) per token,
and every process forgets what it remembered of it.
"""

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from gateway.services import tokens_expire

logger = logging.getLogger(__name__)


@db_periodic_task(crontab(minute="*"))
def tokens_expire_sweep() -> None:
    """Every minute: audit the tokens that expired since the last sweep."""
    noted = tokens_expire()
    if noted:
        logger.info("Noted %d expired gateway tokens.", noted)

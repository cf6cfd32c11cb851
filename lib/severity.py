"""How serious something shown on a page is: the colour of its badge, callout or meter.

The value is the CSS modifier (`badge-warn`, `callout-danger` in tablero.css); the label says
the same in words, for a reader who does not see the colour.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Severity(models.TextChoices):
    OK = "ok", _("Fine")
    INFO = "info", _("For information")
    WARN = "warn", _("Needs attention")
    DANGER = "danger", _("Needs action")
    MUTED = "muted", _("Not known")

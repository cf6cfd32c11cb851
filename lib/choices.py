"""The label of a field's choice, cheaply: what list pages show on every row.

    def get_health_display(self) -> str:
        return choice_label(Health, self.health)

Django's own `get_FOO_display` rebuilds a dict of every choice on each call, hashing each lazy
label (a translation lookup per choice): on a list of 50 rows with a dozen choices, that is
hundreds of lookups for 50 labels. A model defining `get_FOO_display` itself keeps Django from
adding its own; this looks the one value up in its enum and translates one label.
"""

from django.db import models


def choice_label(choices: type[models.Choices], value: object) -> object:
    """The label of `value` in `choices` (lazy, translated when shown), or the value itself
    when it is not one of them (as Django's own display does)."""
    try:
        return choices(value).label
    except ValueError:
        return value

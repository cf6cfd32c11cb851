"""The URL of each row of a list page, reversed once per page rather than once per row.

    detail = row_url("connections:detail", team.pk)  # the row's id is the URL's last argument
    for connection in pages.page:
        connection.url = detail(connection.pk)

`{% url %}` reverses on every row, and reversing is among the costliest things a row does (it
matches the built path against the pattern again): a list of 50 rows with two links each
reversed 100 times per page. The rows' URLs differ only in the row's UUID, so one is reversed
with a placeholder UUID and each row's id is put in its place. `row_query` does the same for
`{% querystring %}` links that filter the list by a row's value.
"""

import uuid
from collections.abc import Callable
from urllib.parse import quote

from django.http import HttpRequest
from django.urls import reverse

_PLACEHOLDER = uuid.UUID(int=0)


def row_url(viewname: str, *args: object) -> Callable[[uuid.UUID], str]:
    """A function of a row's UUID giving `reverse(viewname, args=[*args, that UUID])`."""
    head, found, tail = reverse(viewname, args=[*args, _PLACEHOLDER]).rpartition(str(_PLACEHOLDER))
    assert found, viewname  # the last argument is a <uuid:...> of the pattern

    def url(pk: uuid.UUID) -> str:
        return f"{head}{pk}{tail}"

    return url


def row_query(request: HttpRequest, key: str) -> Callable[[object], str]:
    """A function of a row's value giving what `{% querystring key=value page=None %}` gives
    on this page (the page's other parameters kept, its position dropped), built once."""
    query = request.GET.copy()
    query.pop("page", None)
    query[key] = str(_PLACEHOLDER)
    head, _found, tail = ("?" + query.urlencode()).rpartition(str(_PLACEHOLDER))

    def url(value: object) -> str:
        return f"{head}{quote(str(value), safe='')}{tail}"

    return url

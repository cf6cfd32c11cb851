"""Binding forms the same way on every page."""

from django.http import HttpRequest, QueryDict


def posted(request: HttpRequest) -> QueryDict | None:
    """The data to bind a page's form with: the POST body on a POST (an empty one too, so a
    blank submission shows its errors), None on a GET, which shows the form unbound.

        form = TeamForm(posted(request))
        if form.is_bound and form.is_valid():
            ...
    """
    return request.POST if request.method == "POST" else None

"""Paginating a list page: Django's Paginator, with the page and its size in the URL.

    pages = paginate(request, selectors.connection_list(team=team))
    return render(request, "...", {"connections": pages.page, "pages": pages})

and in the template, below the table: `{% include "partials/pagination.html" %}` (it reads
`pages`; pass `pages=...` to the include when a page has two lists). A page with two lists
gives the second one a `prefix`, so each keeps its own position: `?page=3&invitations_page=2`.

The queryset is sliced to one page (LIMIT/OFFSET) and counted once (COUNT): two queries,
whatever the size of the team.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

PAGE_SIZE = 50
PAGE_SIZES = (10, 25, 50, 100, 200)


@dataclass(frozen=True)
class Pages:
    page: Page
    size: int
    previous_url: str  # "" on the first page
    next_url: str  # "" on the last page

    @property
    def count(self) -> int:
        return self.page.paginator.count


def _size(value: str | None, default: int) -> int:
    try:
        wanted = int(value or "")
    except ValueError:
        return default
    # The nearest allowed size not below the one asked for (or the largest).
    return next((size for size in PAGE_SIZES if size >= wanted), PAGE_SIZES[-1])


def paginate(
    request: HttpRequest, items: Any, *, prefix: str = "", default_size: int = PAGE_SIZE
) -> Pages:
    """One page of `items` (a queryset or a list) as `?{prefix}page=N&{prefix}size=M` ask;
    a page number out of range gives the last page, one that is not a number the first."""
    page_param, size_param = f"{prefix}page", f"{prefix}size"
    size = _size(request.GET.get(size_param), default_size)
    page = Paginator(items, size).get_page(request.GET.get(page_param))

    def url(number: int) -> str:
        query = request.GET.copy()
        query[page_param] = str(number)
        if size == default_size:
            query.pop(size_param, None)
        else:
            query[size_param] = str(size)
        return "?" + query.urlencode()

    return Pages(
        page=page,
        size=size,
        previous_url=url(page.previous_page_number()) if page.has_previous() else "",
        next_url=url(page.next_page_number()) if page.has_next() else "",
    )


class Mapped:
    """A queryset whose rows are turned into something else (`convert(row)`) only for the
    slice that is read: Paginator counts it in the database and converts one page."""

    def __init__(self, queryset: Any, convert: Callable[[Any], Any]) -> None:
        self.queryset, self.convert = queryset, convert

    def count(self) -> int:
        return self.queryset.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self.convert(row) for row in self.queryset[index]]
        return self.convert(self.queryset[index])

    def __iter__(self) -> Iterator[Any]:
        return (self.convert(row) for row in self.queryset)


class Counted:
    """A queryset whose size is already known (counted once for something else): Paginator
    slices it in the database and does not count it again."""

    def __init__(self, queryset: Any, count: int) -> None:
        self.queryset, self._count = queryset, count

    def count(self) -> int:
        return self._count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int | slice) -> Any:
        return self.queryset[index]

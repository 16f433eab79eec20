"""Query filters on live feeds: ``?limit=``, ``?min_quality=`` and ``?type=``.

Filters select from every member of a feed, then trim, so ``?type=video``
gives the newest videos, not the videos among the newest articles. Unknown
parameters are ignored (readers append their own); bad values are a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..catalog.feeds import Feed, trim
from ..model import Kind

MAX_QUALITY = 1_000_000


class FilterError(ValueError):
    """A filter value that cannot be used; the message is shown to the client."""


@dataclass(frozen=True, slots=True)
class Filters:
    limit: int | None = None
    min_quality: int | None = None
    kind: Kind | None = None

    @property
    def active(self) -> bool:
        return self != Filters()

    def admits(self, kind: Kind, quality: int | None) -> bool:
        """Whether a member of this kind and quality passes (before the limit)."""
        if self.kind is not None and kind is not self.kind:
            return False
        return self.min_quality is None or (quality is not None and quality >= self.min_quality)

    def apply(self, feed: Feed, max_items: int) -> Feed:
        """``feed`` filtered, then trimmed to the limit (at most ``max_items``: see :func:`parse_filters`)."""
        members = tuple(a for a in feed.members or feed.entries if self.admits(a.kind, a.quality))
        return trim(feed.spec, members, self.limit or max_items, feed.updated)


def _whole_number(name: str, raw: str, low: int, high: int) -> int:
    if not raw.isascii() or not raw.isdigit() or len(raw) > 7 or not low <= int(raw) <= high:
        raise FilterError(f"{name} must be a whole number from {low} to {high}")
    return int(raw)


def parse_filters(args: Mapping[str, str], max_items: int) -> Filters:
    """The filters named in a query string; raise :class:`FilterError` for a bad value."""
    limit = min_quality = None
    kind = None
    if "limit" in args:
        limit = _whole_number("limit", args["limit"], 1, max_items)
    if "min_quality" in args:
        min_quality = _whole_number("min_quality", args["min_quality"], 0, MAX_QUALITY)
    if "type" in args:
        try:
            kind = Kind(args["type"])
        except ValueError:
            raise FilterError("type must be one of: " + ", ".join(k.value for k in Kind)) from None
    return Filters(limit, min_quality, kind)

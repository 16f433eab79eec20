"""A version of the site as one process rendered it for itself (``one_builder`` off)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from ..model import printable
from ..on_demand import OnDemand
from ..render.site import Site
from . import views
from .headers import Served
from .store import Prepared

HEALTH_PROBLEMS = 5  # problem lines /healthz shows


@dataclass(frozen=True)
class Snapshot:
    """One version of the site as served: what was rendered, and each output's bytes, compressed.

    ``site`` holds no bytes (each output's body is None): they are in ``prepared``.
    """

    site: Site
    prepared: dict[str, Prepared]
    loaded_at: datetime
    read_at: datetime  # when its files were read: dates its new outputs (see FeedState.dated)
    # Archive pages and filtered feeds of this version, made when first asked for.
    on_demand: OnDemand[Prepared] = field(default_factory=lambda: OnDemand(views.ON_DEMAND_SIZE), compare=False)
    # The outputs asked for lately, with their headers (see LocalView.served).
    served: OnDemand[Served] = field(default_factory=lambda: OnDemand(views.SERVED_SIZE), compare=False)

    @cached_property
    def status(self) -> dict[str, object]:
        """What /healthz says of this version: worked out once, not per request."""
        return site_status(self.site, self.loaded_at)


def site_status(site: Site, loaded_at: datetime) -> dict[str, object]:
    problems = sorted(site.corpus.problems, key=lambda p: p.severity != "error")  # errors first
    return {
        "articles": len(site.corpus.articles), "feeds": len(site.feeds), "problems": len(problems),
        "rejected": site.corpus.rejected, "first_problems": [printable(str(p)) for p in problems[:HEALTH_PROBLEMS]],
        "first_error": bool(problems) and problems[0].severity == "error",
        "last_reload": loaded_at.isoformat(timespec="seconds"),
    }


def unchanged(before: Prepared | None, new: Prepared | None) -> Prepared:
    """``before`` when ``new`` has the same bytes (or was not rendered): its object and date stay, nothing announced."""
    if new is None or (before is not None and before.etag == new.etag and before.mimetype == new.mimetype):
        assert before is not None  # not rendered means taken from the previous snapshot
        return before
    return new

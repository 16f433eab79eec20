"""Reading an article's date and time: RFC 3339, or RFC 2822 as feeds write it.

Only moments every output can write are accepted: in UTC, years 1000 to 9999.
feedgen writes RSS dates with ``strftime``, which does not pad the year, and
RFC 2822 reads a three-digit year as 1900 more than written; Python's
datetime ends at 9999.
"""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, datetime

from .sanitize import quote

YEARS = range(1000, 10_000)
# Every date-only form datetime.fromisoformat accepts: 2021-01-01, 20210101, 2021-W01, 2021-W01-5, 2021W015.
_DATE_ONLY = re.compile(r"^\d{4}(-?\d{2}-?\d{2}|-?W\d{2}(-?\d)?)$")
# The year of "[Mon,] 01 Jan 2001 ..." or "Jan 01 2001 ...", as written.
_RFC822_YEAR = re.compile(r"\s*(?:[A-Za-z]+\s*,?\s*)?(?:\d{1,2}\s+[A-Za-z]+|[A-Za-z]+\s+\d{1,2})\s*,?\s+(\d+)\b")


def read_date(text: str) -> datetime:
    """The UTC moment ``text`` names; ``ValueError`` with the reason (quoting a short prefix) if none."""
    text = text.strip()
    if _DATE_ONLY.match(text.upper()):
        raise ValueError(f"{quote(text)} has no time; write e.g. {text}T00:00:00Z")
    parsed: datetime | None
    try:
        parsed = datetime.fromisoformat(text.upper())  # RFC 3339 allows a lower-case "t" and "z"
    except ValueError:
        parsed = _rfc822(text)
        if parsed is None:
            raise ValueError(f"{quote(text)} is not a valid date and time (use RFC 3339)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        moment = parsed.astimezone(UTC)
    except OverflowError:
        moment = None
    if moment is None or moment.year not in YEARS:
        raise ValueError(f"{quote(text)} is out of range (in UTC, years {YEARS[0]} to {YEARS[-1]} only)")
    return moment


def _rfc822(text: str) -> datetime | None:
    """An RFC 2822 date, its year read as written: email.utils maps every year under 100 (even
    "0001") as if it were two digits; RFC 2822 does that for two digits only, and adds 1900 to three."""
    try:
        parsed = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    written = _RFC822_YEAR.match(text)
    if written is None:
        return parsed
    digits = written.group(1)
    year = int(digits) if len(digits) >= 4 else int(digits) + 1900
    if len(digits) <= 2:
        year += 100 if year < 1950 else 0  # 00-49 are 2000-2049; 50-99 are 1950-1999
    try:
        return parsed.replace(year=year)
    except (ValueError, OverflowError):  # 29 February of a year that has none, or beyond 9999
        return None

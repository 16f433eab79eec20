"""The HTML shown for an entry, and the few URL and date helpers all formats share."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from ..ingest.sanitize import absolute, absolute_html
from ..model import Article, Image, Kind, Provider, Related


def rfc3339(moment: datetime) -> str:
    """UTC, second precision, ``Z`` suffix: the form readers parse most reliably."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def provider_url(provider: Provider) -> str:
    return f"https://{provider.domain}/"


def image_url(image: Image | None, site_url: str) -> str | None:
    return absolute(image.url, site_url) if image else None


def entry_html(article: Article, site_url: str) -> str:
    """Excerpt, featured media, a link to the source, and the related coverage list."""
    parts = []
    if article.excerpt:
        parts.append(f"<p>{escape(article.excerpt)}</p>")
    if article.featured_html:
        parts.append(f"<div>{absolute_html(article.featured_html, site_url)}</div>")
    elif (lead := image_url(article.image, site_url)) is not None:
        alt = escape(article.image.title or article.title) if article.image else ""
        parts.append(f'<p><img src="{escape(lead)}" alt="{alt}"></p>')
    what = "video" if article.kind is Kind.VIDEO else "article"
    parts.append(
        f'<p><a href="{escape(article.url)}">Read the full {what} on {escape(article.provider.name)}</a></p>'
    )
    if article.related:
        items = "".join(_related_item(item) for item in article.related)
        parts.append(f"<h3>Related coverage</h3><ul>{items}</ul>")
    return "\n".join(parts)


def _related_item(item: Related) -> str:
    details = [escape(item.provider.name)] if item.provider else []
    if item.published_at:
        details.append(item.published_at.strftime("%Y-%m-%d"))
    suffix = f" ({', '.join(details)})" if details else ""
    return f'<li><a href="{escape(item.url)}">{escape(item.title)}</a>{suffix}</li>'

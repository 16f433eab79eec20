"""Feeds and pages to bytes: RSS and Atom through feedgen, JSON Feed, HTML pages, the feed index and OPML."""

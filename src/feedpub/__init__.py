"""feedpub: RSS 2.0, Atom 1.0 and JSON Feed 1.1 for every topic and provider of a news corpus."""

__version__ = "0.1.0"

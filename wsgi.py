"""WSGI entry point: ``gunicorn -w 2 wsgi:app`` (settings come from FEEDPUB_* variables)."""

from feedpub.web import create_app

app = create_app()

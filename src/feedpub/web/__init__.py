"""The feed server: a Flask application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from ..ingest.frontmatter import warn_if_slow_yaml
from ..settings import ENV_PREFIX, Settings, setting_fields
from . import preflight
from .delta import open_history
from .guard import refuse_malformed
from .headers import nosniff
from .published import in_front
from .routes import DELTA_HISTORY, STATE, bp
from .state import FeedState

EXTENSION = STATE  # app.extensions key of the FeedState


def create_app(config: Mapping[str, Any] | None = None, settings: Settings | None = None) -> Flask:
    """Build the app: defaults, then ``FEEDPUB_*`` environment, then ``config``.

    ``config`` takes setting names (``seeds_dir``, ``SEEDS_DIR`` or
    ``FEEDPUB_SEEDS_DIR``); any other key goes to ``app.config`` as usual.
    ``settings`` already loaded (by ``feedpub serve``) are used as they are, and
    their loader has given the start-up warnings: ``config`` may then name no setting.
    """
    app = Flask(__name__, static_folder=None)
    app.url_map.merge_slashes = False  # '//' is a 404 like any unknown path, never a redirect
    names = {spec.name for spec in setting_fields()}
    overrides: dict[str, Any] = {}
    for key, value in (config or {}).items():
        name = key.removeprefix(ENV_PREFIX).lower()
        if name in names:
            overrides[name] = value
        else:
            app.config[key] = value
    if not logging.getLogger("feedpub").handlers and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if settings is None:
        settings = Settings.load(overrides)
        warn_if_slow_yaml()
    elif overrides:
        raise TypeError(f"create_app: settings given twice ({', '.join(sorted(overrides))} in config)")
    # Tests drive reloads themselves (no reload thread): their app builds its first version at once.
    state = FeedState(settings, first_build=app.testing)
    app.extensions[EXTENSION] = state
    app.extensions[DELTA_HISTORY] = open_history(settings)
    app.register_blueprint(bp)
    app.register_blueprint(preflight.bp)
    if not app.testing:  # tests drive reloads themselves, or run a real server
        # Started by the first request of each process, not here: under gunicorn --preload the master
        # builds the app but never serves, and a thread must not cross a fork. A hook of the app's own,
        # with the state at hand: a request pays microseconds less than a blueprint's reading current_app.
        app.before_request(state.ensure_watcher)
    # The usual request for an output is answered before Flask routes it (published.py). Around the whole
    # app: routing must never see what the guard refuses (for_development_server wraps this too).
    front = in_front(app.wsgi_app, state, bool(settings.websub_hub) or app.extensions[DELTA_HISTORY] is not None,
                     watch=not app.testing)
    app.wsgi_app = nosniff(refuse_malformed(front))  # type: ignore[method-assign, assignment]
    return app


def for_development_server(app: Flask) -> Flask:
    """``app`` without the ``Date`` header it sets, for werkzeug's development server.

    That server (``feedpub serve``) always writes a ``Date`` of its own, so the
    one ``make_conditional`` adds would be a second (pallets/werkzeug#2500).
    gunicorn and other WSGI servers keep one Date themselves: they get the app as is.
    """
    inner = app.wsgi_app

    def wsgi_app(environ: Any, start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [(k, v) for k, v in headers if k.lower() != "date"], exc_info)

        return inner(environ, start)

    app.wsgi_app = wsgi_app  # type: ignore[method-assign]
    return app


__all__ = ["EXTENSION", "create_app", "for_development_server"]

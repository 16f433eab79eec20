"""The feed server: a Flask application factory."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask

from ..settings import ENV_PREFIX, Settings, setting_fields
from ..source import warn_if_slow_yaml
from .state import FeedState
from .views import bp

EXTENSION = "feedpub"


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then ``FEEDPUB_*`` environment, then ``config``.

    ``config`` takes setting names (``seeds_dir``, ``SEEDS_DIR`` or
    ``FEEDPUB_SEEDS_DIR``); any other key goes to ``app.config`` as usual.
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
    settings = Settings.load(overrides)
    if not logging.getLogger("feedpub").handlers and not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    warn_if_slow_yaml()
    state = FeedState(settings)
    app.extensions[EXTENSION] = state
    app.register_blueprint(bp)
    return app


__all__ = ["create_app", "EXTENSION"]

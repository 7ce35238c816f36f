"""A small Flask app factory for the extension's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, abort

from errwire.integrations.flask import Errwire

MakeApp = Callable[..., Flask]


class PaymentError(Exception):
    pass


@pytest.fixture
def make_app(data_dir: str) -> MakeApp:
    """``make_app(name, wire=True, **config)``: an app with a few routes, set up with
    errwire (memory transport, the test's data dir) unless ``wire`` is False."""

    def make(name: str = "shop", *, wire: bool = True, **config: Any) -> Flask:
        app = Flask(name)
        app.config.update(
            PROPAGATE_EXCEPTIONS=False,
            ERRWIRE_TRANSPORT="memory",
            ERRWIRE_DATA_DIR=data_dir,
            # every capture counts here: no storm folding, no dedup
            ERRWIRE_STORM_WINDOW_SECONDS=0,
            ERRWIRE_DEDUP_WINDOW_SECONDS=0,
        )
        app.config.update(config)

        @app.route("/ok")
        def ok() -> str:
            return "ok"

        @app.route("/orders/<int:order_id>")
        def order(order_id: int) -> str:
            raise PaymentError(f"card declined for order {order_id}")

        @app.route("/missing")
        def missing() -> str:
            abort(404)

        @app.route("/teapot")
        def teapot() -> str:
            abort(418)

        if wire:
            Errwire(app)
        return app

    return make

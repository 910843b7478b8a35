"""The FastAPI application factory.

Each domain contributes a ``router`` in its ``views`` module; the factory mounts those that
exist, so a domain is added by listing it here and nowhere else.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import util
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from hotline.settings import get_settings

log = logging.getLogger(__name__)

ROUTER_MODULES = (
    "hotline.web",
    "hotline.calls.views",
    "webhooks.twilio",
    "directory.views",
    "legal_library.views",
    "hotline.auth.views",
    "hotline.live.views",
    "hotline.records.views",
    "daily_log.views",
    "referral.views",
    "hotline.ops.views",
    "hotline.security.views",
)

STARTUP_HOOKS: list = []  # callables run in the lifespan (e.g. the spool drainer)


def _present(name: str) -> bool:
    try:
        return util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    stops = []
    for hook in app.state.startup_hooks:
        stop = hook(app)
        if stop is not None:
            stops.append(stop)
    try:
        yield
    finally:
        for stop in reversed(stops):
            stop()


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(title="hotline", version="0.1.0", lifespan=_lifespan,
                  docs_url="/api/docs" if not settings.is_production else None, redoc_url=None)
    from hotline.queue import web_scheduler_hook

    app.state.startup_hooks = [web_scheduler_hook]
    static = Path(__file__).parent / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    for name in ROUTER_MODULES:
        if not _present(name):
            continue
        module = importlib.import_module(name)
        router = getattr(module, "router", None)
        if router is not None:
            app.include_router(router)
        setup = getattr(module, "setup_app", None)
        if setup is not None:
            setup(app)
    return app

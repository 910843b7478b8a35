"""The FastAPI application factory.

The routers and set-up functions come from the domains declared in ``hotline.domains`` (the
composition root), in their order; this module names no domain.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from hotline.settings import get_settings

log = logging.getLogger(__name__)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    stops = []
    for hook in app.state.startup_hooks:
        stop = hook(app)
        if stop is not None:
            stops.append(stop)
    # What start-up made (routes, models, templates, catalogues: ~200,000 objects) lives as long as
    # the process: move it out of the garbage collector's reach.  Each full collection walked all of
    # it, holding every request for 20-130 ms: the tail of the Twilio webhooks' latency.  No
    # gc.collect() first: it costs a full collection (0.1-0.6 s) at every start, the tests' too.
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()  # a process that starts several apps (the tests) keeps collecting their garbage
        for stop in reversed(stops):
            stop()


def create_app() -> FastAPI:
    settings = get_settings()
    from fastapi import Depends

    from hotline.inputs import check_request

    # check_request: bounds every route's ids, dates and JSON bodies share (a clear 422, never a 500).
    app = FastAPI(title="hotline", version="0.1.0", lifespan=_lifespan,
                  docs_url="/api/docs" if not settings.is_production else None, redoc_url=None,
                  # production: the schema only for signed-in staff (hotline.web.openapi_for_staff)
                  openapi_url="/openapi.json" if not settings.is_production else None,
                  dependencies=[Depends(check_request)])
    from hotline.queue import web_scheduler_hook

    app.state.startup_hooks = [web_scheduler_hook]
    static = Path(__file__).parent / "static"
    if static.is_dir():
        app.mount("/static", StaticFiles(directory=static), name="static")
    from hotline import domains, errors

    errors.install(app)
    for domain in domains.DOMAINS:
        for router in domain.wiring.routers:
            app.include_router(router)
        for setup in domain.wiring.app_setup:
            setup(app)
    return app

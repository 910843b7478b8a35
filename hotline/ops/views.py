"""Health, readiness and metrics endpoints for load balancers, systemd and Prometheus.

* ``GET /healthz`` (defined in ``hotline.web``): the process is alive and serving, no database
  or Redis call, always 200 ``{"status": "ok"}``.
* ``GET /readyz``: the database answers and is fully migrated, and Redis answers when configured;
  200 ``{"status": "ready"}`` or 503 with what is wrong.  ``checks.spool`` says when this process
  holds events in memory because the disk spool refused them (it stays ready: it still takes calls).  nginx or a load balancer takes a web
  process out of rotation while it says 503.
* ``GET /metrics``: Prometheus text format.  With ``HOTLINE_METRICS_TOKEN`` set it needs
  ``Authorization: Bearer <token>``; without it, only a direct connection from this machine
  (127.0.0.1 / ::1, not forwarded by a proxy) may read it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import threading
import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from hotline.ops import metrics
from hotline.settings import get_settings

router = APIRouter(tags=["operations"])

MIGRATED_CACHE_SECONDS = 60.0
_migrated_lock = threading.Lock()
_migrated_until: dict[str, float] = {}
FORWARD_HEADERS = (b"x-forwarded-for", b"x-real-ip", b"forwarded")


def _database_ready(url: str) -> str | None:
    from sqlalchemy import text

    from hotline.db import get_engine

    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported as not ready
        return f"database unreachable ({type(exc).__name__})"
    with _migrated_lock:
        if _migrated_until.get(url, 0.0) > time.monotonic():
            return None
    from hotline import migrate

    logging.getLogger("alembic").setLevel(logging.WARNING)  # a probe every few seconds is not news
    try:
        missing = migrate.pending(url)
    except Exception as exc:  # noqa: BLE001 - readiness reports it as not ready
        return f"migration state unreadable ({type(exc).__name__})"
    if missing:
        return f"database not migrated: {len(missing)} migration head(s) pending; run hotline db upgrade"
    with _migrated_lock:
        _migrated_until[url] = time.monotonic() + MIGRATED_CACHE_SECONDS
    return None


def _redis_ready() -> str | None:
    from hotline.queue import get_redis

    conn = get_redis()
    if conn is None:
        return None
    try:
        conn.ping()
    except Exception as exc:  # noqa: BLE001 - readiness reports it as not ready
        return f"redis unreachable ({type(exc).__name__})"
    return None


@router.get("/readyz", include_in_schema=False)
def readyz() -> JSONResponse:
    settings = get_settings()
    checks: dict[str, str] = {}
    problems = []
    for name, problem in (("database", _database_ready(settings.effective_database_url)), ("redis", _redis_ready())):
        checks[name] = "ok" if problem is None else problem
        if problem is not None:
            problems.append(problem)
    if not settings.redis_url:
        checks["redis"] = "not configured"
    checks["spool"] = _spool_state()
    body: dict[str, Any] = {"status": "ready" if not problems else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if not problems else 503, headers={"Cache-Control": "no-store"})


def _spool_state() -> str:
    """This process's events held in memory because the disk spool refused them (not a reason to take
    the process out of rotation: it still answers calls and keeps their events)."""
    from hotline.ingest import spool

    state = spool.status()
    if state["memory_events"]:
        return (f"{state['memory_events']} event(s) held in memory: the disk spool cannot be written "
                f"({state['last_disk_error']}); free space in {get_settings().data_dir}/spool")
    if state["lost"]:
        return f"{state['lost']} event(s) lost since this process started: neither the disk spool nor memory could hold them"
    return "ok"


def _local_direct(request: Request) -> bool:
    """A connection from this machine that no proxy forwarded (uvicorn's proxy_headers would
    otherwise make a request through nginx look local)."""
    if any(name in FORWARD_HEADERS for name, _ in request.scope.get("headers", [])):
        return False
    client = request.client
    if client is None:
        return False
    try:
        return ipaddress.ip_address(client.host).is_loopback
    except ValueError:
        return False


@router.get("/metrics", include_in_schema=False)
def metrics_endpoint(request: Request) -> Response:
    token = get_settings().metrics_token
    if token:
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            return PlainTextResponse("metrics need Authorization: Bearer <HOTLINE_METRICS_TOKEN>\n", status_code=401,
                                     headers={"WWW-Authenticate": "Bearer"})
    elif not _local_direct(request):
        return PlainTextResponse("metrics are readable only from this machine, directly; set HOTLINE_METRICS_TOKEN "
                                 "to scrape from elsewhere\n", status_code=403)
    return Response(metrics.render(request.app), media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def setup_app(app: FastAPI) -> None:
    """Time every provider webhook for the latency histogram."""
    app.add_middleware(metrics.WebhookTimer)

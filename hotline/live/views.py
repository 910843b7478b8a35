"""The live screen, its server-sent events, presence and the supervisor wallboard.

* ``GET /live``: the counsellor's screen (presence, pops, quick links to records).
* ``GET /live/events``: ``text/event-stream`` of the centre's updates the viewer may see,
  with ``id:`` per event; ``Last-Event-ID`` (or ``?last_event_id=``) replays what was missed.
* ``GET /live/calls/{id}/pop``: the pop's caller history (HTML fragment).
* ``POST /live/calls/{id}/reveal``: the full number, supervisors and administrators only, audited.
* ``POST /live/presence``: available / busy / away.
* ``GET /live/wallboard`` (page) and ``GET /live/wallboard.json`` (data).
* ``POST /live/calls/{id}/listen``: a supervisor's own phone rings to listen in, whisper or barge
  (``hotline.pbx``: Asterisk ``ChanSpy``), audited with who, which call and the mode.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from hotline import domains
from hotline.audit import service as audit
from hotline.auth.deps import Principal, csrf_protect, require_roles, wants_json
from hotline.db import session_scope
from hotline.errors import NotAllowed
from hotline.i18n import N_, error_text, translator
from hotline.live import service
from hotline.live.hub import PING, Hub, Item, sse
from hotline.live.models import MANUAL_STATES
from hotline.records.ui import PRESENCE_KEYS, pop_labels, text
from hotline.taxonomy import get_taxonomies
from hotline.web import add_template_dir, render

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
add_template_dir(HERE / "templates")
router = APIRouter()
staff = require_roles("counsellor", "supervisor", "administrator")


async def staff_write(request: Request, principal: Principal = Depends(staff)) -> Principal:
    """Signed in first (401 keeps the draft and asks to sign in again), then the CSRF token (403)."""
    await csrf_protect(request)
    return principal

supervisors = require_roles("supervisor", "administrator")


class _LineCache:
    """Line labels for pops, loaded once and refreshed when an unknown line appears."""

    def __init__(self) -> None:
        self.labels: dict[int, str] = {}
        self.lock = threading.Lock()

    def __call__(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("type") != "call":
            return message
        call = dict(message.get("call") or {})
        line_id = call.get("line_id")
        if line_id and line_id not in self.labels:
            with self.lock, session_scope() as db:
                self.labels = service.line_labels(db)
        call["line"] = self.labels.get(line_id or 0) or call.get("queue") or ""
        return {**message, "call": call}


def setup_app(app: FastAPI) -> None:
    app.mount("/live-static", StaticFiles(directory=HERE / "static"), name="live-static")
    app.state.live_hub = Hub(enrich=_LineCache())

    def hook(app: FastAPI) -> Callable[[], None]:
        hub: Hub = app.state.live_hub  # app.state is untyped; create_app puts the hub there
        # The event loop writing to many screens and the threads doing the webhooks' database round
        # trips share the GIL: a thread whose answer came back waited up to the 5 ms switch interval
        # behind the loop at each round trip.  1 ms: webhook and pop p50 and p99 ~20 % lower under
        # bench/live_memory.py (200 screens, 20 calls/s) for ~3 % more CPU.  Restored on stop.
        before = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)

        def stop() -> None:
            hub.stop()
            sys.setswitchinterval(before)

        return stop

    app.state.startup_hooks.append(hook)


def _hub(request: Request) -> Hub:
    hub = getattr(request.app.state, "live_hub", None)
    if hub is None:
        hub = request.app.state.live_hub = Hub(enrich=_LineCache())
    return hub


def _viewer(principal: Principal, centre: int | None) -> service.Viewer:
    with session_scope() as db:
        try:
            return service.viewer_for(db, actor=principal, centre_id=centre)
        except service.LiveError as exc:
            raise HTTPException(409, detail=error_text(exc, principal.language)) from None


RESYNC = b"event: resync\ndata: {}\n\n"


def _last_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _replay(viewer: service.Viewer, last: int, current: int, missed: list[tuple[int, dict[str, Any]]]) -> tuple[bytes, int]:
    """What a reconnecting screen missed, as SSE bytes, from the ring; ``resync`` first when the
    ring no longer holds all of it (the screen then reloads what it shows)."""
    gap = last < current and (not missed or missed[0][0] > last + 1)
    parts = [RESYNC] if gap else []
    parts += [sse(seq, message) for seq, message in missed if service.visible(viewer, message)]
    sent = max([last, *(seq for seq, _ in missed)] + ([current] if gap else []))
    return b"".join(parts), sent


@router.get("/live/events")
async def events(request: Request, centre: int | None = None, board: bool = False,
                 principal: Principal = Depends(staff)) -> Response:
    """``board=1``: a wallboard's stream, which also gets the centre's figures (``wallboard``
    events, supervisors and administrators only) instead of re-reading them after each update."""
    viewer = await asyncio.to_thread(_viewer, principal, centre)
    hub = _hub(request)
    await asyncio.to_thread(hub.feed, viewer.centre_id)  # subscribing may wait on Redis: not on the loop
    last = _last_id(request)
    if last is None:  # a fresh screen starts from now; read before listening so nothing falls between
        last = await asyncio.to_thread(hub.ring.current, viewer.centre_id)
    board = board and service.visible(viewer, {"type": "wallboard", "centre_id": viewer.centre_id})
    listener = hub.add(viewer.centre_id, board=board)
    if board:
        _boards(request).push(viewer.centre_id)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 2000\n\n"

            def missed() -> tuple[int, list[tuple[int, dict[str, Any]]]]:
                return hub.ring.current(viewer.centre_id), hub.ring.since(viewer.centre_id, last)

            current, items = await asyncio.to_thread(missed)
            replayed, sent = _replay(viewer, last, current, items)
            if replayed:
                yield replayed
            hello = json.dumps({"role": viewer.role, "centre_id": viewer.centre_id})
            yield f"id: {sent}\nevent: hello\ndata: {hello}\n\n".encode()
            queue, visible = listener.queue, service.visible
            while True:
                first = await queue.get()  # the hub's PING every HEARTBEAT_SECONDS: no timer per screen
                if listener.dropped:  # fell QUEUE_SIZE behind: reconnect and catch up from the ring
                    yield RESYNC
                    return
                batch = [first]
                while not queue.empty():  # whatever else is waiting goes out in one write
                    batch.append(queue.get_nowait())
                out: list[bytes] = []
                ended = ping = False
                for item in batch:
                    if item is None:
                        ended = True
                        break
                    if item is PING:
                        ping = True
                        continue
                    if item.seq:  # the centre's numbered updates; the wallboard's figures have no number
                        if item.seq <= sent:
                            continue
                        sent = item.seq
                    # Updates for others are not sent at all: no wake-up for 29 idle screens per call.
                    # A reconnect replays from the last id this screen saw and filters the same way.
                    if visible(viewer, item.message):
                        out.append(item.data)  # framed once per process: the same bytes for every screen
                if out:
                    yield out[0] if len(out) == 1 else b"".join(out)
                elif ping:
                    yield PING.data
                if ended:
                    return
        finally:
            hub.remove(viewer.centre_id, listener)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/live")
def screen(request: Request, completed: int | None = None, principal: Principal = Depends(staff)) -> Response:
    """The workspace for one call: the counsellor's current call at the top, its record below with
    the directory and legal panels beside it, other incoming calls in a strip."""
    from hotline.records import service as records
    from hotline.records import views as record_views

    lang = principal.language
    ctx: dict[str, Any] = {"t": text(lang), "states": MANUAL_STATES, "presence_keys": PRESENCE_KEYS,
                           "pop_labels": pop_labels(lang), "record": None, "card": None, "on_live": True}
    with session_scope() as db:
        info = service.presence_info(db, user_id=principal.id)
        ctx.update(presence=info["state"], presence_until=info["until"])
        call = None
        if principal.centre_id is not None or principal.role == "administrator":
            try:
                viewer = service.viewer_for(db, actor=principal)
                call = service.current_call(db, viewer=viewer)
            except service.LiveError:
                call = None
        if call is not None:
            try:
                record = records.open_for_call(db, call_id=call.id, actor=principal)
            except (records.NotFound, records.NotAllowed, records.RecordError):
                record = None
            if record is not None:
                audit.record(db, actor=principal, action="record.view", object_type="call_record",
                             object_id=record.id, request=request, detail={"live": True})
                ctx.update(record_views.workspace_context(request, db, record, principal))
                ctx["pop_labels"] = pop_labels(lang)
        if completed:
            ctx["notice"] = translator(lang)(N_("Record #%(id)s completed.")) % {"id": completed}
        ctx["reload_on_answer"] = ctx.get("record") is None
        # Blocks the domains declare in hotline.domains (e.g. the callback strip), so this view names none.
        ctx["live_panels"] = [panel(request, db, principal) for panel in domains.live_panels()]
        return render(request, "live/screen.html", ctx)


@router.get("/live/calls.json")
def active_calls(centre: int | None = None, principal: Principal = Depends(staff)) -> Response:
    """The calls in progress this screen may see (masked): the live screen asks when it opens and
    after ``resync``, so a pop that left the ring is not lost."""
    with session_scope() as db:
        viewer = _viewer(principal, centre)
        return JSONResponse({"calls": service.active_calls(db, viewer=viewer)},
                            headers={"Cache-Control": "no-store"})


@router.post("/live/presence/wrap-up-over")
def wrap_up_over(request: Request, principal: Principal = Depends(staff_write)) -> Response:
    """The live screen's countdown reached zero: available again (and unpaused) unless changed."""
    with session_scope() as db:
        row = service.end_wrap_up(db, user_id=principal.id)
        if row is not None:
            db.commit()
            service.announce_presence(db, row=row, reason="wrap_up_over")
        info = service.presence_info(db, user_id=principal.id)
    return JSONResponse(info)


@router.get("/live/calls/{call_id}/pop")
def pop_fragment(call_id: int, request: Request, principal: Principal = Depends(staff)) -> Response:
    lang = principal.language
    tax = get_taxonomies()
    with session_scope() as db:
        ctx = service.pop(db, call_id=call_id, actor=principal)
        audit.record(db, actor=principal, action="caller_history.view", object_type="call", object_id=call_id,
                     request=request, detail={"earlier_calls": len(ctx["history"])})
        return render(request, "live/_history.html", {
            **ctx, "t": text(lang), "issue_label": lambda c: tax.label("issue", c, lang),
            "status_label": lambda c: tax.label("call_status", c, lang),
            "cid_label": lambda c: tax.label("caller_id_status", c, lang),
            "level_label": lambda c: tax.label("service_level", str(c), lang)})


@router.post("/live/calls/{call_id}/reveal")
def reveal(call_id: int, request: Request, principal: Principal = Depends(staff_write)) -> Response:
    with session_scope() as db:
        try:
            number = service.reveal(db, call_id=call_id, actor=principal)
        except NotAllowed:
            audit.record(db, actor=principal, action="call.reveal_refused", object_type="call",
                         object_id=call_id, request=request)
            db.commit()
            raise
        audit.record(db, actor=principal, action="call.reveal", object_type="call", object_id=call_id,
                     request=request)
    return JSONResponse({"call_id": call_id, "number": number}, headers={"Cache-Control": "no-store"})


@router.post("/live/presence")
async def presence(request: Request, principal: Principal = Depends(staff_write)) -> Response:
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        state, reason = str(body.get("state") or ""), str(body.get("reason") or "")
    else:
        form = await request.form()
        state, reason = str(form.get("state") or ""), str(form.get("reason") or "")
    reason = reason[:64]

    def work() -> dict[str, Any]:
        with session_scope() as db:
            row = service.set_presence(db, actor=principal, state=state, reason=reason)
            audit.record(db, actor=principal, action="presence.set", object_type="user", object_id=principal.id,
                         request=request, detail={"state": state})
            db.commit()
            service.announce_presence(db, actor=principal, row=row, reason=reason)
            return {"user_id": row.user_id, "state": row.state, "at": row.changed_at.isoformat()}

    try:
        out = await asyncio.to_thread(work)
    except service.LiveError as exc:
        raise HTTPException(422, detail=error_text(exc, principal.language)) from None
    if wants_json(request) or request.headers.get("content-type", "").startswith("application/json"):
        return JSONResponse(out)
    return RedirectResponse("/live", status_code=303)


async def supervisors_write(request: Request, principal: Principal = Depends(supervisors)) -> Principal:
    await csrf_protect(request)
    return principal


@router.post("/live/calls/{call_id}/listen")
async def listen_in(call_id: int, request: Request, principal: Principal = Depends(supervisors_write)) -> Response:
    """Ring the supervisor's own phone into the call: ``mode`` listen (default), whisper or barge."""
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.json()
        mode = str((body or {}).get("mode") or "listen") if isinstance(body, dict) else "listen"
    else:
        form = await request.form()
        mode = str(form.get("mode") or "listen")
    mode = mode[:16]

    def work() -> dict[str, Any]:
        from hotline.pbx import service as pbx

        with session_scope() as db:
            cmd = pbx.listen_in(db, actor=principal, call_id=call_id, mode=mode)
            audit.record(db, actor=principal, action="call.listen_in", object_type="call", object_id=call_id,
                         request=request, detail={"mode": mode, "command": cmd.id, "device": cmd.device})
            return pbx.summary(cmd)

    out = await asyncio.to_thread(work)
    return JSONResponse(out, status_code=202, headers={"Cache-Control": "no-store"})


class _Boards:
    """The wallboard's figures per centre, computed by one thread at a time per centre and shared
    by every screen of this process.

    Every supervisor's wallboard re-reads them after updates; with 200 screens that was 200
    computations of the day's figures at once on the thread pool (each holding the day's calls as
    ORM objects), the webhooks queued behind them and each web process grew past 600 MB
    (bench/live_memory.py).  Now a request gets the last result if no update for the centre
    reached this process since it was computed (and it is younger than ``WALLBOARD_MAX_AGE``),
    else the next computation, which starts at least ``WALLBOARD_SPACING`` after the previous
    one: whatever the number of screens, a few computations a second per centre at most, and
    never one older than the update that made the browser ask."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.cache: dict[int, tuple[float, tuple[int, tuple[int, ...]], dict[str, Any]]] = {}
        self.running: dict[int, _BoardRun] = {}
        self.last_start: dict[int, float] = {}
        self._encoded: dict[int, tuple[dict[str, Any], bytes]] = {}  # per centre: the last figures, as JSON
        self.pushing: dict[tuple[asyncio.AbstractEventLoop, int], asyncio.Future[None]] = {}

    async def get(self, centre_id: int) -> dict[str, Any]:
        while True:
            generation = self._generation(centre_id)
            hit = self.cache.get(centre_id)
            if hit is not None and hit[1] == generation and time.monotonic() - hit[0] < WALLBOARD_MAX_AGE:
                return hit[2]
            run = self.running.get(centre_id)
            if run is None:
                run = self.running[centre_id] = _BoardRun()
                run.future = asyncio.ensure_future(self._run(centre_id, run))
            if run.generation is None or run.generation == generation:
                return await asyncio.shield(run.future)  # not started yet, or started after the last update
            try:  # started before the last update: wait for it to end, then for the next one
                await asyncio.shield(run.future)
            except Exception:  # noqa: BLE001 - its failure is reported to its own requests; this one starts the next
                pass

    async def _run(self, centre_id: int, run: _BoardRun) -> dict[str, Any]:
        try:
            wait = self.last_start.get(centre_id, 0.0) + WALLBOARD_SPACING - time.monotonic()
            data = await asyncio.to_thread(self._compute, centre_id, min(wait, WALLBOARD_SPACING), run)
            assert run.generation is not None  # set by _compute
            self.cache[centre_id] = (self.last_start[centre_id], run.generation, data)
            return data
        finally:
            self.running.pop(centre_id, None)

    def push(self, centre_id: int) -> None:
        """Keep this event loop's wallboards of the centre up to date (one task per loop and centre)."""
        loop = asyncio.get_running_loop()
        if (loop, centre_id) not in self.pushing:
            self.pushing[(loop, centre_id)] = asyncio.ensure_future(self._push(loop, centre_id))

    async def _push(self, loop: asyncio.AbstractEventLoop, centre_id: int) -> None:
        """Every ``WALLBOARD_PUSH_SECONDS`` while the centre has wallboards here: if updates came
        since the last figures, the next shared computation goes to all of them as one bytes object.
        Before, every wallboard re-read ``/live/wallboard.json`` after updates: with 200 of them,
        200 requests a second (routing, session lookup, JSON), a fifth of each web process's CPU."""
        seen: tuple[int, tuple[int, ...]] | None = None
        try:
            while self.hub.boards(centre_id, loop):
                generation = self._generation(centre_id)
                if generation != seen:
                    try:
                        data = await self.get(centre_id)
                    except Exception as exc:  # noqa: BLE001 - the next tick tries again; screens keep their figures
                        log.warning("live.wallboard_failed", extra={"centre": centre_id, "reason": str(exc)[:200]})
                    else:
                        seen = generation
                        message = {"type": "wallboard", "centre_id": centre_id, "wallboard": data}
                        frame = b"event: wallboard\ndata: " + self.encoded(centre_id, data) + b"\n\n"
                        self.hub.to_boards(centre_id, loop, Item(0, message, frame))
                await asyncio.sleep(WALLBOARD_PUSH_SECONDS)
        finally:
            self.pushing.pop((loop, centre_id), None)

    def encoded(self, centre_id: int, data: dict[str, Any]) -> bytes:
        """The figures as JSON, encoded once per computation for every screen asking for them."""
        last = self._encoded.get(centre_id)
        if last is None or last[0] is not data:
            last = self._encoded[centre_id] = (data, JSONResponse(data).body)
        return last[1]

    def _generation(self, centre_id: int) -> tuple[int, tuple[int, ...]]:
        """Updates seen for the centre, and the thresholds the figures were made with."""
        from hotline.settings import get_settings

        s = get_settings()
        return self.hub.generation(centre_id), (s.wallboard_answer_seconds, s.wallboard_service_level_min,
                                                s.wallboard_abandoned_max, s.wallboard_wait_max_seconds)

    def _compute(self, centre_id: int, wait: float, run: _BoardRun) -> dict[str, Any]:
        if wait > 0:  # spaced from the previous one (slept here, not on the loop: its clock may be frozen in tests)
            time.sleep(wait)
        run.generation = self._generation(centre_id)
        self.last_start[centre_id] = time.monotonic()
        with session_scope() as db:
            return service.wallboard(db, centre_id=centre_id)


class _BoardRun:
    def __init__(self) -> None:
        self.generation: tuple[int, tuple[int, ...]] | None = None  # set when the computation starts
        self.future: asyncio.Future[dict[str, Any]]


WALLBOARD_MAX_AGE = 2.0  # seconds; the browser counts waiting and talking seconds itself
WALLBOARD_SPACING = 0.25
SWITCH_INTERVAL = 0.001  # seconds a thread may hold the GIL while another waits (Python's default: 0.005)
WALLBOARD_PUSH_SECONDS = 1.0  # how often the figures may go to the wallboards (after updates only)


def _boards(request: Request) -> _Boards:
    boards = getattr(request.app.state, "live_boards", None)
    if boards is None:
        boards = request.app.state.live_boards = _Boards(_hub(request))
    return boards


def _centre(principal: Principal, centre: int | None) -> int:
    try:
        return service.centre_for(principal, centre)
    except service.LiveError as exc:
        raise HTTPException(409, detail=error_text(exc, principal.language)) from None


@router.get("/live/wallboard.json")
async def wallboard_data(request: Request, centre: int | None = None,
                         principal: Principal = Depends(supervisors)) -> Response:
    boards, centre_id = _boards(request), _centre(principal, centre)
    data = await boards.get(centre_id)
    return Response(boards.encoded(centre_id, data), media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get("/live/wallboard")
async def wallboard_page(request: Request, centre: int | None = None,
                         principal: Principal = Depends(supervisors)) -> Response:
    centre_id = _centre(principal, centre)
    lang = principal.language
    data = await _boards(request).get(centre_id)
    labels = {k: text(lang)(k) for k in ("available", "busy", "wrap_up", "away", "nobody_waiting", "no_calls_in_progress",
                                         "no_counsellors", "connection_lost", "connected", "overflow_in",
                                         "overflow_out")}
    ctx = {"t": text(lang), "data": data, "labels": labels, "centre": centre_id}
    return await asyncio.to_thread(render, request, "live/wallboard.html", ctx)  # the base page reads the database

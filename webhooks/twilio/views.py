"""Twilio voice webhooks: TwiML for callers and counsellors, and call updates from callbacks.

Every request's ``X-Twilio-Signature`` is checked against ``HOTLINE_PUBLIC_BASE_URL`` + path (+
query) and the form fields, blank values included; a request that fails gets 403, a log line with
the reason, and is kept as a dead letter.  Events go through ``hotline.ingest.spool.submit`` in
batches (``webhooks.twilio.batcher``): when the database is down they are written to the disk
spool and the drainer registered by ``setup_app`` applies them when it is back.  The voice webhook answers with TwiML that enqueues the
caller whatever happens to the database: a caller must always reach a counsellor.

A webhook answers once its events are on disk (an in-flight file, ``spool.hold``), not once they
are committed: the batch commits a few milliseconds after the answer, in the request's background
task, and the file goes at the commit.  A process killed in between leaves the file, which the
drainer replays (the dedupe keys make any second copy harmless).  When the disk refuses the file,
the webhook waits for the commit before answering, as it did before.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode

import anyio
import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from starlette.background import BackgroundTask
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from blocking import service as blocking
from hotline.auth.models import User
from hotline.centres import routing as line_routing
from hotline.centres.numbers import NumberLine, Stale, number_lines
from hotline.centres.service import Routing, ensure_default_centre
from hotline.db import session_scope
from hotline.ingest import spool
from hotline.ingest.events import RawIn
from hotline.ingest.providers.twilio import translator
from hotline.ingest.providers.twilio.translator import Hook, QueueOutcome
from hotline.settings import Settings, get_settings
from webhooks.twilio.batcher import batcher, describe

log = logging.getLogger(__name__)
T = TypeVar("T")

router = APIRouter(prefix="/webhooks/twilio", tags=["twilio"])

LANG = "vi-VN"
DB_BUDGET_SECONDS = 4.0  # Twilio waits 15 s; past this the voice webhook answers from the spool
OUTAGE_ERRORS = (TimeoutError, ConnectionError, OperationalError, InterfaceError)
DB_RETRY_SECONDS = 5.0  # after a failure, incoming calls skip the database this long (no waiting callers)
DRAIN_INTERVAL_SECONDS = 5.0
HOLD_PAUSE_SECONDS = 20  # Twilio fetches the wait URL again when its TwiML ends: a loop

GREETING = ("Xin chào, bạn đã gọi đến đường dây nóng tư vấn và hỗ trợ. Cuộc gọi của bạn được giữ bí mật. "
            "Xin vui lòng giữ máy, tư vấn viên sẽ trả lời bạn ngay.")
RECORDING_NOTICE = "Cuộc gọi này có thể được ghi âm để bảo đảm chất lượng hỗ trợ."
HOLD_FIRST = ("Tất cả tư vấn viên đang bận. Xin vui lòng giữ máy, cuộc gọi của bạn rất quan trọng với chúng tôi. "
              "Nếu bạn đang gặp nguy hiểm, hãy gọi 113. Trẻ em cần giúp đỡ, hãy gọi 111.")
HOLD_AGAIN = "Xin vui lòng tiếp tục giữ máy, tư vấn viên sẽ trả lời bạn sớm nhất."
RETRY = "Xin lỗi, hệ thống đang bận. Chúng tôi đang kết nối lại cho bạn, xin vui lòng giữ máy."
GIVE_UP = ("Xin lỗi, hiện chưa thể kết nối bạn với tư vấn viên. Xin vui lòng gọi lại sau ít phút. "
           "Nếu bạn đang gặp nguy hiểm, hãy gọi 113. Trẻ em cần giúp đỡ, hãy gọi 111.")

BLOCKED = ("Số điện thoại của bạn đang tạm thời bị chặn gọi vào đường dây này. "
           "Nếu bạn đang gặp nguy hiểm, hãy gọi 113 để báo công an, 115 để gọi cấp cứu, "
           "hoặc 111 để được bảo vệ trẻ em. Nếu bạn cần nói chuyện với người giám sát, hãy bấm một phím bất kỳ.")
BLOCKED_BYE = "Xin cảm ơn. Xin chào tạm biệt."
TO_SUPERVISOR = "Xin vui lòng giữ máy, chúng tôi đang kết nối bạn với người giám sát."
SUPERVISOR_QUEUE_SUFFIX = "-supervisors"
# A supervisor's phone first takes a caller waiting in the supervisors' queue (blocked callers who
# pressed the key); <Dial><Queue> waits this long on an empty queue, then the centre's queue follows.
SUPERVISOR_QUEUE_WAIT = 3
DEFAULT_OVERFLOW_SECONDS = 180  # a line with an overflow centre and no wait of its own (as the dialplan)
TO_OVERFLOW = "Xin vui lòng tiếp tục giữ máy, chúng tôi đang chuyển cuộc gọi của bạn đến tư vấn viên của trung tâm khác."
CLOSED_BYE = "Xin cảm ơn. Xin chào tạm biệt."

TEXT_XML = "text/xml; charset=utf-8"


# ---------------------------------------------------------------------- helpers
def _now() -> datetime:
    return datetime.now(timezone.utc)


def _url(settings: Settings, path: str, **query: object) -> str:
    base = settings.public_base_url.rstrip("/") + "/webhooks/twilio/" + path
    return base + ("?" + urlencode(query) if query else "")


def queue_name(settings: Settings, centre_code: str) -> str:
    return f"{settings.twilio_queue_prefix}-{centre_code}"[:64]  # Twilio allows 64 characters


def _twiml(response: VoiceResponse, background: BackgroundTask | None = None) -> Response:
    return Response(content=str(response), media_type=TEXT_XML, background=background)


class _Params:
    """Form fields with repeats, as ``RequestValidator`` wants them (``getall``)."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self.multi: dict[str, list[str]] = {}
        for k, v in pairs:
            self.multi.setdefault(k, []).append(v)

    def __iter__(self) -> Iterator[str]:
        return iter(self.multi)

    def getall(self, name: str) -> list[str]:
        return self.multi[name]

    def last(self) -> dict[str, str]:
        return {k: v[-1] for k, v in self.multi.items()}


@functools.lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


def _signature_problem(settings: Settings, request: Request, params: _Params) -> str | None:
    if not settings.twilio_auth_token:
        return ("HOTLINE_TWILIO_AUTH_TOKEN is not set, so no Twilio request can be trusted; set it to the "
                "auth token of the Twilio account")
    signature = request.headers.get("X-Twilio-Signature")
    if not signature:
        return "the request has no X-Twilio-Signature header; only Twilio may call this URL"
    url = settings.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    if not _validator(settings.twilio_auth_token).validate(url, params, signature):
        return (f"X-Twilio-Signature does not match the request for {request.url.path}; check that "
                "HOTLINE_PUBLIC_BASE_URL is the exact URL configured in Twilio and HOTLINE_TWILIO_AUTH_TOKEN "
                "is the account's auth token")
    return None


async def _keep(raw: RawIn | list[RawIn], budget: float | None = None) -> bool:
    """Keep raw events (committed with their batch, or spooled); True when they reached the database."""
    items = raw if isinstance(raw, list) else [raw]
    if budget is None:
        return await asyncio.wrap_future(batcher.submit(items))
    with anyio.fail_after(budget):
        return await asyncio.wrap_future(batcher.submit(items))


async def _held(items: list[RawIn], on_spooled: Callable[[], None] | None = None) -> BackgroundTask | None:
    """Keep events before the answer at the cost of a disk write: an in-flight file (fsynced,
    ``spool.hold``), then the batcher applies them while the answer goes out; the file is removed
    at the commit, or replayed by the drainer if the process dies first.  Returns the task that
    waits for the commit after the response (``on_spooled`` runs when the database did not take
    them); None when the disk refused the file, and nothing was submitted: keep them with ``_keep``."""
    try:
        journal = await _on_voice_thread(lambda: spool.hold(items), DB_BUDGET_SECONDS)
    except Exception as exc:  # noqa: BLE001 - a disk too slow to answer: keep them the other way
        log.error("twilio.inflight_not_written", extra={"reason": describe(exc)})
        return None
    if journal is None:
        return None
    future = batcher.submit(items)
    future.add_done_callback(functools.partial(_release_when_committed, journal))
    return BackgroundTask(_committed_after_answer, future, on_spooled)


def _release_when_committed(journal: Path, future: Future[bool]) -> None:
    if not future.cancelled() and future.exception() is None and future.result():
        spool.release(journal)  # spooled instead: the file stays, and its replay is a harmless copy


async def _committed_after_answer(future: Future[bool], on_spooled: Callable[[], None] | None) -> None:
    """After the response: wait for the batch (the request's task ends with it, as before)."""
    try:
        committed = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(future)), DB_BUDGET_SECONDS)
    except Exception:  # noqa: BLE001 - late or failed: the in-flight file still holds the events
        committed = False
    if not committed and on_spooled is not None:
        on_spooled()


# The voice webhook's database work runs on threads of its own: under load the shared thread pool is
# busy with pages, and a caller must not wait behind them.
_voice_threads = ThreadPoolExecutor(max_workers=8, thread_name_prefix="twilio-voice")


async def _on_voice_thread(fn: Callable[[], T], budget: float) -> T:
    return await asyncio.wait_for(asyncio.wrap_future(_voice_threads.submit(fn)), budget)


async def _in_thread(fn: Callable[[], object], budget: float | None = None) -> object:
    if budget is None:
        return await anyio.to_thread.run_sync(fn)
    with anyio.fail_after(budget):
        return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)


MAX_BODY_BYTES = 1024 * 1024  # Twilio's webhooks are a few KB; nginx caps /webhooks/ at 1 MB too


async def _body(request: Request) -> bytes | None:
    """The request body, or None when it is over ``MAX_BODY_BYTES`` (found without reading it whole:
    from Content-Length, else while it streams in)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(request: Request, hook: Hook) -> Response:
    log.warning("twilio.body_too_large", extra={"hook": hook.value, "limit": MAX_BODY_BYTES,
                                                "declared": request.headers.get("content-length", "")[:20]})
    return PlainTextResponse(
        "Yêu cầu bị từ chối: nội dung lớn hơn 1 MB.\nPayload too large: Twilio webhook bodies are limited to 1 MB "
        "(Twilio sends a few KB); nothing was kept.", status_code=413)


async def _read(request: Request, hook: Hook) -> translator.Request | Response:
    """Parse and authenticate a webhook; a Response means it was refused (and kept, but for the
    first 64 KB of a body of up to 1 MB; larger bodies are refused with 413 and not kept)."""
    settings = get_settings()
    body = await _body(request)
    if body is None:
        return _too_large(request, hook)
    pairs = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    params = _Params(pairs)
    path = request.url.path + ("?" + request.url.query if request.url.query else "")
    req = translator.Request(
        hook=hook, params=params.last(), received_at=_now(), body=body, path=path,
        idempotency_token=request.headers.get("I-Twilio-Idempotency-Token"),
        query=dict(parse_qsl(request.url.query, keep_blank_values=True)),
    )
    problem = _signature_problem(settings, request, params)
    if problem is not None:
        log.warning("twilio.signature_rejected", extra={"hook": hook.value, "reason": problem,
                                                        "call_sid": req.get("CallSid")})
        await _keep(translator.rejected(req, problem))
        return PlainTextResponse(
            "Yêu cầu bị từ chối: chữ ký Twilio không hợp lệ.\nForbidden: the Twilio signature is not valid.",
            status_code=403)
    return req


def _bad_request(req: translator.Request, raw: RawIn) -> Response:
    log.warning("twilio.bad_request", extra={"hook": req.hook.value, "reason": raw.error,
                                             "call_sid": req.get("CallSid")})
    return PlainTextResponse(f"Yêu cầu không hợp lệ / Bad request: {raw.error}", status_code=400)


# ---------------------------------------------------------------------- centre lookup
# The queue each number and counsellor was last routed to (kept on the app by ``setup_app``), so that
# callers and counsellors still meet in their own centre's queue while the database is unreachable.
LAST_KNOWN_MAX = 10_000


def _last_known(request: Request) -> dict[tuple[str, str | None], str]:
    known = getattr(request.app.state, "twilio_last_known", None)
    if known is None:
        known = request.app.state.twilio_last_known = {}
    return known


def _remember(known: dict[tuple[str, str | None], str], key: tuple[str, str | None], queue: str) -> str:
    if len(known) >= LAST_KNOWN_MAX:
        known.clear()
    known[key] = queue
    return queue


def _retry_race(fn: Callable[[], T]) -> T:
    """Run a lookup again when a concurrent request created the default centre first."""
    try:
        return fn()
    except IntegrityError:
        return fn()


@dataclass(frozen=True)
class NumberRoute:
    """Where the voice webhook sends a caller (``hotline.centres.routing`` decides)."""

    code: str  # the line's centre: its queue is HOTLINE_TWILIO_QUEUE_PREFIX-code
    open: bool = True
    overflow_code: str | None = None  # the overflow centre's code, when the line has one
    overflow_centre_id: int | None = None
    overflow_after: int | None = None  # seconds in the queue before the wait URL says <Leave/>
    closed_text: str = ""
    callback: bool = False  # the closed message offers a key for a callback


def _centre_code_for_number(settings: Settings, dialed: str | None) -> NumberRoute:
    return _retry_race(lambda: _number_lookup(settings, dialed))


def _centre_code_for_agent(settings: Settings, identity: str | None) -> tuple[str, bool]:
    return _retry_race(lambda: _agent_lookup(settings, identity))


def _reload_number_lines(settings: Settings) -> None:
    number_lines.reload(default_code=settings.default_centre_code, default_name=settings.default_centre_name,
                        default_timezone=settings.default_timezone)


def _free_counsellors(centre_id: int) -> int:
    with session_scope() as session:
        return line_routing.available_counsellors(session, centre_id)


def _route_of(found: NumberLine | str, free: Callable[[int], int] | None) -> NumberRoute | None:
    """The route of a call from this process's copy of the lines (``hotline.centres.numbers``);
    None when it needs ``free`` (a line with an overflow centre: is a counsellor free?) and has none."""
    if isinstance(found, str):
        return NumberRoute(found)  # no line claims the number: the default centre
    route = line_routing.route_at(found.line, timezone=found.timezone, now=_now())
    if not route.open:
        return NumberRoute(found.centre_code, open=False, closed_text=route.text, callback=route.callback)
    if route.overflow_centre_id is None or found.overflow_id is None or not found.overflow_active:
        return NumberRoute(found.centre_code)
    if free is None:
        return None
    # Nobody free here (no counsellor available on the live screen): on at the first wait URL.
    after = (route.wait_seconds or DEFAULT_OVERFLOW_SECONDS) if free(found.line.centre_id) else 0
    return NumberRoute(found.centre_code, overflow_code=found.overflow_code, overflow_centre_id=found.overflow_id,
                       overflow_after=after)


def _route_now(dialed: str | None) -> NumberRoute | None:
    """The route without a thread or a statement, when the copy of the lines is current and the
    line has no overflow centre; else None (``_number_lookup`` on a voice thread)."""
    try:
        return _route_of(number_lines.find(translator.PROVIDER, dialed), None)
    except Stale:
        return None


def _number_lookup(settings: Settings, dialed: str | None) -> NumberRoute:
    """On a voice thread: the copy of the lines reloaded first when it may be out of date, and a
    line with an overflow centre asks whether a counsellor is free."""
    if not number_lines.fresh():
        _reload_number_lines(settings)
    try:
        found = number_lines.find(translator.PROVIDER, dialed)
    except Stale:  # changed again while reloading: read once more
        _reload_number_lines(settings)
        found = number_lines.find(translator.PROVIDER, dialed)
    route = _route_of(found, _free_counsellors)
    assert route is not None  # with ``free`` given, always a route
    return route


def _agent_lookup(settings: Settings, identity: str | None) -> tuple[str, bool]:
    """The centre whose Twilio numbers the counsellor answers (default when it has none), and
    whether the identity is a supervisor's (who takes the supervisors' queue first)."""
    with session_scope() as session:
        default = ensure_default_centre(session, code=settings.default_centre_code,
                                        name=settings.default_centre_name, timezone=settings.default_timezone)
        routing = Routing.load(session, default.id)
        mapping = routing.agents.get((translator.PROVIDER, identity or ""))
        user = session.get(User, mapping.user_id) if mapping is not None and mapping.user_id else None
        supervisor = user is not None and user.active and user.role == "supervisor"
        if mapping is None or mapping.centre_id == default.id:
            return default.code, supervisor
        for (provider, _ident), line in routing.numbers.items():
            if provider in (translator.PROVIDER, "any") and line.centre_id == mapping.centre_id:
                return line.centre.code, supervisor
        return default.code, supervisor


# ---------------------------------------------------------------------- the caller
def voice_twiml(settings: Settings, queue: str, route: NumberRoute | None = None) -> VoiceResponse:
    response = VoiceResponse()
    response.say(GREETING, language=LANG)
    if settings.twilio_recording_notice:
        response.say(RECORDING_NOTICE, language=LANG)
    action: dict[str, object] = {"queue": queue, "attempt": 0}
    wait: dict[str, object] = {}
    if route is not None and route.overflow_code is not None:
        # The wait URL says <Leave/> after the line's overflow wait; the action URL then enqueues the
        # caller into the overflow centre's queue.
        action.update(overflow=queue_name(settings, route.overflow_code), overflow_centre=route.overflow_centre_id)
        wait["overflow_after"] = route.overflow_after or 0
    response.enqueue(queue, action=_url(settings, "enqueue-action", **action), method="POST",
                     wait_url=_url(settings, "wait", **wait), wait_url_method="POST")
    return response


def closed_twiml(settings: Settings, route: NumberRoute) -> VoiceResponse:
    """Out of hours: the message with the emergency numbers, and (when offered) a key for a callback."""
    response = VoiceResponse()
    if route.callback:
        gather = Gather(num_digits=1, timeout=8, action=_url(settings, "closed-key"), method="POST")
        gather.say(route.closed_text, language=LANG)
        response.append(gather)
        response.say(CLOSED_BYE, language=LANG)
    else:
        response.say(route.closed_text, language=LANG)
    response.hangup()
    return response


def blocked_twiml(settings: Settings, queue: str) -> VoiceResponse:
    """A blocked caller: the emergency numbers, and any key reaches the supervisors' queue."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, timeout=8, action=_url(settings, "blocked-key", queue=queue), method="POST")
    gather.say(BLOCKED, language=LANG)
    response.append(gather)
    response.say(BLOCKED_BYE, language=LANG)
    response.hangup()
    return response


def _caller(req: translator.Request) -> str | None:
    return req.get("From") or req.get("Caller")


def _mark_down(request: Request) -> None:
    if time.monotonic() >= getattr(request.app.state, "twilio_db_down_until", 0.0):
        request.app.state.twilio_db_down_until = time.monotonic() + DB_RETRY_SECONDS


@router.post("/voice")
async def voice(request: Request) -> Response:
    req = await _read(request, Hook.VOICE)
    if isinstance(req, Response):
        return req
    settings = get_settings()
    deadline = anyio.current_time() + DB_BUDGET_SECONDS
    # The block check reads this process's copy of the active blocks (no database, no thread: it
    # answers at once; only a copy that may be out of date is refreshed first, beside the lookup).
    checking = asyncio.ensure_future(blocking.blocked_now(_caller(req)))
    req.assigned_queue = queue_name(settings, settings.default_centre_code)
    known = _last_known(request)
    route: NumberRoute | None = None
    reachable = time.monotonic() >= getattr(request.app.state, "twilio_db_down_until", 0.0)
    if not reachable:  # the database failed moments ago: answer at once, from memory and the spool
        req.assigned_queue = known.get(("number", translator.dialed_of(req)), req.assigned_queue)
    elif not translator.missing_fields(Hook.VOICE, req.params):
        try:
            found = _route_now(translator.dialed_of(req))  # from memory, else on a voice thread
            if found is None:
                found = await _on_voice_thread(lambda: _centre_code_for_number(settings, translator.dialed_of(req)),
                                               DB_BUDGET_SECONDS)
            route = found
            req.assigned_queue = _remember(known, ("number", translator.dialed_of(req)),
                                           queue_name(settings, found.code))
            req.closed = not found.open
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the caller is enqueued
            # The last queue this number was routed to, else the default.  Only an outage (no
            # connection, no answer in time) sends the event straight to the disk spool.
            reachable = not isinstance(exc, OUTAGE_ERRORS)
            req.assigned_queue = known.get(("number", translator.dialed_of(req)), req.assigned_queue)
            log.error("twilio.voice_lookup_failed", extra={"reason": describe(exc),
                                                           "call_sid": req.get("CallSid")})
    items = translator.translate_all(req)  # the event, and a dead letter for any value left out
    raw = items[0]
    if raw.error:
        await _keep(raw)
        await checking
        return _bad_request(req, raw)
    block_id = await checking  # fails open: None when the check could not be made
    # A blocked call goes to the blocking recorder's journal before the answer (its thread records
    # it just after), written beside the call's own in-flight file: two disk writes at once.
    recording = (blocking.record_blocked_call_async(provider="twilio", call_ref=req.get("CallSid") or "",
                                                    block_id=block_id) if block_id is not None else None)
    settle: BackgroundTask | None = None
    if reachable:
        # On disk first, answered at once; the commit follows (``_held``).  The database went away
        # just now when the ingestor spools the event instead: the next callers skip it a while.
        holding = _held(items, on_spooled=lambda: _mark_down(request))
        if recording is not None:
            settle, _ = await asyncio.gather(holding, recording)
            recording = None
        else:
            settle = await holding
        try:
            if settle is None and not await _keep(items, budget=max(0.1, deadline - anyio.current_time())):
                _mark_down(request)
        except Exception:  # noqa: BLE001 - a late commit and the spooled copy are one event (same dedupe key)
            reachable = False
    if not reachable:
        _mark_down(request)
        kept = await anyio.to_thread.run_sync(lambda: spool.keep(items))  # disk, else memory: never fails the call
        log.error("twilio.voice_spooled", extra={"call_sid": req.get("CallSid"), "spool": kept.name,
                                                 "kept": kept.where})
    if recording is not None:
        await recording
    if block_id is not None:
        return _twiml(blocked_twiml(settings, req.assigned_queue), settle)
    if route is not None and not route.open:
        return _twiml(closed_twiml(settings, route), settle)
    return _twiml(voice_twiml(settings, req.assigned_queue, route), settle)


@router.post("/blocked-key")
async def blocked_key(request: Request) -> Response:
    """The blocked caller's key press (the ``<Gather>`` action): to the supervisors' queue."""
    settings = get_settings()
    body = await _body(request)
    if body is None:
        return _too_large(request, Hook.VOICE)
    params = _Params(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))
    problem = _signature_problem(settings, request, params)
    if problem is not None:
        log.warning("twilio.signature_rejected", extra={"hook": "blocked-key", "reason": problem})
        return PlainTextResponse(
            "Yêu cầu bị từ chối: chữ ký Twilio không hợp lệ.\nForbidden: the Twilio signature is not valid.",
            status_code=403)
    fields = params.last()
    response = VoiceResponse()
    if not fields.get("Digits"):
        response.say(BLOCKED_BYE, language=LANG)
        response.hangup()
        return _twiml(response)
    queue = (request.query_params.get("queue") or queue_name(settings, settings.default_centre_code))
    try:  # recorded after the answer, after the call's own record (the blocking recorder)
        await blocking.mark_pressed_async(provider="twilio", call_ref=fields.get("CallSid", ""))
    except Exception as exc:  # noqa: BLE001 - the caller reaches a supervisor whatever happens
        log.error("twilio.block_pressed_not_kept", extra={"reason": describe(exc)})
    response.say(TO_SUPERVISOR, language=LANG)
    response.enqueue(queue + SUPERVISOR_QUEUE_SUFFIX, wait_url=_url(settings, "wait"), wait_url_method="POST")
    return _twiml(response)


@router.post("/wait")
async def wait(request: Request) -> Response:
    req = await _read(request, Hook.WAIT)
    if isinstance(req, Response):
        return req
    response = VoiceResponse()
    waited = translator.to_int(req.get("QueueTime")) or 0
    overflow_after = translator.to_int(req.query.get("overflow_after"))
    if overflow_after is not None and waited >= overflow_after:
        response.leave()  # the action URL enqueues the caller into the overflow centre's queue
        return _twiml(response)
    first = waited < HOLD_PAUSE_SECONDS
    response.say(HOLD_FIRST if first else HOLD_AGAIN, language=LANG)
    position = translator.to_int(req.get("QueuePosition"))
    if position and position > 1:
        response.say(f"Bạn đang ở vị trí số {position} trong hàng chờ.", language=LANG)
    pause = HOLD_PAUSE_SECONDS if overflow_after is None else max(1, min(HOLD_PAUSE_SECONDS, overflow_after - waited))
    response.pause(length=pause)
    return _twiml(response)


def _after_queue(settings: Settings, req: translator.Request) -> VoiceResponse:
    attempt = translator.to_int(req.query.get("attempt")) or 0
    queue = req.query.get("queue") or queue_name(settings, settings.default_centre_code)
    result = req.params["QueueResult"].strip().lower()
    outcome = translator.queue_outcome(result, attempt)
    response = VoiceResponse()
    overflow = req.query.get("overflow")
    if result == "leave" and overflow:  # the line's overflow wait is over: the other centre's queue
        response.say(TO_OVERFLOW, language=LANG)
        response.enqueue(overflow, action=_url(settings, "enqueue-action", queue=overflow, attempt=0), method="POST",
                         wait_url=_url(settings, "wait"), wait_url_method="POST")
        return response
    if outcome is QueueOutcome.RETRY:
        response.say(RETRY, language=LANG)
        response.enqueue(queue, action=_url(settings, "enqueue-action", queue=queue, attempt=attempt + 1),
                         method="POST", wait_url=_url(settings, "wait"), wait_url_method="POST")
    elif outcome is QueueOutcome.GIVE_UP:
        response.say(GIVE_UP, language=LANG)
        response.hangup()
    elif outcome is QueueOutcome.DONE:
        response.hangup()
    return response


async def _callback(request: Request, hook: Hook,
                    answer: Callable[[Settings, translator.Request], VoiceResponse] | None = None) -> Response:
    req = await _read(request, hook)
    if isinstance(req, Response):
        return req
    items = translator.translate_all(req)  # the event, and a dead letter for any value left out
    raw = items[0]
    if raw.error:
        await _keep(items)
        return _bad_request(req, raw)
    settle = await _held(items)  # on disk, answered at once, committed just after
    if settle is None:
        await _keep(items)
    settings = get_settings()
    return _twiml(answer(settings, req) if answer else VoiceResponse(), settle)


@router.post("/status")
async def status(request: Request) -> Response:
    return await _callback(request, Hook.STATUS)


@router.post("/enqueue-action")
async def enqueue_action(request: Request) -> Response:
    return await _callback(request, Hook.ENQUEUE_ACTION, _after_queue)


@router.post("/dequeue")
async def dequeue(request: Request) -> Response:
    return await _callback(request, Hook.DEQUEUE)


def _after_supervisor_queue(settings: Settings, req: translator.Request) -> VoiceResponse:
    """A supervisor's phone after the supervisors' queue: done if it took a caller, else the centre's queue."""
    then = req.query.get("then")
    status = (req.params.get("DialCallStatus") or "").strip().lower()
    if then and status not in ("answered", "completed"):
        return agent_twiml(settings, then, req.query.get("agent"))
    return VoiceResponse()


@router.post("/dial-action")
async def dial_action(request: Request) -> Response:
    return await _callback(request, Hook.DIAL_ACTION, _after_supervisor_queue)


@router.post("/closed-key")
async def closed_key(request: Request) -> Response:
    """The out-of-hours caller's key press (the closed message's ``<Gather>``): a callback request."""
    return await _callback(request, Hook.CLOSED_KEY, _closed_answer)


def _closed_answer(settings: Settings, req: translator.Request) -> VoiceResponse:
    response = VoiceResponse()
    response.say(line_routing.CALLBACK_THANKS if req.get("Digits") else CLOSED_BYE, language=LANG)
    response.hangup()
    return response


# ---------------------------------------------------------------------- the counsellor
def agent_twiml(settings: Settings, queue: str, identity: str | None, supervisor: bool = False) -> VoiceResponse:
    """The counsellor takes the next caller of the centre's queue.  A supervisor first takes a caller
    of the supervisors' queue (blocked callers who pressed the key): ``<Dial><Queue>`` waits
    ``SUPERVISOR_QUEUE_WAIT`` s on it, and the dial action then dials the centre's queue."""
    response = VoiceResponse()
    agent = {"agent": identity} if identity else {}
    if supervisor:
        own = queue + SUPERVISOR_QUEUE_SUFFIX
        dial = Dial(action=_url(settings, "dial-action", leg=translator.AGENT_LEG, then=queue, **agent),
                    method="POST", timeout=SUPERVISOR_QUEUE_WAIT)
        dial.queue(own, url=_url(settings, "dequeue", queue=own, **agent), method="POST")
        response.append(dial)
        return response
    dial = Dial(action=_url(settings, "dial-action", leg=translator.AGENT_LEG), method="POST")
    dial.queue(queue, url=_url(settings, "dequeue", queue=queue, **agent), method="POST")
    response.append(dial)
    return response


@router.post("/agent")
async def agent(request: Request) -> Response:
    req = await _read(request, Hook.AGENT)
    if isinstance(req, Response):
        return req
    settings = get_settings()
    raw = translator.translate(req)
    if raw.error:
        await _keep(raw)
        return _bad_request(req, raw)
    identity = translator.counsellor_calling(req)
    queue = queue_name(settings, settings.default_centre_code)
    supervisor = False
    try:
        found = await _in_thread(lambda: _centre_code_for_agent(settings, identity), budget=DB_BUDGET_SECONDS)
        assert isinstance(found, tuple)
        code, supervisor = found
        queue = _remember(_last_known(request), ("agent", identity), queue_name(settings, str(code)))
    except Exception as exc:  # noqa: BLE001 - a counsellor must always get TwiML that reaches the callers
        queue = _last_known(request).get(("agent", identity), queue)
        log.error("twilio.agent_lookup_failed", extra={"reason": describe(exc)})
    settle = await _held([raw])
    try:
        if settle is None:
            await _keep(raw, budget=DB_BUDGET_SECONDS)
    except Exception:  # noqa: BLE001 - kept on disk instead
        await anyio.to_thread.run_sync(lambda: spool.keep([raw]))
    return _twiml(agent_twiml(settings, queue, identity, supervisor), settle)


# ---------------------------------------------------------------------- the app
def _start_drainer(app: FastAPI) -> Callable[[], None]:
    log.info("twilio.spool_drainer_started", extra={"interval": DRAIN_INTERVAL_SECONDS})
    stop_drainer = spool.start_drainer(DRAIN_INTERVAL_SECONDS)

    def stop() -> None:
        stop_drainer()
        batcher.stop()

    return stop


def _start_number_lines(app: FastAPI) -> Callable[[], None]:
    """Keep this process's copy of the lines current, so the voice webhook routes from memory."""
    settings = get_settings()
    number_lines.invalidate()  # read afresh by the first call, whatever an earlier app of this process left
    if not settings.twilio_auth_token:  # no Twilio request can be trusted: nothing to route
        return lambda: None
    return number_lines.start_refresher(lambda: _reload_number_lines(settings))


def setup_app(app: FastAPI) -> None:
    """Replay spooled Twilio events (written while the database was down) once it is back, and
    keep the copy of the lines the voice webhook routes from."""
    app.state.twilio_last_known = {}
    app.state.startup_hooks.append(_start_drainer)
    app.state.startup_hooks.append(_start_number_lines)

"""The composition root: every domain of the application, declared once.

This is the ONLY module of ``hotline/`` that imports a domain package (directory, legal_library,
referral, daily_log, webhooks, blocking, callbacks); ``tests/core/test_architecture.py`` fails if another one does.
``create_app`` (routers, app set-up), the ``hotline`` command (sub-commands), the worker
(periodic tasks, start hooks), Alembic (migration folders, tables), i18n (catalogues), the record
page (panels), the live screen (visibility rules) and retention (steps) all read the records
below.  Adding a domain = writing its package and one ``Domain(...)`` entry in ``DOMAINS``.

Each record keeps what is cheap (its folder, hence ``migrations/`` and ``i18n/``, and its tables)
at hand, and imports the rest (views, CLI, jobs) when first asked (``domain.wiring``), with plain
imports in the ``_<name>()`` loaders: importing this module never imports a view.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import blocking
import callbacks
import daily_log
import directory
import hotline
import hotline.auth
import hotline.calls
import hotline.ingest
import hotline.live
import hotline.notifications
import hotline.ops
import hotline.pbx
import hotline.records
import hotline.security
import legal_library
import referral
import webhooks
from blocking import models as blocking_models
from callbacks import models as callbacks_models
from daily_log import models as daily_log_models
from directory import models as directory_models
from hotline.audit import models as audit_models
from hotline.auth import models as auth_models
from hotline.calls import models as calls_models
from hotline.centres import models as centres_models
from hotline.live import models as live_models
from hotline.notifications import models as notifications_models
from hotline.pbx import models as pbx_models
from legal_library import models as legal_library_models
from referral import models as referral_models

if TYPE_CHECKING:
    import argparse

    from fastapi import APIRouter, FastAPI
    from sqlalchemy.orm import Session

    from hotline.pbx.models import PbxCommand
    from hotline.queue import Periodic
    from hotline.security.service import RetentionHook

#: ``panel(request, db, record, principal) -> Markup``: a block on the call-record page.
RecordPanel = Callable[..., Any]
#: ``panel(request, db, principal) -> Markup``: a block on the live screen (below the calls strip).
LivePanel = Callable[..., Any]
#: ``figures(session, centre_id, now) -> [{"key", "label" (msgid), "value", "text" (shown), "href"?}]``: the wallboard's.
WallboardFigures = Callable[..., list[dict[str, Any]]]
#: ``notes(session, calls) -> {call id: Text}``: a short line under calls on the calls list.
CallNotes = Callable[..., dict[int, Any]]
#: ``marks(session, call, actor) -> [{"code", "label" (Text, short), "text" (Text), ...}]``: warnings about the
#: caller's number, on the call card (label) and with the caller history of a pop (text), e.g. "do not call back"
CallerMarks = Callable[..., list[dict[str, Any]]]
#: ``rule(viewer, message) -> bool``: may this viewer see this live-screen message?
VisibilityRule = Callable[[Any, dict[str, Any]], bool]
#: ``hook(session, command)``: a call hotline placed (``hotline.pbx``) ended ``placed`` or ``failed``
PbxResultHook = Callable[["Session", "PbxCommand"], None]


@dataclass(frozen=True)
class Wiring:
    """What a domain plugs into the application (imported on first use)."""

    routers: tuple[APIRouter, ...] = ()
    #: called once by ``create_app`` (static mounts, middleware, startup hooks), in domain order
    app_setup: tuple[Callable[[FastAPI], None], ...] = ()
    #: ``register(subparsers)``: adds the domain's ``hotline`` sub-commands
    commands: Callable[[argparse._SubParsersAction[Any]], None] | None = None
    periodic: tuple[Periodic, ...] = ()
    worker_start: tuple[Callable[[], None], ...] = ()
    record_panels: tuple[RecordPanel, ...] = ()
    live_panels: tuple[LivePanel, ...] = ()
    wallboard_figures: tuple[WallboardFigures, ...] = ()
    call_notes: tuple[CallNotes, ...] = ()
    caller_marks: tuple[CallerMarks, ...] = ()
    #: ``(message type, role) -> rule`` for the domain's own live-screen messages
    visibility: Mapping[tuple[str, str], VisibilityRule] = field(default_factory=dict)
    #: the domain's retention steps (see ``hotline.security.service.RetentionHook``)
    retention: tuple[RetentionHook, ...] = ()
    #: starter data the demo loads: ``seed(session)``
    demo_seed: tuple[Callable[[Session], Any], ...] = ()
    #: ``ref prefix -> hook``: told when a call it asked ``hotline.pbx`` to place ends (e.g. "cb", "fu")
    pbx_results: Mapping[str, PbxResultHook] = field(default_factory=dict)


@dataclass(frozen=True)
class Domain:
    name: str
    package: ModuleType  # its folder holds ``migrations/`` and ``i18n/<lang>.po``
    load: Callable[[], Wiring]
    #: the modules declaring its tables (``hotline.models`` imports them for ``Base.metadata``)
    models: tuple[ModuleType, ...] = ()
    #: an Alembic branch of its own in ``<package>/migrations`` (core's is ``hotline/migrations/versions``)
    own_migrations: bool = False
    #: its strings' translations in ``<package>/i18n/<lang>.po`` (merged over core's catalogue)
    own_catalogue: bool = False

    @functools.cached_property
    def wiring(self) -> Wiring:
        return self.load()

    @property
    def folder(self) -> Path:
        return Path(self.package.__file__ or "").parent

    @property
    def migrations(self) -> Path | None:
        return self.folder / "migrations" if self.own_migrations else None

    def catalogue(self, lang: str) -> Path | None:
        po = self.folder / "i18n" / f"{lang}.po"
        return po if self.own_catalogue and po.exists() else None


# ---------------------------------------------------------------------- loaders (plain imports)
def _core() -> Wiring:
    from hotline import commands, web
    from hotline.centres import views as centres

    return Wiring(routers=(web.router, centres.router), app_setup=(web.setup_app,), commands=commands.register)


def _calls() -> Wiring:
    from hotline.calls import cli, views

    return Wiring(routers=(views.router,), commands=cli.register, record_panels=(views.record_panel,))


def _ingest() -> Wiring:
    from hotline.ingest import retention
    from hotline.ingest.providers.asterisk import cli
    from hotline.security.service import RetentionHook

    return Wiring(commands=cli.register, retention=(RetentionHook("raw_events", retention.retain_raw_events),))


def _twilio() -> Wiring:
    from webhooks.twilio import outbound, views

    return Wiring(routers=(views.router, outbound.router), app_setup=(views.setup_app,))


def _directory() -> Wiring:
    from directory import cli, seed, views

    return Wiring(routers=(views.router,), commands=cli.register, demo_seed=(seed.demo_seed,))


def _legal_library() -> Wiring:
    from legal_library import cli, service, views

    return Wiring(routers=(views.router,), commands=cli.register, demo_seed=(service.seed,))


def _auth() -> Wiring:
    from hotline.auth import cli, views

    return Wiring(routers=(views.router,), commands=cli.register)


def _live() -> Wiring:
    from hotline.live import jobs, views

    return Wiring(routers=(views.router,), app_setup=(views.setup_app,), periodic=tuple(jobs.PERIODIC))


def _pbx() -> Wiring:
    from hotline.pbx import jobs, service
    from hotline.security.service import RetentionHook

    return Wiring(periodic=tuple(jobs.PERIODIC), retention=(RetentionHook("pbx_commands", service.retain),))


def _records() -> Wiring:
    from hotline.records import views

    return Wiring(routers=(views.router,))


def _daily_log() -> Wiring:
    from daily_log import cli, jobs, views

    return Wiring(routers=(views.router,), app_setup=(views.setup_app,), commands=cli.register,
                  periodic=tuple(jobs.PERIODIC), worker_start=(jobs.on_worker_start,))


def _referral() -> Wiring:
    from hotline.security.service import RetentionHook
    from referral import cli, jobs, partners, service, views

    return Wiring(routers=(views.router,), commands=cli.register, periodic=tuple(jobs.PERIODIC),
                  record_panels=(views.record_panel,), visibility=views.LIVE_VISIBILITY,
                  retention=(RetentionHook("referrals", service.retain),), demo_seed=(partners.demo_seed,))


def _blocking() -> Wiring:
    from blocking import cli, service, views
    from hotline.security.service import RetentionHook

    return Wiring(routers=(views.router,), app_setup=(views.setup_app,), commands=cli.register,
                  record_panels=(views.record_panel,), retention=(RetentionHook("number_blocks", service.retain),))


def _notifications() -> Wiring:
    from hotline.notifications import service, views
    from hotline.security.service import RetentionHook

    rules = {("notification", role): service.visible_to for role in ("counsellor", "supervisor", "administrator")}
    return Wiring(routers=(views.router,), visibility=rules,
                  retention=(RetentionHook("notifications", service.retain),))


def _callbacks() -> Wiring:
    from callbacks import cli, jobs, service, views
    from hotline.security.service import RetentionHook

    return Wiring(routers=(views.router,), app_setup=(views.setup_app,), commands=cli.register,
                  periodic=tuple(jobs.PERIODIC), record_panels=(views.record_panel,), live_panels=(views.live_panel,),
                  wallboard_figures=(views.wallboard_figures,), call_notes=(views.call_notes,),
                  caller_marks=(service.caller_marks,), pbx_results={"cb": service.on_pbx_result,
                                                                     "fu": service.on_pbx_result},
                  retention=(RetentionHook("callbacks", service.retain),))


def _ops() -> Wiring:
    from hotline.ops import cli, views

    return Wiring(routers=(views.router,), app_setup=(views.setup_app,), commands=cli.register)


def _security() -> Wiring:
    from hotline.security import cli, jobs, views

    return Wiring(routers=(views.router,), app_setup=(views.setup_app,), commands=cli.register,
                  periodic=tuple(jobs.PERIODIC), record_panels=(views.record_panel,))


#: In order: routers are mounted, app set-ups run, sub-commands listed, panels shown in this order.
DOMAINS: tuple[Domain, ...] = (
    Domain("hotline", hotline, _core, models=(auth_models, audit_models, calls_models, centres_models, live_models)),
    Domain("calls", hotline.calls, _calls),
    Domain("ingest", hotline.ingest, _ingest),
    Domain("webhooks", webhooks, _twilio, own_catalogue=True),
    Domain("directory", directory, _directory, models=(directory_models,), own_migrations=True, own_catalogue=True),
    Domain("legal_library", legal_library, _legal_library, models=(legal_library_models,), own_migrations=True,
           own_catalogue=True),
    Domain("auth", hotline.auth, _auth),
    Domain("live", hotline.live, _live),
    Domain("pbx", hotline.pbx, _pbx, models=(pbx_models,)),
    Domain("records", hotline.records, _records),
    Domain("daily_log", daily_log, _daily_log, models=(daily_log_models,), own_migrations=True, own_catalogue=True),
    Domain("referral", referral, _referral, models=(referral_models,), own_migrations=True, own_catalogue=True),
    Domain("blocking", blocking, _blocking, models=(blocking_models,), own_migrations=True, own_catalogue=True),
    Domain("notifications", hotline.notifications, _notifications, models=(notifications_models,),
           own_catalogue=True),
    Domain("callbacks", callbacks, _callbacks, models=(callbacks_models,), own_migrations=True, own_catalogue=True),
    Domain("ops", hotline.ops, _ops, own_catalogue=True),
    Domain("security", hotline.security, _security, own_catalogue=True),
)


# ---------------------------------------------------------------------- what the consumers read
def migration_folders() -> list[Path]:
    """Core's chain first, then each domain's own Alembic branch."""
    out = [Path(hotline.__file__ or "").parent / "migrations" / "versions"]
    return out + [d.migrations for d in DOMAINS if d.migrations is not None]


def catalogues(lang: str) -> list[Path]:
    """The domains' own ``i18n/<lang>.po`` (merged over core's catalogue, later ones winning)."""
    return [po for d in DOMAINS if (po := d.catalogue(lang)) is not None]


def catalogue_packages() -> list[str]:
    """Dotted names of the packages that keep their own catalogue (for ``hotline.i18n.extract``)."""
    return [d.package.__name__ for d in DOMAINS if d.own_catalogue]


def command_registrars() -> list[Callable[[argparse._SubParsersAction[Any]], None]]:
    return [d.wiring.commands for d in DOMAINS if d.wiring.commands is not None]


def periodic_tasks() -> list[Periodic]:
    return [t for d in DOMAINS for t in d.wiring.periodic]


def worker_start_hooks() -> list[tuple[str, Callable[[], None]]]:
    return [(d.name, h) for d in DOMAINS for h in d.wiring.worker_start]


def record_panels() -> list[RecordPanel]:
    return [p for d in DOMAINS for p in d.wiring.record_panels]


def live_panels() -> list[LivePanel]:
    return [p for d in DOMAINS for p in d.wiring.live_panels]


def wallboard_figures() -> list[WallboardFigures]:
    return [f for d in DOMAINS for f in d.wiring.wallboard_figures]


def call_notes() -> list[CallNotes]:
    return [n for d in DOMAINS for n in d.wiring.call_notes]


def caller_marks() -> list[CallerMarks]:
    return [m for d in DOMAINS for m in d.wiring.caller_marks]


def places_module() -> ModuleType:
    """The administrative units (34 provinces, their communes, old names mapped to new ones):
    ``directory.places``, which the record form's province and commune pickers also use."""
    import directory.places

    return directory.places


_rules: dict[int, dict[tuple[str, str], VisibilityRule]] = {}


def visibility_rules() -> dict[tuple[str, str], VisibilityRule]:
    """Every domain's live-screen rules (worked out once: ``visible`` asks for every message)."""
    rules = _rules.get(id(DOMAINS))
    if rules is None:
        rules = {}
        for d in DOMAINS:
            rules.update(d.wiring.visibility)
        _rules.clear()
        _rules[id(DOMAINS)] = rules
    return rules


def retention_steps() -> list[RetentionHook]:
    return [s for d in DOMAINS for s in d.wiring.retention]


def pbx_result_hooks() -> dict[str, PbxResultHook]:
    """Every domain's hooks for the end of a call placed through ``hotline.pbx``, by ref prefix."""
    hooks: dict[str, PbxResultHook] = {}
    for d in DOMAINS:
        hooks.update(d.wiring.pbx_results)
    return hooks


def demo_seeds() -> list[Callable[[Session], Any]]:
    return [s for d in DOMAINS for s in d.wiring.demo_seed]

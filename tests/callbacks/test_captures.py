"""The worklist over real Asterisk 22.10.1 captures replayed through the AMI listener's socket
(tests/fixtures/ami): an out-of-hours caller who pressed the key becomes a callback item; the call
hotline placed itself (the ``callback`` capture, ref cb:1) is never an item and never counts as the
caller "answered since" (the counsellor's own phone answers it first)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from callbacks import service
from callbacks.models import CallbackItem
from hotline.calls.models import Call
from hotline.db import session_scope
from tests.ami.conftest import Rig
from tests.ami.test_conformance import FIXTURES, _users, expected, replay
from tests.callbacks.conftest import missed

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _build_after_the_capture() -> dict[str, int]:
    with session_scope() as db:
        last = db.scalar(select(Call.received_at).order_by(Call.received_at.desc()).limit(1))
        return service.build(db, now=last + timedelta(minutes=5)).as_dict()


def test_an_out_of_hours_callback_request_is_an_item(env, rig: Rig) -> None:
    spec = expected(FIXTURES / "out_of_hours")
    _users(spec)
    replay(rig, FIXTURES / "out_of_hours" / "filtered.ami", spec)
    assert _build_after_the_capture()["made"] == 1
    with session_scope() as db:
        [item] = db.scalars(select(CallbackItem)).all()
        assert (item.kind, item.status, item.number_masked) == ("requested", "open", "0908 *** 999")


def test_the_call_hotline_placed_is_not_an_item_nor_the_caller_answered(env, rig: Rig) -> None:
    spec = expected(FIXTURES / "callback")
    _users(spec)
    replay(rig, FIXTURES / "callback" / "filtered.ami", spec)
    with session_scope() as db:
        placed = db.scalars(select(Call)).one()
        assert placed.facts["callback"] == "cb:1" and placed.answered_at is not None
        before = placed.received_at - timedelta(hours=1)
    missed("0912345678", before)  # the missed call this callback returned
    assert _build_after_the_capture() == {"made": 1, "merged": 0, "closed": 0, "expired": 0}
    with session_scope() as db:
        [item] = db.scalars(select(CallbackItem)).all()
        assert item.status == "open" and item.call_id != placed.id


def test_a_callback_context_named_by_the_setting_is_recognised(env, rig: Rig, tmp_path, monkeypatch) -> None:
    """HOTLINE_PBX_CALLBACK_CONTEXT names the dialplan context hotline's calls run in (Originate's
    Context); the listener reads the same setting: the capture with its context renamed is still one
    callback, answered by the counsellor, its caller the number dialled."""
    from hotline.settings import reset_settings

    spec = expected(FIXTURES / "callback")
    _users(spec)
    renamed = tmp_path / "filtered.ami"
    data = (FIXTURES / "callback" / "filtered.ami").read_bytes()
    assert data.count(b"hotline-callback") >= 1
    renamed.write_bytes(data.replace(b"hotline-callback", b"hl-goi-lai"))
    monkeypatch.setenv("HOTLINE_PBX_CALLBACK_CONTEXT", "hl-goi-lai")
    reset_settings()
    replay(rig, renamed, spec)
    with session_scope() as db:
        placed = db.scalars(select(Call)).one()
        assert placed.facts["callback"] == "cb:1"
        assert placed.answered_by == "Local/tvv1@phones"  # the counsellor's phone, as without renaming
        assert placed.caller_number == "+84912345678"  # the number dialled (None when the context is not known)

"""The ingestor keeps its routing snapshot between batches (a lone status callback no longer loads
every line and agent identity), yet sees every change at once: lines added, agents mapped or
re-mapped, the default centre recreated."""

from __future__ import annotations

from sqlalchemy import select

from hotline.calls.models import Call
from hotline.centres.service import add_line, create_centre, get_centre, map_agent
from hotline.db import session_scope
from tests.helpers import create_user
from tests.twilio.conftest import LINE, base_params


def call(post, n: int, *, agent: str | None = None) -> Call:
    sid = f"CA{n:032d}"
    assert post("/webhooks/twilio/voice", base_params(CallSid=sid)).status_code == 200
    if agent:
        assert post("/webhooks/twilio/dequeue?queue=hotline-default&agent=" + agent.replace(":", "%3A"),
                    base_params(CallSid=sid, CallStatus="in-progress", QueueTime="5",
                                DequeingCallSid=f"CA{n + 500:032d}")).status_code == 200
    with session_scope() as s:
        found = s.scalar(select(Call).where(Call.provider_key == sid))
        assert found is not None
        s.expunge(found)
        return found


def test_routing_changes_reach_the_next_call_at_once(post, env) -> None:
    assert call(post, 1).unrouted  # no centre claims the number yet
    with session_scope() as s:
        centre = create_centre(s, code="kontum", name="Kon Tum")
        add_line(s, centre=centre, provider="twilio", kind="number", identifier=LINE)
    routed = call(post, 2)
    assert not routed.unrouted and routed.line_id is not None

    lan = create_user("lan", "xanh-la-cay-mua-thu-7", "counsellor", centre_code="kontum")
    hoa = create_user("hoa", "bien-rong-chieu-tim-9", "counsellor", centre_code="kontum")
    assert call(post, 3, agent="client:lan").counsellor_id is None  # not mapped yet
    with session_scope() as s:
        map_agent(s, centre=get_centre(s, "kontum"), provider="twilio", identity="client:lan", user_id=lan)
    assert call(post, 4, agent="client:lan").counsellor_id == lan
    with session_scope() as s:  # the same identity handed to another counsellor (the row changes in place)
        map_agent(s, centre=get_centre(s, "kontum"), provider="twilio", identity="client:lan", user_id=hoa)
    assert call(post, 5, agent="client:lan").counsellor_id == hoa

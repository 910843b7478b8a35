"""The AMI side of placing calls: the ``Originate`` a command becomes, and what Asterisk's answer means.

Callback: ``Channel`` = the counsellor's own phone (their queue-member interface), answered →
``[hotline-callback]`` dials ``Exten`` (the number's digits) through the trunk, with the hotline
number as ``CALLERID(num)`` and ``HOTLINE_CALLBACK`` kept (so the call is recorded as a callback).

Listen-in: ``Channel`` = the supervisor's phone, answered → the ``ChanSpy`` application on the
counsellor's channel (options from ``apps/app_chanspy.c``): ``q`` no beep nor channel name spoken,
``u`` the argument is one channel's Uniqueid (the counsellor's side of the call, from its open part;
without a part, the answering device's prefix ``PJSIP/tvv1-`` is used instead), ``E`` end when the
spied channel hangs up, ``S`` end when nothing is left to spy on; whisper adds ``w`` (the supervisor
talks to the counsellor only), barge ``B`` (to both sides of the call).  ``ChanSpy`` needs no
permission beyond ``originate`` (unlike ``System``-like applications).
"""

from __future__ import annotations

from hotline.pbx import service
from hotline.pbx.models import PbxCommand
from hotline.settings import get_settings

ACTION_PREFIX = "hotline-pbx-"

SPY_OPTIONS = {"listen": "qES", "whisper": "qESw", "barge": "qESB"}

#: ``OriginateResponse`` ``Reason`` (the AST_CONTROL_* the dial ended on) → why it failed.
REASONS = {
    "0": service.UNREACHABLE,  # no channel (unknown device, unregistered phone, no route)
    "1": service.REFUSED,  # hung up / rejected before answering
    "3": service.NO_ANSWER,  # still ringing at the timeout
    "5": service.BUSY,
    "8": service.CONGESTED,
}


def action_id(cmd: PbxCommand) -> str:
    return f"{ACTION_PREFIX}{cmd.id}"


def command_id(action: str | None) -> int | None:
    if not action or not action.startswith(ACTION_PREFIX):
        return None
    tail = action[len(ACTION_PREFIX):]
    return int(tail) if tail.isdigit() else None


def spy_data(channel: str, mode: str, *, exact: bool) -> str:
    """``ChanSpy``'s argument: one channel by its Uniqueid (``u``), else a device's channel prefix."""
    return f"{channel},{SPY_OPTIONS[mode]}{'u' if exact else ''}"


def originate(cmd: PbxCommand) -> dict[str, str]:
    """The ``Originate`` keys (``Action`` and ``ActionID`` apart) of a command."""
    s = get_settings()
    keys = {"Channel": cmd.device, "Async": "true", "Timeout": str(s.pbx_ring_seconds * 1000)}
    if cmd.kind == "spy":
        opts = cmd.options or {}
        keys.update({"Application": "ChanSpy", "Data": spy_data(str(opts.get("channel", "")), str(opts.get("mode")),
                                                              exact=bool(opts.get("exact"))),
                     "CallerID": "Hotline <listen>", "Variable": f"HOTLINE_SPY={opts.get('call_id', '')}"})
        return keys
    hotline_number = service.dial_digits(cmd.caller_id)
    keys.update({"Context": s.pbx_callback_context, "Exten": service.dial_digits(cmd.dial_number or ""),
                 "Priority": "1", "CallerID": hotline_number,
                 "Variable": f"HOTLINE_CALLBACK={cmd.ref},HOTLINE_CALLERID={hotline_number}"})
    return keys


def reason_of(fields: dict[str, str]) -> str:
    return REASONS.get((fields.get("Reason") or "").strip(), service.UNREACHABLE)

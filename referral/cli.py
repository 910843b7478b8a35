"""``hotline referral …``: partner accounts, the referral list, the sweep."""

from __future__ import annotations

import argparse
import json

from hotline.cli import CliError
from hotline.db import session_scope
from hotline.i18n import Text
from referral import service as _service  # noqa: F401  (registers the retention step)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    r = sub.add_parser("referral", help="chuyển gửi tới đối tác / referrals to partner services")
    rs = r.add_subparsers(dest="referral_command", required=True)

    p = rs.add_parser("partner", help="tài khoản đối tác / partner accounts")
    ps = p.add_subparsers(dest="partner_command", required=True)
    q = ps.add_parser("link", help="gắn tài khoản partner với một tổ chức trong danh bạ / link an account to an organisation")
    q.add_argument("username")
    q.add_argument("organization_id")
    q.set_defaults(handler=cmd_link)
    q = ps.add_parser("unlink", help="bỏ liên kết / unlink")
    q.add_argument("username")
    q.set_defaults(handler=cmd_unlink)
    q = ps.add_parser("list", help="liệt kê / list")
    q.set_defaults(handler=cmd_members)

    p = rs.add_parser("list", help="liệt kê chuyển gửi / list referrals")
    p.add_argument("--state")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_list)

    p = rs.add_parser("sweep", help="báo động quá hạn, hết hạn, gửi lại việc treo / escalate, expire, requeue now")
    p.set_defaults(handler=cmd_sweep)


def _user(db, username: str):
    from hotline.auth import service as accounts

    user = accounts.get_user(db, username=username)
    if user is None:
        raise CliError(str(Text("No account %(user)r.", user=username)))
    return user


def cmd_link(args: argparse.Namespace) -> int:
    from referral import service

    with session_scope() as db:
        user = _user(db, args.username)
        try:
            service.link_partner(db, user_id=user.id, organization_id=args.organization_id, by="cli")
        except service.ReferralError as exc:
            raise CliError(str(exc)) from None
        from hotline.audit import service as audit

        audit.record(db, actor="cli", action="referral.partner_link", object_type="user", object_id=user.id,
                     detail={"organization_id": args.organization_id})
    print(f"{args.username} → {args.organization_id}")
    return 0


def cmd_unlink(args: argparse.Namespace) -> int:
    from referral import service

    with session_scope() as db:
        user = _user(db, args.username)
        if not service.unlink_partner(db, user_id=user.id):
            raise CliError(str(Text("%(user)s is not linked.", user=args.username)))
    print(f"{args.username} unlinked")
    return 0


def cmd_members(args: argparse.Namespace) -> int:
    from referral import service

    with session_scope() as db:
        for m, username, org in service.partner_members(db):
            print(f"{username}\t{m.organization_id}\t{org}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from referral.models import Referral

    with session_scope() as db:
        q = select(Referral).order_by(Referral.created_at.desc()).limit(max(1, args.limit))
        if args.state:
            q = q.where(Referral.state == args.state)
        rows = list(db.scalars(q))
        for r in rows:
            item = {"id": r.id, "code": r.code, "record_id": r.record_id, "service_id": r.service_id,
                    "method": r.method, "state": r.state, "urgency": r.urgency, "created_at": r.created_at.isoformat(),
                    "delivery": r.delivery.status if r.delivery else None,
                    "attempts": r.delivery.attempts if r.delivery else 0, "failure_reason": r.failure_reason}
            print(json.dumps(item, ensure_ascii=False) if args.json else
                  f"{r.code}\t{r.state}\t{r.urgency}\t{r.service_id}\t{item['delivery']}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from referral import jobs

    print(json.dumps(jobs.sweep()))
    return 0

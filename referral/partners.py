"""Partner users: which organisation a partner account answers for, and what it sees."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.db import utcnow
from hotline.i18n import Text
from referral.base import NotFound, ReferralError
from referral.models import (
    PartnerMember,
    Referral,
)


def partner_org(session: Session, *, user_id: int) -> str | None:
    m = session.get(PartnerMember, user_id)
    return m.organization_id if m else None


def link_partner(session: Session, *, user_id: int, organization_id: str, by: str) -> PartnerMember:
    from directory.models import Organization  # the organisation must exist in the directory
    from hotline.auth.models import User

    user = session.get(User, user_id)
    if user is None or user.role != "partner":
        raise ReferralError({"username": Text("Only an account with the partner role can be linked.")})
    if session.get(Organization, organization_id) is None:
        raise ReferralError({"organization_id": Text("No organisation %(id)r in the directory.",
                                                     id=organization_id)})
    m = session.get(PartnerMember, user_id)
    if m is None:
        m = PartnerMember(user_id=user_id, organization_id=organization_id, created_at=utcnow(), created_by=by)
        session.add(m)
    else:
        m.organization_id, m.created_by, m.created_at = organization_id, by, utcnow()
    session.flush()
    return m


def unlink_partner(session: Session, *, user_id: int) -> bool:
    m = session.get(PartnerMember, user_id)
    if m is None:
        return False
    session.delete(m)
    return True


def partner_members(session: Session) -> list[tuple[PartnerMember, str, str]]:
    from directory.models import Organization
    from hotline.auth.models import User

    rows = session.execute(select(PartnerMember, User.username, Organization.name)
                           .join(User, User.id == PartnerMember.user_id)
                           .outerjoin(Organization, Organization.id == PartnerMember.organization_id)
                           .order_by(User.username)).all()
    return [(m, u, o or "") for m, u, o in rows]


def list_for_partner(session: Session, *, user_id: int, limit: int = 200) -> list[Referral]:
    org = partner_org(session, user_id=user_id)
    if org is None:
        return []
    return list(session.scalars(select(Referral).where(Referral.organization_id == org)
                                .order_by(Referral.created_at.desc()).limit(limit)))


def get_for_partner(session: Session, *, public_id: str, user_id: int) -> Referral:
    org = partner_org(session, user_id=user_id)
    ref = session.scalar(select(Referral).where(Referral.public_id == public_id))
    if ref is None or org is None or ref.organization_id != org:
        # never say whether another organisation's referral exists
        raise NotFound(Text("No such referral for your organisation."), public_id)
    return ref


def demo_seed(session: Session) -> None:
    """``hotline demo``: the demo partner account answers for the demo shelter (which takes referrals
    by e-mail, directory/data/demo.json), so a referral can be made, then accepted or declined."""
    from sqlalchemy import select

    from directory.models import Service
    from hotline.auth.models import User
    from hotline.seed import DEMO_PARTNER

    user = session.scalar(select(User).where(User.username == DEMO_PARTNER))
    service = session.scalar(select(Service).where(Service.id == "demo-qn-shelter"))
    if user is None or service is None or session.get(PartnerMember, user.id) is not None:
        return
    link_partner(session, user_id=user.id, organization_id=service.organization_id, by="demo")

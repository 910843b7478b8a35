"""Reference data every installation needs (taxonomies) and the demo's sample centre."""

from __future__ import annotations

import json
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.auth.models import User
from hotline.calls.models import TaxonomyTerm
from hotline.centres.models import Centre, Line
from hotline.centres.service import add_line, ensure_default_centre, map_agent
from hotline.settings import get_settings
from hotline.taxonomy import get_taxonomies


def sync_taxonomies(session: Session) -> int:
    """Copy the taxonomy file into the database: new codes added, labels updated, none deleted."""
    tax = get_taxonomies()
    existing = {(t.scheme, t.code): t for t in session.scalars(select(TaxonomyTerm))}
    seen = set()
    for scheme, terms in tax.schemes.items():
        for sort, term in enumerate(terms.values()):
            row = existing.get((scheme, term.code))
            if row is None:
                row = TaxonomyTerm(scheme=scheme, code=term.code)
                session.add(row)
            row.parent_code, row.label_vi, row.label_en = term.parent, term.vi, term.en
            row.extra, row.version, row.sort, row.active = dict(term.extra), tax.version, sort, True
            seen.add((scheme, term.code))
    for key, row in existing.items():
        if key not in seen:
            row.active = False  # retired codes stay for old records
    session.flush()
    return len(seen)


DEMO_CENTRE = "ctxh-quang-ngai"
DEMO_PARTNER = "doitac"  # a partner account, linked to the demo shelter by the referral domain's demo seed
DEMO_AGENTS = {
    "Local/agent1@agents/n": ("tuvanvien1", "Tư vấn viên Lan"),
    "Local/agent2@agents/n": ("tuvanvien2", "Tư vấn viên Minh"),
}


def _password_hash(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def seed_demo(session: Session) -> dict[str, Any]:
    """Create (once) a demo centre with lines, counsellors and a supervisor.

    Passwords and the API token are random per installation and kept in the data directory.
    """
    settings = get_settings()
    path = settings.data_dir / "demo_logins.json"
    if path.exists():
        info: dict[str, Any] = json.loads(path.read_text())
    else:
        info = {
            "ami_secret": secrets.token_urlsafe(16),
            "api_token": secrets.token_urlsafe(24),
            "logins": [[u, secrets.token_urlsafe(9)] for u, _ in DEMO_AGENTS.values()]
            + [["giamsat", secrets.token_urlsafe(9)], ["quantri", secrets.token_urlsafe(9)]],
        }
        path.write_text(json.dumps(info, indent=1))
        path.chmod(0o600)
    if DEMO_PARTNER not in [u for u, _p in info["logins"]]:  # a demo made before partners were seeded
        info["logins"].append([DEMO_PARTNER, secrets.token_urlsafe(9)])
        path.write_text(json.dumps(info, indent=1))
        path.chmod(0o600)
    ensure_default_centre(session, code=settings.default_centre_code, name=settings.default_centre_name,
                          timezone=settings.default_timezone)
    centre = session.scalar(select(Centre).where(Centre.code == DEMO_CENTRE))
    if centre is None:
        centre = Centre(code=DEMO_CENTRE, name="Trung tâm Công tác xã hội tỉnh Quảng Ngãi",
                        timezone="Asia/Ho_Chi_Minh", province_code="51")
        session.add(centre)
        session.flush()
        add_line(session, centre=centre, provider="asterisk", kind="queue", identifier="hotline",
                 label="Đường dây nóng (Asterisk)")
        add_line(session, centre=centre, provider="twilio", kind="number", identifier="+842553822000",
                 label="Đường dây nóng (Twilio)")
    roles = {u: "counsellor" for u, _ in DEMO_AGENTS.values()} | {"giamsat": "supervisor", "quantri": "administrator",
                                                                   DEMO_PARTNER: "partner"}
    names = {u: n for u, n in DEMO_AGENTS.values()} | {"giamsat": "Giám sát Hoa", "quantri": "Quản trị",
                                                       DEMO_PARTNER: "Nhà tạm lánh Quảng Ngãi (đối tác mẫu)"}
    for username, password in info["logins"]:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            session.add(User(username=username, display_name=names[username], role=roles[username],
                             centre_id=centre.id,
                             password_hash=_password_hash(password)))
    session.flush()
    users = {u.username: u for u in session.scalars(select(User))}
    for identity, (username, _) in DEMO_AGENTS.items():
        map_agent(session, centre=centre, provider="asterisk", identity=identity, user_id=users[username].id)
    info["agents"] = list(DEMO_AGENTS)
    info["centre"] = DEMO_CENTRE
    return info


__all__ = ["DEMO_CENTRE", "DEMO_PARTNER", "seed_demo", "sync_taxonomies", "Line"]

"""#13: every page at 390×844 (a phone) is as wide as the screen, for every role: nothing makes the
whole page scroll sideways (a part that scrolls on its own, like the top bar's links or a wide
table's box, is fine). One sign-in per role, every page of that role with some data on it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.browser.conftest import sign_in
from tests.live.conftest import PASSWORD, make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


def _world(settings) -> tuple[int, str]:
    from directory import service as directory
    from hotline.db import session_scope
    from legal_library.service import seed as seed_legal
    from tests.daily_log.conftest import add_call

    staff = make_staff(settings)
    with session_scope() as db:
        rec, _ = directory.validate({
            "id": "p-shelter", "organization_id": "org-p", "organization": "Ngôi nhà Bình Yên Quảng Ngãi",
            "name": "Ngôi nhà Bình Yên Quảng Ngãi (tiếp nhận phụ nữ và trẻ em bị bạo lực gia đình)",
            "service_type": "shelter", "province": "Quảng Ngãi", "address": "125 Đường Nguyễn Nghiêm, phường Trương Quang Trọng",
            "phones": "0912 345 678; 0255 3822 111", "hours": "24/7", "languages": "vi", "accessible": "yes",
            "verified": "yes", "last_verified_at": "2026-11-01", "last_verified_by": "test",
            "referral_method": "email", "referral_email": "tiepnhan-phunu-treem@binhyen-quangngai.example"})
        directory.save(db, record=rec, actor="test", action="create")
        seed_legal(db)
    now = datetime.now(timezone.utc)
    _, record_id = add_call(staff.centre_id, now - timedelta(hours=2), counsellor_id=staff.ids["tvv1"],
                            record={"issues": ("dv.physical",)})
    add_call(staff.centre_id, now - timedelta(hours=1), status="abandoned", wait=50, talk=None)
    day = (now + timedelta(hours=7)).date().isoformat()  # the centre's day (Hồ Chí Minh City)
    return record_id, day


def _offenders(page) -> tuple[int, list[str]]:
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate("""() => [...document.querySelectorAll('body *')].filter(e => {
        if (e.getBoundingClientRect().right <= window.innerWidth + 1) return false;
        for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
          if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(a).overflowX)) return false;
        }
        return true;
      }).slice(0, 4).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right))""")
    return width, wide


def test_every_page_fits_a_phone(browser, live_env):
    record_id, day = _world(live_env)
    pages = {
        "tvv1": ["/live", "/records", "/records/new", f"/records/{record_id}", f"/records/{record_id}/history",
                 "/referrals", f"/records/{record_id}/referrals/new?q=B%C3%ACnh+Y%C3%AAn", "/calls",
                 "/directory?q=B%C3%ACnh+Y%C3%AAn", "/legal?q=b%E1%BA%A1o+l%E1%BB%B1c", "/account",
                 "/notifications", "/callbacks", "/callbacks/follow-ups"],
        "gs1": ["/live/wallboard", "/daily-log", f"/daily-log/default/{day}",
                f"/reports?centre=default&from=01/11/2026&to={day[8:10]}/{day[5:7]}/{day[:4]}", "/blocking", "/calls"],
        "admin1": ["/admin/users", "/admin/agents", "/admin/lines", "/admin/audit", "/admin/retention",
                   "/directory/admin", "/directory/admin/new", "/directory/admin/p-shelter/edit",
                   "/directory/admin/history", "/directory/admin/stale", "/daily-log/failures", "/directory/admin/taxonomy", "/legal/admin",
                   "/referrals/admin/partners", "/account/second-factor"],
        "partner1": ["/partner"],
    }
    too_wide: dict[str, tuple[int, list[str]]] = {}
    statuses: dict[str, int] = {}
    with LiveServer() as server:
        for user, paths in pages.items():
            ctx = browser.new_context(viewport=PHONE, locale="vi-VN")
            try:
                page = ctx.new_page()
                sign_in(page, server.url, user, PASSWORD, paths[0])
                for path in paths:
                    response = page.goto(server.url + path)
                    page.wait_for_load_state("load")
                    statuses[path] = response.status if response else 0
                    width, wide = _offenders(page)
                    if width > PHONE["width"]:
                        too_wide[path] = (width, wide)
            finally:
                ctx.close()
    assert {p: s for p, s in statuses.items() if s != 200} == {}
    assert too_wide == {}, "\n".join(f"{p}: {w}px {o}" for p, (w, o) in too_wide.items())

"""#13: on a record whose day has been signed off, "given to the caller" (directory and legal, in the
record page's panels and on the directory page) asks for the reason a signed-off day is changed,
like every other edit of a locked record: cancelling changes nothing; with a reason the reference is
added as an "edited after sign-off" revision that keeps the reason."""

from __future__ import annotations

import pytest

from tests.browser.conftest import sign_in
from tests.live.conftest import PASSWORD, make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser
REASON = "Bổ sung địa chỉ đã đưa cho người gọi trong cuộc gọi"


def _locked_record(settings) -> int:
    from directory import service as directory
    from hotline.calls.models import CallRecord
    from hotline.db import session_scope, utcnow
    from legal_library.service import seed as seed_legal

    staff = make_staff(settings)
    with session_scope() as db:
        rec, _ = directory.validate({"id": "j-shelter", "organization_id": "org-j", "organization": "Ngôi nhà Bình Yên",
                                     "name": "Ngôi nhà Bình Yên", "service_type": "shelter", "province": "toàn quốc",
                                     "languages": "vi", "accessible": "no", "verified": "yes",
                                     "last_verified_at": "2026-11-01", "last_verified_by": "test"})
        directory.save(db, record=rec, actor="test", action="create")
        seed_legal(db)
        record = CallRecord(centre_id=staff.centre_id, counsellor_id=staff.ids["tvv1"], channel="walk_in",
                            state="draft", version=1, caller_sex="female", created_at=utcnow(),
                            locked_at=utcnow())  # its day has been signed off
        db.add(record)
        db.flush()
        return record.id


def _record(record_id: int):
    from hotline.calls.models import CallRecord
    from hotline.db import session_scope
    from hotline.records.models import CallRecordRevision

    with session_scope() as db:
        rec = db.get(CallRecord, record_id)
        revs = [(r.action, ((r.changes or {}).get("lock_reason") or [None, None])[1]) for r in
                db.query(CallRecordRevision).filter_by(record_id=record_id).order_by(CallRecordRevision.id)]
        return [(g["kind"], str(g["ref_id"])) for g in rec.references_given or []], revs, rec.version


@pytest.mark.parametrize("size", [{"width": 1366, "height": 768}, {"width": 390, "height": 844}], ids=["desktop", "mobile"])
def test_given_to_the_caller_on_a_signed_off_record_asks_for_the_reason(browser, live_env, size):
    record_id = _locked_record(live_env)
    with LiveServer() as server:
        ctx = browser.new_context(viewport=size, locale="vi-VN")
        errors: list[str] = []
        try:
            page = ctx.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            sign_in(page, server.url, "tvv1", PASSWORD, f"/records/{record_id}")
            assert page.locator("#lock-reason-box").is_visible()
            dialog = page.locator("#lock-reason-dialog")

            # the directory panel: the button asks; cancelling writes nothing
            panel = page.locator("#directory-panel")
            panel.locator("input[name=q]").fill("Bình Yên")
            panel.locator("input[name=q]").press("Enter")
            give = panel.locator('button[data-ref-id="j-shelter"]')
            give.click()
            dialog.wait_for(state="visible")
            assert "ký duyệt" in dialog.locator(".lock-reason-message").inner_text()
            page.click("#lock-reason-cancel")
            dialog.wait_for(state="hidden")
            assert give.is_enabled() and "done" not in (give.get_attribute("class") or "")
            assert _record(record_id) == ([], [], 1)

            # with a reason, the address is recorded as an edit after the sign-off, with its reason
            give.click()
            dialog.wait_for(state="visible")
            page.fill("#lock-reason-input", REASON)
            page.click("#lock-reason-ok")
            panel.locator('button[data-ref-id="j-shelter"].done').wait_for()
            refs, revs, version = _record(record_id)
            assert refs == [("directory", "j-shelter")] and revs == [("edited_after_sign_off", REASON)]

            # the legal panel asks as well (the reason typed before is offered again)
            legal = page.locator("#legal-panel")
            legal.locator("input[name=q]").fill("bạo lực gia đình")
            legal.locator("input[name=q]").press("Enter")
            article = legal.locator("button[data-ref-id]").first
            article.click()
            dialog.wait_for(state="visible")
            assert page.locator("#lock-reason-input").input_value() == REASON
            page.click("#lock-reason-ok")
            legal.locator("button[data-ref-id].done").first.wait_for()
            refs, revs, _ = _record(record_id)
            assert [k for k, _ in refs] == ["directory", "legal"]
            assert revs == [("edited_after_sign_off", REASON)] * 2
            # the record form's next autosave is not taken for another tab's change
            assert page.locator("#conflict-box").is_hidden()

            # the directory page opened for this record asks too
            page.goto(f"{server.url}/directory?record_id={record_id}&q=B%C3%ACnh+Y%C3%AAn")
            page.locator('button.dir-give[data-ref-id="j-shelter"]').click()
            # already given: nothing to change, nothing asked
            page.locator('button.dir-give[data-ref-id="j-shelter"].done').wait_for()
            assert dialog.is_hidden()
            assert len(_record(record_id)[1]) == 2
            assert errors == [], errors
        finally:
            ctx.close()

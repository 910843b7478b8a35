"""Creating referrals from a call record: consent and its scope, minimal content, preview, delivery."""

from __future__ import annotations

import json

from sqlalchemy import select

from hotline.db import session_scope
from tests.referral.peers import wait_for


def _form(token: str, *services: str, **extra):
    data = {"csrf_token": token, "service_ids": list(services), "urgency": "urgent",
            "ask": "Tiếp nhận tạm lánh tối nay", "action": "send"}
    data.update(extra)
    return data


def _referrals():
    from referral.models import Referral

    with session_scope() as db:
        return [(r.service_id, r.state, r.content, r.override_reason) for r in db.scalars(select(Referral).order_by(Referral.id))]


def test_missing_consent_blocks_and_keeps_what_was_typed(world, app_client):
    world.record(consent_referral=False)
    token = world.login(app_client, "lan")
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-shelter-a"))
    assert r.status_code == 422
    assert "Chưa ghi nhận người gọi đồng ý chuyển gửi" in r.text
    assert "Tiếp nhận tạm lánh tối nay" in r.text  # nothing typed is lost
    assert _referrals() == []
    assert world.receiver.requests == []


def test_scope_of_consent_is_respected(world, app_client):
    world.record(consent_referral_scope={"to": "nhà tạm lánh"})
    token = world.login(app_client, "lan")
    # The caller agreed to a shelter, not to legal aid.
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-legal"))
    assert r.status_code == 422 and "Ngoài phạm vi người gọi đồng ý" in r.text
    # Extra data beyond the minimum needs the caller's agreement to share it.
    r = app_client.post(f"/records/{world.record_id}/referrals",
                        data=_form(token, "t-shelter-b", extras=["notes"]))
    assert r.status_code == 422 and "Người gọi không đồng ý chia sẻ" in r.text
    assert _referrals() == []
    world.record(consent_referral_scope={"to": "nhà tạm lánh", "data": "ghi chú, tuổi"})
    r = app_client.post(f"/records/{world.record_id}/referrals",
                        data=_form(token, "t-shelter-b", extras=["notes", "age_group"]), follow_redirects=False)
    assert r.status_code == 303
    [(sid, state, content, _)] = _referrals()
    assert content["extra"]["notes"] == "Chồng đánh, đang ở nhà mẹ đẻ."
    assert "caller_name" not in content["extra"]


def test_child_without_both_consents_needs_supervisor_override_with_reason(world, app_client):
    world.record(caller_age_group="under_16", child_consent=True, representative_consent=None, risk="high")
    token = world.login(app_client, "lan")
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-shelter-a"))
    assert r.status_code == 422 and "cần cả trẻ và người đại diện hợp pháp" in r.text
    assert "giám sát viên có thể chuyển gửi kèm lý do" in r.text
    app_client.cookies.clear()
    token = world.login(app_client, "sup")
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-shelter-a", override_reason="x"))
    assert r.status_code == 422 and "Ghi lý do chuyển gửi không có sự đồng ý" in r.text
    reason = "Trẻ bị đánh, mẹ không liên lạc được, cần tạm lánh ngay"
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-shelter-a", override_reason=reason),
                        follow_redirects=False)
    assert r.status_code == 303
    [(_, _, _, override)] = _referrals()
    assert override == reason
    from hotline.audit.models import AuditEntry

    with session_scope() as db:
        entries = list(db.scalars(select(AuditEntry).where(AuditEntry.action == "referral.consent_override")))
    assert len(entries) == 1 and entries[0].actor_username == "sup" and entries[0].detail["reason"] == reason


def test_no_override_without_child_or_imminent_danger(world, app_client):
    world.record(consent_referral=False, risk="high")
    token = world.login(app_client, "sup")
    r = app_client.post(f"/records/{world.record_id}/referrals",
                        data=_form(token, "t-shelter-a", override_reason="Tôi nghĩ là nên chuyển gửi"))
    assert r.status_code == 422 and "Hãy hỏi và ghi sự đồng ý trên hồ sơ trước" in r.text


def test_preview_shows_exactly_the_minimal_content(world, app_client):
    token = world.login(app_client, "lan")
    r = app_client.post(f"/records/{world.record_id}/referrals",
                        data=_form(token, "t-shelter-a", action="preview"), headers={"Accept": "application/json"})
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    content = item["payload"]["referral"]
    assert set(content) == {"code", "centre", "issue", "urgency", "ask", "contact"}
    assert content["contact"]["method"] == "sms" and content["contact"]["safe_time"] == "sau 20 giờ"
    assert content["ask"] == "Tiếp nhận tạm lánh tối nay"
    assert "Chồng" not in json.dumps(item, ensure_ascii=False)  # notes are not shared unless ticked
    page = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-shelter-a", action="preview"))
    assert page.status_code == 200 and 'id="preview"' in page.text
    # E-mail and SMS partners: the preview is the message itself.
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-shelter-b", "t-legal", action="preview"),
                        headers={"Accept": "application/json"})
    email, sms = r.json()["items"]
    assert email["message"].startswith("Subject: Hotline: yêu cầu chuyển gửi HL-") and "Tiếp nhận tạm lánh tối nay" in email["message"]
    assert sms["message"].startswith("Hotline: ") and "/r/" in sms["message"]
    assert _referrals() == []  # a preview sends nothing


def test_webhook_email_and_sms_delivery(world, app_client):
    from referral.models import Referral

    token = world.login(app_client, "lan")
    r = app_client.post(f"/records/{world.record_id}/referrals",
                        data=_form(token, "t-shelter-a", "t-shelter-b", "t-legal"), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/records/{world.record_id}#referrals"

    wait_for(lambda: world.receiver.accepted and world.smtp.messages and world.twilio.messages)
    # Webhook: signed over timestamp + body with the directory's secret, the delivery id in header and body.
    [req] = world.receiver.requests
    assert req["ok"]
    body = json.loads(req["body"])
    assert body["delivery_id"] == req["delivery"]
    assert body["referral"]["urgency"] == "urgent"
    assert body["respond_url"].startswith("https://hotline.example.org/r/")
    # E-mail: plain text and HTML, nothing sensitive in the subject.
    [mail] = world.smtp.messages
    msg = mail["message"]
    assert mail["to"] == ["tiepnhan@binhyen.example"]
    assert msg["Subject"].startswith("Hotline: yêu cầu chuyển gửi HL-")
    assert "Tiếp nhận" not in msg["Subject"] and "tạm lánh" not in msg["Subject"]
    plain = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Tiếp nhận tạm lánh tối nay" in plain and "Tiếp nhận tạm lánh tối nay" in html
    assert "/r/" in plain
    # SMS: through the twilio client to the stand-in API, a short notice with a link only.
    [sms] = world.twilio.messages
    assert sms["To"] == "+84987654321" and sms["From"] == "+84240000000"
    assert "/r/" in sms["Body"] and "tạm lánh tối nay" not in sms["Body"] and len(sms["Body"]) < 200
    assert world.twilio.auth[0].startswith("AC")

    def states():
        with session_scope() as db:
            return {r.service_id: r.state for r in db.scalars(select(Referral))}
    wait_for(lambda: states() == {"t-shelter-a": "delivered", "t-shelter-b": "sent", "t-legal": "sent"})
    # The record page lists them with their states.
    page = app_client.get(f"/records/{world.record_id}")
    assert page.status_code == 200
    assert 'id="referrals"' in page.text and "Nhà tạm lánh Bình An" in page.text and "Ngôi nhà Bình Yên" in page.text


def test_service_that_takes_no_referrals_is_refused(world, app_client):
    world.record(consent_referral_scope={"to": "bất kỳ"})
    token = world.login(app_client, "lan")
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-police"))
    assert r.status_code == 422 and "dịch vụ này không nhận chuyển gửi qua hệ thống" in r.text
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "nope"))
    assert r.status_code == 422 and "Không có dịch vụ &#39;nope&#39; trong danh bạ" in r.text


def test_errors_come_in_the_users_language(world, app_client):
    """The same refusal in English for a counsellor who chose English, in Vietnamese by default."""
    from hotline.auth.models import User

    world.record(consent_referral=False)
    token = world.login(app_client, "lan")
    with session_scope() as db:
        db.get(User, world.uid("lan")).language = "en"  # lan chose English
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-shelter-a"))
    assert r.status_code == 422
    assert "The caller&#39;s consent to referral is not recorded." in r.text
    assert "Ask the caller and record the consent on the call record first." in r.text
    assert "Chưa ghi nhận" not in r.text
    r = app_client.post(f"/records/{world.record_id}/referrals", headers={"Accept": "application/json"},
                        data=_form(token, "nope"))
    assert r.status_code == 422 and r.json()["errors"]["service_ids"] == "No directory service 'nope'."
    with session_scope() as db:
        db.get(User, world.uid("lan")).language = "vi"  # back to the default
    r = app_client.post(f"/records/{world.record_id}/referrals", headers={"Accept": "application/json"},
                        data=_form(token, "nope"))
    assert r.status_code == 422 and r.json()["errors"]["service_ids"] == "Không có dịch vụ 'nope' trong danh bạ."


def test_other_centre_and_partners_cannot_refer(world, app_client):
    token = world.login(app_client, "far")
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-shelter-a"))
    assert r.status_code == 404
    app_client.cookies.clear()
    token = world.login(app_client, "pa")
    r = app_client.post(f"/records/{world.record_id}/referrals", data=_form(token, "t-shelter-a"))
    assert r.status_code == 403
    assert _referrals() == []

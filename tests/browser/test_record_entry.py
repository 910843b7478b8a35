"""Entering a record in Chromium: two tabs on one record merge field by field and lose no text;
a refused completion shows its errors in place and going back never asks to resend a form; the
province picker takes only a choice from the list."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import sign_in
from tests.live.conftest import PASSWORD, make_staff
from tests.live.sse_helpers import LiveServer

pytestmark = pytest.mark.browser


def _new_record(page) -> str:
    page.click('main button[type="submit"].primary')
    page.wait_for_url(re.compile(r".*/records/\d+$"))
    return page.url


def test_two_tabs_merge_field_by_field_and_keep_mine_keeps_their_note(browser, live_env):
    make_staff(live_env)
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            one = ctx.new_page()
            sign_in(one, server.url, "tvv1", PASSWORD, "/records/new")
            url = _new_record(one)
            two = ctx.new_page()
            two.goto(url)
            two.evaluate("localStorage.clear()")
            # tab one: the caller's sex and a note
            one.select_option('select[name="caller_sex"]', "female")
            one.locator("#notes").fill("Ghi chú tab một: chị ở nhà mẹ đẻ.")
            one.wait_for_function("(document.body.dataset.savedVersion || '0') > '1'")
            # tab two, stale: the caller's role and another note
            two.evaluate("localStorage.clear()")
            two.select_option('select[name="caller_role"]', "survivor")
            two.locator("#notes").fill("Ghi chú tab hai: hẹn gọi lại sau 20 giờ.")
            box = two.locator("#conflict-box")
            box.wait_for(state="visible", timeout=8000)
            # only the note differs on both sides; sex and role were merged without asking
            assert two.locator("#conflict-rows tr").count() == 1
            assert two.locator('#conflict-rows tr[data-field="notes"]').count() == 1
            assert two.locator('select[name="caller_sex"]').input_value() == "female"
            two.click("#keep-mine")
            two.wait_for_function("document.getElementById('conflict-box').hidden")
            two.wait_for_function("document.getElementById('save-status').textContent.indexOf('Đã gộp') === 0",
                                  timeout=8000)
            one.reload()
            notes = one.locator("#notes").input_value()
            assert "Ghi chú tab một" in notes and "Ghi chú tab hai" in notes  # "keep mine" kept theirs too
            assert one.locator('select[name="caller_sex"]').input_value() == "female"
            assert one.locator('select[name="caller_role"]').input_value() == "survivor"
            # both versions are in the history, as revisions, in words
            one.goto(url + "/history")
            history = one.locator("#revisions").inner_text()
            assert "Bản từ tab khác, được giữ lại" in history and "Gộp sau khi có xung đột" in history
            assert "conflict_kept" not in history
        finally:
            ctx.close()


def test_refused_completion_shows_errors_in_place_and_back_does_not_resubmit(browser, live_env):
    make_staff(live_env)
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            page = ctx.new_page()
            sign_in(page, server.url, "tvv1", PASSWORD, "/records/new")
            url = _new_record(page)
            page.locator("#notes").fill("Chưa đủ thông tin.")
            page.click("#complete-btn")
            errors = page.locator("#form-errors")
            errors.wait_for(state="visible")
            assert page.url == url  # nothing was posted as a page
            assert page.locator("#f-caller_role .field-error").is_visible()
            page.go_back()
            page.wait_for_load_state()
            assert page.url.endswith("/records/new")
            assert "ERR_CACHE_MISS" not in page.content()
            page.go_forward()
            assert page.locator("#notes").input_value() == "Chưa đủ thông tin."
            # the province picker: only a choice from the list is kept
            province = page.locator("#pick-province_code")
            province.click()
            province.fill("Tỉnh Hoàng Sa Mới")
            page.wait_for_function("(document.querySelector('#list-province_code li') || {}).textContent"
                                   " === 'Không có mục nào khớp; hãy chọn trong danh sách.'")
            page.locator("#notes").click()
            page.wait_for_timeout(300)
            assert province.input_value() == "" and page.locator('input[name="province_code"]').input_value() == ""
            province.click()
            province.fill("đà nẵng")
            page.wait_for_function("(document.querySelector('#list-province_code li') || {}).textContent"
                                   " === 'Thành phố Đà Nẵng'")
            province.press("ArrowDown")
            province.press("Enter")
            assert page.locator('input[name="province_code"]').input_value() == "48"
        finally:
            ctx.close()


def test_complete_pressed_while_a_save_is_under_way_still_completes(browser, live_env):
    import time

    make_staff(live_env)
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768})
        try:
            page = ctx.new_page()
            sign_in(page, server.url, "tvv1", PASSWORD, "/records/new")
            url = _new_record(page)
            page.select_option('select[name="caller_role"]', "survivor")
            page.select_option('select[name="caller_sex"]', "female")
            page.select_option('select[name="caller_age_group"]', "30_59")
            page.locator("details", has=page.locator('input[value="dv.physical"]')).locator("summary").click()
            page.check('input[name="issues"][value="dv.physical"]')
            page.check('input[name="primary_issue"][value="dv.physical"]')
            page.select_option('select[name="service_level"]', "2")
            page.select_option('select[name="outcome"]', "resolved")

            def slow(route):
                if route.request.method == "PUT" and b'"complete": true' not in (route.request.post_data_buffer or b"") \
                        and b'"complete":true' not in (route.request.post_data_buffer or b""):
                    time.sleep(0.8)  # an autosave still on its way when Complete is pressed
                route.continue_()

            page.route(url, slow)
            page.evaluate("document.getElementById('save-btn').click()")
            page.keyboard.press("Control+Enter")
            page.wait_for_url(re.compile(r".*/live\?completed=\d+$"), timeout=15000)
            record_id = int(page.url.rsplit("=", 1)[1])
        finally:
            ctx.close()
    from hotline.calls.models import CallRecord
    from hotline.db import session_scope

    with session_scope() as session:
        record = session.get(CallRecord, record_id)
        assert record is not None and record.completed_at is not None, "Complete was dropped into a plain save"


def test_the_workspace_scripts_run_under_the_real_content_security_policy(browser, live_env):
    """No eval, no inline script or style: the live screen, pickers, risk prompt, conflict and
    strip code work with the application's CSP in force."""
    from tests.live.conftest import call_id, feed_call

    make_staff(live_env)
    with LiveServer() as server:
        ctx = browser.new_context(viewport={"width": 1366, "height": 768}, bypass_csp=False)
        violations: list[str] = []
        try:
            page = ctx.new_page()
            page.on("console", lambda m: violations.append(m.text)
                    if "Content Security Policy" in m.text or "Refused to" in m.text else None)
            sign_in(page, server.url, "tvv1", PASSWORD, "/live")
            page.locator("#sse-status:not(:empty)").wait_for()
            cid = call_id(feed_call(agent="PJSIP/tvv1", caller="0912345678", answered=True))
            page.locator(f'#call-card[data-call-id="{cid}"]').wait_for(timeout=10000)
            page.locator("#sse-status:not(:empty)").wait_for()
            page.locator("#cc-talk:not(:has-text('—'))").wait_for()
            province = page.locator("#pick-province_code")
            province.click()
            province.fill("kon tum")
            page.locator("#list-province_code li", has_text="Kon Tum → Quảng Ngãi").wait_for()
            province.press("Enter")
            assert province.input_value() == "Quảng Ngãi"
            page.select_option('select[name="risk"]', "imminent")
            page.locator("#risk-dialog").wait_for(state="visible")
            page.click("#risk-dialog-ok")
            page.locator("#notes").fill("Ghi chú.")
            page.locator("#save-status", has_text="Đã lưu").wait_for()
            page.locator("#cc-line").click()  # out of the text field: "?" shows the shortcuts
            page.keyboard.press("?")
            page.locator("#shortcuts-help").wait_for(state="visible")
            page.keyboard.press("Escape")
            assert violations == [], violations
        finally:
            ctx.close()

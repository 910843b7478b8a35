"""The words on the record form and the live screen, Vietnamese first, English second.

One table, keyed by a short id; ``text(lang)`` returns a lookup for templates (``t("save")``).
"""

from __future__ import annotations

from collections.abc import Callable

TEXT: dict[str, tuple[str, str]] = {
    "records": ("Hồ sơ cuộc gọi", "Call records"),
    "record": ("Hồ sơ", "Record"),
    "new_record": ("Hồ sơ mới (không qua tổng đài)", "New record (not through the phone system)"),
    "new_record_help": ("Cho người đến trực tiếp, cuộc gọi vào điện thoại cá nhân hoặc chuyển từ 111.",
                        "For a walk-in, a call on a personal phone or a transfer from 111."),
    "create": ("Tạo", "Create"),
    "save": ("Lưu", "Save"),
    "complete": ("Hoàn tất (Ctrl+Enter)", "Complete (Ctrl+Enter)"),
    "completed": ("Đã hoàn tất", "Completed"),
    "draft": ("Bản nháp", "Draft"),
    "state": ("Trạng thái", "State"),
    "version": ("Phiên bản", "Version"),
    "saved": ("Đã lưu", "Saved"),
    "saving": ("Đang lưu…", "Saving…"),
    "offline": ("Mất mạng: đang giữ trong trình duyệt", "Offline: kept in this browser"),
    "session_ended": ("Phiên đăng nhập đã hết. Bản nháp vẫn được giữ; hãy đăng nhập lại.",
                      "Your session has ended. The draft is kept; please sign in again."),
    "sign_in_again": ("Đăng nhập lại", "Sign in again"),
    "conflict": ("Hồ sơ đã được người khác sửa. Khác biệt:", "Someone else changed this record. Differences:"),
    "conflict_yours": ("Của bạn", "Yours"),
    "conflict_theirs": ("Hiện lưu", "Saved now"),
    "keep_mine": ("Giữ bản của tôi", "Keep mine"),
    "take_theirs": ("Dùng bản đã lưu", "Use the saved one"),
    "errors": ("Hãy sửa các mục sau:", "Please correct the following:"),
    "non_counselling": ("Đóng nhanh cuộc gọi không tư vấn", "Close a non-counselling call"),
    "history": ("Lịch sử sửa đổi", "Edit history"),
    "no_history": ("Chưa có sửa đổi.", "No edits yet."),
    "field": ("Mục", "Field"),
    "before": ("Trước", "Before"),
    "after": ("Sau", "After"),
    "by": ("Người sửa", "By"),
    "when": ("Lúc", "When"),
    "action": ("Thao tác", "Action"),
    "call": ("Cuộc gọi", "Call"),
    "no_call": ("Không qua tổng đài", "Not through the phone system"),
    "yes": ("Có", "Yes"),
    "no": ("Không", "No"),
    "unknown": ("Chưa rõ", "Unknown"),
    "none": ("—", "—"),
    "section_call": ("Cuộc gọi", "Call"),
    "section_caller": ("Người gọi", "Caller"),
    "section_consent": ("Đồng ý", "Consent"),
    "section_issue": ("Vấn đề và xử lý", "Issue and response"),
    "section_notes": ("Ghi chú", "Notes"),
    "issues": ("Vấn đề (chọn nhiều, một vấn đề chính)", "Issues (several allowed, one primary)"),
    "primary": ("Chính", "Primary"),
    "directory": ("Danh bạ dịch vụ", "Service directory"),
    "legal": ("Tra cứu pháp luật", "Legal reference"),
    "search": ("Tìm", "Search"),
    "created": ("Tạo lúc", "Created"),
    "counsellor": ("Tư vấn viên", "Counsellor"),
    "primary_issue": ("Vấn đề chính", "Primary issue"),
    "open": ("Mở", "Open"),
    "all": ("Tất cả", "All"),
    "shortcuts": ("Phím tắt: Ctrl+S lưu, Ctrl+Enter hoàn tất, Alt+D danh bạ, Alt+L pháp luật, Alt+N ghi chú",
                  "Shortcuts: Ctrl+S save, Ctrl+Enter complete, Alt+D directory, Alt+L legal, Alt+N notes"),
    "no_records": ("Chưa có hồ sơ.", "No records yet."),
    "child_note": ("Trẻ dưới 16 tuổi: cần ghi cả sự đồng ý của trẻ và của người đại diện hợp pháp.",
                   "A child under 16: record both the child's and the legal representative's consent."),
    # live screen
    "live": ("Màn hình trực", "Live screen"),
    "wallboard": ("Bảng theo dõi", "Wallboard"),
    "presence": ("Trạng thái", "Presence"),
    "available": ("Sẵn sàng", "Available"),
    "busy": ("Đang bận", "Busy"),
    "away": ("Vắng mặt", "Away"),
    "incoming": ("Cuộc gọi đến", "Incoming call"),
    "waiting_for_calls": ("Đang chờ cuộc gọi…", "Waiting for calls…"),
    "line": ("Đường dây", "Line"),
    "caller": ("Số gọi đến", "Caller"),
    "caller_id_status": ("Hiển thị số", "Caller ID"),
    "waited": ("Đã chờ", "Waited"),
    "status": ("Tình trạng", "Status"),
    "reveal": ("Hiện số đầy đủ", "Reveal number"),
    "open_record": ("Mở hồ sơ (Alt+R)", "Open the record (Alt+R)"),
    "caller_history": ("Lịch sử người gọi", "Caller history"),
    "no_earlier_calls": ("Chưa gọi trước đây (hoặc số bị ẩn).", "No earlier calls (or the number is withheld)."),
    "date": ("Ngày", "Date"),
    "level": ("Mức", "Level"),
    "follow_up": ("Theo dõi", "Follow-up"),
    "open_follow_up": ("Còn theo dõi", "Open follow-up"),
    "connection_lost": ("Mất kết nối, đang kết nối lại…", "Connection lost, reconnecting…"),
    "connected": ("Đã kết nối", "Connected"),
    "calls_waiting": ("Cuộc gọi đang chờ", "Calls waiting"),
    "in_progress": ("Đang nghe máy", "Calls in progress"),
    "today": ("Hôm nay", "Today"),
    "received": ("Gọi đến", "Received"),
    "answered": ("Đã nghe", "Answered"),
    "abandoned": ("Bỏ máy khi chờ", "Abandoned"),
    "missed": ("Nhỡ", "Missed"),
    "records_completed": ("Hồ sơ hoàn tất", "Records completed"),
    "non_counselling_count": ("Không tư vấn", "Non-counselling"),
    "nobody_waiting": ("Không có ai đang chờ.", "Nobody is waiting."),
    "no_calls_in_progress": ("Không có cuộc gọi nào đang diễn ra.", "No calls in progress."),
    "no_counsellors": ("Chưa có tư vấn viên.", "No counsellors yet."),
    "since": ("Từ", "Since"),
    "recent_calls": ("Cuộc gọi gần đây", "Recent calls"),
}


PRESENCE_KEYS = {"available": "a", "busy": "b", "away": "w"}


def pop_labels(lang: str) -> dict[str, dict[str, str]]:
    """Caller-ID and call-status labels for the pop script (from the taxonomies)."""
    from hotline.taxonomy import get_taxonomies

    tax = get_taxonomies()
    return {"cid": {t.code: t.label(lang) for t in tax.terms("caller_id_status")},
            "status": {t.code: t.label(lang) for t in tax.terms("call_status")}}


def text(lang: str) -> Callable[[str], str]:
    index = 1 if lang == "en" else 0

    def t(key: str) -> str:
        pair = TEXT.get(key)
        return pair[index] if pair else key

    return t

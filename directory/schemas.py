"""The flat record one directory entry is read from and written to, with the CSV template's
headers (Vietnamese and English, either accepted), and the API's response shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from hotline.i18n import N_
from hotline.text import fold

# (field, Vietnamese header, English header, help) — the documented CSV template, in order; the help is an
# English msgid (N_), translated where it is shown.
FIELDS: tuple[tuple[str, str, str, str], ...] = (
    ("id", "Mã", "ID", N_("stable id; re-importing a row with the same id updates that entry (required)")),
    ("organization_id", "Mã tổ chức", "Organization ID", N_("optional; default: the id")),
    ("organization", "Tổ chức", "Organization", N_("organisation name (required)")),
    ("name", "Tên dịch vụ", "Service name", N_("required")),
    ("alternate_name", "Tên khác", "Alternate name", ""),
    ("service_type", "Loại dịch vụ", "Service type", N_("a type code or its Vietnamese/English label, e.g. shelter / Nhà tạm lánh")),
    ("description", "Mô tả", "Description", ""),
    ("phones", "Điện thoại", "Phones", N_("one or more numbers separated by ';'")),
    ("email", "Email", "Email", ""),
    ("url", "Trang web", "Website", ""),
    ("hours", "Giờ mở cửa", "Opening hours", N_("'24/7' or 'T2-T6 07:30-17:00; T7 08:00-12:00' (Mo-Fr … also accepted)")),
    ("timezone", "Múi giờ", "Timezone", N_("optional IANA timezone the opening hours are written in (e.g. Asia/Bangkok); "
        "empty: the centre's timezone")),
    ("languages", "Ngôn ngữ", "Languages", N_("ISO codes separated by ';' (vi; en; hmn …); default vi")),
    ("accessible", "Tiếp cận cho người khuyết tật", "Accessible", N_("có/không, yes/no")),
    ("beds_total", "Tổng số giường", "Beds total", N_("shelters: number")),
    ("beds_free", "Giường trống", "Beds free", N_("shelters: number free now")),
    ("beds_women", "Giường cho phụ nữ", "Beds for women", ""),
    ("beds_men", "Giường cho nam giới", "Beds for men", ""),
    ("beds_children", "Giường cho trẻ em", "Beds for children", ""),
    ("province", "Tỉnh/thành phố", "Province", N_("2025 name or code; old names (Kon Tum) are mapped (required)")),
    ("commune", "Xã/phường", "Commune", N_("2025 commune name or code, within the province")),
    ("address", "Địa chỉ", "Address", N_("street address")),
    ("confidential_address", "Địa chỉ bảo mật", "Confidential address", N_("có/yes: shown to staff only, never in the public export")),
    ("latitude", "Vĩ độ", "Latitude", ""),
    ("longitude", "Kinh độ", "Longitude", ""),
    ("referral_method", "Cách nhận chuyển gửi", "Referral method", N_("webhook, email, sms or empty (does not accept referrals)")),
    ("referral_webhook_url", "URL webhook chuyển gửi", "Referral webhook URL", "https://…"),
    ("referral_webhook_secret", "Khóa bí mật webhook", "Referral webhook secret", N_("shared secret that signs webhook calls")),
    ("referral_email", "Email chuyển gửi", "Referral email", ""),
    ("referral_sms", "SMS chuyển gửi", "Referral SMS number", ""),
    ("verified", "Đã xác minh", "Verified", N_("có/không, yes/no")),
    ("last_verified_at", "Ngày xác minh", "Last verified", "YYYY-MM-DD"),
    ("last_verified_by", "Người xác minh", "Verified by", ""),
    ("source_note", "Nguồn", "Source", N_("where the facts come from")),
)
FIELD_NAMES = tuple(f[0] for f in FIELDS)
HEADER_TO_FIELD: dict[str, str] = {}
for _name, _vi, _en, _help in FIELDS:
    for _h in (_name, _vi, _en):
        HEADER_TO_FIELD[fold(_h)] = _name


@dataclass
class LocationRecord:
    """One place a service is offered (HSDS location + its address + the service_at_location link),
    with the ids it was imported under so that exports give them back."""

    id: str
    sal_id: str
    address_id: str
    name: str = ""
    province_code: str = ""
    commune_code: str | None = None
    address: str = ""
    confidential: bool = False
    latitude: float | None = None
    longitude: float | None = None
    location_type: str = "physical"  # HSDS: physical | postal | virtual (no address, no place)
    phones: list[tuple[str, str]] = field(default_factory=list)  # this location's own numbers


@dataclass
class Record:
    """A validated entry (codes resolved, numbers normalised)."""

    id: str
    organization_id: str
    organization: str
    name: str
    alternate_name: str = ""
    service_type: str = "other"
    description: str = ""
    phones: list[tuple[str, str]] = field(default_factory=list)  # (as written, normalised)
    email: str = ""
    url: str = ""
    hours: str = ""
    timezone: str = ""  # IANA name; empty: the centre's timezone
    open_24_7: bool = False
    open_on_holidays: bool = False
    slots: list[tuple[str, str, str]] = field(default_factory=list)
    languages: list[str] = field(default_factory=lambda: ["vi"])
    accessible: bool = False
    beds_total: int | None = None
    beds_free: int | None = None
    beds_women: int | None = None
    beds_men: int | None = None
    beds_children: int | None = None
    province_code: str = ""
    commune_code: str | None = None
    address: str = ""
    confidential_address: bool = False
    latitude: float | None = None
    longitude: float | None = None
    referral_method: str = ""
    referral_webhook_url: str = ""
    referral_webhook_secret: str = ""
    referral_email: str = ""
    referral_sms: str = ""
    verified: bool = False
    last_verified_at: datetime | None = None
    last_verified_by: str = ""
    source_note: str = ""
    # Every location, the first one mirrored by the flat fields above.  Empty: only the flat fields
    # (the CSV template), written under the default ids "<id>-loc", "<id>@<id>-loc", "<id>-loc-addr".
    locations: list[LocationRecord] = field(default_factory=list)
    # Every HSDS schedule (``directory.schedules.Rule``), the service's and its locations'; ``slots``
    # are their weekly rows.  Written from the template's hours: one weekly rule per opening time.
    schedules: list = field(default_factory=list)
    hours_note: str = ""  # schedules given only as text ("hours: see text")
    coverage: list[str] = field(default_factory=list)  # province codes served (HSDS service_area); ["*"] nationwide
    terms: list[tuple[str, str]] = field(default_factory=list)  # a partner's taxonomy terms kept: (term id, name)


class PhoneOut(BaseModel):
    number: str
    e164: str


class SearchResultOut(BaseModel):
    id: str
    name: str
    organization: str
    service_type: str
    service_type_vi: str
    service_type_en: str
    call_number: str
    phones: list[PhoneOut]
    open_now: bool
    open_24_7: bool
    hours: str
    timezone: str  # the one the hours are read in (the entry's own, or the centre's)
    beds_free: int | None
    beds_total: int | None
    accessible: bool
    languages: list[str]
    province: str
    commune: str
    address: str
    confidential_address: bool
    verified: bool
    last_verified_at: datetime | None
    distance_km: float | None
    accepts_referrals: bool
    hours_note: str = ""  # schedules given only as text
    hours_see_text: bool = False  # no days or times: "hours: see text"
    province_code: str = ""
    coverage: list[str] = []  # provinces it serves beyond its own (["*"]: nationwide)
    fallback: bool = False  # another type, or outside the place asked for (see the notices)


class SearchResponseOut(BaseModel):
    query: str
    interpreted: dict
    notices: list[str] = []  # what was not found, in the reader's language, said before any fallback
    open_at: datetime | None = None
    count: int
    results: list[SearchResultOut]

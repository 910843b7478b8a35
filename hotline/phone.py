"""Vietnamese phone-number rules in one place (see DOMAIN.md, "Phone numbers").

- Every written form of a number parses to one E.164 value with ``phonenumbers`` (region VN).
- Withheld or missing caller IDs (``anonymous``, ``Restricted``, ``unknown``, empty, bare SIP
  URIs) get a caller-ID status instead of a number and no hash: two withheld calls are never
  the same caller.
- Short codes 111/113/114/115 are an explicit list; ``phonenumbers`` does not know them.
- A PBX that prefixes ``0`` to an international ``84…`` number is normalised.
- Numbers are shown masked (``0912 *** 678``) and compared through a keyed HMAC.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from hotline.i18n import N_

SHORT_CODES: dict[str, tuple[str, str]] = {
    "111": ("Tổng đài quốc gia bảo vệ trẻ em", "National child protection hotline"),
    "113": ("Công an", "Police"),
    "114": ("Cứu hỏa, cứu nạn", "Fire and rescue"),
    "115": ("Cấp cứu", "Ambulance"),
}

WITHHELD_WORDS = {
    "anonymous", "restricted", "private", "withheld", "unknown", "blocked",
    "unknown caller", "an danh", "ẩn danh", "ẩn số", "an so",
}
# Asterisk writes ``<unknown>`` when the trunk sent no caller ID at all.
UNAVAILABLE_WORDS = {"", "<unknown>", "unavailable", "none", "null", "-"}


class CallerIdStatus(StrEnum):
    PRESENT = "present"
    WITHHELD = "withheld"
    UNAVAILABLE = "unavailable"
    INVALID = "invalid"


@dataclass(frozen=True)
class CallerNumber:
    raw: str
    status: CallerIdStatus
    normalized: str | None  # E.164, or the short code as dialled
    masked: str
    reason: str = ""  # why it is not PRESENT

    @property
    def is_short_code(self) -> bool:
        return self.normalized in SHORT_CODES

    def hash(self, key: str) -> str | None:
        return number_hash(self.normalized, key) if self.normalized else None


_URI = re.compile(r"^(?:sips?|tel):", re.IGNORECASE)
_KEEP = re.compile(r"[^\d+]")


def _strip_uri(value: str) -> str:
    """``sip:0912345678@pbx.local;user=phone`` → ``0912345678``; ``tel:+84…`` → ``+84…``."""
    value = unquote(value)
    value = _URI.sub("", value, count=1)
    value = value.split("@", 1)[0].split(";", 1)[0]
    return value.strip()


def parse_caller(raw: str | None) -> CallerNumber:
    """Classify and normalise a caller ID as a provider gave it."""
    text = (raw or "").strip().strip('"').strip()
    if text.lower() in UNAVAILABLE_WORDS:
        return CallerNumber(raw or "", CallerIdStatus.UNAVAILABLE, None, "", "no caller ID was sent")
    if _URI.match(text):
        text = _strip_uri(text)
        if not text or not re.search(r"\d", text):
            return CallerNumber(raw or "", CallerIdStatus.WITHHELD, None, "", "SIP URI without a number")
    if text.lower() in WITHHELD_WORDS:
        return CallerNumber(raw or "", CallerIdStatus.WITHHELD, None, "", f"caller ID withheld ({text})")
    normalized, reason = normalize_number(text)
    if normalized is None:
        return CallerNumber(raw or "", CallerIdStatus.INVALID, None, "", reason)
    return CallerNumber(raw or "", CallerIdStatus.PRESENT, normalized, mask(normalized))


def normalize_number(text: str) -> tuple[str | None, str]:
    """Return (E.164 or short code, "") or (None, reason)."""
    digits = _KEEP.sub("", text)
    if not digits or not re.search(r"\d", digits):
        return None, f"{text!r} contains no digits"
    if "+" in digits[1:]:
        return None, f"{text!r} has a '+' in the middle"
    if digits in SHORT_CODES:
        return digits, ""
    if digits.startswith("0084"):
        digits = "+84" + digits[4:]
    elif digits.startswith("084") and len(digits) >= 11:
        # PBX prefixed its trunk 0 to an international 84… number.
        digits = "+84" + digits[3:]
    elif digits.startswith("84") and len(digits) >= 11:
        digits = "+" + digits
    elif digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        parsed = phonenumbers.parse(digits, "VN")
    except NumberParseException as exc:
        return None, f"{text!r} is not a phone number ({exc})"
    if not phonenumbers.is_valid_number(parsed):
        return None, f"{text!r} is not a valid number in its numbering plan"
    return phonenumbers.format_number(parsed, PhoneNumberFormat.E164), ""


#: Why a number is not valid, said to a person (English msgids, translated where shown);
#: ``normalize_number``'s own reasons (logs, stored facts) quote the text and stay as they are.
NO_DIGITS = N_("it has no digits")
PLUS_INSIDE = N_("it has a '+' in the middle")
NOT_A_NUMBER = N_("it is not a phone number")
TOO_SHORT = N_("it has too few digits")
TOO_LONG = N_("it has too many digits")
NO_SUCH_COUNTRY = N_("no country has this calling code")
NOT_VIETNAMESE = N_("no Vietnamese number has this length and prefix")
NOT_IN_PLAN = N_("it is not a number in use in its country's numbering plan")


def why_invalid(text: str) -> str:
    """The reason (an English msgid above) a number ``normalize_number`` refuses is not valid, said
    so a person can fix it (too short, not a Vietnamese number…); "" when it is valid."""
    if normalize_number(text)[0] is not None:
        return ""
    digits = _KEEP.sub("", text or "")
    if not re.search(r"\d", digits):
        return NO_DIGITS
    if "+" in digits[1:]:
        return PLUS_INSIDE
    if len(digits.lstrip("+")) < 3:
        return TOO_SHORT
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    elif digits.startswith("84") and len(digits) >= 11:
        digits = "+" + digits
    try:
        parsed = phonenumbers.parse(digits, "VN")
    except NumberParseException as exc:
        if exc.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            return NO_SUCH_COUNTRY
        if exc.error_type in (NumberParseException.TOO_SHORT_NSN, NumberParseException.TOO_SHORT_AFTER_IDD):
            return TOO_SHORT
        if exc.error_type == NumberParseException.TOO_LONG:
            return TOO_LONG
        return NOT_A_NUMBER
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible == ValidationResult.INVALID_COUNTRY_CODE:
        return NO_SUCH_COUNTRY
    if possible == ValidationResult.TOO_SHORT:
        return TOO_SHORT
    if possible == ValidationResult.TOO_LONG:
        return TOO_LONG
    return NOT_VIETNAMESE if parsed.country_code == 84 else NOT_IN_PLAN


def mask(normalized: str | None) -> str:
    """``+84912345678`` → ``0912 *** 678``; short codes are public and shown whole."""
    if not normalized:
        return ""
    if normalized in SHORT_CODES:
        return normalized
    national = display(normalized).replace(" ", "")
    if len(national) <= 6:
        return national[:2] + "*" * (len(national) - 2)
    return f"{national[:4]} *** {national[-3:]}"


def display(normalized: str) -> str:
    """The full number as a Vietnamese reader writes it (``0912 345 678``); for permitted roles."""
    if normalized in SHORT_CODES:
        return normalized
    try:
        parsed = phonenumbers.parse(normalized, "VN")
    except NumberParseException:
        return normalized
    if parsed.country_code == 84:
        return phonenumbers.format_number(parsed, PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(parsed, PhoneNumberFormat.INTERNATIONAL)


def number_hash(normalized: str, key: str) -> str:
    """Keyed hash for repeat-caller detection; the number itself need not be kept."""
    return hmac.new(key.encode(), normalized.encode(), hashlib.sha256).hexdigest()


def normalize_line_identifier(value: str) -> str:
    """A line's DID/Twilio number in E.164 when it parses, else the trimmed value (queue names)."""
    normalized, _ = normalize_number(value)
    return normalized or value.strip()

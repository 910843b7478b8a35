"""Translations: Vietnamese by default, English by choice.

Catalogues live in ``hotline/i18n/<lang>/LC_MESSAGES/messages.po``; a domain package may keep
its own strings' translations in ``<package>/i18n/<lang>.po`` (declared ``own_catalogue`` in
``hotline.domains``; merged in, the domain's own entries winning), so each domain owns its wording.  A ``.mo`` missing or older
than its ``.po`` is compiled on first use (with Babel), so a fresh checkout works without a build
step; ``pybabel compile`` (see README) does the same ahead of time.

Other domains mark strings in Python with ``gettext_lazy``/``N_`` (for module-level tables) and
translate at request time with ``translator(lang)``; templates get ``_``/``gettext``/``ngettext``.
"""

from __future__ import annotations

import contextvars
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, NullTranslations, Translations

DOMAIN = "messages"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
LANGUAGE_NAMES = {"vi": "Tiếng Việt", "en": "English"}
HERE = Path(__file__).parent

_lock = threading.Lock()
_cache: dict[str, NullTranslations] = {}
current_language: contextvars.ContextVar[str] = contextvars.ContextVar("hotline_language", default=DEFAULT_LANGUAGE)


def normalize_language(value: str | None) -> str:
    """``en``, ``en-US``, ``EN`` → ``en``; anything unknown → Vietnamese."""
    code = (value or "").strip().lower().replace("_", "-").split("-")[0]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def _compile_if_needed(lang: str) -> Path | None:
    folder = HERE / lang / "LC_MESSAGES"
    po, mo = folder / f"{DOMAIN}.po", folder / f"{DOMAIN}.mo"
    if not po.exists():
        return mo if mo.exists() else None
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return mo
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    tmp = mo.with_suffix(".mo.tmp")
    try:
        with tmp.open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        tmp.replace(mo)
    except OSError:
        # A read-only install: translate from the catalogue in memory instead.
        return None
    return mo


def get_translations(lang: str | None) -> NullTranslations:
    lang = normalize_language(lang)
    with _lock:
        if lang in _cache:
            return _cache[lang]
        mo = _compile_if_needed(lang)
        if mo is not None and mo.exists():
            with mo.open("rb") as fh:
                trans: NullTranslations = Translations(fh, domain=DOMAIN)
        else:
            trans = _from_po(lang)
        for po in _domain_catalogues(lang):
            extra = _po_translations(po, lang)
            if isinstance(trans, Translations):
                trans.merge(extra)
            else:
                trans = extra
        _read_stored_texts(trans)
        _cache[lang] = trans
        return trans


#: A ``Text`` kept in one string column (a reason naming a PBX, where the column holds a msgid):
#: its msgid, this mark, then its values as JSON (``stored_text``).  Every ``gettext`` of this
#: module's catalogues (templates' ``_`` included) translates the msgid and fills the values in.
STORED_MARK = "\x1f"
_STORED_VALUE = re.compile(r"[^A-Za-z0-9_.:@/ +-]")  # values shown unescaped in pages: plain names only


def stored_text(msgid: str, **values: str | int) -> str:
    """``Text(msgid, **values)`` as one string for a column that is translated with ``_()`` when shown."""
    clean = {k: v if isinstance(v, int) else _STORED_VALUE.sub("", str(v))[:64] for k, v in values.items()}
    return msgid + STORED_MARK + json.dumps(clean, ensure_ascii=True, separators=(",", ":"))


def _read_stored_texts(trans: NullTranslations) -> None:
    plain = trans.gettext

    def gettext(message: str) -> str:
        if STORED_MARK not in message:
            return plain(message)
        msgid, _, raw = message.partition(STORED_MARK)
        try:
            values = json.loads(raw)
            return plain(msgid) % values if isinstance(values, dict) else plain(msgid)
        except (ValueError, TypeError, KeyError):
            return plain(msgid)

    trans.gettext = gettext  # type: ignore[method-assign]  # this catalogue reads stored texts too


def _domain_catalogues(lang: str) -> list[Path]:
    from hotline import domains

    return domains.catalogues(lang)


def __getattr__(name: str) -> Any:
    """``DOMAIN_PACKAGES``: the packages keeping their own catalogue (read from ``hotline.domains``)."""
    if name == "DOMAIN_PACKAGES":
        from hotline import domains

        return tuple(domains.catalogue_packages())
    raise AttributeError(name)


def _from_po(lang: str) -> NullTranslations:
    po = HERE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.exists():
        return NullTranslations()
    return _po_translations(po, lang)


def _po_translations(po: Path, lang: str) -> Translations:
    import io

    with po.open("rb") as fh:
        catalog = read_po(fh, locale=lang, domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return Translations(buf, domain=DOMAIN)


def reload() -> None:
    """Forget loaded catalogues (after ``pybabel compile`` in a running process, and in tests)."""
    with _lock:
        _cache.clear()


def translator(lang: str | None) -> Callable[[str], str]:
    """``gettext`` for one language: ``_ = translator("en"); _("Đăng nhập")``."""
    return get_translations(lang).gettext


def gettext(message: str, **variables: Any) -> str:
    """Translate into the current request's language; ``%(name)s`` placeholders filled from keywords."""
    text = get_translations(current_language.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    text = get_translations(current_language.get()).ngettext(singular, plural, n)
    variables.setdefault("num", n)
    return text % variables


def gettext_lazy(message: str, **variables: Any) -> LazyProxy:
    """For module-level tables: translated when turned into a string, in the language of that moment."""
    return LazyProxy(gettext, message, enable_cache=False, **variables)


def N_(message: str) -> str:
    """Marks a string for extraction without translating it (translate later with ``gettext``)."""
    return message


class Text:
    """A user-visible message kept as its English msgid and values, translated when shown.

    Services raise errors carrying ``Text(...)`` (the extractor knows the name); a view shows
    ``text.translate(principal.language)``, a CLI ``str(text)`` (the current language, Vietnamese by
    default).  Values that are ``Text`` themselves are translated into the same language.
    """

    __slots__ = ("msgid", "values")

    def __init__(self, msgid: str, **values: Any) -> None:
        self.msgid, self.values = msgid, values

    def translate(self, lang: str | None = None) -> str:
        lang = lang or current_language.get()
        text = str(translator(lang)(self.msgid))
        if not self.values:
            return text
        return text % {k: _shown(v, lang) for k, v in self.values.items()}

    def __str__(self) -> str:
        return self.translate()

    def __repr__(self) -> str:
        return f"Text({self.msgid!r}, {self.values!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Text) and (self.msgid, self.values) == (other.msgid, other.values)

    def __hash__(self) -> int:
        return hash(self.msgid)


def _shown(value: Any, lang: str) -> Any:
    """A value filled into a ``Text``: a ``Text`` translated, a ``{"vi": …, "en": …}`` label (data in
    both languages) in ``lang``, a list of values joined with "; "."""
    if isinstance(value, Text):
        return value.translate(lang)
    if isinstance(value, dict):
        return value.get(lang) or value.get("en") or ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(_shown(v, lang)) for v in value)
    return value


def translate_value(value: Any, lang: str | None = None) -> Any:
    """``value`` in ``lang`` when it is a ``Text`` (or a list / dict of them); anything else as is."""
    if isinstance(value, Text):
        return value.translate(lang)
    if isinstance(value, dict):
        return {k: translate_value(v, lang) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(translate_value(v, lang) for v in value)
    return value


def error_text(exc: BaseException, lang: str | None = None) -> str:
    """An exception's message in ``lang`` (default: the current language) when it was raised with a
    ``Text`` (``raise SomeError(Text("…", x=1))``); otherwise ``str(exc)``."""
    arg = exc.args[0] if len(exc.args) == 1 else None
    return arg.translate(lang) if isinstance(arg, Text) else str(exc)

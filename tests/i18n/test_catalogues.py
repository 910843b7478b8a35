"""Every user-visible string goes through Babel, and every string marked for translation has its
Vietnamese (issue #5, item 8).

1. Templates: no text node, user-visible attribute (title, placeholder, aria-label, alt) or literal
   printed by ``{{ … }}`` may carry words outside ``_()`` / ``gettext`` / ``ngettext`` / ``{% trans %}``.
   Proper names, codes and symbols are allowed by a short list.
2. Catalogues: every msgid extracted from the project's Python files and templates has a
   Vietnamese translation in the merged catalogue (core + each domain's own ``i18n/vi.po``),
   with the same ``%(name)s`` placeholders.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from jinja2 import nodes

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = [
    ROOT / "hotline" / "templates",
    ROOT / "hotline" / "calls" / "templates",
    ROOT / "hotline" / "live" / "templates",
    ROOT / "hotline" / "records" / "templates",
    ROOT / "hotline" / "notifications" / "templates",
    ROOT / "directory" / "templates",
    ROOT / "legal_library" / "templates",
]
TEMPLATES = sorted(p for d in TEMPLATE_DIRS for p in d.rglob("*.html"))
TRANSLATING = {"_", "gettext", "ngettext", "pgettext", "npgettext"}
# Words that are the same in every language: product names, codes, units, key names.
ALLOWED = {"km", "vi", "en", "HTTP", "Ctrl", "Alt", "Shift", "Esc", "Enter", "Tab", "SMS", "Zalo",
           "QH15", "PJSIP", "client", "ID", "v", "Webhook"}
VISIBLE_ATTRS = {"title", "placeholder", "aria-label", "alt"}
HOLE = "\x00"
WORD = re.compile(r"[^\W\d_]+")


IDENTIFIER = re.compile(r"[a-z0-9]+(?:[_.][a-z0-9]+)+")
CODE_LIKE = re.compile(r"\S*[\d/._*:@]\S*")


def _words(text: str) -> list[str]:
    """Words of two letters or more that are not allowed names; key names (A, B) and codes pass."""
    return [w for w in WORD.findall(text.replace(HOLE, " ")) if len(w) > 1 and w not in ALLOWED]


def _example_words(text: str) -> list[str]:
    """A placeholder may show an example code (13/2022/QH15, PJSIP/tuvanvien1, dd/mm/yyyy)."""
    return _words(" ".join(tok for tok in text.split() if not CODE_LIKE.fullmatch(tok)))


def _flatten(env: jinja2.Environment, source: str) -> str:
    """The template's literal HTML with every ``{{ … }}`` / ``{% … %}`` replaced by one hole;
    the body of ``{% trans %}`` blocks is translated, so it becomes a hole too."""
    out: list[str] = []
    in_trans = 0
    block: list[str] = []
    in_block = False
    for _lineno, kind, value in env.lex(source):
        if kind in ("block_begin", "variable_begin", "comment_begin"):
            in_block = kind == "block_begin"
            block = []
            out.append(HOLE)
        elif in_block and kind == "name":
            block.append(value)
        elif kind == "block_end":
            if block[:1] == ["trans"]:
                in_trans += 1
            elif block[:1] == ["endtrans"]:
                in_trans -= 1
            in_block = False
        elif kind == "data" and not in_trans:
            out.append(value)
    return "".join(out)


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in VISIBLE_ATTRS and value and (_example_words if name == "placeholder" else _words)(value):
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)

    def handle_data(self, data: str) -> None:
        if not self._skip and _words(data):
            self.found.append(data.strip().replace(HOLE, "…"))


def _printed_literals(node: nodes.Node) -> list[str]:
    """String constants a ``{{ … }}`` would print as they are (not through a translation call)."""
    if isinstance(node, nodes.Const):
        return [node.value] if isinstance(node.value, str) and _words(node.value) else []
    if isinstance(node, nodes.Call):
        if isinstance(node.node, nodes.Name) and node.node.name in TRANSLATING:
            return []
        # any other printed call (a macro, a lookup table) may take codes ("call_status"), not words
        if isinstance(node.node, nodes.Name) and node.node.name == "t":  # a key table outside Babel
            return [a.value for a in node.args if isinstance(a, nodes.Const) and isinstance(a.value, str)]
        return [a.value for a in node.args if isinstance(a, nodes.Const) and isinstance(a.value, str)
                and _words(a.value) and not IDENTIFIER.fullmatch(a.value)]
    if isinstance(node, nodes.CondExpr):
        return _printed_literals(node.expr1) + (_printed_literals(node.expr2) if node.expr2 else [])
    if isinstance(node, (nodes.Or, nodes.And)):
        return _printed_literals(node.left) + _printed_literals(node.right)
    if isinstance(node, nodes.Concat):
        return [s for n in node.nodes for s in _printed_literals(n)]
    if isinstance(node, nodes.Filter) and node.node is not None and node.name in ("upper", "lower", "title", "e"):
        return _printed_literals(node.node)
    return []


def untranslated(env: jinja2.Environment, source: str) -> list[str]:
    parser = _Visible()
    parser.feed(_flatten(env, source))
    parser.close()
    found = list(parser.found)
    for output in env.parse(source).find_all(nodes.Output):
        for child in output.nodes:
            if not isinstance(child, nodes.TemplateData):
                found.extend(f"{{{{ {s!r} }}}}" for s in _printed_literals(child))
    return found


@pytest.fixture(scope="module")
def jenv() -> jinja2.Environment:
    from hotline.web import _env

    return _env


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_template_has_no_text_outside_translation_calls(jenv, path: Path) -> None:
    assert untranslated(jenv, path.read_text(encoding="utf-8")) == []


def test_the_checker_catches_text_attributes_and_printed_literals(jenv) -> None:
    """A checker that cannot fail proves nothing: each kind of slip is caught, marked text is not."""
    assert untranslated(jenv, "<p>Lưu / Save</p>") == ["Lưu / Save"]
    assert untranslated(jenv, '<input placeholder="search here">') == ["<input placeholder='search here'>"]
    assert untranslated(jenv, '{{ "Chưa rõ" if x else y }}') == ["{{ 'Chưa rõ' }}"]
    assert untranslated(jenv, "{{ pick('Có', 'Yes') }}") == ["{{ 'Có' }}", "{{ 'Yes' }}"]
    assert untranslated(jenv, "{{ t('save') }} {{ label('call_status', s) }}") == ["{{ 'save' }}"]
    assert untranslated(jenv, "<p>{{ name }}: {{ n }} km</p>") == []
    assert untranslated(jenv, '<p title="{{ _(\'Saved\') }}">{{ _("Save") }}</p>') == []
    assert untranslated(jenv, "<p>{% trans %}Hello there{% endtrans %}</p>") == []
    assert untranslated(jenv, "<script>var a = 'text';</script><p>{{ x|join(', ') }}</p>") == []


# ---------------------------------------------------------------------- catalogues
def _extracted() -> dict[str | tuple[str, str], list[str]]:
    from hotline.i18n import DOMAIN_PACKAGES
    from hotline.i18n.extract import extract

    found: dict[str | tuple[str, str], list[str]] = {}
    packages = [ROOT / "hotline", ROOT / "webhooks"] + [ROOT.joinpath(*d.split(".")) for d in DOMAIN_PACKAGES]
    seen: set[Path] = set()
    for pkg in packages:
        if not pkg.is_dir() or pkg in seen:
            continue
        seen.add(pkg)
        inner = [ROOT.joinpath(*d.split(".")) for d in DOMAIN_PACKAGES if pkg == ROOT / "hotline" and d.startswith("hotline.")]
        for msg in extract(pkg, inner):
            if msg.id:
                # A plural message keeps both ids: it is looked up with ngettext, like the code does.
                key = msg.id if isinstance(msg.id, str) else tuple(msg.id[:2])
                if msg.context and isinstance(key, str):  # pgettext: looked up with its context
                    key = f"{msg.context}\x04{key}"
                found.setdefault(key, []).extend(f"{f}:{n}" for f, n in msg.locations)
    return found


PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


def test_every_marked_string_has_a_vietnamese_translation() -> None:
    from hotline import i18n

    i18n.reload()
    vi = i18n.get_translations("vi")
    found = _extracted()
    assert len(found) > 200  # the extraction itself works (core, directory, legal, live, records)
    missing, broken = [], []
    for key, where in sorted(found.items(), key=lambda item: str(item[0])):
        if isinstance(key, tuple):
            # Plurals only through ngettext: gettext finds a plural entry on some Pythons only
            # (Debian's 3.11.2 does not fall back), so it would call them untranslated there.
            msgid, plural = key
            text = vi.ngettext(msgid, plural, 1)
            untranslated = text in (msgid, plural)
            expected = set(PLACEHOLDER.findall(msgid)) | set(PLACEHOLDER.findall(plural))
        elif "\x04" in key:
            context, msgid = key.split("\x04", 1)
            text = vi.pgettext(context, msgid)
            untranslated = text == msgid
            expected = set(PLACEHOLDER.findall(msgid))
        else:
            msgid = key
            text = vi.gettext(msgid)
            untranslated = text == msgid
            expected = set(PLACEHOLDER.findall(msgid))
        if untranslated and WORD.search(msgid) and _words(msgid):
            missing.append(f"{msgid!r} ({where[0]})")
        elif set(PLACEHOLDER.findall(text)) != expected:
            broken.append(f"{msgid!r} -> {text!r}")
    assert missing == [], "untranslated (run hotline/i18n/extract.sh, then fill the msgstr):\n" + "\n".join(missing)
    assert broken == [], "placeholders differ:\n" + "\n".join(broken)


def test_english_pages_show_english_and_vietnamese_pages_vietnamese(client) -> None:
    """The same page in both languages: the English msgid and its Vietnamese translation."""
    from tests.helpers import create_user, login

    create_user("lang-admin", "a long pass phrase 1", role="administrator")
    token = login(client, "lang-admin", "a long pass phrase 1")
    page = client.get("/directory/admin/stale")
    assert page.status_code == 200 and "Chưa xác minh trong 180 ngày" in page.text
    client.post("/language", data={"lang": "en", "next": "/directory/admin/stale", "csrf_token": token})
    page = client.get("/directory/admin/stale")
    assert "Not verified in 180 days" in page.text and "Chưa xác minh" not in page.text

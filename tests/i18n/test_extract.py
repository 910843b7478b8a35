"""hotline/i18n/extract.sh: a domain's catalogue is updated from that package's own files, never
overwritten; entries no source uses are kept unless --prune."""

from __future__ import annotations

import subprocess
from pathlib import Path

from babel.messages.pofile import read_po

from hotline.i18n.extract import ROOT, extract, update

HAND_WRITTEN = '''# Vietnamese translations for hotline (shelter).
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\\n"

msgid "Shelter"
msgstr "Nhà tạm lánh"

msgid "Beds for %(name)s"
msgstr "Giường cho %(name)s"
'''


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "shelter"
    (pkg / "templates" / "shelter").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "views.py").write_text('from hotline.i18n import N_\nTITLE = N_("Shelter")\nOTHER = N_("Free beds")\n')
    (pkg / "templates" / "shelter" / "page.html").write_text('<h1>{{ _("Shelter") }}</h1><p>{{ _("Call them") }}</p>\n')
    (pkg / "i18n").mkdir()
    (pkg / "i18n" / "vi.po").write_text(HAND_WRITTEN, encoding="utf-8")
    return pkg


def _read(po: Path) -> dict[str, str]:
    with po.open("rb") as fh:
        return {m.id: m.string for m in read_po(fh, locale="vi") if m.id}


def test_update_keeps_every_translation_and_adds_the_new_strings(tmp_path):
    pkg = _package(tmp_path)
    template = extract(pkg, [])
    assert {m.id for m in template if m.id} == {"Shelter", "Free beds", "Call them"}
    update(template, pkg / "i18n" / "vi.po", "vi", prune=False, label="shelter")
    entries = _read(pkg / "i18n" / "vi.po")
    assert entries["Shelter"] == "Nhà tạm lánh"  # kept, not overwritten
    assert entries["Free beds"] == "" and entries["Call them"] == ""  # new, to translate
    assert entries["Beds for %(name)s"] == "Giường cho %(name)s"  # hand-written, not in the sources: kept

    update(template, pkg / "i18n" / "vi.po", "vi", prune=True, label="shelter")
    entries = _read(pkg / "i18n" / "vi.po")
    assert "Beds for %(name)s" not in entries and entries["Shelter"] == "Nhà tạm lánh"


def test_a_missing_domain_catalogue_is_created(tmp_path):
    pkg = _package(tmp_path)
    (pkg / "i18n" / "vi.po").unlink()
    update(extract(pkg, []), pkg / "i18n" / "vi.po", "vi", prune=False, label="shelter")
    text = (pkg / "i18n" / "vi.po").read_text(encoding="utf-8")
    assert "charset=utf-8" in text.lower() and "#, fuzzy" not in text
    assert set(_read(pkg / "i18n" / "vi.po")) == {"Shelter", "Free beds", "Call them"}


def test_the_core_extraction_leaves_out_the_domain_packages_inside_hotline():
    ids = {m.id for m in extract(ROOT / "hotline", [ROOT / "hotline" / "ops", ROOT / "hotline" / "security"]) if m.id}
    assert "Caller flags" in ids and "Keyboard shortcuts" in ids
    locations = {loc for m in extract(ROOT / "hotline", [ROOT / "hotline" / "ops"]) for loc, _ in m.locations}
    assert not any(loc.startswith("hotline/ops/") for loc in locations)


def test_the_script_refuses_an_unknown_catalogue_name():
    run = subprocess.run(["sh", str(ROOT / "hotline" / "i18n" / "extract.sh"), "nonsense"], capture_output=True,
                         text=True, cwd=ROOT)
    assert run.returncode == 2 and "unknown catalogue(s) nonsense" in run.stderr

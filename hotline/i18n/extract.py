"""Extract every UI string and update the catalogues: the core one and each domain package's own.

    .venv/bin/python -m hotline.i18n.extract                 # core + every domain package present
    .venv/bin/python -m hotline.i18n.extract directory       # only the named catalogues ("core" = hotline)
    .venv/bin/python -m hotline.i18n.extract --prune ...     # also retire entries no source uses any more

* core: ``hotline/**`` except the domain packages inside it (``hotline/ops``, ``hotline/security``)
  → ``hotline/i18n/messages.pot`` → ``hotline/i18n/{vi,en}/LC_MESSAGES/messages.po`` (compiled to .mo).
* a domain package ``pkg`` (see ``hotline.i18n.DOMAIN_PACKAGES``): ``pkg/**`` → ``pkg/i18n/vi.po``.

Catalogues are **updated, never overwritten**: every existing translation is kept.  Entries that no
source uses any more are kept as they are unless ``--prune`` is given (a helper may have written
entries by hand for strings built at run time); the script lists them either way.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from hotline.i18n import DOMAIN_PACKAGES, HERE

ROOT = HERE.parent.parent
KEYWORDS = {
    "_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "gettext_lazy": None, "_tr": (2,), "Text": None,
    "lazy_gettext": None, "pgettext": ((1, "c"), 2), "npgettext": ((1, "c"), 2, 3),
}
VI_TRANSLATION_HEADER = "Vietnamese translations for hotline"


def _package_dir(name: str) -> Path:
    return ROOT.joinpath(*name.split("."))


def _method_map() -> tuple[list[tuple[str, str]], dict[str, dict[str, str]]]:
    with (HERE / "babel.cfg").open(encoding="utf-8") as fh:
        mapping: tuple[list[tuple[str, str]], dict[str, dict[str, str]]]
        mapping = parse_mapping_cfg(fh)  # type: ignore[no-untyped-call]  # Babel's function has no annotations
        return mapping


def extract(package_dir: Path, exclude: list[Path]) -> Catalog:
    """Every marked string under ``package_dir`` (paths relative to the repository root)."""
    method_map, options_map = _method_map()
    excluded = {p.resolve() for p in exclude}

    def keep_dir(dirpath: str) -> bool:
        path = Path(dirpath).resolve()
        if path.name.startswith(".") or path.name in ("__pycache__", "migrations"):
            return False
        return path not in excluded

    catalog = Catalog(project="hotline", version="0.1.0", charset="utf-8")
    for filename, lineno, message, comments, context in extract_from_dir(
            str(package_dir), method_map, options_map, keywords=KEYWORDS, comment_tags=("Translators:",),
            strip_comment_tags=True, directory_filter=keep_dir):
        rel = _shown(package_dir / filename)
        catalog.add(message, None, [(rel, lineno)], auto_comments=comments, context=context)
    return catalog


def _read(po: Path, lang: str) -> Catalog:
    with po.open("rb") as fh:
        return read_po(fh, locale=lang)


def _write(catalog: Catalog, po: Path) -> None:
    buf = io.BytesIO()
    write_po(buf, catalog, width=76, sort_output=True, ignore_obsolete=False, include_previous=False)
    po.parent.mkdir(parents=True, exist_ok=True)
    po.write_bytes(buf.getvalue())


def _shown(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def update(template: Catalog, po: Path, lang: str, *, prune: bool, label: str) -> Catalog:
    """Merge ``template`` into ``po`` keeping every translation (creating ``po`` when missing)."""
    if po.exists():
        catalog = _read(po, lang)
    else:
        catalog = Catalog(locale=lang, project="hotline", version="0.1.0", charset="utf-8", fuzzy=False,
                          header_comment=f"# {VI_TRANSLATION_HEADER if lang == 'vi' else 'Translations'} ({label}).")
    before = {m.id: m for m in catalog if m.id}
    catalog.update(template, no_fuzzy_matching=True, update_header_comment=False, keep_user_comments=True)
    gone = [mid for mid in before if mid not in template]
    for mid in gone:
        catalog.obsolete.pop(mid, None)  # type: ignore[arg-type]  # Babel types message ids loosely (str | tuple | list)
        old = before[mid]
        if not prune:
            catalog[mid] = old  # kept: may be a string built at run time
    if gone:
        verb = "retired" if prune else "kept (not found in the sources; --prune retires them)"
        print(f"{_shown(po)}: {len(gone)} entries {verb}", file=sys.stderr)
    if prune:
        catalog.obsolete.clear()
    _write(catalog, po)
    missing = [m.id for m in catalog if m.id and lang == "vi"
               and not (all(m.string) if isinstance(m.string, tuple) else m.string)]
    print(f"{_shown(po)}: {len(template)} strings, {len(missing)} without a translation")
    return catalog


def compile_mo(catalog: Catalog, mo: Path) -> None:
    with mo.open("wb") as fh:
        write_mo(fh, catalog, use_fuzzy=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("catalogues", nargs="*", help="core and/or domain package names (default: all)")
    parser.add_argument("--prune", action="store_true", help="retire entries no source uses any more")
    args = parser.parse_args(argv)
    domains = [d for d in DOMAIN_PACKAGES if _package_dir(d).is_dir()]
    wanted = args.catalogues or ["core", *domains]
    unknown = [w for w in wanted if w not in ("core", "hotline", *DOMAIN_PACKAGES)]
    if unknown:
        parser.error(f"unknown catalogue(s) {', '.join(unknown)}; choose from core, {', '.join(DOMAIN_PACKAGES)}")
    for name in wanted:
        if name in ("core", "hotline"):
            inner = [_package_dir(d) for d in DOMAIN_PACKAGES if d.startswith("hotline.")]
            template = extract(ROOT / "hotline", inner)
            buf = io.BytesIO()
            write_po(buf, template, width=76, sort_output=True, omit_header=False)
            (HERE / "messages.pot").write_bytes(buf.getvalue())
            for lang in ("vi", "en"):
                po = HERE / lang / "LC_MESSAGES" / "messages.po"
                catalog = update(template, po, lang, prune=args.prune, label="core")
                compile_mo(catalog, po.with_suffix(".mo"))
        else:
            pkg = _package_dir(name)
            if not pkg.is_dir():
                print(f"{name}: no such package here, skipped", file=sys.stderr)
                continue
            template = extract(pkg, [])
            update(template, pkg / "i18n" / "vi.po", "vi", prune=args.prune, label=name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

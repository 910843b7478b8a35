"""Province and commune pickers for the record form: the 34 provinces and their communes since
1 July 2025, found by type-ahead with diacritics ignored (đ too), old province names mapped to the
new ones.  The record stores codes; anything not in the list is refused with a clear message.

The data and name matching live in ``directory.places`` (the directory ranks services by place
with the same units), reached through the composition root (``hotline.domains.places_module``).
"""

from __future__ import annotations

from typing import Any

from hotline.text import fold


def _module() -> Any:
    from hotline import domains

    return domains.places_module()


def _places() -> Any:
    return _module().places()


def province_name(code: str | None) -> str:
    return _places().province_name(code) if code else ""


def commune_name(code: str | None) -> str:
    return _places().commune_name(code) if code else ""


def province_of_commune(code: str | None) -> str | None:
    unit = _places().communes.get(code or "")
    return unit.province_code if unit else None


def _starts(words: str, q: str) -> int:
    """0: the name starts with q; 1: a word starts with q; 2: q inside; -1: no match."""
    if words.startswith(q):
        return 0
    if (" " + q) in (" " + words):
        return 1
    return 2 if q in words else -1


def search_provinces(q: str, *, limit: int = 12) -> list[dict[str, str]]:
    """Provinces whose current or old name matches ``q`` (folded); old names say where they went."""
    key = _module().key
    p = _places()
    if q.strip().isdigit():  # a code: its name (the form shows a code it was given back as the name)
        code = f"{int(q.strip()):02d}"
        return [{"code": code, "name": p.provinces[code].name, "note": ""}] if code in p.provinces else []
    fq = key(q) if q.strip() else ""
    hits: list[tuple[int, str, dict[str, str]]] = []
    seen: set[str] = set()
    for code, unit in p.provinces.items():
        rank = _starts(key(unit.name), fq) if fq else 0
        if rank >= 0:
            hits.append((rank, fold(unit.name), {"code": code, "name": unit.name, "note": ""}))
            seen.add(code)
    if fq:
        for k, (code, old, _lat, _lon) in p.old_provinces.items():
            if " " not in k and " " in key(old):
                continue  # the spaceless alias of a name listed once already
            rank = _starts(key(old), fq)
            if rank < 0 or key(old) == key(p.provinces[code].name):
                continue
            hits.append((rank, fold(old), {"code": code, "name": p.provinces[code].name,
                                           "note": f"{old} → {p.provinces[code].name}"}))
    hits.sort(key=lambda h: (h[0], h[1]))
    out, codes_notes = [], set()
    for _r, _n, item in hits:
        ident = (item["code"], item["note"])
        if ident in codes_notes:
            continue
        codes_notes.add(ident)
        out.append(item)
        if len(out) >= limit:
            break
    return out


def search_communes(province_code: str, q: str, *, limit: int = 15) -> list[dict[str, str]]:
    key = _module().key
    p = _places()
    if q.strip().isdigit():
        code = f"{int(q.strip()):05d}"
        unit = p.communes.get(code)
        return [{"code": code, "name": unit.name, "note": ""}] if unit and unit.province_code == province_code else []
    fq = key(q) if q.strip() else ""
    hits = []
    for code in p.commune_keys.get(province_code, {}).values():
        unit = p.communes[code]
        rank = _starts(key(unit.name), fq) if fq else 0
        if rank >= 0:
            hits.append((rank, fold(unit.name), {"code": code, "name": unit.name, "note": ""}))
    hits.sort(key=lambda h: (h[0], h[1]))
    return [h[2] for h in hits[:limit]]


def resolve_province(value: str) -> str:
    """A province code from a code or a (new or old) name; ``ValueError`` with the closest names."""
    UnknownPlace = _module().UnknownPlace
    try:
        code, _note = _places().province(value)
    except UnknownPlace as exc:
        raise ValueError(exc.suggestions) from None
    return str(code)


def resolve_commune(value: str, province_code: str | None) -> str:
    UnknownPlace = _module().UnknownPlace
    if not province_code:
        raise ValueError([])
    try:
        return str(_places().commune(value, province_code))
    except UnknownPlace as exc:
        raise ValueError(exc.suggestions) from None

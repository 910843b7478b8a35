"""The upkeep form's other locations: a service offered at several places, each with its own
address, phones and hours, edited beside the flat fields (which describe the first, main place).

Posted as ``loc-N-<field>`` (N = 0, 1, …; ``loc-count`` says how many blocks were shown, the last
one blank for adding a place; ``loc-N-remove`` drops one).  Hours are written as in the template
("T2-T6 07:30-17:00"); hours imported in a form the template cannot write (monthly, every other
week, dates) are kept as long as their field is left unchanged.
"""

from __future__ import annotations

from typing import Any

from directory import hours as hours_mod
from directory import schedules as sched_mod
from directory import service as svc_mod
from directory import validation
from directory.places import places
from directory.schemas import LocationRecord, Record

LOC_FIELDS = ("id", "name", "location_type", "province", "commune", "address", "confidential_address", "phones", "hours")


def _hours_text(rules: list[sched_mod.Rule]) -> str:
    if rules and all(r.is_simple for r in rules):
        slots = tuple(hours_mod.Slot(*s) for r in rules for s in r.slots())
        return hours_mod.render(hours_mod.Hours(False, slots, False))
    return "; ".join(r.description or (f"{r.freq or 'WEEKLY'} {r.byday} {r.opens_at}-{r.closes_at}".strip())
                     for r in rules)


def location_blocks(rec: Record | None) -> list[dict[str, str]]:
    """The other locations as form values, and one blank block for a new place."""
    pl = places()
    out = []
    for lr in (rec.locations[1:] if rec else []):
        rules = [r for r in rec.schedules if r.location_id == lr.id] if rec else []
        out.append({"id": lr.id, "name": lr.name, "location_type": lr.location_type,
                    "province": pl.province_name(lr.province_code), "commune": pl.commune_name(lr.commune_code),
                    "address": lr.address, "confidential_address": "yes" if lr.confidential else "no",
                    "phones": "; ".join(n for n, _ in lr.phones), "hours": _hours_text(rules)})
    out.append({k: "" for k in LOC_FIELDS} | {"location_type": "physical"})
    return out


def service_hours_text(rec: Record) -> str:
    """The service's own hours as the form shows them."""
    if rec.open_24_7:
        return "24/7"
    own = [r for r in rec.schedules if not r.location_id]
    text = _hours_text(own)
    if own and all(r.is_simple for r in own) and rec.open_on_holidays:
        text += " (open on holidays)"
    return text


def posted_blocks(form: Any) -> list[dict[str, str]]:
    try:
        count = min(int(str(form.get("loc-count") or 0)), 50)
    except ValueError:
        count = 0
    blocks = []
    for i in range(count):
        b = {k: str(form.get(f"loc-{i}-{k}") or "").strip() for k in LOC_FIELDS}
        if form.get(f"loc-{i}-remove") or not any(b[k] for k in ("id", "name", "province", "address", "phones")):
            continue
        blocks.append(b)
    return blocks


def apply(raw: dict[str, Any], blocks: list[dict[str, str]], old: Record | None) -> list[Any]:
    """Validate the posted form (flat fields + other locations) into a record; ``RecordError`` lists
    every problem, each other location's prefixed with its id."""
    errors: list[Any] = []
    sid = raw.get("id") or ""
    main_id = old.locations[0].id if old and old.locations else f"{sid}-loc"
    main = {"id": main_id, "sal_id": old.locations[0].sal_id if old and old.locations else "",
            "address_id": old.locations[0].address_id if old and old.locations else "",
            "name": raw.get("name", ""), "province": raw.get("province", ""), "commune": raw.get("commune", ""),
            "address": raw.get("address", ""), "confidential_address": raw.get("confidential_address", ""),
            "latitude": raw.get("latitude", ""), "longitude": raw.get("longitude", ""),
            "location_type": old.locations[0].location_type if old and old.locations else "physical",
            "phones": "; ".join(n for n, _ in old.locations[0].phones) if old and old.locations else ""}
    others = []
    for i, b in enumerate(blocks, start=1):
        lid = b["id"] or f"{sid}-loc{i + 1}"
        others.append({**b, "id": lid})
    if others or (old is not None and len(old.locations) > 1):
        raw["__locations__"] = [main, *others]
    return errors


def finish(rec: Record, raw: dict[str, Any], blocks: list[dict[str, str]], old: Record | None) -> Record:
    """Hours: the service's from the flat field (or kept, when unchanged and not writable as text),
    and each location's from its block."""
    errors: list[Any] = []
    rules: list[sched_mod.Rule] = []
    if old is not None and raw.get("hours", "") == service_hours_text(old):
        rules += [r for r in old.schedules if not r.location_id]
    else:
        rules += [r for r in rec.schedules if not r.location_id]
    old_by_loc = {lr.id: [r for r in old.schedules if r.location_id == lr.id] for lr in old.locations} if old else {}
    for i, b in enumerate(blocks, start=1):
        lid = b["id"] or f"{rec.id}-loc{i + 1}"
        kept = old_by_loc.get(lid, [])
        if kept and b["hours"] == _hours_text(kept):
            rules += kept
            continue
        try:
            h = hours_mod.parse(b["hours"])
        except hours_mod.HoursError as exc:
            errors.append(validation._at(lid, validation.reason_of(exc)))
            continue
        for j, r in enumerate(validation._template_rules(h, f"{lid}")):
            r.id, r.location_id = f"{lid}-sc{j}", lid
            rules.append(r)
    if errors:
        raise validation.RecordError(errors)
    rec.schedules = rules
    rec.slots = [s for r in rules for s in r.slots()]
    rec.hours_note = sched_mod.Schedules(rules).note
    if old is not None:
        rec.coverage, rec.terms = old.coverage, old.terms
        if not rec.locations and len(old.locations) > 1:  # the others were removed: list the main one alone
            main = svc_mod.default_location(rec)
            main.id, main.sal_id, main.address_id = old.locations[0].id, old.locations[0].sal_id, old.locations[0].address_id
            rec.locations = [main]
    return rec


__all__ = ["LOC_FIELDS", "LocationRecord", "apply", "finish", "location_blocks", "posted_blocks", "service_hours_text"]

"""The directory as the HSDS 3.0 API shapes it (``/api/hsds/…``), so that a partner system such as the
national 111 line can pull it: services (paged, one-to-one fields), one service fully nested, and the
taxonomy terms.  Built from the same records as the exports; a confidential location is listed
without its address, coordinates or commune, and no referral secret or other ``x_`` field leaves.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from directory import schedules as sched_mod
from directory import service as svc_mod
from directory.models import Location, Service, ServiceAtLocation, TaxonomyTerm
from directory.places import places
from directory.schemas import LocationRecord, Record
from directory.service_types import TAXONOMY, service_types
from hotline.i18n import Text


def page(total: int, number: int, per_page: int, contents: list[dict[str, Any]]) -> dict[str, Any]:
    pages = max(1, math.ceil(total / per_page))
    return {"total_items": total, "total_pages": pages, "page_number": number, "size": len(contents),
            "first_page": number == 1, "last_page": number >= pages, "empty": not contents, "contents": contents}


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in (None, "")}


def _service_fields(svc: Service, rec: Record) -> dict[str, Any]:
    return _drop_empty({
        "id": rec.id, "organization_id": rec.organization_id, "name": rec.name, "alternate_name": rec.alternate_name,
        "description": rec.description, "url": rec.url, "email": rec.email, "status": svc.status,
        "assured_date": rec.last_verified_at.date().isoformat() if rec.last_verified_at else None,
        "last_modified": svc.updated_at.isoformat() if svc.updated_at else None,
    })


def _phone(pid: str, number: str, **links: str) -> dict[str, Any]:
    return _drop_empty({"id": pid, "number": number, **links})


def _schedule(rule: sched_mod.Rule, service_id: str) -> dict[str, Any]:
    d = rule.as_dict()
    tz = d.pop("timezone", "")
    out: dict[str, Any] = {"service_id": service_id, **d}
    if tz and sched_mod.is_offset(tz):
        out["timezone"] = float(tz)
    if "interval" in out:
        out["interval"] = int(out["interval"])
    return out


def _location(lr: LocationRecord, rec: Record) -> dict[str, Any]:
    pl = places()
    hidden = lr.confidential
    loc: dict[str, Any] = _drop_empty({
        "id": lr.id, "location_type": lr.location_type, "organization_id": rec.organization_id, "name": lr.name,
        "latitude": None if hidden else lr.latitude, "longitude": None if hidden else lr.longitude,
        "description": "Địa chỉ bảo mật / confidential address" if hidden else None,
    })
    if lr.location_type != "virtual":
        loc["addresses"] = [] if hidden else [{
            "id": lr.address_id, "location_id": lr.id, "address_1": lr.address,
            "city": pl.commune_name(lr.commune_code), "state_province": pl.province_name(lr.province_code),
            "postal_code": "", "country": "VN", "address_type": "physical"}]
    loc["phones"] = [_phone(f"{lr.id}-ph{i}", n, location_id=lr.id) for i, (n, _) in enumerate(lr.phones)]
    loc["schedules"] = [_schedule(r, rec.id) for r in rec.schedules if r.location_id == lr.id]
    return loc


def _term(term_id: str, code: str, name: str, description: str, taxonomy: str) -> dict[str, Any]:
    return {"id": term_id, "code": code, "name": name, "description": description or name, "taxonomy_id": taxonomy}


def full_service(svc: Service) -> dict[str, Any]:
    rec = svc_mod.to_record(svc)
    pl = places()
    out = _service_fields(svc, rec)
    org = svc.organization
    out["organization"] = _drop_empty({"id": org.id, "name": org.name, "description": org.description or org.name,
                                       "email": org.email, "website": org.website})
    out["phones"] = [_phone(f"{rec.id}-ph{i}", n, service_id=rec.id) for i, (n, _) in enumerate(rec.phones)]
    out["schedules"] = [_schedule(r, rec.id) for r in rec.schedules if not r.location_id]
    out["service_at_locations"] = [{"id": lr.sal_id, "service_id": rec.id, "location_id": lr.id,
                                    "location": _location(lr, rec)} for lr in svc_mod.all_locations(rec)]
    out["languages"] = [{"id": f"{rec.id}-lang{i}", "service_id": rec.id, "code": c} for i, c in enumerate(rec.languages)]
    areas = rec.coverage or ([rec.province_code] if rec.province_code else ["*"])
    out["service_areas"] = [{"id": f"{rec.id}-area{i}", "service_id": rec.id,
                             "name": "Toàn quốc / nationwide" if c == "*" else pl.province_name(c)}
                            for i, c in enumerate(areas)]
    t = service_types()[rec.service_type]
    out["attributes"] = [{"id": f"{rec.id}-type", "link_id": rec.id, "link_type": "service", "link_entity": "service",
                          "taxonomy_term_id": f"{TAXONOMY}:{t.code}",
                          "taxonomy_term": _term(f"{TAXONOMY}:{t.code}", t.code, t.en, t.vi, TAXONOMY)}]
    return out


def _load(session: Session) -> Any:
    return select(Service).options(
        selectinload(Service.phones), selectinload(Service.schedules), selectinload(Service.attributes),
        selectinload(Service.locations).joinedload(ServiceAtLocation.location).selectinload(Location.addresses))


def list_services(session: Session, *, page_number: int, per_page: int) -> dict[str, Any]:
    total = session.scalar(select(func.count()).select_from(Service)) or 0
    rows = session.scalars(_load(session).order_by(Service.id).offset((page_number - 1) * per_page).limit(per_page))
    contents = []
    for svc in rows:
        item = _service_fields(svc, svc_mod.to_record(svc))
        item["organization"] = _drop_empty({"id": svc.organization.id, "name": svc.organization.name,
                                            "description": svc.organization.description or svc.organization.name})
        contents.append(item)
    return page(total, page_number, per_page, contents)


def one_service(session: Session, service_id: str) -> dict[str, Any]:
    svc = session.scalar(_load(session).where(Service.id == service_id))
    if svc is None:
        raise svc_mod.NotFound(Text("no directory entry %(id)r", id=service_id))
    return full_service(svc)


def list_terms(session: Session, *, page_number: int, per_page: int) -> dict[str, Any]:
    svc_mod.ensure_taxonomy(session)
    total = session.scalar(select(func.count()).select_from(TaxonomyTerm)) or 0
    rows = session.scalars(select(TaxonomyTerm).order_by(TaxonomyTerm.taxonomy != TAXONOMY, TaxonomyTerm.id)
                           .offset((page_number - 1) * per_page).limit(per_page))
    contents = [_term(t.id, t.code, t.name_en, t.description or t.name_vi, t.taxonomy) for t in rows]
    return page(total, page_number, per_page, contents)

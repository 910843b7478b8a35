"""Open Referral HSDS 3.0 core tables (``dir_`` prefix), extended for Vietnamese hotlines.

HSDS objects: organization, service, location, address, service_at_location, phone, schedule,
taxonomy/taxonomy_term, attribute, language, service_area.  Extensions on ``dir_services``:
2025 province/commune codes, shelter capacity, 24/7, referral acceptance, verification, and
the pre-folded search document.  A location's address may be confidential (shown to staff,
never in the public export).

Services carry an integer ``pk`` (the SQLite FTS5 rowid) and a stable string ``id`` (the HSDS
id; imports update by it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base, JSONType, UTCDateTime, utcnow

PK = BigInteger().with_variant(Integer(), "sqlite")


class Organization(Base):
    __tablename__ = "dir_organizations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str] = mapped_column(String(255), default="")
    website: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Service(Base):
    __tablename__ = "dir_services"
    __table_args__ = (
        Index("ix_dir_services_type_province", "service_type", "province_code"),
        Index("ix_dir_services_verified_at", "last_verified_at"),
    )

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("dir_organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    alternate_name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    service_type: Mapped[str] = mapped_column(String(32), default="other")
    status: Mapped[str] = mapped_column(String(16), default="active")  # HSDS: active | inactive | defunct
    email: Mapped[str] = mapped_column(String(255), default="")
    url: Mapped[str] = mapped_column(String(500), default="")
    hours_text: Mapped[str] = mapped_column(String(500), default="")
    open_24_7: Mapped[bool] = mapped_column(Boolean, default=False)
    open_on_holidays: Mapped[bool] = mapped_column(Boolean, default=False)
    timezone: Mapped[str] = mapped_column(String(64), default="")  # empty: the centre's timezone
    languages: Mapped[str] = mapped_column(String(120), default=",vi,")  # ",vi,en," for LIKE filters
    accessible: Mapped[bool] = mapped_column(Boolean, default=False)
    beds_total: Mapped[int | None] = mapped_column(Integer)
    beds_free: Mapped[int | None] = mapped_column(Integer)
    beds_women: Mapped[int | None] = mapped_column(Integer)
    beds_men: Mapped[int | None] = mapped_column(Integer)
    beds_children: Mapped[int | None] = mapped_column(Integer)
    referral_accepts: Mapped[bool] = mapped_column(Boolean, default=False)
    referral_method: Mapped[str] = mapped_column(String(16), default="")  # webhook | email | sms | ""
    referral_webhook_url: Mapped[str] = mapped_column(String(500), default="")
    referral_webhook_secret: Mapped[str] = mapped_column(String(255), default="")
    referral_email: Mapped[str] = mapped_column(String(255), default="")
    referral_sms: Mapped[str] = mapped_column(String(32), default="")
    province_code: Mapped[str | None] = mapped_column(String(8), index=True)
    commune_code: Mapped[str | None] = mapped_column(String(8), index=True)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    last_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_verified_by: Mapped[str] = mapped_column(String(255), default="")
    source_note: Mapped[str] = mapped_column(Text, default="")
    search_doc: Mapped[str] = mapped_column(Text, default="")  # pre-folded (hotline.text.fold)
    phone_digits: Mapped[str] = mapped_column(String(500), default="")  # " 0912345678 84912345678 111 "
    content_hash: Mapped[str] = mapped_column(String(64), default="")
    # Where it serves when that is not (only) where it stands: ",51,48," (province codes of its HSDS
    # service_area / virtual locations); "" = its own province only (or nationwide when that is empty).
    coverage: Mapped[str] = mapped_column(String(500), default="")
    # Hours that the quick SQL test cannot decide (monthly, every other week, validity dates, a
    # schedule's own timezone): searches decide them in Python from the full schedule rows.
    hours_complex: Mapped[bool] = mapped_column(Boolean, default=False)
    hours_note: Mapped[str] = mapped_column(Text, default="")  # schedules given only as a description
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    organization: Mapped[Organization] = relationship(lazy="joined")
    phones: Mapped[list[Phone]] = relationship(cascade="all, delete-orphan", order_by="Phone.pk")
    schedules: Mapped[list[Schedule]] = relationship(cascade="all, delete-orphan", order_by="Schedule.pk")
    locations: Mapped[list[ServiceAtLocation]] = relationship(cascade="all, delete-orphan", order_by="ServiceAtLocation.pk")
    language_rows: Mapped[list[Language]] = relationship(cascade="all, delete-orphan", order_by="Language.pk")
    areas: Mapped[list[ServiceArea]] = relationship(cascade="all, delete-orphan", order_by="ServiceArea.pk")
    attributes: Mapped[list[Attribute]] = relationship(cascade="all, delete-orphan", order_by="Attribute.pk")


# The few entries serving provinces beyond their own (HSDS service areas, virtual lines).
Index("ix_dir_services_coverage", Service.coverage, sqlite_where=Service.coverage != "",
      postgresql_where=Service.coverage != "")

# Type-only searches walk this index in ranking order (verified first, then by name) and stop early.
Index("ix_dir_services_type_verified_name", Service.service_type, Service.verified.desc(), Service.name)


class Location(Base):
    __tablename__ = "dir_locations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    organization_id: Mapped[str] = mapped_column(ForeignKey("dir_organizations.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    # indexed: a search with a place finds the services with any location there (directory.search)
    province_code: Mapped[str | None] = mapped_column(String(8), index=True)
    commune_code: Mapped[str | None] = mapped_column(String(8))
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    location_type: Mapped[str] = mapped_column(String(16), default="physical")  # HSDS: physical | postal | virtual

    organization: Mapped[Organization] = relationship()
    addresses: Mapped[list[Address]] = relationship(cascade="all, delete-orphan", order_by="Address.pk", lazy="joined")


class Address(Base):
    __tablename__ = "dir_addresses"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(80), unique=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("dir_locations.id", ondelete="CASCADE"), index=True)
    address_1: Mapped[str] = mapped_column(String(500), default="")
    city: Mapped[str] = mapped_column(String(255), default="")  # the commune (xã/phường)
    state_province: Mapped[str] = mapped_column(String(255), default="")
    postal_code: Mapped[str] = mapped_column(String(16), default="")
    country: Mapped[str] = mapped_column(String(2), default="VN")
    address_type: Mapped[str] = mapped_column(String(16), default="physical")


class ServiceAtLocation(Base):
    __tablename__ = "dir_service_at_location"
    __table_args__ = (UniqueConstraint("service_pk", "location_id"),)

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(140), unique=True)
    service_pk: Mapped[int] = mapped_column(ForeignKey("dir_services.pk", ondelete="CASCADE"), index=True)
    location_id: Mapped[str] = mapped_column(ForeignKey("dir_locations.id", ondelete="CASCADE"), index=True)

    location: Mapped[Location] = relationship(lazy="joined")


class Phone(Base):
    __tablename__ = "dir_phones"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    service_pk: Mapped[int] = mapped_column(ForeignKey("dir_services.pk", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(64))  # as written
    e164: Mapped[str] = mapped_column(String(32), index=True)  # normalised (or the short code)
    description: Mapped[str] = mapped_column(String(255), default="")
    location_id: Mapped[str | None] = mapped_column(String(64))  # a number of one location (HSDS phone.location_id)


class Schedule(Base):
    __tablename__ = "dir_schedules"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    service_pk: Mapped[int] = mapped_column(ForeignKey("dir_services.pk", ondelete="CASCADE"), index=True)
    byday: Mapped[str] = mapped_column(String(2))  # MO..SU: one row per day of a rule ("" for a text-only one)
    opens_at: Mapped[str] = mapped_column(String(5))
    closes_at: Mapped[str] = mapped_column(String(5))
    # The HSDS schedule the row was expanded from (kept whole for exports and exact "open at").
    schedule_id: Mapped[str] = mapped_column(String(140), default="")
    location_id: Mapped[str | None] = mapped_column(String(64))
    rule: Mapped[dict | None] = mapped_column(JSONType, default=dict)  # freq, interval, byday, valid_from, … (non-empty only)


class Language(Base):
    __tablename__ = "dir_languages"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    service_pk: Mapped[int] = mapped_column(ForeignKey("dir_services.pk", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(16))  # ISO 639 (vi, en, hmn, km, …)


class ServiceArea(Base):
    __tablename__ = "dir_service_areas"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    service_pk: Mapped[int] = mapped_column(ForeignKey("dir_services.pk", ondelete="CASCADE"), index=True)
    province_code: Mapped[str | None] = mapped_column(String(8))
    commune_code: Mapped[str | None] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(255), default="")


class TaxonomyTerm(Base):
    """HSDS taxonomy_term; the service types live in the taxonomy ``hotline-service-type``."""

    __tablename__ = "dir_taxonomy_terms"
    __table_args__ = (UniqueConstraint("taxonomy", "code"),)

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    taxonomy: Mapped[str] = mapped_column(String(64))
    code: Mapped[str] = mapped_column(String(64))
    name_vi: Mapped[str] = mapped_column(String(255))
    name_en: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    # A partner's term: the service type it stands for (chosen by an administrator on the mapping page,
    # or found by code or label); NULL while nobody has chosen.
    maps_to: Mapped[str | None] = mapped_column(String(32))


class Attribute(Base):
    __tablename__ = "dir_attributes"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    service_pk: Mapped[int] = mapped_column(ForeignKey("dir_services.pk", ondelete="CASCADE"), index=True)
    taxonomy_term_id: Mapped[str] = mapped_column(ForeignKey("dir_taxonomy_terms.id", ondelete="CASCADE"))


class Word(Base):
    """Vocabulary of folded words in the search documents, for typo correction."""

    __tablename__ = "dir_words"

    word: Mapped[str] = mapped_column(String(80), primary_key=True)
    first: Mapped[str] = mapped_column(String(1))
    length: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_dir_words_first_length", "first", "length"),)


class Change(Base):
    """Change history: who changed which entry, when, and the fields before and after."""

    __tablename__ = "dir_changes"

    pk: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    service_id: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(32))  # create | update | verify | import | seed
    detail: Mapped[dict] = mapped_column(JSONType, default=dict)

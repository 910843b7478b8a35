"""Administrative units: the 34 provinces and their communes since 1 July 2025 (from
``vietnam-provinces``), the 63 old provinces and their districts mapped to the new provinces
(Kon Tum → Quảng Ngãi), centroids for "nearby" ranking, and closest-match suggestions.

Names are compared folded (``hotline.text.fold``) with the unit-type prefix removed, so
"tinh Kon Tum", "Kon Tum" and "kontum" all resolve.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from vietnam_provinces import Province, Ward

from hotline.i18n import Text
from hotline.text import fold

DATA = Path(__file__).parent / "data" / "places.json"

_PREFIXES = re.compile(
    r"^(?:thanh pho truc thuoc trung uong|thanh pho|tp\.?|tinh|phuong|xa|dac khu|thi tran|thi xa|quan|huyen)\s+"
)


def key(name: str) -> str:
    """Folded name without its unit-type prefix: ``"Thành phố Hà Nội"`` → ``"ha noi"``."""
    k = fold(name).replace("-", " ").replace("–", " ")
    k = re.sub(r"[.,]", " ", k)
    k = re.sub(r"\s+", " ", k).strip()
    return _PREFIXES.sub("", k).strip()


class UnknownPlace(ValueError):
    """A province or commune name or code that matches nothing; carries the closest matches."""

    def __init__(self, kind: str, value: str, suggestions: list[str]):
        self.kind, self.value, self.suggestions = kind, value, suggestions
        closest = ", ".join(suggestions)
        if kind == "province":
            message = (Text("unknown province %(value)r; closest: %(closest)s", value=value, closest=closest)
                       if suggestions else Text("unknown province %(value)r", value=value))
        else:
            message = (Text("unknown commune %(value)r; closest: %(closest)s", value=value, closest=closest)
                       if suggestions else Text("unknown commune %(value)r", value=value))
        super().__init__(message)


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    province_code: str
    lat: float | None
    lon: float | None


@dataclass(frozen=True)
class PlaceMatch:
    """Where a free-text place name points: a new province (and maybe commune), how it was found."""

    province_code: str
    commune_code: str | None
    lat: float | None
    lon: float | None
    via: str  # "province" | "old_province" | "old_district" | "commune"
    label: str


class Places:
    def __init__(self) -> None:
        raw = json.loads(DATA.read_text(encoding="utf-8"))
        self.provinces: dict[str, Unit] = {}
        for p in Province.iter_all():
            code = f"{int(p.code):02d}"
            lat, lon = raw["provinces"].get(str(int(p.code)), (None, None))
            self.provinces[code] = Unit(code, p.name, code, lat, lon)
        self.communes: dict[str, Unit] = {}
        for w in Ward.iter_all():
            code = f"{int(w.code):05d}"
            pcode = f"{int(w.province_code):02d}"
            lat, lon = raw["communes"].get(str(int(w.code)), (None, None))
            if lat is None:
                prov = self.provinces[pcode]
                lat, lon = prov.lat, prov.lon
            self.communes[code] = Unit(code, w.name, pcode, lat, lon)
        self.province_keys: dict[str, str] = {}
        for code, unit in self.provinces.items():
            self.province_keys[key(unit.name)] = code
            self.province_keys[key(unit.name).replace(" ", "")] = code
        self.province_keys.setdefault("hcm", "79")
        self.province_keys.setdefault("ho chi minh", "79")
        self.province_keys.setdefault("sai gon", "79")
        self.province_keys.setdefault("hue", self.province_keys.get("hue", "46"))
        self.old_provinces: dict[str, tuple[str, str, float, float]] = {}
        for r in raw["old_provinces"]:
            k = key(r["name"])
            self.old_provinces[k] = (f"{r['new_code']:02d}", r["name"], r["lat"], r["lon"])
            self.old_provinces[k.replace(" ", "")] = self.old_provinces[k]
        self.old_districts: dict[str, list[tuple[str, str, str, float, float]]] = {}
        for r in raw["old_districts"]:
            self.old_districts.setdefault(key(r["name"]), []).append(
                (f"{r['new_code']:02d}", r["name"], r["old_province"], r["lat"], r["lon"]))
        self.commune_keys: dict[str, dict[str, str]] = {}  # province → key → code
        for code, unit in self.communes.items():
            self.commune_keys.setdefault(unit.province_code, {})[key(unit.name)] = code
        self.all_place_keys = (set(self.province_keys) | set(self.old_provinces) | set(self.old_districts))
        self.max_words = max(len(k.split()) for k in self.all_place_keys)

    # ------------------------------------------------------------------ provinces
    def province(self, value: str) -> tuple[str, str]:
        """Resolve a new or old province name or code → (new code, note). Raises ``UnknownPlace``."""
        v = (value or "").strip()
        if v.isdigit() and f"{int(v):02d}" in self.provinces:
            return f"{int(v):02d}", ""
        k = key(v)
        if k in self.province_keys:
            return self.province_keys[k], ""
        if k in self.old_provinces:
            code, old, _, _ = self.old_provinces[k]
            return code, f"{old} → {self.provinces[code].name}"
        names = [u.name for u in self.provinces.values()] + [o[1] for o in self.old_provinces.values()]
        raise UnknownPlace("province", v, self._closest(k, names))

    def commune(self, value: str, province_code: str | None) -> str:
        """Resolve a commune name (within a province) or a 5-digit code. Raises ``UnknownPlace``."""
        v = (value or "").strip()
        if v.isdigit() and f"{int(v):05d}" in self.communes:
            code = f"{int(v):05d}"
            if province_code and self.communes[code].province_code != province_code:
                raise UnknownPlace("commune", v, [])
            return code
        k = key(v)
        pools = [province_code] if province_code else list(self.commune_keys)
        hits = [self.commune_keys[p][k] for p in pools if k in self.commune_keys.get(p, {})]
        if len(hits) == 1:
            return hits[0]
        names = [self.communes[c].name for p in pools for c in self.commune_keys.get(p, {}).values()]
        if len(hits) > 1:
            raise UnknownPlace("commune", v, [f"{self.communes[h].name} ({self.provinces[self.communes[h].province_code].name})" for h in hits[:5]])
        raise UnknownPlace("commune", v, self._closest(k, names))

    @staticmethod
    def _closest(k: str, names: list[str]) -> list[str]:
        by_key = {key(n): n for n in names}
        return [by_key[m] for m in difflib.get_close_matches(k, list(by_key), n=3, cutoff=0.6)]

    def province_name(self, code: str | None) -> str:
        return self.provinces[code].name if code and code in self.provinces else ""

    def commune_name(self, code: str | None) -> str:
        return self.communes[code].name if code and code in self.communes else ""

    def old_names_for(self, province_code: str) -> list[str]:
        return sorted({o[1] for o in self.old_provinces.values() if o[0] == province_code})

    def centroid(self, province_code: str | None, commune_code: str | None) -> tuple[float | None, float | None]:
        if commune_code and commune_code in self.communes:
            c = self.communes[commune_code]
            return c.lat, c.lon
        if province_code and province_code in self.provinces:
            p = self.provinces[province_code]
            return p.lat, p.lon
        return None, None

    # ------------------------------------------------------------------ places inside free text
    def find_in_text(self, words: list[str]) -> tuple[PlaceMatch | None, list[str]]:
        """Find the longest place name inside folded query words; return it and the other words."""
        n = len(words)
        for size in range(min(self.max_words, n), 0, -1):
            for start in range(0, n - size + 1):
                phrase = " ".join(words[start:start + size])
                match = self._phrase(phrase)
                if match is not None:
                    rest = words[:start] + words[start + size:]
                    return match, rest
        return None, words

    def _phrase(self, phrase: str) -> PlaceMatch | None:
        if phrase in self.province_keys:
            code = self.province_keys[phrase]
            p = self.provinces[code]
            return PlaceMatch(code, None, p.lat, p.lon, "province", p.name)
        if phrase in self.old_provinces:
            code, old, lat, lon = self.old_provinces[phrase]
            return PlaceMatch(code, None, lat, lon, "old_province", old)
        if phrase in self.old_districts and len(phrase) >= 4 and " " in phrase:
            code, name, old_prov, lat, lon = self.old_districts[phrase][0]
            return PlaceMatch(code, None, lat, lon, "old_district", f"{name} ({old_prov})")
        return None


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    r = math.radians
    dlat, dlon = r(lat2 - lat1), r(lon2 - lon1)
    a = math.sin(dlat / 2) ** 2 + math.cos(r(lat1)) * math.cos(r(lat2)) * math.sin(dlon / 2) ** 2
    return 6371 * 2 * math.asin(math.sqrt(a))


@lru_cache(maxsize=1)
def places() -> Places:
    return Places()

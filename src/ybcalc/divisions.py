"""Every region a user can name: China's provinces and prefectures (the 统筹区 of basic medical insurance)
by full name, short name or national 6-digit division code, from the official code list shipped in
``data/admin_divisions.tsv`` (its header says which year and where it came from).

A bill's 参保地 is first looked up among the regions the policy tables know (``PolicyBook.region_id``:
shipped ``regions.yaml`` and any regions a user's tables add). Only a value they do not know is looked
up here, to say what it is: a region without a table yet (and how to make one), a county-level code
of a known prefecture (mapped to it), or an unknown value with the nearest names.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .i18n import tr

DATA = Path(__file__).resolve().parent / "data" / "admin_divisions.tsv"
MUNICIPALITIES = ("11", "12", "31", "50")          # 直辖市: their districts and counties sit right under them
LEVEL_LABEL = {"province": ("省级", "province"), "prefecture": ("地级", "prefecture"),
               "county_direct": ("省直辖县级", "county-level, under the province")}


@dataclass(frozen=True)
class Division:
    code: str
    name: str            # as the official list writes it: 楚雄彝族自治州
    short: str           # ybcalc's spelling: 楚雄
    aliases: tuple       # further spellings: 楚雄州
    level: str           # province | prefecture | county_direct

    @property
    def province_code(self) -> str:
        return self.code[:2] + "0000"


@dataclass(frozen=True)
class Named:
    """What a value names: a division (``how``: code, name, county — a county-level code mapped to its
    prefecture), several (an ambiguous short name), or nothing."""
    division: Division | None
    how: str = ""
    candidates: tuple = ()


@lru_cache(maxsize=1)
def divisions() -> dict[str, Division]:
    """Code -> division, in the list's order."""
    out = {}
    with open(DATA, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip() or line.startswith("#"):
                continue
            code, name, short, aliases, level = line.rstrip("\n").split("\t")
            out[code] = Division(code, name, short, tuple(a for a in aliases.split("|") if a), level)
    return out


@lru_cache(maxsize=1)
def _by_name() -> dict[str, tuple[str, ...]]:
    """Every spelling (name, short name, alias) -> the codes it names (two for a shared short name)."""
    names: dict[str, list[str]] = {}
    for d in divisions().values():
        for s in dict.fromkeys((d.name, d.short, *d.aliases)):
            names.setdefault(s, []).append(d.code)
    return {k: tuple(v) for k, v in names.items()}


def clean(value) -> str:
    """A region cell as text: stripped, a code read as a float (510400.0) back to its digits."""
    s = str(value).strip()
    return s[:-2] if re.fullmatch(r"\d{6}\.0", s) else s


def named(value) -> Named:
    """The division a value names (code, name, short name or alias, optionally after its province's name:
    四川攀枝花, 四川省攀枝花市)."""
    s = clean(value)
    divs = divisions()
    if re.fullmatch(r"\d{6}", s):
        if s in divs:
            return Named(divs[s], "code")
        # a county-level code: its prefecture, or for a 直辖市 the municipality itself
        for parent in (s[:4] + "00", s[:2] + "0000" if s[:2] in MUNICIPALITIES else None):
            if parent in divs and parent != s:
                return Named(divs[parent], "county")
        return Named(None)
    codes = _by_name().get(s)
    if codes is None:
        # 四川攀枝花 / 四川省攀枝花市 / 云南楚雄州: a province's name, then one of its divisions
        for p in (d for d in divs.values() if d.level == "province"):
            for prefix in (p.name, p.short):
                if s.startswith(prefix) and len(s) > len(prefix):
                    inner = [c for c in _by_name().get(s[len(prefix):], ()) if c[:2] == p.code[:2]]
                    if len(inner) == 1:
                        return Named(divs[inner[0]], "name")
        return Named(None)
    if len(codes) > 1:
        return Named(None, "ambiguous", tuple(divs[c] for c in codes))
    return Named(divs[codes[0]], "name")


def nearest_names(value, extra: dict | None = None, n: int = 3) -> list[str]:
    """The names closest to an unknown value (difflib), each as ``攀枝花市 (510400)``. ``extra``: more
    spellings (the tables' own regions and aliases) -> the label to show for them."""
    s = clean(value)
    if not s or s.isdigit():
        return []
    labels = {k: ", ".join(f"{divisions()[c].name} ({c})" for c in codes) for k, codes in _by_name().items()}
    for k, label in (extra or {}).items():
        labels.setdefault(k, label)
    out = []
    for m in difflib.get_close_matches(s, list(labels), n=n * 3, cutoff=0.5):
        if labels[m] not in out:
            out.append(labels[m])
    return out[:n]


@dataclass(frozen=True)
class RegionLookup:
    """A 参保地 value read against the tables: the region id, or why it cannot be settled; ``note`` says
    how it was read when that is worth telling (a county-level code settled as its prefecture)."""
    region: str | None
    reject: str = ""
    note: str = ""


def care_area(book, value) -> str:
    """A 就医地 (place of care) as the engine reads it: the tables' region id (a county code of it
    included), else ``?<division code>`` for a division of China without a table, else ``?<value>``."""
    s = clean(value)
    rid = book.region_id(s)
    if rid:
        return rid
    d = named(s).division
    if d is None:
        return f"?{s}"
    return book.region_id(d.code) or f"?{d.code}"


def province_of(book, area: str) -> str:
    """The province (a ``province`` id of regions.yaml) of a 就医地 as ``care_area`` writes it; for a
    division outside the tables, its province's id when the tables have that province, else
    ``?<province code>``; empty when unknown."""
    r = book.regions.get(area)
    if r is not None:
        return r.province
    code = area[1:]
    if not re.fullmatch(r"\d{6}", code):
        return ""
    rid = book.region_id(code[:2] + "0000")
    return book.regions[rid].province if rid else f"?{code[:2]}0000"


INSURED = ("参保地", "insured region (参保地)")
REGION = ("地区", "region")


def region_lookup(book, value, what: tuple = INSURED) -> RegionLookup:
    """Read one distinct region value (callers map the distinct values of a column, not every row);
    ``what`` names the value in messages (zh, en): the bill's 参保地, or a region a command names."""
    s = clean(value)
    zh_what, en_what = what
    rid = book.region_id(s)
    if rid:
        return RegionLookup(rid)
    found = named(s)
    d = found.division
    if d is not None:
        rid = book.region_id(d.code)           # the tables' region with this code (shipped or the user's)
        county = found.how == "county"
        if rid:
            return RegionLookup(rid, note=tr(
                f"{zh_what} {s} 是县级代码，按所属{d.name}（{d.code}）的参数计算",
                f"{en_what} {s} is a county-level code: settled by the tables of {d.name} ({d.code})") if county else "")
        head = tr(f"{zh_what} {s} 是{d.name}（{d.code}）的县级代码；",
                  f"{en_what} {s} is a county-level code of {d.name} ({d.code}); ") if county else ""
        return RegionLookup(None, reject=head + tr(
            f"{d.short}（{d.code}）还没有参数表，可用 `ybcalc tables new {d.short}` 新建",
            f"no table for {d.short} ({d.code}) yet; make one with `ybcalc tables new {d.short}`"))
    if found.how == "ambiguous":
        return RegionLookup(None, reject=tr(
            f"{zh_what} {s} 可指 {'、'.join(f'{c.name}（{c.code}）' for c in found.candidates)}，请写全称或 6 位代码",
            f"{en_what} {s} may be {', '.join(f'{c.name} ({c.code})' for c in found.candidates)}: write the full "
            f"name or the 6-digit code"))
    known = {str(x): f"{r.name} ({r.code})" for r in book.regions.values() for x in (r.name, r.short, *r.aliases)}
    near = nearest_names(s, known)
    return RegionLookup(None, reject=tr(
        f"未知的{zh_what} {s!r}：既不在 regions.yaml，也不是全国县以上行政区划的名称或代码"
        + (f"；最接近：{'、'.join(near)}" if near else ""),
        f"unknown {en_what} {s!r}: neither in regions.yaml nor a name or code of China's divisions"
        + (f"; nearest: {', '.join(near)}" if near else "")))

"""The policy model: sources, dated parameter entries, and vectorized decision tables.

A parameter is a list of dated entries; a bill uses the entry in force on its date. A field of an
entry is a plain value or a decision table (first matching rule wins). Evaluation works on whole
arrays of bills at once and also returns which rule matched, so ``explain()`` can cite it.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from ..money import INF_FEN, PPM, ratio_to_ppm, yuan_to_fen
from .schema import GRADE_LABEL, PLACEHOLDER


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    issuer: str
    url: str
    date: str
    grade: str
    note: str = ""
    file: str = ""
    doc_no: str = ""       # 文号, e.g. 攀医保发〔2024〕1号 (a paper notice may have no URL)

    def cite(self, lang: str = "zh") -> str:
        if self.grade == "assumed":           # a value the user stated (ybcalc.assume): title zh, note en
            return f"[{GRADE_LABEL['assumed'][0 if lang == 'zh' else 1]}] {self.title if lang == 'zh' else self.note}"
        grade = GRADE_LABEL.get(self.grade, (self.grade, self.grade))[0 if lang == "zh" else 1]
        title = f"《{self.title}》" if self.title else ""
        number = f"（{self.doc_no}）" if self.doc_no and self.doc_no not in self.title else ""
        return f"{self.issuer}{title}{number}({self.date}) [{grade}] {self.url}".rstrip()

    @property
    def unfilled(self) -> list[str]:
        """Fields still holding the starter table's placeholder."""
        return [k for k in ("title", "doc_no", "issuer", "date", "url") if str(getattr(self, k)).strip() == PLACEHOLDER]


@dataclass
class Rule:
    when: dict
    value: object          # converted: fen (int), ppm (int), list of ppm, level (int), or None
    raw: object            # as written in the table, for display
    source: Source | None

    def describe(self) -> str:
        if not self.when:
            return "默认"
        parts = []
        for k, v in self.when.items():
            if k == "age":
                lo, hi = v
                parts.append(f"年龄{'' if lo is None else f'≥{lo}'}{'' if hi is None else f'<{hi}'}")
            else:
                parts.append(f"{k}={'/'.join(map(str, v)) if isinstance(v, list) else v}")
        return ", ".join(parts)


class Value:
    """A field value: a plain constant or a decision table, compiled for vectorized evaluation."""

    def __init__(self, rules: list[Rule], kind: str):
        self.rules = rules
        self.kind = kind

    @property
    def is_constant(self) -> bool:
        return len(self.rules) == 1 and not self.rules[0].when

    def evaluate(self, attrs: dict[str, np.ndarray], n: int):
        """Returns (values, rule_index). rule_index is -1 where no rule matched.

        ``values`` is int64 (n,) for scalar kinds or (n, k) for rate lists.
        """
        rule_idx = np.full(n, -1, dtype=np.int64)
        for i, rule in enumerate(self.rules):
            free = rule_idx < 0
            if not free.any():
                break
            m = free & match(rule.when, attrs, n)
            rule_idx[m] = i
        width = max((len(r.value) for r in self.rules if isinstance(r.value, list)), default=0)
        if width:
            out = np.zeros((n, width), dtype=np.int64)
        else:
            out = np.zeros(n, dtype=np.int64)
        for i, rule in enumerate(self.rules):
            m = rule_idx == i
            if m.any():
                out[m] = rule.value
        return out, rule_idx

    def rule_source(self, i: int, default: Source | None) -> Source | None:
        if 0 <= i < len(self.rules) and self.rules[i].source is not None:
            return self.rules[i].source
        return default


def match(when: dict, attrs: dict[str, np.ndarray], n: int) -> np.ndarray:
    m = np.ones(n, dtype=bool)
    for key, want in when.items():
        have = attrs.get(key)
        if have is None:
            return np.zeros(n, dtype=bool)
        if key == "age":
            lo, hi = want
            a = have.astype(float)
            ok = ~np.isnan(a)
            if lo is not None:
                ok &= a >= lo
            if hi is not None:
                ok &= a < hi
            m &= ok
        else:
            wants = want if isinstance(want, list) else [want]
            if have.dtype.kind in "iu":
                m &= np.isin(have, np.array([int(w) for w in wants], dtype=have.dtype))
            else:
                m &= np.isin(have.astype(str), np.array([str(w) for w in wants]))
    return m


def convert(raw, kind: str):
    """Table value (yuan / decimal ratio) to engine units (fen / ppm)."""
    if kind.endswith("_or_local") and raw == "local":
        return -1                           # no override: the local value applies
    kind = kind.replace("_or_local", "")
    if kind in ("amount", "amount_or_unlimited"):
        return int(INF_FEN) if raw == "unlimited" else yuan_to_fen(raw)
    if kind in ("ratio", "signed_ratio", "factor"):
        return ratio_to_ppm(raw)
    if kind == "rates":
        return [ratio_to_ppm(r) for r in raw]
    if kind == "level":
        return int(raw)
    raise ValueError(kind)


def compile_value(raw, kind: str, default_source: Source | None, sources: dict[str, Source]) -> Value:
    if isinstance(raw, list) and raw and isinstance(raw[0], dict):
        rules = [Rule(r.get("when") or {}, convert(r["value"], kind), r["value"],
                      sources.get(r["source"]) if "source" in r else None) for r in raw]
    else:
        rules = [Rule({}, convert(raw, kind), raw, None)]
    return Value(rules, kind)


@dataclass
class Adjustment:
    when: dict
    ops: dict            # op -> converted number (ppm for ratio ops and factor, fen for amounts)
    raw: dict
    source: Source | None

    def describe(self) -> str:
        cond = Rule(self.when, None, None, None).describe()
        ops = ", ".join(f"{k} {v}" for k, v in self.raw.items() if k not in ("when", "source", "note"))
        return f"{cond}: {ops}"


def compile_adjust(raw_list, target: str, sources: dict[str, Source]) -> list[Adjustment]:
    out = []
    for raw in raw_list or []:
        ops = {}
        for op, v in raw.items():
            if op in ("when", "source", "note"):
                continue
            if target == "ratio" or op == "factor":
                ops[op] = ratio_to_ppm(v)
            else:
                ops[op] = yuan_to_fen(v)
        out.append(Adjustment(raw.get("when") or {}, ops, raw, sources.get(raw.get("source"))))
    return out


def apply_adjustments(values: np.ndarray, adjustments: list[Adjustment], attrs, n, target: str):
    """Apply the table's adjustments in order; returns (values, applied mask per adjustment)."""
    applied = []
    values = values.copy()
    for adj in adjustments:
        m = match(adj.when, attrs, n)
        applied.append(m)
        if not m.any():
            continue
        v = values[m]
        if target == "ratio":
            if "share_factor" in adj.ops:
                share = PPM - v
                v = PPM - (share * adj.ops["share_factor"] + PPM // 2) // PPM
            if "add" in adj.ops:
                v = v + adj.ops["add"]
            if "max" in adj.ops:
                v = np.minimum(v, adj.ops["max"])
            if "min" in adj.ops:
                v = np.maximum(v, adj.ops["min"])
            v = np.clip(v, 0, PPM)
        else:
            if "factor" in adj.ops:
                v = (v * adj.ops["factor"] + PPM // 2) // PPM
            if "subtract" in adj.ops:
                v = v - adj.ops["subtract"]
            if "min" in adj.ops:
                v = np.maximum(v, adj.ops["min"])
            if "max" in adj.ops:
                v = np.minimum(v, adj.ops["max"])
            v = np.maximum(v, 0)
        values[m] = v
    return values, applied


@dataclass
class Entry:
    """One dated entry of one parameter of one table."""
    uid: int
    table: str             # "beijing/employee"
    path: str              # "benefits.inpatient.deductible"
    index: int             # position in the parameter's list
    start: dt.date
    missing: str | None
    source: Source | None
    raw: dict
    file: str
    fields: dict = field(default_factory=dict)      # name -> Value / plain python value
    adjust: list = field(default_factory=list)
    user: bool = False     # from a user's own table (then ``table`` is that file's name, not region/scheme)

    @property
    def key(self) -> str:
        return f"{self.table}:{self.path}[{self.index}]"


@dataclass
class Param:
    path: str
    kind: str
    entries: list[Entry]

    def __post_init__(self):
        self._starts = np.array([np.datetime64(e.start, "D") for e in self.entries], dtype="datetime64[D]")

    def entry_index(self, dates: np.ndarray) -> np.ndarray:
        """Index of the entry in force on each date; -1 before the first entry."""
        return np.searchsorted(self._starts, dates.astype("datetime64[D]"), side="right") - 1


@dataclass
class Benefit:
    name: str
    label: str
    med_types: list[str]
    settle_as: str | None
    params: dict[str, Param]   # deductible / ratio / cap


@dataclass
class SchemeTable:
    region: str
    scheme: str
    title: str
    file: str
    extends: str | None
    psn_types: list[str]
    policy_year_start: tuple[int, int]
    sources: dict[str, Source]
    benefits: dict[str, Benefit]
    params: dict[str, Param]          # top-level params: selfpay_prop, out_of_area, personal_account, ...
    critical: dict[str, Param]        # payer -> Param
    raw: dict
    user_files: list = field(default_factory=list)   # the user's table files laid over this table

    @property
    def contrib_tiers(self) -> list[str]:
        """缴费档次 the table distinguishes (e.g. 深圳 职工 一档/二档); empty when it has one tier."""
        return [str(x) for x in (self.raw.get("contrib_tiers") or [])]

    @property
    def key(self) -> str:
        return f"{self.region}/{self.scheme}"

    def benefit_for(self, med_type: str) -> str | None:
        for b in self.benefits.values():
            if med_type in b.med_types:
                return b.settle_as or b.name
        return None

    def all_params(self):
        for b in self.benefits.values():
            yield from b.params.values()
        yield from self.params.values()
        yield from self.critical.values()

"""Loading ``tables/``: find the folder, validate every file, merge provincial baselines, compile.

The tables ship inside the wheel (``ybcalc/_tables``); in a source checkout they are read from the
repository's ``tables/``. ``YBCALC_TABLES`` or an explicit path overrides both, e.g. a user's draft
reform tables.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .model import Benefit, Entry, Param, SchemeTable, Source, compile_adjust, compile_value
from .schema import (BENEFIT_KEYS, COMMON_ENTRY_KEYS, CRITICAL_PAYERS, GRADES, MED_TYPES, PARAM_FIELDS,
                     REQUIRED_FIELDS, SCHEMES, SOURCE_KEYS, TOP_KEYS, ADJUST_OPS, Checker, Problem, TableError,
                     as_date, is_number)


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # the C loader when available: same rules, faster


def default_tables_dir() -> Path:
    env = os.environ.get("YBCALC_TABLES")
    if env:
        return Path(env)
    packaged = Path(__file__).resolve().parent.parent / "_tables"
    if packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[3] / "tables"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError("ybcalc policy tables not found: neither ybcalc/_tables (wheel) nor "
                            f"{checkout} (source checkout); set YBCALC_TABLES")


@dataclass
class Region:
    id: str
    name: str
    short: str
    code: str
    province: str
    kind: str = "city"
    aliases: list = field(default_factory=list)


@dataclass
class ExclusionRule:
    """One 不予支付 rule. Every ``match`` key given must hold (AND); ``name_excludes`` guards keywords."""
    id: str
    label_zh: str
    label_en: str
    name_contains: list
    name_excludes: list
    med_chrgitm_type: list
    code_prefix: list
    except_when: dict           # bill/line attribute -> values under which the rule does not apply
    start: dt.date | None
    until: dt.date | None       # last day the rule applied
    enforce: str                # exclude | warn
    source: Source | None
    quote: str = ""


@dataclass
class PolicyBook:
    """All policy tables: regions × schemes, the exclusion catalogue and national rules."""
    root: Path
    regions: dict[str, Region]
    tables: dict[tuple[str, str], SchemeTable]
    exclusions: list[ExclusionRule]
    national: dict
    national_sources: dict[str, Source]
    entries: list[Entry]
    problems: list[Problem]
    _lookup: dict = field(default_factory=dict)

    def region_id(self, name) -> str | None:
        """Region id from an id, a Chinese name, an alias or a 6-digit code."""
        if not self._lookup:
            for r in self.regions.values():
                for k in [r.id, r.name, r.short, r.code, *r.aliases]:
                    self._lookup[str(k).strip()] = r.id
        s = str(name).strip()
        if s.endswith(".0"):
            s = s[:-2]
        return self._lookup.get(s) or self._lookup.get(s.lower())

    def table(self, region, scheme) -> SchemeTable:
        rid = self.region_id(region) or region
        if (rid, scheme) not in self.tables:
            known = ", ".join(f"{r}/{s}" for r, s in sorted(self.tables))
            raise KeyError(f"no policy table for region {region!r} scheme {scheme!r} (have: {known})")
        return self.tables[(rid, scheme)]

    def region_label(self, rid: str) -> str:
        r = self.regions.get(rid)
        return r.short if r else rid


def _read_yaml(path: Path, checker: Checker):
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        checker.add("(file)", f"not valid YAML: {exc}")
    except UnicodeDecodeError as exc:
        checker.add("(file)", f"not UTF-8: {exc}")
    return None


def _sources(raw, checker: Checker, file: str) -> dict[str, Source]:
    out = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        checker.add("sources", "must be a mapping of source id -> {title, issuer, url, date, grade}")
        return out
    for sid, s in raw.items():
        p = f"sources.{sid}"
        if not isinstance(s, dict):
            checker.add(p, "must be a mapping")
            continue
        for k in s:
            if k not in SOURCE_KEYS:
                checker.add(f"{p}.{k}", f"unknown key (known: {', '.join(SOURCE_KEYS)})")
        for k in ("title", "issuer", "url", "date", "grade"):
            if not s.get(k):
                checker.add(p, f"source lacks `{k}`")
        if s.get("grade") and s["grade"] not in GRADES:
            checker.add(f"{p}.grade", f"grade must be one of {', '.join(GRADES)}, got {s['grade']!r}")
        out[sid] = Source(sid, str(s.get("title", "")), str(s.get("issuer", "")), str(s.get("url", "")),
                          str(s.get("date", "")), str(s.get("grade", "secondary")), str(s.get("note", "")), file)
    return out


class _Compiler:
    def __init__(self, entries: list[Entry]):
        self.entries = entries

    def param(self, raw, kind: str, table_key: str, path: str, file: str, sources, ck: Checker) -> Param | None:
        if raw is None:
            return None
        if not isinstance(raw, list) or not raw:
            ck.add(path, "a parameter must be a non-empty list of dated entries (`- from: YYYY-MM-DD …`)")
            return None
        spec = PARAM_FIELDS[kind]
        entries: list[Entry] = []
        prev = None
        for i, e in enumerate(raw):
            ep = f"{path}[{i}]"
            if not isinstance(e, dict):
                ck.add(ep, "an entry must be a mapping")
                continue
            start = as_date(e.get("from"))
            if start is None:
                ck.add(f"{ep}.from", f"missing or invalid date {e.get('from')!r} (YYYY-MM-DD)")
                continue
            if prev is not None and start <= prev:
                ck.add(f"{ep}.from", f"dates must increase: {start} is not after {prev}")
            prev = start
            for k in e:
                if k not in spec and k not in COMMON_ENTRY_KEYS:
                    ck.add(f"{ep}.{k}", f"unknown key for {kind} (known: {', '.join([*COMMON_ENTRY_KEYS, *spec])})")
            missing = e.get("missing")
            source = None
            if missing is None:
                sid = e.get("source")
                if not sid:
                    ck.add(ep, "entry has neither `source` nor `missing`: every value needs a source")
                elif sid not in sources:
                    ck.add(f"{ep}.source", f"unknown source id {sid!r}")
                else:
                    source = sources[sid]
                for req in REQUIRED_FIELDS[kind]:
                    if req not in e:
                        ck.add(ep, f"{kind} entry lacks `{req}`")
                n_before = len(ck.problems)
                self._check_fields(e, kind, spec, ep, sources, ck)
                if len(ck.problems) > n_before:
                    continue
            entry = Entry(len(self.entries), table_key, path, i, start, missing, source, e, file)
            if missing is None:
                for name, fkind in spec.items():
                    if name not in e:
                        continue
                    if fkind.startswith("adjust"):
                        entry.adjust = compile_adjust(e[name], fkind.split(":")[1], sources)
                    elif fkind in ("amount", "amount_or_unlimited", "ratio", "signed_ratio", "rates", "factor", "level",
                                   "ratio_or_local", "amount_or_local"):
                        entry.fields[name] = compile_value(e[name], fkind, source, sources)
                    else:
                        entry.fields[name] = e[name]
            self.entries.append(entry)
            entries.append(entry)
        return Param(path, kind, entries) if entries else None

    def _check_fields(self, e, kind, spec, ep, sources, ck: Checker):
        nseg = None
        if "segments" in e:
            seg = e["segments"]
            if not (isinstance(seg, list) and seg and all(is_number(x) for x in seg)):
                ck.add(f"{ep}.segments", f"segments must be a list of yuan amounts, got {seg!r}")
            else:
                nseg = len(seg)
                if seg[0] != 0:
                    ck.add(f"{ep}.segments", "the first segment must start at 0")
                if any(b <= a for a, b in zip(seg, seg[1:])):
                    ck.add(f"{ep}.segments", f"segment bounds must increase (contiguous tiers): {seg}")
        elif "rates" in e:
            nseg = 1
        for name, fkind in spec.items():
            if name not in e or name == "segments":
                continue
            v, fp = e[name], f"{ep}.{name}"
            if fkind.startswith("enum:"):
                if v not in fkind[5:].split("|"):
                    ck.add(fp, f"must be one of {fkind[5:].replace('|', ', ')}, got {v!r}")
            elif fkind.startswith("list:"):
                allowed = fkind[5:].split("|")
                if not isinstance(v, list):
                    ck.add(fp, f"must be a list, got {v!r}")
                elif allowed != ["*"]:
                    for x in v:
                        if x not in allowed:
                            ck.add(fp, f"unknown item {x!r} (known: {', '.join(allowed)})")
            elif fkind == "med_types":
                if not isinstance(v, list) or any(str(x) not in MED_TYPES for x in v):
                    ck.add(fp, f"must be a list of visit codes among {', '.join(MED_TYPES)}, got {v!r}")
            elif fkind == "factors":
                if not isinstance(v, list) or not v or any(not is_number(x) or not 0 <= x <= 1 for x in v):
                    ck.add(fp, f"must be a list of factors within 0..1, got {v!r}")
            elif fkind == "bool":
                if not isinstance(v, bool):
                    ck.add(fp, f"must be true or false, got {v!r}")
            elif fkind == "str":
                if not isinstance(v, str):
                    ck.add(fp, f"must be text, got {v!r}")
            elif fkind == "groups":
                ck.groups(fp, v, sources)
            elif fkind.startswith("adjust:"):
                target = fkind.split(":")[1]
                if not isinstance(v, list):
                    ck.add(fp, "must be a list of adjustment rules")
                    continue
                for j, a in enumerate(v):
                    ap = f"{fp}[{j}]"
                    if not isinstance(a, dict):
                        ck.add(ap, "an adjustment must be a mapping")
                        continue
                    if "when" in a:
                        ck.when(f"{ap}.when", a["when"])
                    ops = [k for k in a if k not in ("when", "source", "note")]
                    if not ops:
                        ck.add(ap, "adjustment has no operation")
                    for op in ops:
                        if op not in ADJUST_OPS[target]:
                            ck.add(f"{ap}.{op}", f"unknown operation for {target}s (known: {', '.join(ADJUST_OPS[target])})")
                        elif target == "ratio" and op != "add":
                            ck.number(f"{ap}.{op}", a[op], "ratio")
                        elif target == "ratio":
                            ck.number(f"{ap}.{op}", a[op], "signed_ratio")
                        elif op == "factor":
                            ck.number(f"{ap}.{op}", a[op], "factor")
                        else:
                            ck.number(f"{ap}.{op}", a[op], "amount")
                    if "source" in a and a["source"] not in sources:
                        ck.add(f"{ap}.source", f"unknown source id {a['source']!r}")
            else:
                ck.table(fp, v, fkind, nseg, sources)


def _compile_file(raw: dict, table_key: str, file: str, ck: Checker, comp: _Compiler):
    sources = _sources(raw.get("sources"), ck, file)
    for k in raw:
        if k not in TOP_KEYS:
            ck.add(k, f"unknown top-level key (known: {', '.join(TOP_KEYS)})")
    benefits: dict[str, dict] = {}
    for bname, b in (raw.get("benefits") or {}).items():
        bp = f"benefits.{bname}"
        if not isinstance(b, dict):
            ck.add(bp, "a benefit must be a mapping")
            continue
        for k in b:
            if k not in BENEFIT_KEYS:
                ck.add(f"{bp}.{k}", f"unknown key (known: {', '.join(BENEFIT_KEYS)})")
        mts = b.get("med_types")
        if mts is not None and (not isinstance(mts, list) or any(str(x) not in MED_TYPES for x in mts)):
            ck.add(f"{bp}.med_types", f"must be a list of visit codes among {', '.join(MED_TYPES)}")
        params = {}
        for pname in ("deductible", "ratio", "cap"):
            p = comp.param(b.get(pname), pname, table_key, f"{bp}.{pname}", file, sources, ck)
            if p is not None:
                params[pname] = p
        benefits[bname] = {"label": b.get("label", bname), "med_types": [str(x) for x in (mts or [])],
                           "settle_as": b.get("settle_as"), "params": params, "has_med_types": mts is not None}
    params = {}
    for pname in ("selfpay_prop", "out_of_area", "medical_assistance", "personal_account", "psn_type_by_age"):
        p = comp.param(raw.get(pname), pname, table_key, pname, file, sources, ck)
        if p is not None:
            params[pname] = p
    critical = {}
    ci = raw.get("critical_illness") or {}
    if not isinstance(ci, dict):
        ck.add("critical_illness", "must be a mapping of payer (hifmi/hifob) -> dated entries")
        ci = {}
    for payer, lst in ci.items():
        if payer not in CRITICAL_PAYERS:
            ck.add(f"critical_illness.{payer}", f"unknown payer (known: {', '.join(CRITICAL_PAYERS)})")
            continue
        p = comp.param(lst, "critical_illness", table_key, f"critical_illness.{payer}", file, sources, ck)
        if p is not None:
            critical[payer] = p
    return sources, benefits, params, critical


def load_book(root: str | Path | None = None, strict: bool = True) -> PolicyBook:
    """Load and validate every table under ``root``. With ``strict`` a problem raises TableError."""
    root = Path(root) if root else default_tables_dir()
    problems: list[Problem] = []
    entries: list[Entry] = []
    comp = _Compiler(entries)

    reg_ck = Checker(str(root / "regions.yaml"))
    regions: dict[str, Region] = {}
    reg_raw = _read_yaml(root / "regions.yaml", reg_ck) if (root / "regions.yaml").exists() else None
    if reg_raw is None:
        reg_ck.add("(file)", "regions.yaml is missing or empty")
    else:
        for rid, r in (reg_raw.get("regions") or {}).items():
            if not isinstance(r, dict) or not r.get("name") or not r.get("code"):
                reg_ck.add(f"regions.{rid}", "a region needs `name` and `code`")
                continue
            code = str(r["code"])
            if len(code) != 6 or not code.isdigit():
                reg_ck.add(f"regions.{rid}.code", f"must be a 6-digit administrative code, got {code!r}")
            regions[rid] = Region(rid, r["name"], r.get("short", r["name"]), code, r.get("province", rid),
                                  r.get("kind", "city"), list(r.get("aliases") or []))
    problems += reg_ck.problems

    nat_ck = Checker(str(root / "national.yaml"))
    national, national_sources = {}, {}
    if (root / "national.yaml").exists():
        national = _read_yaml(root / "national.yaml", nat_ck) or {}
        national_sources = _sources(national.get("sources"), nat_ck, str(root / "national.yaml"))
        for k, lst in national.items():
            if k == "sources" or not isinstance(lst, list):
                continue
            for i, e in enumerate(lst):
                if isinstance(e, dict) and "from" in e and e.get("source") not in national_sources and "missing" not in e:
                    nat_ck.add(f"{k}[{i}].source", f"unknown or absent source id {e.get('source')!r}")
        # the engine rounds every amount half up to the fen; a table asking otherwise must not pass silently
        for i, e in enumerate(national.get("rounding") or []):
            if isinstance(e, dict) and "missing" not in e and (e.get("unit") != 0.01 or e.get("method") != "half_up"):
                nat_ck.add(f"rounding[{i}]", f"the engine implements unit 0.01, method half_up only; got "
                                             f"unit {e.get('unit')!r}, method {e.get('method')!r}")
        from ..members import check_national            # a member's year: waiting periods, rewards
        check_national(national, nat_ck)
    problems += nat_ck.problems

    exclusions = _load_exclusions(root / "exclusions.yaml", problems)

    # First pass: read and compile each region × scheme file on its own.
    compiled = {}
    files = sorted(p for p in root.glob("*/*.yaml"))
    for path in files:
        ck = Checker(str(path.relative_to(root.parent)) if root.parent in path.parents else str(path))
        raw = _read_yaml(path, ck)
        folder, scheme = path.parent.name, path.stem
        if raw is None or not isinstance(raw, dict):
            if raw is not None:
                ck.add("(file)", "must be a mapping")
            problems += ck.problems
            continue
        if scheme not in SCHEMES:
            ck.add("(file)", f"file name must be one of {', '.join(s + '.yaml' for s in SCHEMES)}")
        if raw.get("region") != folder:
            ck.add("region", f"must equal the folder name {folder!r}, got {raw.get('region')!r}")
        if folder not in regions:
            ck.add("region", f"{folder!r} is not in regions.yaml")
        if raw.get("scheme") != scheme:
            ck.add("scheme", f"must equal the file name {scheme!r}, got {raw.get('scheme')!r}")
        pys = str(raw.get("policy_year_start", "01-01"))
        try:
            py_start = tuple(int(x) for x in pys.split("-"))
            dt.date(2001, *py_start)
        except (ValueError, TypeError):
            ck.add("policy_year_start", f"must be MM-DD, got {pys!r}")
            py_start = (1, 1)
        key = f"{folder}/{scheme}"
        parts = _compile_file(raw, key, ck.file, ck, comp)
        compiled[(folder, scheme)] = (raw, ck, py_start, parts)

    # Second pass: merge baselines (extends) and check each merged table as a whole.
    tables: dict[tuple[str, str], SchemeTable] = {}

    def build(k, seen=()):
        if k in tables:
            return tables[k]
        raw, ck, py_start, (sources, benefits, params, critical) = compiled[k]
        base = None
        ext = raw.get("extends")
        if ext:
            bk = tuple(str(ext).split("/", 1)) if "/" in str(ext) else None
            if bk is None or bk not in compiled:
                ck.add("extends", f"no table {ext!r} to extend")
            elif bk in seen or bk == k:
                ck.add("extends", f"circular extends via {ext!r}")
            elif bk[1] != k[1]:
                ck.add("extends", f"a {k[1]} table cannot extend a {bk[1]} table")
            else:
                base = build(bk, (*seen, k))
        merged_benefits = {}
        if base is not None:
            for bn, b in base.benefits.items():
                merged_benefits[bn] = Benefit(bn, b.label, list(b.med_types), b.settle_as, dict(b.params))
        for bn, b in benefits.items():
            if bn in merged_benefits:
                mb = merged_benefits[bn]
                mb.params.update(b["params"])
                if b["has_med_types"]:
                    mb.med_types = b["med_types"]
                if b["settle_as"]:
                    mb.settle_as = b["settle_as"]
                mb.label = b["label"] if b["label"] != bn else mb.label
            else:
                merged_benefits[bn] = Benefit(bn, b["label"], b["med_types"], b["settle_as"], b["params"])
        merged_params = dict(base.params) if base else {}
        merged_params.update(params)
        merged_critical = dict(base.critical) if base else {}
        merged_critical.update(critical)
        merged_sources = dict(base.sources) if base else {}
        merged_sources.update(sources)
        t = SchemeTable(k[0], k[1], raw.get("title", f"{k[0]} {k[1]}"), ck.file, ext,
                        list(raw.get("psn_types") or (base.psn_types if base else [])),
                        py_start if "policy_year_start" in raw or base is None else base.policy_year_start,
                        merged_sources, merged_benefits, merged_params, merged_critical, raw)
        _check_table(t, ck)
        tables[k] = t
        return t

    for k in compiled:
        build(k)
    for k in compiled:
        problems += compiled[k][1].problems

    book = PolicyBook(root, regions, tables, exclusions, national, national_sources, entries, problems)
    if strict and problems:
        raise TableError(problems)
    return book


def _check_table(t: SchemeTable, ck: Checker) -> None:
    """Checks that need the merged table: visit types, settle_as, caps above deductibles."""
    seen: dict[str, str] = {}
    for b in t.benefits.values():
        if not b.med_types and not b.settle_as:
            ck.add(f"benefits.{b.name}.med_types", "benefit lists no visit types")
        for mt in b.med_types:
            if mt in seen:
                ck.add(f"benefits.{b.name}.med_types", f"visit type {mt} is already settled by benefit {seen[mt]!r}")
            seen[mt] = b.name
        if b.settle_as and b.settle_as not in t.benefits:
            ck.add(f"benefits.{b.name}.settle_as", f"no benefit {b.settle_as!r} in this table")
        ded, cap = b.params.get("deductible"), b.params.get("cap")
        if ded and cap:
            for ce in cap.entries:
                if ce.missing or "amount" not in ce.fields:
                    continue
                cap_min = min(r.value for r in ce.fields["amount"].rules)
                for de in ded.entries:
                    if de.missing or "amount" not in de.fields:
                        continue
                    ded_max = max(r.value for r in de.fields["amount"].rules)
                    if ded_max >= cap_min:
                        ck.add(f"benefits.{b.name}.cap[{ce.index}].amount",
                               f"cap {cap_min / 100:.2f} is not above deductible {ded_max / 100:.2f} "
                               f"(deductible[{de.index}])")
    by_age = t.params.get("psn_type_by_age")
    for e in by_age.entries if by_age else []:
        for i, rule in enumerate(e.raw.get("groups") or [] if not e.missing else []):
            if isinstance(rule, dict) and rule.get("value") not in t.psn_types:
                ck.add(f"psn_type_by_age[{e.index}].groups[{i}].value",
                       f"{rule.get('value')!r} is not one of this table's psn_types ({', '.join(t.psn_types)})")
    for payer, p in t.critical.items():
        for e in p.entries:
            for name in e.raw.get("applies_to") or []:
                if name not in t.benefits:
                    ck.add(f"critical_illness.{payer}[{e.index}].applies_to", f"no benefit {name!r} in this table")


def _load_exclusions(path: Path, problems: list[Problem]) -> list[ExclusionRule]:
    ck = Checker(str(path))
    out: list[ExclusionRule] = []
    if not path.exists():
        return out
    raw = _read_yaml(path, ck) or {}
    sources = _sources(raw.get("sources"), ck, str(path))
    for i, r in enumerate(raw.get("exclusions") or []):
        p = f"exclusions[{i}]"
        if not isinstance(r, dict) or "id" not in r or "match" not in r:
            ck.add(p, "an exclusion needs `id` and `match`")
            continue
        m = r["match"] or {}
        for k in m:
            if k not in ("name_contains", "name_excludes", "med_chrgitm_type", "code_prefix"):
                ck.add(f"{p}.match.{k}", "unknown match key (name_contains, name_excludes, med_chrgitm_type, code_prefix)")
        if not any(m.get(k) for k in ("name_contains", "med_chrgitm_type", "code_prefix")):
            ck.add(f"{p}.match", "matches nothing: give name_contains, med_chrgitm_type or code_prefix")
        src = r.get("source")
        if src not in sources:
            ck.add(f"{p}.source", f"unknown or absent source id {src!r}")
        enforce = r.get("enforce", "exclude")
        if enforce not in ("exclude", "warn"):
            ck.add(f"{p}.enforce", f"must be exclude or warn, got {enforce!r}")
        exc = r.get("except_when") or {}
        for k in exc:
            if k not in ("med_type", "chld_medc_flag"):
                ck.add(f"{p}.except_when.{k}", "unknown key (med_type, chld_medc_flag)")
        start, until = as_date(r["from"]) if "from" in r else None, as_date(r["until"]) if "until" in r else None
        label = r.get("label") or {}
        out.append(ExclusionRule(r["id"], label.get("zh", r["id"]), label.get("en", r["id"]),
                                 [str(x) for x in m.get("name_contains") or []],
                                 [str(x) for x in m.get("name_excludes") or []],
                                 [str(x).zfill(2) for x in m.get("med_chrgitm_type") or []],
                                 [str(x) for x in m.get("code_prefix") or []],
                                 {k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in exc.items()},
                                 start, until, enforce, sources.get(src), str(r.get("quote", ""))))
    problems += ck.problems
    return out

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

from ..i18n import tr
from .model import Benefit, Entry, Param, SchemeTable, Source, compile_adjust, compile_value
from .schema import (BENEFIT_KEYS, COMMON_ENTRY_KEYS, CRITICAL_PAYERS, GRADES, MED_TYPES, MEMBER_YEAR_PARAMS, PARAM_FIELDS,
                     REQUIRED_FIELDS, SCHEMES, SOURCE_KEYS, TOP_KEYS, ADJUST_OPS, Checker, Problem, TableError,
                     PLACEHOLDER, as_date, is_number, short_repr)


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # the C loader when available: same rules, faster
UNFILLED_FROM = dt.date(1900, 1, 1)       # the date of a starter table's entry whose `from` is still 待填


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
    raise FileNotFoundError(tr(f"找不到 ybcalc 的参数表：既没有 ybcalc/_tables（安装包）也没有 {checkout}（源码），"
                               f"请设置 YBCALC_TABLES",
                               "ybcalc policy tables not found: neither ybcalc/_tables (wheel) nor "
                               f"{checkout} (source checkout); set YBCALC_TABLES"))


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
    user_files: list = field(default_factory=list)    # the user's table files laid over the tables (names)
    overlay_paths: list = field(default_factory=list)  # their folders/files, for tables_version

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
            raise KeyError(tr(f"没有地区 {short_repr(region)} 险种 {short_repr(scheme)} 的参数表（已有：{known}）",
                              f"no policy table for region {short_repr(region)} scheme {short_repr(scheme)} (have: {known})"))
        return self.tables[(rid, scheme)]

    def region_label(self, rid: str) -> str:
        r = self.regions.get(rid)
        return r.short if r else rid


class _TableLoader(_YAML_LOADER):
    """The safe loader, except that a date the calendar lacks (``from: 2023-02-30``) stays text for
    the checks to report with its key, instead of stopping the load with a ValueError."""


def _lenient_timestamp(loader, node):
    try:
        return yaml.constructor.SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_TableLoader.add_constructor("tag:yaml.org,2002:timestamp", _lenient_timestamp)

# A table of a few hundred lines has a few thousand values; aliases expanding beyond this are a
# "billion laughs" bomb (a 571-byte file expanding to gigabytes), refused before anything reads them.
MAX_EXPANDED_NODES = 200_000
MAX_DEPTH = 50          # a policy table nests about 10 deep


def _expanded_size(node, memo: dict, depth: int = 0) -> int:
    """Number of values ``node`` stands for once every alias is expanded (aliases are shared nodes:
    counted once each, so a bomb is measured without being expanded); too deep counts as too large."""
    key = id(node)
    if key in memo:
        return memo[key]
    if depth > MAX_DEPTH:
        return MAX_EXPANDED_NODES + 1
    memo[key] = 1                                   # a cycle counts once
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(x, memo, depth + 1) for x in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, depth + 1) + _expanded_size(v, memo, depth + 1) for k, v in node.value)
    else:
        size = 1
    memo[key] = min(size, MAX_EXPANDED_NODES + 1)
    return memo[key]


def _decode(data: bytes, checker: Checker) -> str | None:
    """UTF-8 (with or without BOM), else GBK/GB18030 as Chinese Windows editors save; else refused."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        checker.add("(file)", tr("文件既不是 UTF-8 也不是 GBK 编码，请另存为 UTF-8",
                                 "neither UTF-8 nor GBK text: save the file as UTF-8 / 文件既不是 UTF-8 也不是 GBK 编码，"
                                 "请另存为 UTF-8"))
        return None


def _read_yaml(path: Path, checker: Checker):
    """The file's data, or None with the problem recorded (line and reason, never a traceback).
    The composed node tree stays on the checker, so later problems name their line."""
    try:
        text = _decode(Path(path).read_bytes(), checker)
    except OSError as exc:
        checker.add("(file)", tr(f"无法读取：{exc.strerror or exc}", f"cannot read: {exc.strerror or exc}"))
        return None
    if text is None:
        return None
    loader = _TableLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            checker.add("(file)", tr(f"YAML 别名展开后超过 {MAX_EXPANDED_NODES:,} 个值，或嵌套超过 {MAX_DEPTH} 层"
                                     f"（拒绝读取：别名炸弹，或远大于任何参数表的文件）",
                                     f"YAML aliases expand to more than {MAX_EXPANDED_NODES:,} values, or values nest "
                                     f"more than {MAX_DEPTH} deep (refused: an alias bomb or a table far larger than any "
                                     f"policy table)"))
            return None
        checker.root_node = node
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(x for x in (exc.context, exc.problem) if x) or "invalid YAML"
        if "could not determine a constructor" in what:
            import re
            tag = re.search(r"'([^']+)'", exc.problem or "")
            tag = tag.group(1).replace("tag:yaml.org,2002:", "!!") if tag else "this tag"
            what = tr(f"不允许使用标签 {tag}（只能写普通的 YAML 值：数字、文字、列表、键值映射）",
                      f"tag {tag} is not allowed (only plain YAML values: numbers, text, lists, mappings)")
        checker.add("(file)", tr(f"不是有效的 YAML：{short_repr_text(what)}", f"not valid YAML: {short_repr_text(what)}"), line=mark.line + 1 if mark else None)
    except yaml.YAMLError as exc:
        checker.add("(file)", tr(f"不是有效的 YAML：{short_repr_text(str(exc))}", f"not valid YAML: {short_repr_text(str(exc))}"))
    except RecursionError:
        checker.add("(file)", tr(f"值嵌套超过 {MAX_DEPTH} 层（拒绝读取）", f"values nest more than {MAX_DEPTH} deep (refused)"))
    finally:
        loader.dispose()
    return None


def short_repr_text(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _sources(raw, checker: Checker, file: str) -> dict[str, Source]:
    out = {}
    if raw is None:
        return out
    if not isinstance(raw, dict):
        checker.add("sources", tr("须为 来源编号 → {title, issuer, url, date, grade} 的键值映射", "must be a mapping of source id -> {title, issuer, url, date, grade}"))
        return out
    for sid, s in raw.items():
        p = f"sources.{sid}"
        if not isinstance(s, dict):
            checker.add(p, tr("须为键值映射", "must be a mapping"))
            continue
        for k in s:
            if k not in SOURCE_KEYS:
                checker.add(f"{p}.{k}", tr(f"未知的键（可用：{'、'.join(SOURCE_KEYS)}）", f"unknown key (known: {', '.join(SOURCE_KEYS)})"))
        # a notice the user holds (grade `user`) may be paper or PDF: 文号 or title, issuer and date, no URL
        needed = ("issuer", "date", "grade") if s.get("grade") == "user" else ("title", "issuer", "url", "date", "grade")
        for k in needed:
            if not s.get(k):
                checker.add(p, tr(f"来源缺少 `{k}`", f"source lacks `{k}`"))
        if s.get("grade") == "user" and not (s.get("title") or s.get("doc_no")):
            checker.add(p, tr("来源缺少 `title` 或 `doc_no`（文号）：请写明数值出自哪份通知", "source lacks `title` or `doc_no` (文号): say which notice the values are from"))
        if s.get("grade") and s["grade"] not in GRADES:
            checker.add(f"{p}.grade", tr(f"grade 须为 {'、'.join(GRADES)} 之一，实为 {short_repr(s['grade'])}", f"grade must be one of {', '.join(GRADES)}, got {short_repr(s['grade'])}"))
        out[sid] = Source(sid, str(s.get("title", "") or ""), str(s.get("issuer", "")), str(s.get("url", "") or ""),
                          str(s.get("date", "")), str(s.get("grade", "secondary")), str(s.get("note", "")), file,
                          str(s.get("doc_no", "") or ""))
    return out


def _placeholders(value, path: str = "") -> list[str]:
    """Key paths within ``value`` still holding the starter table's placeholder (待填)."""
    if isinstance(value, str):
        return [path or "value"] if value.strip() == PLACEHOLDER else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _placeholders(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _placeholders(v, f"{path}[{i}]")]
    return []


def _unfilled(entry: dict, sources: dict) -> str | None:
    """The reason an entry still holding a placeholder (or citing a source that does) is missing:
    an unfilled starter table never settles a bill with a made-up number."""
    holes = _placeholders({k: v for k, v in entry.items() if k not in ("note",)})
    src = sources.get(entry.get("source")) if isinstance(entry.get("source"), str) else None
    if src is not None and src.unfilled:
        holes += [f"sources.{src.id}.{k}" for k in src.unfilled]
    if not holes:
        return None
    return f"用户表未填写：{', '.join(holes[:6])}{' …' if len(holes) > 6 else ''}"


class _Compiler:
    def __init__(self, entries: list[Entry]):
        self.entries = entries

    def param(self, raw, kind: str, table_key: str, path: str, file: str, sources, ck: Checker) -> Param | None:
        if raw is None:
            return None
        if not isinstance(raw, list) or not raw:
            ck.add(path, tr("参数须为带日期条目的非空列表（`- from: YYYY-MM-DD …`）", "a parameter must be a non-empty list of dated entries (`- from: YYYY-MM-DD …`)"))
            return None
        spec = PARAM_FIELDS[kind]
        entries: list[Entry] = []
        prev = None
        for i, e in enumerate(raw):
            ep = f"{path}[{i}]"
            if not isinstance(e, dict):
                ck.add(ep, tr("条目须为键值映射", "an entry must be a mapping"))
                continue
            start = as_date(e.get("from"))
            if start is None and str(e.get("from", "")).strip() == PLACEHOLDER:
                start = UNFILLED_FROM            # an unfilled date: missing on every date, until filled
            if start is None:
                ck.add(f"{ep}.from", tr(f"日期缺失或无效 {short_repr(e.get('from'))}（YYYY-MM-DD）", f"missing or invalid date {short_repr(e.get('from'))} (YYYY-MM-DD)"))
                continue
            if prev is not None and start <= prev:
                ck.add(f"{ep}.from", tr(f"日期须递增：{start} 不晚于 {prev}", f"dates must increase: {start} is not after {prev}"))
            prev = start
            for k in e:
                if k not in spec and k not in COMMON_ENTRY_KEYS:
                    ck.add(f"{ep}.{k}", tr(f"条目中有未知的键（可用：{'、'.join([*COMMON_ENTRY_KEYS, *spec])}）", f"unknown key for {kind} (known: {', '.join([*COMMON_ENTRY_KEYS, *spec])})"))
            missing = e.get("missing")
            if missing is None:
                missing = _unfilled(e, sources)
            source = None
            if missing is None:
                sid = e.get("source")
                if not sid:
                    ck.add(ep, tr("条目既无 `source` 也无 `missing`：每个数值都要有来源", "entry has neither `source` nor `missing`: every value needs a source"))
                elif sid not in sources:
                    ck.add(f"{ep}.source", tr(f"未知的来源编号 {short_repr(sid)}", f"unknown source id {short_repr(sid)}"))
                else:
                    source = sources[sid]
                for req in REQUIRED_FIELDS[kind]:
                    if req not in e:
                        ck.add(ep, tr(f"{kind} 条目缺少 `{req}`", f"{kind} entry lacks `{req}`"))
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
                ck.add(f"{ep}.segments", tr(f"segments 须为金额（元）的列表，实为 {short_repr(seg)}", f"segments must be a list of yuan amounts, got {short_repr(seg)}"))
            else:
                nseg = len(seg)
                if seg[0] != 0:
                    ck.add(f"{ep}.segments", tr("第一段须从 0 开始", "the first segment must start at 0"))
                if any(b <= a for a, b in zip(seg, seg[1:])):
                    ck.add(f"{ep}.segments", tr(f"分段界限须递增（各段相连）：{short_repr(seg)}", f"segment bounds must increase (contiguous tiers): {short_repr(seg)}"))
        elif "rates" in e:
            nseg = 1
        for name, fkind in spec.items():
            if name not in e or name == "segments":
                continue
            v, fp = e[name], f"{ep}.{name}"
            if fkind.startswith("enum:"):
                if v not in fkind[5:].split("|"):
                    ck.add(fp, tr(f"须为 {fkind[5:].replace('|', '、')} 之一，实为 {short_repr(v)}", f"must be one of {fkind[5:].replace('|', ', ')}, got {short_repr(v)}"))
            elif fkind.startswith("list:"):
                allowed = fkind[5:].split("|")
                if not isinstance(v, list):
                    ck.add(fp, tr(f"须为列表，实为 {short_repr(v)}", f"must be a list, got {short_repr(v)}"))
                elif allowed != ["*"]:
                    for x in v:
                        if x not in allowed:
                            ck.add(fp, tr(f"未知的项 {short_repr(x)}（可用：{'、'.join(allowed)}）", f"unknown item {short_repr(x)} (known: {', '.join(allowed)})"))
            elif fkind == "med_types":
                if not isinstance(v, list) or any(str(x) not in MED_TYPES for x in v):
                    ck.add(fp, tr(f"须为医疗类别代码的列表（{'、'.join(MED_TYPES)}），实为 {short_repr(v)}", f"must be a list of visit codes among {', '.join(MED_TYPES)}, got {short_repr(v)}"))
            elif fkind == "factors":
                if not isinstance(v, list) or not v or any(not is_number(x) or not 0 <= x <= 1 for x in v):
                    ck.add(fp, tr(f"须为 0 到 1 之间系数的列表，实为 {short_repr(v)}", f"must be a list of factors within 0..1, got {short_repr(v)}"))
            elif fkind == "bool":
                if not isinstance(v, bool):
                    ck.add(fp, tr(f"须为 true 或 false，实为 {short_repr(v)}", f"must be true or false, got {short_repr(v)}"))
            elif fkind == "count":
                if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                    ck.add(fp, tr(f"须为不小于 0 的整数，实为 {short_repr(v)}", f"must be a whole number ≥ 0, got {short_repr(v)}"))
            elif fkind == "yuan":
                if not is_number(v) or v < 0:
                    ck.add(fp, tr(f"须为不小于 0 的金额（元），实为 {short_repr(v)}", f"must be an amount in yuan ≥ 0, got {short_repr(v)}"))
            elif fkind == "share":
                if not is_number(v) or not 0 <= v <= 1:
                    ck.add(fp, tr(f"须为 0 到 1 之间的比例，实为 {short_repr(v)}", f"must be a share within 0..1, got {short_repr(v)}"))
            elif fkind == "str":
                if not isinstance(v, str):
                    ck.add(fp, tr(f"须为文字，实为 {short_repr(v)}", f"must be text, got {short_repr(v)}"))
            elif fkind == "groups":
                ck.groups(fp, v, sources)
            elif fkind.startswith("adjust:"):
                target = fkind.split(":")[1]
                if not isinstance(v, list):
                    ck.add(fp, tr("须为调整规则的列表", "must be a list of adjustment rules"))
                    continue
                for j, a in enumerate(v):
                    ap = f"{fp}[{j}]"
                    if not isinstance(a, dict):
                        ck.add(ap, tr("调整须为键值映射", "an adjustment must be a mapping"))
                        continue
                    if "when" in a:
                        ck.when(f"{ap}.when", a["when"])
                    ops = [k for k in a if k not in ("when", "source", "note")]
                    if not ops:
                        ck.add(ap, tr("调整没有写操作", "adjustment has no operation"))
                    for op in ops:
                        if op not in ADJUST_OPS[target]:
                            ck.add(f"{ap}.{op}", tr(f"{target} 的未知操作（可用：{'、'.join(ADJUST_OPS[target])}）", f"unknown operation for {target}s (known: {', '.join(ADJUST_OPS[target])})"))
                        elif target == "ratio" and op != "add":
                            ck.number(f"{ap}.{op}", a[op], "ratio")
                        elif target == "ratio":
                            ck.number(f"{ap}.{op}", a[op], "signed_ratio")
                        elif op == "factor":
                            ck.number(f"{ap}.{op}", a[op], "factor")
                        else:
                            ck.number(f"{ap}.{op}", a[op], "amount")
                    if "source" in a and a["source"] not in sources:
                        ck.add(f"{ap}.source", tr(f"未知的来源编号 {short_repr(a['source'])}", f"unknown source id {short_repr(a['source'])}"))
            else:
                ck.table(fp, v, fkind, nseg, sources)
        if kind == "manual_claim_deadline" and ("months" in e) == ("days" in e):
            ck.add(ep, tr("申报时限须写 months（月）或 days（天）其中之一", "a claim deadline gives either months or days"))
        elif kind == "manual_claim_deadline" and e.get("months", e.get("days")) == 0:
            ck.add(ep, tr("申报时限不能为 0", "a claim deadline cannot be 0"))


def _compile_file(raw: dict, table_key: str, file: str, ck: Checker, comp: _Compiler):
    sources = _sources(raw.get("sources"), ck, file)
    for k in raw:
        if k not in TOP_KEYS:
            ck.add(k, tr(f"未知的顶层键（可用：{'、'.join(TOP_KEYS)}）", f"unknown top-level key (known: {', '.join(TOP_KEYS)})"))
    benefits: dict[str, dict] = {}
    raw_benefits = raw.get("benefits") or {}
    if not isinstance(raw_benefits, dict):
        ck.add("benefits", tr(f"须为 待遇名（inpatient、outpatient …）→ 其参数 的键值映射，实为 {type(raw_benefits).__name__}",
                              "must be a mapping of benefit name (inpatient, outpatient …) -> its parameters, "
                              f"got {type(raw_benefits).__name__}"))
        raw_benefits = {}
    for bname, b in raw_benefits.items():
        bp = f"benefits.{bname}"
        if not isinstance(b, dict):
            ck.add(bp, tr("待遇须为键值映射", "a benefit must be a mapping"))
            continue
        for k in b:
            if k not in BENEFIT_KEYS:
                ck.add(f"{bp}.{k}", tr(f"未知的键（可用：{'、'.join(BENEFIT_KEYS)}）", f"unknown key (known: {', '.join(BENEFIT_KEYS)})"))
        mts = b.get("med_types")
        if mts is not None and (not isinstance(mts, list) or any(str(x) not in MED_TYPES for x in mts)):
            ck.add(f"{bp}.med_types", tr(f"须为医疗类别代码的列表（{'、'.join(MED_TYPES)}），如 [21]，实为 {short_repr(mts)}",
                                         f"must be a list of visit codes among {', '.join(MED_TYPES)}, "
                                         f"e.g. [21], got {short_repr(mts)}"))
            mts = mts if isinstance(mts, list) else [mts]
        params = {}
        for pname in ("deductible", "ratio", "cap"):
            p = comp.param(b.get(pname), pname, table_key, f"{bp}.{pname}", file, sources, ck)
            if p is not None:
                params[pname] = p
        benefits[bname] = {"label": b.get("label", bname), "med_types": [str(x) for x in (mts or [])],
                           "settle_as": b.get("settle_as"), "params": params, "has_med_types": mts is not None}
    params = {}
    for pname in ("selfpay_prop", "out_of_area", "medical_assistance", "personal_account", "psn_type_by_age",
                  *MEMBER_YEAR_PARAMS, "manual_claim_deadline", "transfer_carryover"):
        p = comp.param(raw.get(pname), pname, table_key, pname, file, sources, ck)
        if p is not None:
            params[pname] = p
    critical = {}
    ci = raw.get("critical_illness") or {}
    if not isinstance(ci, dict):
        ck.add("critical_illness", tr("须为 支付方（hifmi/hifob）→ 带日期条目 的键值映射", "must be a mapping of payer (hifmi/hifob) -> dated entries"))
        ci = {}
    for payer, lst in ci.items():
        if payer not in CRITICAL_PAYERS:
            ck.add(f"critical_illness.{payer}", tr(f"未知的支付方（可用：{'、'.join(CRITICAL_PAYERS)}）", f"unknown payer (known: {', '.join(CRITICAL_PAYERS)})"))
            continue
        p = comp.param(lst, "critical_illness", table_key, f"critical_illness.{payer}", file, sources, ck)
        if p is not None:
            critical[payer] = p
    return sources, benefits, params, critical


def is_complete_tables(path: str | Path) -> bool:
    """A folder holding its own ``national.yaml`` or ``exclusions.yaml`` is a complete set of tables (a
    copy of ``tables/``) and is used alone; any other folder is a user's folder laid over the shipped
    tables."""
    p = Path(path)
    return p.is_dir() and ((p / "national.yaml").is_file() or (p / "exclusions.yaml").is_file())


def load_book(root: str | Path | None = None, strict: bool = True, *, overlay=()) -> PolicyBook:
    """Load and validate every table. With ``strict`` a problem raises TableError.

    ``root``: None (the shipped tables), a complete tables folder (used alone, as a copy of
    ``tables/``), or a user's folder of table files, laid over the shipped tables (see
    docs/tables.md, "Your own tables"). ``overlay``: more user files or folders (drafts), laid on top
    in order. Nothing is written anywhere.
    """
    layers: list[Path] = []
    if root and not is_complete_tables(root):
        if not Path(root).is_dir():
            raise FileNotFoundError(tr(f"参数表文件夹 {root} 不存在（可用 `ybcalc tables new 地区` 新建）",
                                       f"tables folder {root} does not exist (create one with `ybcalc tables new REGION`)"))
        layers.append(Path(root))
        root = None
    for extra in overlay or ():
        if not Path(extra).exists():
            raise FileNotFoundError(tr(f"参数表文件 {extra} 不存在", f"table file {extra} does not exist"))
        layers.append(Path(extra))
    root = Path(root) if root else default_tables_dir()
    problems: list[Problem] = []
    entries: list[Entry] = []
    comp = _Compiler(entries)

    reg_ck = Checker(str(root / "regions.yaml"))
    regions: dict[str, Region] = {}
    reg_raw = _read_yaml(root / "regions.yaml", reg_ck) if (root / "regions.yaml").exists() else None
    if reg_raw is None:
        reg_ck.add("(file)", tr("regions.yaml 缺失或为空", "regions.yaml is missing or empty"))
    else:
        for rid, r in (reg_raw.get("regions") or {}).items():
            if not isinstance(r, dict) or not r.get("name") or not r.get("code"):
                reg_ck.add(f"regions.{rid}", tr("地区须有 `name` 和 `code`", "a region needs `name` and `code`"))
                continue
            code = str(r["code"])
            if len(code) != 6 or not code.isdigit():
                reg_ck.add(f"regions.{rid}.code", tr(f"须为 6 位行政区划代码，实为 {short_repr(code)}", f"must be a 6-digit administrative code, got {short_repr(code)}"))
            regions[rid] = Region(rid, r["name"], r.get("short", r["name"]), code, r.get("province", rid),
                                  r.get("kind", "city"), list(r.get("aliases") or []))
    problems += reg_ck.problems

    from ..members import check_national, check_region_rules      # a member's year: waiting periods, rewards
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
                    nat_ck.add(f"{k}[{i}].source", tr(f"来源编号未知或缺失 {short_repr(e.get('source'))}", f"unknown or absent source id {short_repr(e.get('source'))}"))
        # the engine rounds every amount half up to the fen; a table asking otherwise must not pass silently
        for i, e in enumerate(national.get("rounding") or []):
            if isinstance(e, dict) and "missing" not in e and (e.get("unit") != 0.01 or e.get("method") != "half_up"):
                nat_ck.add(f"rounding[{i}]", tr(f"计算只支持 unit 0.01、method half_up；实为 unit {short_repr(e.get('unit'))}，"
                                                f"method {short_repr(e.get('method'))}",
                                                f"the engine implements unit 0.01, method half_up only; got "
                                                f"unit {short_repr(e.get('unit'))}, method {short_repr(e.get('method'))}"))
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
                ck.add("(file)", tr("须为键值映射", "must be a mapping"))
            problems += ck.problems
            continue
        if scheme not in SCHEMES:
            ck.add("(file)", tr(f"文件名须为 {'、'.join(s + '.yaml' for s in SCHEMES)} 之一", f"file name must be one of {', '.join(s + '.yaml' for s in SCHEMES)}"))
        if raw.get("region") != folder:
            ck.add("region", tr(f"须与文件夹名 {short_repr(folder)} 相同，实为 {short_repr(raw.get('region'))}", f"must equal the folder name {short_repr(folder)}, got {short_repr(raw.get('region'))}"))
        if folder not in regions:
            ck.add("region", tr(f"{short_repr(folder)} 不在 regions.yaml 中", f"{short_repr(folder)} is not in regions.yaml"))
        if raw.get("scheme") != scheme:
            ck.add("scheme", tr(f"须与文件名 {short_repr(scheme)} 相同，实为 {short_repr(raw.get('scheme'))}", f"must equal the file name {short_repr(scheme)}, got {short_repr(raw.get('scheme'))}"))
        py_start = _year_start(raw, ck)
        key = f"{folder}/{scheme}"
        parts = _compile_file(raw, key, ck.file, ck, comp)
        check_region_rules(parts[2], national, ck)
        compiled[(folder, scheme)] = (raw, ck, py_start, parts)

    # The user's tables: their regions first (a region the shipped tables lack), then their files.
    user_layers, user_files = _read_user_layers(layers, regions, national, comp, problems)

    # Second pass: merge baselines (extends), lay the user's tables over, check each table as a whole.
    tables: dict[tuple[str, str], SchemeTable] = {}

    def build(k, seen=()):
        if k in tables:
            return tables[k]
        t = build_shipped(k, seen) if k in compiled else None
        for layer in user_layers.get(k, []):
            if t is None and layer.raw.get("extends"):
                ext = str(layer.raw["extends"])
                bk = tuple(ext.split("/", 1)) if "/" in ext else None
                if bk is None or (bk not in compiled and bk not in user_layers):
                    layer.ck.add("extends", tr(f"没有可继承的参数表 {short_repr(ext)}", f"no table {short_repr(ext)} to extend"))
                elif bk in seen or bk == k:
                    layer.ck.add("extends", tr(f"extends 循环：经由 {short_repr(ext)}", f"circular extends via {short_repr(ext)}"))
                elif bk[1] != k[1]:
                    layer.ck.add("extends", tr(f"{k[1]} 参数表不能继承 {bk[1]} 参数表", f"a {k[1]} table cannot extend a {bk[1]} table"))
                else:
                    t = build(bk, (*seen, k))
                    t = _lay_over(t, layer, k)
                    t.extends = ext
                    _check_table(t, layer.ck)
                    continue
            t = _lay_over(t, layer, k)
            _check_table(t, layer.ck)
        tables[k] = t
        return t

    def build_shipped(k, seen=()):
        raw, ck, py_start, (sources, benefits, params, critical) = compiled[k]
        base = None
        ext = raw.get("extends")
        if ext:
            bk = tuple(str(ext).split("/", 1)) if "/" in str(ext) else None
            if bk is None or bk not in compiled:
                ck.add("extends", tr(f"没有可继承的参数表 {short_repr(ext)}", f"no table {short_repr(ext)} to extend"))
            elif bk in seen or bk == k:
                ck.add("extends", tr(f"extends 循环：经由 {short_repr(ext)}", f"circular extends via {short_repr(ext)}"))
            elif bk[1] != k[1]:
                ck.add("extends", tr(f"{k[1]} 参数表不能继承 {bk[1]} 参数表", f"a {k[1]} table cannot extend a {bk[1]} table"))
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
        return t

    for k in [*compiled, *user_layers]:
        build(k)
    for k in compiled:
        problems += compiled[k][1].problems
    for k in user_layers:
        for layer in user_layers[k]:
            problems += layer.ck.problems

    book = PolicyBook(root, regions, tables, exclusions, national, national_sources, entries, problems,
                      user_files=user_files, overlay_paths=layers)
    if strict and problems:
        raise TableError(problems)
    return book


def _year_start(raw: dict, ck: Checker) -> tuple[int, int]:
    pys = str(raw.get("policy_year_start", "01-01"))
    try:
        py_start = tuple(int(x) for x in pys.split("-"))
        dt.date(2001, *py_start)
        return py_start
    except (ValueError, TypeError):
        ck.add("policy_year_start", tr(f"须为 MM-DD，实为 {short_repr(pys)}", f"must be MM-DD, got {short_repr(pys)}"))
        return (1, 1)


# ---- the user's own tables, laid over the shipped ones ------------------------------------------
@dataclass
class _UserLayer:
    """One user table file: the region × scheme it names and its compiled parameters."""
    name: str                   # as the settlement cites it: path within the user's folder, or the file name
    raw: dict
    ck: Checker
    py_start: tuple
    parts: tuple                # (sources, benefits, params, critical) as _compile_file returns them


def _user_table_files(layers: list[Path]):
    """(folder-or-None, file, display name) of every user table file, folder by folder, in order."""
    for layer in layers:
        if layer.is_dir():
            files = sorted(f for f in layer.rglob("*.y*ml") if f.suffix in (".yaml", ".yml") and
                           f.relative_to(layer).as_posix() != "regions.yaml")
            for f in files:
                yield layer, f, f.relative_to(layer).as_posix()
        else:
            yield None, layer, layer.name


def _add_region(regions: dict, rid: str, r: dict, ck: Checker, path: str) -> bool:
    """A region from the user's regions.yaml or a table's header; problems named with ``path``."""
    if not isinstance(r, dict) or not r.get("name") or not r.get("code"):
        ck.add(path, tr("地区须有 `name` 和 `code`（6 位行政区划代码），如 {name: 绵阳市, code: \"510700\", province: sichuan}",
                        "a region needs `name` and `code` (6-digit administrative code), e.g. "
                        "{name: 绵阳市, code: \"510700\", province: sichuan}"))
        return False
    code = str(r["code"]).strip()
    if len(code) != 6 or not code.isdigit():
        ck.add(f"{path}.code", tr(f"须为 6 位行政区划代码，实为 {short_repr(r['code'])}", f"must be a 6-digit administrative code, got {short_repr(r['code'])}"))
        return False
    if not rid or any(c in rid for c in "/\\:") or rid.startswith("."):
        ck.add(path, tr(f"地区 id 须为普通名称（不含 / \\ : ，不以点开头），实为 {short_repr(rid)}", f"a region id is a plain name (no / \\ : or leading dot), got {short_repr(rid)}"))
        return False
    regions[rid] = Region(rid, str(r["name"]), str(r.get("short", r["name"])), code, str(r.get("province", rid)),
                          str(r.get("kind", "city")), [str(a) for a in r.get("aliases") or []])
    return True


def _read_user_layers(layers: list[Path], regions: dict, national: dict, comp, problems: list):
    """Read the user's regions and table files. Returns ({(region, scheme): [layers]}, [file names]).

    A table names its region by id, Chinese name, alias or code (``region: 攀枝花``), or defines a
    region the shipped tables lack with a header (``region: {name: 绵阳市, code: "510700", province:
    sichuan}``); its scheme as 职工/居民, employee/resident or 310/390. They are names, never paths.
    """
    from ..codes import parse_insutype
    from ..members import check_region_rules
    out: dict[tuple[str, str], list[_UserLayer]] = {}
    names: list[str] = []
    for layer in layers:
        reg_file = layer / "regions.yaml" if layer.is_dir() else None
        if reg_file is not None and reg_file.is_file():
            ck = Checker(str(reg_file))
            raw = _read_yaml(reg_file, ck)
            listed = raw.get("regions") if isinstance(raw, dict) else None
            if raw is not None and not isinstance(listed, dict):
                ck.add("regions", tr("须为 地区 id → {name, code, province} 的键值映射", "must be a mapping of region id -> {name, code, province}"))
            for rid, r in (listed or {}).items():
                _add_region(regions, str(rid), r, ck, f"regions.{rid}")
            problems += ck.problems
            names.append(f"{layer.name}/regions.yaml")
    seen_in_folder: dict[tuple, str] = {}
    for folder, path, name in _user_table_files(layers):
        ck = Checker(str(path))
        raw = _read_yaml(path, ck)
        names.append(name)
        if not isinstance(raw, dict):
            if raw is not None or not ck.problems:
                ck.add("(file)", tr("参数表须为含 `region`、`scheme` 和参数的键值映射", "a table must be a mapping with `region`, `scheme` and parameters"))
            problems += ck.problems
            continue
        rid = _user_region(raw.get("region"), regions, ck)
        scheme = parse_insutype(raw.get("scheme")) if isinstance(raw.get("scheme"), (str, int)) else None
        if scheme is None:
            ck.add("scheme", tr(f"须为 职工 或 居民（employee/resident，310/390），实为 {short_repr(raw.get('scheme'))}", f"must be 职工 or 居民 (employee/resident, 310/390), got {short_repr(raw.get('scheme'))}"))
        if rid is None or scheme is None:
            problems += ck.problems
            continue
        key = (rid, scheme)
        if folder is not None and (folder, key) in seen_in_folder:
            ck.add("region", tr(f"{rid}/{scheme} 已由同一文件夹中的 {seen_in_folder[(folder, key)]} 给出：每个地区、险种只留一个文件",
                                f"{rid}/{scheme} is already given by {seen_in_folder[(folder, key)]} in the same folder: "
                                f"keep one file per region and scheme"))
            problems += ck.problems
            continue
        seen_in_folder[(folder, key)] = name
        first = len(comp.entries)
        parts = _compile_file(raw, name, ck.file, ck, comp)
        check_region_rules(parts[2], national, ck)
        for e in comp.entries[first:]:
            e.user = True
        out.setdefault(key, []).append(_UserLayer(name, raw, ck, _year_start(raw, ck), parts))
    return out, names


def _user_region(value, regions: dict, ck: Checker) -> str | None:
    """The region id a user's table names, adding a region its header defines."""
    lookup: dict[str, str] = {}
    for r in regions.values():
        for k in [r.id, r.name, r.short, r.code, *r.aliases]:
            lookup.setdefault(str(k).strip(), r.id)
    if isinstance(value, dict):
        for k in ("id", "code", "name", "short"):
            if value.get(k) is not None and str(value[k]).strip() in lookup:
                return lookup[str(value[k]).strip()]
        rid = str(value.get("id") or value.get("short") or value.get("name") or "").strip()
        if rid and _add_region(regions, rid, value, ck, "region"):
            return rid
        return None
    if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip() in lookup:
        return lookup[str(value).strip()]
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        rid = _division_region(value, regions, lookup)
        if rid:
            return rid
    ck.add("region", tr(f"未知地区 {short_repr(value)}：请写 ybcalc 认识的地区（名称、id 或 6 位代码，如 攀枝花 或 510400），"
                        f"或在此定义：`region: {{name: 绵阳市, code: \"510700\", province: sichuan}}`",
                        f"unknown region {short_repr(value)}: give a region ybcalc knows (name, id or 6-digit code, "
                        f"e.g. 攀枝花 or 510400), or define it here: `region: {{name: 绵阳市, code: \"510700\", "
                        f"province: sichuan}}`"))
    return None


def _division_region(value, regions: dict, lookup: dict) -> str | None:
    """A prefecture (or province) of the national division list that the tables lack, named by a user's
    table (``region: 绵阳`` or ``510700``): added as a region with the list's name and code."""
    from ..divisions import named
    d = named(value).division
    if d is None:
        return None
    rid = lookup.get(d.code)
    if rid:                                        # a county-level code of a region the tables know
        return rid
    province = lookup.get(d.province_code, d.province_code)
    regions[d.short] = Region(d.short, d.name, d.short, d.code, province if d.level != "province" else d.short,
                              "province" if d.level == "province" else "city", list(d.aliases))
    return d.short


def _splice(shipped, user):
    """A user's parameter over the shipped one: the user's entries replace the shipped entries from the
    user's first date on; shipped entries before it stay (a notice changes the rules from its date)."""
    if shipped is None:
        return user
    first = user.entries[0].start
    return type(user)(user.path, user.kind, [e for e in shipped.entries if e.start < first] + user.entries)


def _lay_over(t: SchemeTable | None, layer: _UserLayer, key: tuple[str, str]) -> SchemeTable:
    """The table ``t`` (None: the shipped tables have none) with one user file laid over it."""
    sources, benefits, params, critical = layer.parts
    raw = layer.raw
    merged_benefits = {bn: Benefit(bn, b.label, list(b.med_types), b.settle_as, dict(b.params))
                       for bn, b in (t.benefits.items() if t else ())}
    for bn, b in benefits.items():
        mb = merged_benefits.get(bn)
        if mb is None:
            merged_benefits[bn] = Benefit(bn, b["label"], b["med_types"], b["settle_as"], b["params"])
            continue
        for pn, p in b["params"].items():
            mb.params[pn] = _splice(mb.params.get(pn), p)
        if b["has_med_types"]:
            mb.med_types = b["med_types"]
        if b["settle_as"]:
            mb.settle_as = b["settle_as"]
        mb.label = b["label"] if b["label"] != bn else mb.label
    merged_params = dict(t.params) if t else {}
    for pn, p in params.items():
        merged_params[pn] = _splice(merged_params.get(pn), p)
    merged_critical = dict(t.critical) if t else {}
    for payer, p in critical.items():
        merged_critical[payer] = _splice(merged_critical.get(payer), p)
    merged_sources = {**(t.sources if t else {}), **sources}
    merged_raw = {**(t.raw if t else {}), **{k: v for k, v in raw.items() if k not in ("region", "scheme")},
                  "region": key[0], "scheme": key[1]}
    return SchemeTable(key[0], key[1], str(raw.get("title") or (t.title if t else f"{key[0]} {key[1]}")),
                       t.file if t else layer.ck.file, t.extends if t else raw.get("extends"),
                       list(raw.get("psn_types") or (t.psn_types if t else [])),
                       layer.py_start if "policy_year_start" in raw or t is None else t.policy_year_start,
                       merged_sources, merged_benefits, merged_params, merged_critical, merged_raw,
                       [*(t.user_files if t else []), layer.name])


def _check_table(t: SchemeTable, ck: Checker) -> None:
    """Checks that need the merged table: visit types, settle_as, caps above deductibles."""
    seen: dict[str, str] = {}
    for b in t.benefits.values():
        if not b.med_types and not b.settle_as:
            ck.add(f"benefits.{b.name}.med_types", tr("待遇没有列出医疗类别", "benefit lists no visit types"))
        for mt in b.med_types:
            if mt in seen:
                ck.add(f"benefits.{b.name}.med_types", tr(f"医疗类别 {mt} 已由待遇 {short_repr(seen[mt])} 结算", f"visit type {mt} is already settled by benefit {short_repr(seen[mt])}"))
            seen[mt] = b.name
        if b.settle_as and b.settle_as not in t.benefits:
            ck.add(f"benefits.{b.name}.settle_as", tr(f"本表没有待遇 {short_repr(b.settle_as)}", f"no benefit {short_repr(b.settle_as)} in this table"))
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
                               tr(f"封顶线 {cap_min / 100:.2f} 不高于起付线 {ded_max / 100:.2f}（deductible[{de.index}]）",
                                  f"cap {cap_min / 100:.2f} is not above deductible {ded_max / 100:.2f} "
                                  f"(deductible[{de.index}])"))
    by_age = t.params.get("psn_type_by_age")
    for e in by_age.entries if by_age else []:
        for i, rule in enumerate(e.raw.get("groups") or [] if not e.missing else []):
            if isinstance(rule, dict) and rule.get("value") not in t.psn_types:
                ck.add(f"psn_type_by_age[{e.index}].groups[{i}].value",
                       tr(f"{rule.get('value')!r} 不是本表的人员类别（{'、'.join(t.psn_types)}）",
                          f"{rule.get('value')!r} is not one of this table's psn_types ({', '.join(t.psn_types)})"))
    for payer, p in t.critical.items():
        for e in p.entries:
            for name in e.raw.get("applies_to") or []:
                if name not in t.benefits:
                    ck.add(f"critical_illness.{payer}[{e.index}].applies_to", tr(f"本表没有待遇 {short_repr(name)}", f"no benefit {short_repr(name)} in this table"))


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
            ck.add(p, tr("不予支付规则须有 `id` 和 `match`", "an exclusion needs `id` and `match`"))
            continue
        m = r["match"] or {}
        for k in m:
            if k not in ("name_contains", "name_excludes", "med_chrgitm_type", "code_prefix"):
                ck.add(f"{p}.match.{k}", tr("未知的 match 键（可用：name_contains、name_excludes、med_chrgitm_type、code_prefix）", "unknown match key (name_contains, name_excludes, med_chrgitm_type, code_prefix)"))
        if not any(m.get(k) for k in ("name_contains", "med_chrgitm_type", "code_prefix")):
            ck.add(f"{p}.match", tr("什么也匹配不到：请给出 name_contains、med_chrgitm_type 或 code_prefix", "matches nothing: give name_contains, med_chrgitm_type or code_prefix"))
        src = r.get("source")
        if src not in sources:
            ck.add(f"{p}.source", tr(f"来源编号未知或缺失 {short_repr(src)}", f"unknown or absent source id {short_repr(src)}"))
        enforce = r.get("enforce", "exclude")
        if enforce not in ("exclude", "warn"):
            ck.add(f"{p}.enforce", tr(f"须为 exclude 或 warn，实为 {short_repr(enforce)}", f"must be exclude or warn, got {short_repr(enforce)}"))
        exc = r.get("except_when") or {}
        for k in exc:
            if k not in ("med_type", "chld_medc_flag"):
                ck.add(f"{p}.except_when.{k}", tr("未知的键（可用：med_type、chld_medc_flag）", "unknown key (med_type, chld_medc_flag)"))
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

"""Stated assumptions: a value the user gives for a parameter that has no sourced value.

``--assume 乙类先行自付=0.10`` (all regions) or ``--assume 上海:乙类先行自付=0.10`` (one region;
``上海/职工:`` for one scheme) fills each ``missing`` entry of that parameter, and a parameter a
table leaves out, with an entry whose source is the user ("假设值，用户给定"). The tables themselves
are not touched: ``apply_assumptions`` returns a new ``PolicyBook`` whose extra entries the engine
resolves like any other, so worker processes receive the assumptions with the pickled book.

A sourced value is never replaced: that is what a user's own table is for. Every bill settled with
an assumed value carries a warning naming it, its explanation cites it as the source, and its policy
version lists it.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import re
from dataclasses import dataclass

from .money import ratio_to_ppm, yuan_to_fen
from .policy.loader import PolicyBook
from .policy.model import Entry, Param, Source, compile_value

from .engine.settle import ASSUMED_GRADE
from .i18n import tr
# An assumption fills time before a table's first dated entry too: it starts at this date.
EARLIEST = dt.date(1900, 1, 1)


class AssumptionError(ValueError):
    """``--assume`` text that cannot be read, or names an unknown region or parameter (zh / en)."""


class AssumptionNotUsedWarning(UserWarning):
    """An assumption met only sourced values (an assumption never overrides them)."""


@dataclass(frozen=True)
class Target:
    """A parameter an assumption can fill: where it lives in a table and how its value is read."""
    key: str            # canonical name, the table's own ("selfpay_prop", "inpatient.deductible", "hifmi.threshold")
    place: str          # "top" (table.params), "benefit" (a benefit's params), "critical" (table.critical)
    param: str          # parameter name in that place ("deductible", "hifmi", "selfpay_prop")
    field: str          # field of the entry the value goes to
    kind: str           # ratio | signed_ratio | amount | amount_or_unlimited | base
    zh: str
    en: str
    med_type: str = ""  # for benefit parameters: the visit type whose benefit gets the value


_VISITS = {"住院": ("21", "inpatient", "住院"), "门诊": ("11", "outpatient", "普通门诊"),
           "普通门诊": ("11", "outpatient", "普通门诊"), "门急诊": ("11", "outpatient", "普通门诊"),
           "门特": ("14", "chronic", "门诊慢特病"), "门诊慢特病": ("14", "chronic", "门诊慢特病"),
           "慢特病": ("14", "chronic", "门诊慢特病")}
_VISIT_KEYS = {"inpatient": "住院", "outpatient": "门诊", "chronic": "门特"}
_BENEFIT_PARAMS = {  # Chinese names -> (param, field, kind, zh, en)
    "起付线": ("deductible", "amount", "amount", "起付线", "deductible"),
    "起付标准": ("deductible", "amount", "amount", "起付线", "deductible"),
    "支付比例": ("ratio", "rates", "ratio", "支付比例", "fund payment rate"),
    "报销比例": ("ratio", "rates", "ratio", "支付比例", "fund payment rate"),
    "封顶线": ("cap", "amount", "amount_or_unlimited", "封顶线", "yearly cap"),
    "最高支付限额": ("cap", "amount", "amount_or_unlimited", "封顶线", "yearly cap"),
}
_EN_BENEFIT_PARAMS = {"deductible": "起付线", "deductible.amount": "起付线", "ratio": "支付比例",
                      "ratio.rates": "支付比例", "rates": "支付比例", "cap": "封顶线", "cap.amount": "封顶线"}
_PAYERS = {"大病": ("hifmi", "大病保险", "critical-illness insurance"),
           "大病保险": ("hifmi", "大病保险", "critical-illness insurance"),
           "大额": ("hifob", "职工大额补助", "employee large-expense supplement"),
           "大额补助": ("hifob", "职工大额补助", "employee large-expense supplement"),
           "hifmi": ("hifmi", "大病保险", "critical-illness insurance"),
           "hifob": ("hifob", "职工大额补助", "employee large-expense supplement")}
_PAYER_FIELDS = {"起付线": ("threshold", "amount", "起付线", "threshold"),
                 "threshold": ("threshold", "amount", "起付线", "threshold"),
                 "支付比例": ("rates", "ratio", "支付比例", "rate"), "报销比例": ("rates", "ratio", "支付比例", "rate"),
                 "rates": ("rates", "ratio", "支付比例", "rate"),
                 "封顶线": ("cap", "amount_or_unlimited", "封顶线", "cap"),
                 "cap": ("cap", "amount_or_unlimited", "封顶线", "cap"),
                 "基数": ("base", "base", "计入基数", "base"), "base": ("base", "base", "计入基数", "base")}
_TOP = {"乙类先行自付": Target("selfpay_prop", "top", "selfpay_prop", "rate", "ratio", "乙类先行自付比例",
                             "class-B co-payment share"),
        "异地支付比例调整": Target("out_of_area.ratio_add", "top", "out_of_area", "ratio_add", "signed_ratio",
                               "异地就医支付比例调整", "out-of-area rate change")}
_TOP_ALIASES = {"乙类先行自付比例": "乙类先行自付", "乙类自付比例": "乙类先行自付", "selfpay_prop": "乙类先行自付",
                "selfpay_prop.rate": "乙类先行自付", "异地比例调整": "异地支付比例调整",
                "out_of_area.ratio_add": "异地支付比例调整", "out_of_area": "异地支付比例调整"}
_BASE_WORDS = {"起付线": "deductible", "先行自付": "preselfpay", "乙类先行自付": "preselfpay",
               "按比例自付": "coinsurance", "自付": "coinsurance", "超封顶": "above_cap", "超封顶线": "above_cap",
               "deductible": "deductible", "preselfpay": "preselfpay", "coinsurance": "coinsurance",
               "above_cap": "above_cap"}
# The base a 大病/大额 assumption counts when none is stated: the form the shipped tables use for each payer
# (职工大额: the eligible cost above the fund's cap; 大病: the member's whole in-scope burden).
DEFAULT_BASE = {"hifob": ["above_cap"], "hifmi": ["deductible", "preselfpay", "coinsurance", "above_cap"]}

NAMES_HELP = ("乙类先行自付, 住院起付线, 住院支付比例, 住院封顶线, 门诊起付线/支付比例/封顶线, 门特起付线/…, "
              "大病起付线, 大病支付比例, 大病封顶线, 大病基数, 大额起付线/支付比例/封顶线/基数, 异地支付比例调整; "
              "or the table's keys: selfpay_prop, inpatient.deductible, hifmi.threshold …")


def _err(zh: str, en: str) -> AssumptionError:
    return AssumptionError(tr(zh, en))


def parse_name(name: str) -> Target:
    """The parameter an assumption names (Chinese or the table's own key)."""
    n = name.strip().replace("．", ".")
    n = _TOP_ALIASES.get(n, n)
    if n in _TOP:
        return _TOP[n]
    # a benefit parameter: 住院起付线, 住院.起付线, inpatient.deductible
    for visit, (mt, bkey, vzh) in sorted(_VISITS.items(), key=lambda kv: -len(kv[0])):
        for prefix in (visit, visit + ".", bkey + "."):
            if n.startswith(prefix):
                rest = n[len(prefix):]
                zh_name = _EN_BENEFIT_PARAMS.get(rest, rest)
                if zh_name in _BENEFIT_PARAMS:
                    param, field, kind, zh, en = _BENEFIT_PARAMS[zh_name]
                    return Target(f"{bkey}.{param}", "benefit", param, field, kind, f"{vzh}{zh}",
                                  f"{bkey} {en}", mt)
    if n in _BENEFIT_PARAMS or n in _EN_BENEFIT_PARAMS:
        raise _err(f"{name} 要写明就诊类别，例如 住院{_EN_BENEFIT_PARAMS.get(n, n)}、门诊{_EN_BENEFIT_PARAMS.get(n, n)}",
                   f"{name} needs its visit type, e.g. 住院{_EN_BENEFIT_PARAMS.get(n, n)} (inpatient.{n.split('.')[0]})")
    # 大病起付线, 大病.起付线, hifmi.threshold
    for payer_word, (payer, pzh, pen) in sorted(_PAYERS.items(), key=lambda kv: -len(kv[0])):
        for prefix in (payer_word + ".", payer_word):
            if n.startswith(prefix) and n[len(prefix):] in _PAYER_FIELDS:
                field, kind, fzh, fen = _PAYER_FIELDS[n[len(prefix):]]
                return Target(f"{payer}.{field}", "critical", payer, field, kind, f"{pzh}{fzh}", f"{pen} {fen}")
    known = [*_TOP, *_TOP_ALIASES, *(v + p for v in ("住院", "门诊", "门特") for p in ("起付线", "支付比例", "封顶线")),
             *(p + f for p in ("大病", "大额") for f in ("起付线", "支付比例", "封顶线", "基数"))]
    near = difflib.get_close_matches(n, known, n=3, cutoff=0.3)
    hint = f"；是不是 {'、'.join(near)}？" if near else ""
    raise _err(f"不认识的参数名 {name!r}{hint}（可用：{NAMES_HELP}）",
               f"unknown parameter {name!r}" + (f"; did you mean {', '.join(near)}?" if near else ""))


def parse_value(target: Target, text: str, spec: str):
    """(value as written in a table, how it reads): ratios as 0.10 or 10%, amounts in yuan."""
    t = text.strip().replace("％", "%").replace("，", ",")
    if target.kind == "base":
        words = [w.strip() for w in re.split(r"[+,、＋]", t) if w.strip()]
        bad = [w for w in words if w not in _BASE_WORDS]
        if not words or bad:
            raise _err(f"--assume {spec}: 基数写成 起付线+先行自付+按比例自付+超封顶 中的几项（不认识 {'、'.join(bad) or '空值'}）",
                       f"--assume {spec}: a base is some of deductible+preselfpay+coinsurance+above_cap")
        return [_BASE_WORDS[w] for w in words]
    if target.kind == "amount_or_unlimited" and t in ("不封顶", "无", "unlimited", "不设"):
        return "unlimited"
    if target.kind in ("ratio", "signed_ratio"):
        pct = t.endswith("%")
        num = t[:-1].strip() if pct else t
        try:
            v = float(num) / (100 if pct else 1)
            ratio_to_ppm(num)
        except (ValueError, ArithmeticError):
            raise _err(f"--assume {spec}: {text!r} 不是比例（写 0.10 或 10%）",
                       f"--assume {spec}: {text!r} is not a ratio (write 0.10 or 10%)") from None
        lo = -1 if target.kind == "signed_ratio" else 0
        if not lo <= v <= 1:
            raise _err(f"--assume {spec}: 比例须在 {lo}–1 之间（或 {lo * 100:.0f}%–100%），给的是 {text}",
                       f"--assume {spec}: a ratio must be within {lo}..1 (or {lo * 100:.0f}%..100%), got {text}")
        out = round(v, 6)
        return int(out) if out == int(out) else out
    num = re.sub(r"(元|yuan|,)", "", t, flags=re.I).strip()
    try:
        fen = yuan_to_fen(num)
    except (ValueError, ArithmeticError):
        raise _err(f"--assume {spec}: {text!r} 不是金额（写元，例如 1200）",
                   f"--assume {spec}: {text!r} is not an amount in yuan (e.g. 1200)") from None
    if fen < 0:
        raise _err(f"--assume {spec}: 金额不能为负", f"--assume {spec}: an amount cannot be negative")
    return int(num) if fen % 100 == 0 else fen / 100


@dataclass(frozen=True)
class Assumption:
    """One ``--assume`` statement, as parsed (regions are checked against the tables when applied)."""
    spec: str           # as the user wrote it
    region: str         # "" for every region
    scheme: str         # "" for both schemes, else employee / resident
    target: Target
    value: object       # as a table would write it (0.1, 1200, "unlimited", ["above_cap"])
    basis: str = ""     # 起付线: per_admission / per_year when stated ("1200/次", "300/年")

    def labels(self, region_id: str = "") -> tuple[str, str, str]:
        """(Chinese, English, key) texts of the statement: ``上海:乙类先行自付比例=0.1`` for warnings and
        explanations, ``shanghai:selfpay_prop=0.1`` (the table's own names) for policy versions."""
        v = "+".join(self.value) if isinstance(self.value, list) else self.value
        scheme_zh = {"employee": "/职工", "resident": "/居民"}.get(self.scheme, "")
        zh_where = f"{self.region}{scheme_zh}:" if self.region else ""
        key_where = f"{region_id or self.region}{'/' + self.scheme if self.scheme else ''}:" if self.region else ""
        zh_basis = {"per_admission": "/次", "per_year": "/年"}.get(self.basis, "")
        en_basis = {"per_admission": " per admission", "per_year": " per year"}.get(self.basis, "")
        return (f"{zh_where}{self.target.zh}={v}{zh_basis}", f"{zh_where}{self.target.en}={v}{en_basis}",
                f"{key_where}{self.target.key}={v}{'/' + self.basis if self.basis else ''}")


def parse_assumption(spec) -> Assumption:
    """``[地区[/险种]:]参数=值`` → an ``Assumption`` (raises ``AssumptionError`` with a zh / en message)."""
    if isinstance(spec, Assumption):
        return spec
    s = str(spec).strip().replace("＝", "=").replace("：", ":")
    if "=" not in s:
        raise _err(f"--assume {spec!r}: 写成 参数=值，例如 乙类先行自付=0.10 或 上海:乙类先行自付=0.10",
                   f"--assume {spec!r}: write NAME=VALUE, e.g. selfpay_prop=0.10 or 上海:乙类先行自付=0.10")
    left, _, value = s.partition("=")
    region, scheme = "", ""
    if ":" in left:
        region, _, left = left.partition(":")
        region = region.strip()
        m = re.fullmatch(r"(.+?)[/\s]*(职工|居民|employee|resident|310|390)", region)
        if m:
            region = m.group(1).strip()
            scheme = "employee" if m.group(2) in ("职工", "employee", "310") else "resident"
        if not region:
            raise _err(f"--assume {spec!r}: 冒号前应是地区名", f"--assume {spec!r}: a region name goes before ':'")
    if not value.strip():
        raise _err(f"--assume {spec!r}: 缺少值", f"--assume {spec!r}: no value after '='")
    target = parse_name(left)
    basis = ""
    v = value.strip()
    if target.param == "deductible":
        m = re.fullmatch(r"(.+?)\s*(?:/|每)\s*(次|年|admission|year)", v)
        if m:
            v, basis = m.group(1), "per_admission" if m.group(2) in ("次", "admission") else "per_year"
    return Assumption(str(spec).strip(), region, scheme, target, parse_value(target, v, str(spec).strip()), basis)


def parse_assumptions(specs) -> list[Assumption]:
    """Several statements (a list, or one text with statements separated by ';')."""
    if specs is None:
        return []
    if isinstance(specs, (str, Assumption)):
        specs = [specs]
    out = []
    for s in specs:
        parts = [s] if isinstance(s, Assumption) else [p for p in re.split(r"[;；]", str(s)) if p.strip()]
        out += [parse_assumption(p) for p in parts]
    return out


def assumed_source(labels: list[tuple[str, str, str]]) -> Source:
    """The source of an assumed entry: the user. Its ``title`` is the statement in Chinese, ``note`` in
    English, ``id`` with the table's own names (what policy versions list)."""
    zh, en, key = ("; ".join(x[i] for x in labels) for i in range(3))
    return Source(key, zh, "用户给定（--assume）", "", "", ASSUMED_GRADE, en)


def is_assumed(entry: Entry | None) -> bool:
    return entry is not None and entry.source is not None and entry.source.grade == ASSUMED_GRADE


@dataclass
class Applied:
    """What applying assumptions did: the new book and messages for the user (zh / en)."""
    book: PolicyBook
    notes: list[str]


def apply_assumptions(book: PolicyBook, specs) -> Applied:
    """A new book in which each assumption fills the entries of its parameter that have no sourced
    value (``missing``, before the first dated entry, or a parameter the table leaves out).

    ``notes``: an assumption that found only sourced values (it is never used over them) or nothing
    to fill, as messages to show the user.
    """
    assumptions = parse_assumptions(specs)
    if not assumptions:
        return Applied(book, [])
    for a in assumptions:
        if a.region and book.region_id(a.region) is None:
            names = [r.short for r in book.regions.values()] + [r.name for r in book.regions.values()]
            near = difflib.get_close_matches(a.region, names, n=3, cutoff=0.3)
            raise _err(f"--assume {a.spec}: 不认识的地区 {a.region!r}" + (f"；是不是 {'、'.join(near)}？" if near else ""),
                       f"--assume {a.spec}: unknown region {a.region!r}" + (f"; did you mean {', '.join(near)}?"
                                                                            if near else ""))
    entries = list(book.entries)
    tables = dict(book.tables)
    used: dict[Assumption, list[str]] = {a: [] for a in assumptions}
    sourced: dict[Assumption, list[str]] = {a: [] for a in assumptions}
    for key, t in book.tables.items():
        rid, scheme = key
        label = f"{book.region_label(rid)}{'职工' if scheme == 'employee' else '居民'}"
        # the assumptions that reach this table; one region's own beats an all-region one
        mine: dict[tuple[str, str], Assumption] = {}
        for a in sorted(assumptions, key=lambda a: (bool(a.region), bool(a.scheme))):
            if a.region and book.region_id(a.region) != rid or a.scheme and a.scheme != scheme:
                continue
            mine[(a.target.key, a.target.field)] = a
        if not mine:
            continue
        # group the fields by the parameter they fill (大病起付线 + 大病支付比例: one entry)
        by_param: dict[tuple, list[Assumption]] = {}
        for a in mine.values():
            by_param.setdefault((a.target.place, a.target.param, a.target.med_type), []).append(a)
        new_t = None
        for (place, pname, med_type), group in by_param.items():
            if place == "benefit":
                bname = next((bn for bn, b in t.benefits.items() if med_type in b.med_types and not b.settle_as), None)
                if bname is None:
                    continue
                container = t.benefits[bname].params
                path = f"benefits.{bname}.{pname}"
                where = f"{label}{t.benefits[bname].label}"
            elif place == "critical":
                container = t.critical
                path = f"critical_illness.{pname}"
                where = label
                # a payer the table does not have is added only for its own scheme (大病: 居民, 大额: 职工)
                if pname not in container and scheme != {"hifmi": "resident", "hifob": "employee"}[pname]:
                    continue
            else:
                container = t.params
                path = pname
                where = label
            fields = _fields(group, pname, med_type)
            if fields is None:      # 大病/大额 need both a threshold and a rate to settle
                need = "、".join(f"{_PAYER_ZH[pname]}{_PAYER_FIELDS[f][2]}"
                                 for f in ("threshold", "rates") if f not in {a.target.field for a in group})
                raise _err(f"--assume {group[0].spec}: 还要给出 {need}（大病/大额要有起付线和支付比例才能计算）",
                           f"--assume {group[0].spec}: also give {need} (a critical-illness program needs a "
                           f"threshold and a rate)")
            old = container.get(pname)
            new_param, filled, kept = _fill(old, path, t.key, fields, group, entries)
            # a span before the first dated entry, filled too, is not worth a mention beside sourced values
            filled_missing = filled and any(e.missing for e in old.entries) if old is not None else filled
            for a in group:
                if filled:
                    used[a].append(where)
                if kept:
                    sourced[a].append(where + ("（部分时段）" if filled_missing else ""))
            if not filled:
                continue
            if new_t is None:
                new_t = dataclasses.replace(t, benefits=dict(t.benefits), params=dict(t.params),
                                            critical=dict(t.critical))
            if place == "benefit":
                b = new_t.benefits[bname]
                new_t.benefits[bname] = dataclasses.replace(b, params={**b.params, pname: new_param})
            elif place == "critical":
                new_t.critical[pname] = new_param
            else:
                new_t.params[pname] = new_param
        if new_t is not None:
            tables[key] = new_t
    notes = []
    for a in assumptions:
        if sourced[a]:
            places = "、".join(sourced[a][:8]) + (f" 等 {len(sourced[a])} 处" if len(sourced[a]) > 8 else "")
            places_en = ", ".join(sourced[a][:8]).replace("（部分时段）", " (some periods)") + (
                f" and {len(sourced[a]) - 8} more" if len(sourced[a]) > 8 else "")
            notes.append(tr(f"--assume {a.spec}：{places} 已有来源的数值，不用假设值覆盖（要改用自己的数值，请用自己的参数表 --tables）",
                            f"--assume {a.spec}: {places_en} have a sourced value, which an assumption never "
                            f"overrides (to use your own value there, use your own table: --tables)"))
        if not used[a] and not sourced[a]:
            notes.append(tr(f"--assume {a.spec}：没有参数表用到这个参数（{a.target.zh}），未使用",
                            f"--assume {a.spec}: no table has this parameter ({a.target.en}) to fill; not used"))
    new_book = dataclasses.replace(book, tables=tables, entries=entries, _lookup=book._lookup)
    new_book.assumptions = tuple(assumptions)
    return Applied(new_book, notes)


def _fields(group: list[Assumption], pname: str, med_type: str) -> dict | None:
    """The raw fields of the entry the assumptions of one parameter make (as a table would write it)."""
    given = {a.target.field: a for a in group}
    raw: dict = {}
    if pname == "selfpay_prop":
        raw["rate"] = given["rate"].value
    elif pname == "out_of_area":
        raw["ratio_add"] = given["ratio_add"].value
    elif pname == "deductible":
        a = given["amount"]
        raw["basis"] = a.basis or ("per_admission" if med_type == "21" else "per_year")
        raw["amount"] = a.value
    elif pname == "ratio":
        raw.update(basis="above_deductible", accumulate="per_bill", segments=[0], rates=[given["rates"].value])
    elif pname == "cap":
        raw.update(basis="fund", amount=given["amount"].value)
    else:                                    # hifmi / hifob
        if "threshold" not in given or "rates" not in given:
            return None
        raw["base"] = given["base"].value if "base" in given else list(DEFAULT_BASE[pname])
        raw["threshold"] = given["threshold"].value
        raw["segments"] = [0]
        raw["rates"] = [given["rates"].value]
        raw["cap"] = given["cap"].value if "cap" in given else "unlimited"
    return raw


_PAYER_ZH = {"hifmi": "大病保险", "hifob": "职工大额补助"}
_KINDS = {"rate": "ratio", "ratio_add": "signed_ratio", "amount": "amount", "rates": "rates", "threshold": "amount",
          "cap": "amount_or_unlimited"}


def _fill(old: Param | None, path: str, table_key: str, raw: dict, group: list[Assumption], entries: list):
    """(the parameter with its unsourced spans filled, filled any?, kept a sourced entry?)."""
    rid = table_key.split("/")[0]
    labels = [a.labels(rid) for a in sorted(group, key=lambda a: a.target.field)]
    if "threshold" in raw and not any(a.target.field == "cap" for a in group):
        payer = path.rsplit(".", 1)[-1]
        labels.append((f"{_PAYER_ZH[payer]}封顶线=不设（未给出）", f"{payer} cap=none (not given)", f"{payer}.cap=unlimited"))
    if "base" in raw and not any(a.target.field == "base" for a in group):
        payer = path.rsplit(".", 1)[-1]
        base = "+".join(raw["base"])
        labels.append((f"{_PAYER_ZH[payer]}计入基数={base}（默认）", f"{payer} base={base} (default)", f"{payer}.base={base}"))
    src = assumed_source(labels)

    def make(start: dt.date, index: int) -> Entry:
        e_raw = {"from": start, "source": "assumed", **raw}
        kind = {"amount": "amount_or_unlimited" if path.endswith("cap") else "amount"}
        e = Entry(len(entries), table_key, path, index, start, None, src, e_raw, "(--assume)")
        for name, value in raw.items():
            k = kind.get(name, _KINDS.get(name))
            if k is None or name == "segments":
                e.fields[name] = value
            else:
                e.fields[name] = compile_value(value if k != "rates" else value, k, src, {})
        entries.append(e)
        return e

    if old is None:
        return Param(path, _param_kind(path), [make(EARLIEST, 0)]), True, False
    out, filled, kept = [], False, False
    if old.entries[0].start > EARLIEST:
        out.append(None)                     # a placeholder for the span before the first entry
        filled = True
    for e in old.entries:
        if e.missing or is_assumed(e):       # an earlier assumption may be stated again, or anew
            out.append(e.start)
            filled = True
        elif path == "selfpay_prop" and _has_no_default(e):
            # a share sourced for some item kinds only (e.g. drugs): the assumption covers the other kinds,
            # as a last rule with the user as its source; the sourced rules keep their own source
            out.append(_with_default_rule(e, raw, src, entries))
            filled = kept = True
        else:
            out.append(e)
            kept = True
    if not filled:
        return old, False, kept
    new_entries = []
    for i, e in enumerate(out):
        if e is None:
            new_entries.append(make(EARLIEST, i))
        elif isinstance(e, dt.date):
            new_entries.append(make(e, i))
        else:
            new_entries.append(e)
    return Param(old.path, old.kind, new_entries), True, kept


def _has_no_default(e: Entry) -> bool:
    """A sourced 乙类 share whose rules name some item kinds only: other lines match no rule."""
    f = e.fields.get("rate")
    return hasattr(f, "rules") and not any(not r.when for r in f.rules)


def _with_default_rule(e: Entry, raw: dict, src: Source, entries: list) -> Entry:
    """A copy of the sourced entry ``e`` whose rate table ends with the assumed value for every other line."""
    f = e.fields["rate"]
    rules = [dataclasses.replace(r, source=r.source or e.source) for r in f.rules]
    rules.append(compile_value(raw["rate"], "ratio", src, {}).rules[0])
    rules[-1] = dataclasses.replace(rules[-1], source=src)
    new = Entry(len(entries), e.table, e.path, e.index, e.start, None, e.source, e.raw, e.file,
                fields={**e.fields, "rate": type(f)(rules, f.kind)}, adjust=list(e.adjust))
    entries.append(new)
    return new


def _param_kind(path: str) -> str:
    name = path.rsplit(".", 1)[-1]
    return "critical_illness" if name in ("hifmi", "hifob") else name


def assumption_labels(entry: Entry) -> str:
    """What a bill's warning says of the assumed entry it used."""
    return entry.source.title if entry.source else ""


def with_assumptions(policy, assume, *, stacklevel: int = 3):
    """``policy`` (a ``Policy``, a ``PolicyBook`` or None for the shipped tables) with the assumptions
    applied, of the same kind. An assumption that meets only sourced values is announced by an
    ``AssumptionNotUsedWarning`` (it is never used over them)."""
    if not assume:
        return policy
    import warnings

    from .api import Policy, load_tables
    if policy is None:
        policy = load_tables()
    book = policy.book if isinstance(policy, Policy) else policy
    applied = apply_assumptions(book, assume)
    for note in applied.notes:
        warnings.warn(note, AssumptionNotUsedWarning, stacklevel=stacklevel)
    if isinstance(policy, Policy):
        return dataclasses.replace(policy, book=applied.book, table=applied.book.tables[(policy.region, policy.scheme)])
    return applied.book


_HINT_NAMES = {"selfpay_prop": ("乙类先行自付", "比例"), "out_of_area": ("异地支付比例调整", "比例"),
               "critical_illness.hifmi": ("大病起付线=<元> --assume 大病支付比例", "比例"),
               "critical_illness.hifob": ("大额起付线=<元> --assume 大额支付比例", "比例")}
_HINT_PARAMS = {"deductible": ("起付线", "元"), "ratio": ("支付比例", "比例"), "cap": ("封顶线", "元")}


def assume_hint(path: str, region: str) -> str:
    """``--assume 攀枝花:住院起付线=<元>``: how to state a value for the parameter at ``path`` (a table
    path such as ``benefits.inpatient.deductible``), or "" for a parameter no assumption can fill."""
    if path in _HINT_NAMES:
        name, unit = _HINT_NAMES[path]
    else:
        parts = path.split(".")
        if len(parts) != 3 or parts[0] != "benefits" or parts[2] not in _HINT_PARAMS \
                or parts[1] not in _VISIT_KEYS:
            return ""
        name, unit = _HINT_PARAMS[parts[2]]
        name = _VISIT_KEYS[parts[1]] + name
    return f"--assume {region}:{name}=<{tr(unit, {'元': 'yuan', '比例': 'ratio'}[unit])}>"

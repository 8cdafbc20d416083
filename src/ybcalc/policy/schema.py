"""What a policy table may contain, and the checks every table passes on load.

The checks collect *every* problem with its file and key path (``benefits.inpatient.ratio[1].rates``)
instead of stopping at the first, so ``ybcalc tables validate`` can list them all.
"""
from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from decimal import Decimal

from ..i18n import tr

GRADES = ("official", "institution", "secondary", "user")
# `user`: a notice the user holds (paper or PDF) and typed into their own table; it needs no URL
GRADE_LABEL = {"official": ("官方", "official"), "institution": ("机构转载", "institution"),
               "secondary": ("二手", "secondary"), "user": ("用户提供", "user-supplied"),
               "assumed": ("假设值，用户给定", "assumed value, given by the user")}   # --assume, never in a table
# what a user's starter table (`ybcalc tables new`) holds where the notice's figure is to be typed in:
# an entry still holding it (or citing a source still holding it) is `missing`, never settled
PLACEHOLDER = "待填"
SCHEMES = ("employee", "resident")
MED_TYPES = ("11", "12", "13", "14", "21", "41")
FIL_TYPES = ("long_term", "referral", "emergency", "temporary", "unfiled")
BASE_COMPONENTS = ("deductible", "preselfpay", "coinsurance", "above_cap")
WHEN_KEYS = ("psn_type", "contrib_tier", "hosp_lv", "hosp_type", "age", "psn_idet_type", "med_type", "fil_type",
             "admission", "mdtrt_province", "mdtrt_scope", "med_chrgitm_type", "chrgitm_lv")
# the day a manual claim's deadline counts from, as notices word it: 费用发生之日 / 出院之日 / 结算之日
CLAIM_COUNTS_FROM = ("care", "discharge", "settlement")
MDTRT_SCOPES = ("local", "in_province", "out_of_province", "unknown")
COMMON_ENTRY_KEYS = ("from", "source", "missing", "note")

# Field kinds: how a field's value is read.
#   amount  – yuan, >= 0 (decision table allowed);  amount_or_unlimited – same, or "unlimited"
#   ratio   – 0..1 (decision table allowed);        signed_ratio – -1..1 (decision table allowed)
#   rates   – list of ratios, one per segment (decision table allowed)
#   factor  – >= 0 multiplier (decision table allowed)
#   level   – hospital level 0..3 (decision table allowed)
#   segments – ascending list of yuan starting at 0
#   factors  – list of 0..1 multipliers;  enum:<a|b> – one word;  list:<a|b> – list of words
#   adjust  – adjustment rules;  bool;  str;  med_types – list of visit codes;  count – a whole number >= 0
PARAM_FIELDS: dict[str, dict[str, str]] = {
    "deductible": {"basis": "enum:per_admission|per_year", "amount": "amount", "nth_factor": "factors",
                   "nth_decrement": "amount", "min": "amount", "adjust": "adjust:amount"},
    "ratio": {"basis": "enum:cumulative_cost|above_deductible|fund_paid", "accumulate": "enum:per_bill|per_year",
              "segments": "segments", "rates": "rates", "adjust": "adjust:ratio"},
    "cap": {"basis": "enum:fund|cost", "group": "str", "amount": "amount_or_unlimited"},
    "selfpay_prop": {"rate": "ratio"},
    "out_of_area": {"ratio_add": "signed_ratio", "ratio_factor": "factor", "deductible_factor": "factor",
                    "hosp_lv_as": "level",
                    "rate": "ratio_or_local", "deductible": "amount_or_local"},
    "critical_illness": {"applies_to": "list:*", "base": "list:" + "|".join(BASE_COMPONENTS),
                         "out_of_area_reduction_excluded": "bool", "threshold": "amount",
                         "segments": "segments", "rates": "rates", "cap": "amount_or_unlimited"},
    "medical_assistance": {"applies_to": "list:*", "base": "list:" + "|".join(BASE_COMPONENTS),
                           "threshold": "amount", "segments": "segments", "rates": "rates",
                           "cap": "amount_or_unlimited"},
    "personal_account": {"pays": "list:selfpay|ownpay", "med_types": "med_types"},
    # 居民 groups by age, as the table's source states them: used where a bill gives no 人员类别
    "psn_type_by_age": {"groups": "groups"},
    # a change of 参保地/险种 within a year (issue 17): whether the year's deductible used and amounts paid in the
    # previous region count in this one (年度内已发生的医疗费用累计计算) — this table's rule for members moving in
    "transfer_carryover": {"carried_over": "bool"},
    # A member's year (issue 17; ybcalc.members). A region's entry states only what deviates from the national
    # rule in force (national.yaml, same key): a field it leaves out is the national one (gettsim GEP-3's
    # `deviation_from`). `count`: a whole number ≥ 0; `yuan`: an amount in yuan ≥ 0 (plain values only).
    "waiting_period": {"fixed_months": "count", "months_per_break_year": "count", "months_per_repaid_year": "count",
                       "long_break_years": "count", "long_break_min_months": "count", "exempt": "list:*",
                       "fund_pays_during_wait": "bool",
                       # regional only: payments in the first N months of the year still count as the concentrated
                       # period (no wait); with benefits_from_payment, benefits start on the payment day
                       "extended_payment_months": "count", "benefits_from_payment": "bool"},
    "critical_illness_rewards": {"continuous_after_years": "count", "continuous_step": "yuan",
                                 "zero_claim_step": "yuan", "total_max": "yuan", "total_max_share_of_cap": "share",
                                 "reset_on_break": "bool"},
    # 职工: a contribution gap of more than `max_gap_months` stops benefits; they resume `wait_months` after the
    # member pays again (no national rule: a region states both)
    "employee_gap": {"max_gap_months": "count", "wait_months": "count"},
    # 手工报销（零星报销）申报时限: months or days, counted from the day the notice names
    "manual_claim_deadline": {"months": "count", "days": "count", "counts_from": "enum:" + "|".join(CLAIM_COUNTS_FROM)},
}
MEMBER_YEAR_PARAMS = ("waiting_period", "critical_illness_rewards", "employee_gap")
REQUIRED_FIELDS = {
    "deductible": ("basis", "amount"), "ratio": ("rates",), "cap": ("amount",), "selfpay_prop": ("rate",),
    "out_of_area": (), "critical_illness": ("base", "threshold", "rates"),
    "medical_assistance": ("base", "threshold", "rates"), "personal_account": ("pays", "med_types"),
    "psn_type_by_age": ("groups",), "transfer_carryover": ("carried_over",),
    "waiting_period": (), "critical_illness_rewards": (), "employee_gap": ("max_gap_months", "wait_months"),
    "manual_claim_deadline": ("counts_from",),
}
ADJUST_OPS = {"ratio": ("add", "max", "min", "share_factor"), "amount": ("subtract", "factor", "min", "max")}
TOP_KEYS = ("region", "scheme", "title", "extends", "psn_types", "contrib_tiers", "policy_year_start", "sources", "benefits",
            "selfpay_prop", "out_of_area", "critical_illness", "medical_assistance", "personal_account",
            "psn_type_by_age", "waiting_period", "critical_illness_rewards", "employee_gap", "manual_claim_deadline",
            "transfer_carryover",
            "notes")
BENEFIT_KEYS = ("label", "med_types", "deductible", "ratio", "cap", "settle_as", "note")
SOURCE_KEYS = ("title", "doc_no", "issuer", "url", "date", "grade", "note", "quote")   # doc_no: 文号
CRITICAL_PAYERS = ("hifmi", "hifob")


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str
    line: int | None = None      # 1-based line of the key in the file, where known

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}" + (tr(f"（第 {self.line} 行）", f" (line {self.line})")
                                                               if self.line else "")


class TableError(ValueError):
    """A policy table failed validation; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        head = "\n".join(f"  {p}" for p in self.problems[:50])
        more = (tr(f"\n  … 另有 {len(self.problems) - 50} 个", f"\n  … and {len(self.problems) - 50} more")
                if len(self.problems) > 50 else "")
        super().__init__(tr(f"参数表中有 {len(self.problems)} 个问题：\n{head}{more}",
                            f"{len(self.problems)} problem(s) in policy tables:\n{head}{more}"))


def as_date(value) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None


def is_number(value) -> bool:
    """A finite number (`.inf` and `.nan` are YAML floats, never a table value)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return False
    return not isinstance(value, (float, Decimal)) or math.isfinite(value)


def short_repr(value, limit: int = 80) -> str:
    """``repr`` of a value for a message, cut to ``limit`` characters: a table value can be huge
    (a YAML alias bomb), and a message must stay a line."""
    text = repr(value) if not isinstance(value, (list, dict)) else _bounded_repr(value, limit)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bounded_repr(value, limit: int) -> str:
    """repr of nested lists/dicts that stops once ``limit`` characters are written (never builds
    the whole text of a huge value)."""
    out: list[str] = []
    size = 0

    def emit(s: str) -> bool:
        nonlocal size
        out.append(s)
        size += len(s)
        return size <= limit

    def walk(v) -> bool:
        if isinstance(v, list):
            if not emit("["):
                return False
            for i, x in enumerate(v):
                if (i and not emit(", ")) or not walk(x):
                    return False
            return emit("]")
        if isinstance(v, dict):
            if not emit("{"):
                return False
            for i, (k, x) in enumerate(v.items()):
                if (i and not emit(", ")) or not emit(f"{k!r}: ") or not walk(x):
                    return False
            return emit("}")
        return emit(repr(v))

    walk(value)
    return "".join(out)


_PATH_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def line_of(node, path: str) -> int | None:
    """1-based line of the deepest node of ``path`` ("benefits.inpatient.ratio[1].rates") found in a
    YAML node tree."""
    line = None
    for m in _PATH_PART.finditer(path):
        index, key = m.group(1), m.group(2)
        nxt = None
        if index is not None and getattr(node, "id", "") == "sequence" and int(index) < len(node.value):
            nxt = node.value[int(index)]
        elif key is not None and getattr(node, "id", "") == "mapping":
            for k, v in node.value:
                if getattr(k, "value", None) == key:
                    line = k.start_mark.line + 1
                    nxt = v
                    break
        if nxt is None:
            break
        node = nxt
        line = node.start_mark.line + 1 if index is not None else line
    return line


class Checker:
    """Collects problems for one file."""

    def __init__(self, file: str):
        self.file = file
        self.problems: list[Problem] = []
        self.root_node = None          # the file's YAML node tree, once read: gives each key path its line

    def add(self, path: str, message: str, line: int | None = None) -> None:
        if line is None and self.root_node is not None:
            line = line_of(self.root_node, path)
        self.problems.append(Problem(self.file, path, message, line))

    # ---- scalar kinds -------------------------------------------------------------------------
    def number(self, path, value, kind) -> None:
        if kind == "amount_or_unlimited" and value == "unlimited":
            return
        if kind.endswith("_or_local"):
            if value == "local":          # 异地 terms: "settle as local care" (no override)
                return
            kind = kind[: -len("_or_local")]
        if not is_number(value):
            self.add(path, tr(f"应为有限的数字，实为 {short_repr(value)}", f"expected a finite number, got {short_repr(value)}"))
            return
        v = float(value)
        if kind in ("amount", "amount_or_unlimited") and v < 0:
            self.add(path, tr(f"金额须 ≥ 0，实为 {value}", f"amount must be >= 0, got {value}"))
        elif kind == "ratio" and not 0 <= v <= 1:
            self.add(path, tr(f"比例须在 0 到 1 之间，实为 {value}", f"ratio must be within 0..1, got {value}"))
        elif kind == "signed_ratio" and not -1 <= v <= 1:
            self.add(path, tr(f"比例变动须在 -1 到 1 之间，实为 {value}", f"ratio change must be within -1..1, got {value}"))
        elif kind == "factor" and v < 0:
            self.add(path, tr(f"系数须 ≥ 0，实为 {value}", f"factor must be >= 0, got {value}"))
        elif kind == "level" and v not in (0, 1, 2, 3):
            self.add(path, tr(f"医院等级须为 0 到 3，实为 {value}", f"hospital level must be 0..3, got {value}"))
        if kind in ("ratio", "signed_ratio") and Decimal(str(value)).as_tuple().exponent < -6:
            self.add(path, tr(f"比例的小数超过 6 位：{value}", f"ratio has more than 6 decimals: {value}"))

    def rates(self, path, value, n_segments) -> None:
        if not isinstance(value, list) or not value:
            self.add(path, tr(f"应为比例的列表（每段一个），实为 {short_repr(value)}", f"expected a list of ratios (one per segment), got {short_repr(value)}"))
            return
        if n_segments is not None and len(value) != n_segments:
            self.add(path, tr(f"{n_segments} 段却给了 {len(value)} 个比例", f"{len(value)} rate(s) for {n_segments} segment(s)"))
        for i, r in enumerate(value):
            self.number(f"{path}[{i}]", r, "ratio")

    def when(self, path, cond) -> None:
        if not isinstance(cond, dict):
            self.add(path, tr(f"`when` 须为键值映射，实为 {short_repr(cond)}", f"`when` must be a mapping, got {short_repr(cond)}"))
            return
        for key, val in cond.items():
            if key not in WHEN_KEYS:
                self.add(f"{path}.{key}", tr(f"未知的条件键（可用：{'、'.join(WHEN_KEYS)}）", f"unknown condition key (known: {', '.join(WHEN_KEYS)})"))
            elif key == "age":
                if not (isinstance(val, list) and len(val) == 2 and all(v is None or is_number(v) for v in val)):
                    self.add(f"{path}.age", tr(f"age 须为 [下限, 上限]，数字或 null，实为 {short_repr(val)}", f"age must be [lo, hi] with numbers or null, got {short_repr(val)}"))
                elif val[0] is not None and val[1] is not None and val[0] >= val[1]:
                    self.add(f"{path}.age", tr(f"年龄段为空：{short_repr(val)}", f"age band is empty: {short_repr(val)}"))
            elif key == "mdtrt_scope":
                for v in val if isinstance(val, list) else [val]:
                    if v not in MDTRT_SCOPES:
                        self.add(f"{path}.mdtrt_scope", tr(f"未知的就医地范围 {short_repr(v)}（可用：{'、'.join(MDTRT_SCOPES)}）", f"unknown scope {short_repr(v)} (known: {', '.join(MDTRT_SCOPES)})"))
            elif key == "fil_type":
                for v in val if isinstance(val, list) else [val]:
                    if v not in FIL_TYPES:
                        self.add(f"{path}.fil_type", tr(f"未知的备案类型 fil_type {short_repr(v)}（可用：{'、'.join(FIL_TYPES)}）", f"unknown fil_type {short_repr(v)} (known: {', '.join(FIL_TYPES)})"))
            elif key == "med_type":
                for v in val if isinstance(val, list) else [val]:
                    if str(v) not in MED_TYPES:
                        self.add(f"{path}.med_type", tr(f"未知的医疗类别 med_type {short_repr(v)}", f"unknown med_type {short_repr(v)}"))

    def _rule_shape(self, rp, rule) -> bool:
        """A rule is a mapping of known keys; False (after saying so) when it is not a mapping at all."""
        if not isinstance(rule, dict):
            self.add(rp, tr("一条规则须为含 `when` 和 `value` 的键值映射", "a rule must be a mapping with `when` and `value`"))
            return False
        for key in rule:
            if key not in ("when", "value", "source", "note"):
                self.add(f"{rp}.{key}", tr("规则中有未知的键（可用：when、value、source、note）", "unknown key in rule (when, value, source, note)"))
        return True

    def groups(self, path, value, sources=None) -> None:
        """``psn_type_by_age.groups``: rules ``{when: {age: [lo, hi]}, value: <group>}``, first match wins."""
        if not isinstance(value, list) or not value:
            self.add(path, tr("须为规则列表 {when: {age: [下限, 上限]}, value: 人员类别}", "must be a list of rules {when: {age: [lo, hi]}, value: group}"))
            return
        for i, rule in enumerate(value):
            rp = f"{path}[{i}]"
            if not self._rule_shape(rp, rule):
                continue
            when = rule.get("when")
            if not isinstance(when, dict) or list(when) != ["age"]:
                self.add(f"{rp}.when", tr("人员类别规则只能按年龄段：when: {age: [下限, 上限]}", "a group rule names an age band only: when: {age: [lo, hi]}"))
            else:
                self.when(f"{rp}.when", when)
            if not isinstance(rule.get("value"), str) or not rule.get("value"):
                self.add(f"{rp}.value", tr(f"须为人员类别，实为 {rule.get('value')!r}", f"must be a member group (人员类别), got {rule.get('value')!r}"))
            if "source" in rule and sources is not None and rule["source"] not in sources:
                self.add(f"{rp}.source", tr(f"未知的来源编号 {rule['source']!r}", f"unknown source id {rule['source']!r}"))

    def table(self, path, value, kind, n_segments=None, sources=None) -> None:
        """A field that is a plain value or a decision table of rules."""
        if isinstance(value, list) and value and isinstance(value[0], dict):
            # a table without a default rule is allowed: bills no rule matches fail loudly
            for i, rule in enumerate(value):
                rp = f"{path}[{i}]"
                if not self._rule_shape(rp, rule):
                    continue
                if "value" not in rule:
                    self.add(rp, tr("规则没有 `value`", "rule has no `value`"))
                    continue
                if "when" in rule:
                    self.when(f"{rp}.when", rule["when"])
                elif i != len(value) - 1:
                    self.add(rp, tr("没有 `when` 的规则须放在最后（其后的规则永远不会生效）", "a rule without `when` must come last (rules after it never apply)"))
                if "source" in rule and sources is not None and rule["source"] not in sources:
                    self.add(f"{rp}.source", tr(f"未知的来源编号 {short_repr(rule['source'])}", f"unknown source id {short_repr(rule['source'])}"))
                self.table(f"{rp}.value", rule["value"], kind, n_segments, sources)
        elif kind == "rates":
            self.rates(path, value, n_segments)
        else:
            self.number(path, value, kind)

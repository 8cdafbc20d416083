"""What-if computations for the notebooks, widgets and ``ybcalc compare`` — no drawing here.

Everything returns plain DataFrames (yuan as floats rounded to the fen, shares as fractions) so
that ``ybcalc.plotting`` can draw them and tests can check them:

- ``sample_bill``: itemized lines of a made-up bill (甲/乙/丙 and an excluded item);
- ``compare_scenarios``: one bill settled for several regions × member groups × hospital levels;
  scenarios that cannot be settled stay in the table with the reason;
- ``oop_curve`` / ``oop_curve_grid``: out-of-pocket against total cost, one batch call per curve set
  (one member per point, so every point starts the year afresh);
- ``bill_shares`` / ``share_summary``: per-bill and grouped shares for a batch report;
- ``policy_parameter_table``: one parameter per region × year with its source and grade.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from pathlib import Path

import numpy as np
import pandas as pd

from . import codes
from .i18n import tr
from .inputs import rename_columns
from .money import INF_FEN, PPM, fen_to_yuan
from .policy.loader import PolicyBook
from .policy.model import apply_adjustments
from .policy.schema import GRADE_LABEL

DEFAULT_DATE = "2025-06-01"
DEFAULT_REGIONS = ("北京", "上海", "杭州", "深圳", "广州")
EMPLOYEE_GROUPS = ("在职", "退休", "退休2000前")
#: resident group used for the generic status "居民": the working-age / adult / basic-tier group of
#: each table (the first of these names that the table lists); tables without groups use their default.
RESIDENT_ADULT_GROUPS = ("劳动年龄内居民", "成年", "城乡居民", "居民", "城乡一档", "一档")
DEFAULT_AGE = {"在职": 45, "退休": 65, "退休2000前": 80}
RESIDENT_DEFAULT_AGE = 40
VISIT_TYPES = {"门诊": "11", "急诊": "13", "住院": "21", "门诊慢特病": "14"}
HOSP_LEVELS = {0: "基层/社区", 1: "一级", 2: "二级", 3: "三级"}
#: 异地 status choices: label -> fil_type (``local`` = care in the insured region)
OOA_CHOICES = {"本地就医": "local", "异地·长期居住（已备案）": "long_term", "异地·临时外出（已备案）": "temporary",
               "异地·转诊": "referral", "异地·未备案": "unfiled"}
MONEY_FIELDS = ("medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "act_pay_dedc",
                "hifp_pay", "hifob_pay", "hifmi_pay", "maf_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay",
                "psn_cash_pay")
ZH = {"region": "地区", "scheme": "险种", "status": "人员", "psn_type": "人员类别", "age": "年龄",
      "hosp_lv": "医院等级", "med_type": "就诊类型", "visit": "就诊类型", "settled": "可结算", "total": "总费用",
      "medfee_sumamt": "医疗费总额", "fulamt_ownpay_amt": "全自费", "overlmt_selfpay": "超限价",
      "preselfpay_amt": "先行自付", "act_pay_dedc": "起付线", "hifp_pay": "统筹基金", "hifob_pay": "大额补助",
      "hifmi_pay": "大病保险", "maf_pay": "医疗救助", "fund_pay_sumamt": "基金支付", "psn_part_amt": "个人负担",
      "acct_pay": "个人账户", "psn_cash_pay": "个人现金", "fund_share": "基金占比", "patient_share": "个人占比",
      "reason": "无法结算原因", "n_warnings": "提示数", "bills": "单据数", "mean_share": "平均个人占比",
      "median_share": "个人占比中位数", "fund": "基金支付", "patient": "个人负担", "acct": "个人账户",
      "cash": "个人现金", "eligibility": "待遇资格", "eligible": "享受待遇", "benefit_from": "待遇起始日",
      "wait_months": "等待期（月）", "reward": "大病封顶线激励"}

#: English headers of the same columns (``display_table(..., lang="en")``)
EN = {"region": "region", "scheme": "scheme", "status": "member", "psn_type": "member group", "age": "age",
      "hosp_lv": "hospital level", "med_type": "visit type", "visit": "visit type", "settled": "settled",
      "total": "total cost", "medfee_sumamt": "total cost", "fulamt_ownpay_amt": "self-paid in full",
      "overlmt_selfpay": "above price limit", "preselfpay_amt": "co-paid first", "act_pay_dedc": "deductible",
      "hifp_pay": "pooled fund", "hifob_pay": "large-expense supplement", "hifmi_pay": "critical illness",
      "maf_pay": "medical aid", "fund_pay_sumamt": "fund pays", "psn_part_amt": "patient pays",
      "acct_pay": "personal account", "psn_cash_pay": "cash", "fund_share": "fund share",
      "patient_share": "patient share", "reason": "why not settled", "n_warnings": "warnings", "bills": "bills",
      "mean_share": "mean patient share", "median_share": "median patient share", "fund": "fund pays",
      "patient": "patient pays", "acct": "personal account", "cash": "cash", "eligibility": "eligibility",
      "eligible": "eligible", "benefit_from": "benefits from", "wait_months": "waiting months",
      "reward": "critical-illness cap reward"}
#: member words of the scenario table in English (a table's own group names stay as the notice writes them)
MEMBER_EN = {"在职": "employed", "退休": "retired", "退休2000前": "retired before 2000", "职工": "employee",
             "居民": "resident"}


def member_word(value, lang: str | None = None) -> str:
    """在职/退休/职工/居民 in the reader's language; other values (a table's group, a region) as written."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return tr(text, MEMBER_EN.get(text, text), lang=lang)


_MEMBER_ALIASES = {"region": "insuplc", "scheme": "insutype", "date": "setl_time"}
_SCENARIO_COLUMNS = ("mdtrt_id", "psn_no", "setl_time", "insuplc", "insutype", "psn_type", "age", "hosp_lv",
                     "mdtrt_area", "fil_type")


def _book(book) -> PolicyBook:
    if book is None or isinstance(book, (str, Path)):
        from .api import load_tables
        return load_tables(book)             # None: the shipped tables; a path: the user's folder over them
    return getattr(book, "book", book)       # a Policy carries its book


def _fen(x) -> int:
    return int(round(float(x) * 100))


# ---------------------------------------------------------------------------------------------
# bills
# ---------------------------------------------------------------------------------------------
def bill_from_amounts(class_a: float = 0.0, class_b: float = 0.0, class_c: float = 0.0, excluded: float = 0.0, *,
                      class_b_selfpay: float | None = 0.10, excluded_item: str = "陪护费", **member) -> list[dict]:
    """Lines of one bill from amounts in yuan: 甲类, 乙类 (with its 先行自付 share), 丙类 and an excluded item.

    ``class_b_selfpay`` is written on the 乙类 line as ``selfpay_prop`` because most tables have no
    sourced 乙类 rate; ``None`` leaves it to the table. The excluded item is labelled 甲类 on purpose: the
    不予支付 catalogue (tables/exclusions.yaml) moves it to 全自费 by its name (陪护费, 膳食费 …).
    ``member``: region (insuplc), scheme (insutype), psn_type, age, med_type (11/13/14/21 or 门诊/急诊/住院 …),
    hosp_lv, date (setl_time), mdtrt_area, fil_type, hosp_type, psn_idet_type, mdtrt_id, psn_no.
    """
    m = _member(member)
    rows = []
    for lv, name, amount, prop in ((1, "甲类药品及诊疗项目", class_a, None),
                                   (2, "乙类药品及诊疗项目", class_b, class_b_selfpay),
                                   (3, "丙类（自费）药品", class_c, None),
                                   (1, excluded_item, excluded, None)):
        fen = _fen(amount)
        if fen == 0:
            continue
        if fen < 0:
            raise ValueError(f"{name}: amount must not be negative ({amount})")
        row = dict(m)
        row.update(item_name=name, chrgitm_lv=lv, det_item_fee_sumamt=f"{fen / 100:.2f}")
        if prop is not None and lv == 2:
            row["selfpay_prop"] = float(prop)
        rows.append(row)
    if not rows:       # an empty bill still needs a line to exist
        row = dict(m)
        row.update(item_name="甲类药品及诊疗项目", chrgitm_lv=1, det_item_fee_sumamt="0.00")
        rows.append(row)
    return rows


def _member(member: dict) -> dict:
    m = {_MEMBER_ALIASES.get(k, k): v for k, v in member.items() if v is not None}
    m.setdefault("mdtrt_id", "S1")
    m.setdefault("psn_no", m["mdtrt_id"])
    m.setdefault("setl_time", DEFAULT_DATE)
    m.setdefault("insuplc", "北京")
    m.setdefault("insutype", "职工")
    m.setdefault("med_type", "21")
    m.setdefault("hosp_lv", 3)
    if codes.parse_insutype(m["insutype"]) == "employee":
        m.setdefault("psn_type", "在职")
    m["setl_time"] = str(pd.Timestamp(m["setl_time"]).date())
    return m


def split_total(total, class_b_share: float = 0.3, self_pay_share: float = 0.05, excluded: float = 0.0):
    """(甲, 乙, 丙, excluded) in fen for a total in yuan; shares are fractions of the total.

    Works on arrays of totals; the parts always add up to the total to the fen.
    """
    t = np.round(np.asarray(total, dtype=float) * 100).astype(np.int64)
    shares = np.array([class_b_share, self_pay_share, excluded], dtype=float)
    if (shares < 0).any() or shares.sum() > 1 + 1e-9:
        raise ValueError(f"shares must be ≥ 0 and add up to at most 1 (乙 {class_b_share}, 丙 {self_pay_share}, "
                         f"excluded {excluded})")
    b = np.round(t * class_b_share).astype(np.int64)
    c = np.round(t * self_pay_share).astype(np.int64)
    x = np.round(t * excluded).astype(np.int64)
    a = t - b - c - x
    return a, b, c, x


def sample_bill(total: float, class_b_share: float = 0.3, self_pay_share: float = 0.05, excluded: float = 0.0, *,
                class_b_selfpay: float | None = 0.10, excluded_item: str = "陪护费", **member) -> list[dict]:
    """Itemized lines of a made-up bill of ``total`` yuan.

    ``class_b_share``, ``self_pay_share`` (丙类) and ``excluded`` (an item the national catalogue never
    pays, e.g. 陪护费) are fractions of the total; the rest is 甲类. ``member`` as for ``bill_from_amounts``.

    >>> [r["det_item_fee_sumamt"] for r in sample_bill(10000, 0.3, 0.05)]
    ['6500.00', '3000.00', '500.00']
    """
    a, b, c, x = (int(v) for v in split_total(total, class_b_share, self_pay_share, excluded))
    return bill_from_amounts(a / 100, b / 100, c / 100, x / 100, class_b_selfpay=class_b_selfpay,
                             excluded_item=excluded_item, **member)


def _bills_frame(totals, class_b_share=0.3, self_pay_share=0.05, excluded=0.0, class_b_selfpay=0.10,
                 excluded_item="陪护费", members: pd.DataFrame | None = None) -> pd.DataFrame:
    """Many sample bills at once: one bill per row of ``members`` (a frame of member columns, incl.
    mdtrt_id) and matching ``totals``; built column-wise, not bill by bill."""
    parts = split_total(totals, class_b_share, self_pay_share, excluded)
    n = len(members)
    frames = []
    for (lv, name, prop), fen in zip(((1, "甲类药品及诊疗项目", None), (2, "乙类药品及诊疗项目", class_b_selfpay),
                                      (3, "丙类（自费）药品", None), (1, excluded_item, None)), parts):
        keep = fen > 0
        if lv == 1 and name != excluded_item:
            keep = keep | (parts[0] + parts[1] + parts[2] + parts[3] == 0)   # zero bills keep one line
        if not keep.any():
            continue
        f = members.loc[keep].copy()
        f["item_name"] = name
        f["chrgitm_lv"] = lv
        f["selfpay_prop"] = np.nan if prop is None else float(prop)
        f["det_item_fee_sumamt"] = [f"{v / 100:.2f}" for v in fen[keep]]
        f["_order"] = np.flatnonzero(keep)
        frames.append(f)
    out = pd.concat(frames, ignore_index=True).sort_values("_order", kind="stable").drop(columns="_order")
    assert out["mdtrt_id"].nunique() == n
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# members: region × status -> table, scheme, group
# ---------------------------------------------------------------------------------------------
def scheme_code(value) -> str:
    s = codes.parse_insutype(value)
    if s is None:
        raise ValueError(f"unknown scheme {value!r}: use 职工/居民")
    return s


def resolve_member(book: PolicyBook, region, status: str, scheme=None) -> dict:
    """Region id, scheme and member group (psn_type) for a status such as 在职, 退休, 居民 or a table's group.

    Returns a dict with ``rid``, ``region`` (short name), ``scheme`` (employee/resident), ``psn_type``
    and ``reason`` (non-empty when no table can settle it).
    """
    rid = book.region_id(region)
    reason = ""
    if rid is None:                   # a county code of a known region; else no table yet, or the nearest names
        from .divisions import REGION, region_lookup
        found = region_lookup(book, region, REGION)
        rid, reason = found.region, found.reject
    out = {"rid": rid, "region": book.region_label(rid) if rid else str(region), "status": status,
           "scheme": None, "psn_type": "", "reason": reason}
    if rid is None:
        return out
    status = str(status or "").strip()
    if scheme is not None:
        sch = scheme_code(scheme)
    elif status in EMPLOYEE_GROUPS or status in ("职工", ""):
        sch = "employee"
    elif status in ("居民",):
        sch = "resident"
    else:
        t_emp = book.tables.get((rid, "employee"))
        sch = "employee" if t_emp is not None and status in t_emp.psn_types else "resident"
    out["scheme"] = sch
    t = book.tables.get((rid, sch))
    if t is None:
        out["reason"] = tr(f"{out['region']} 没有{codes.SCHEME_LABEL[sch][0]}医保的政策表",
                           f"{out['region']}: no table for {codes.SCHEME_LABEL[sch][1]} insurance")
        return out
    if status in ("职工",):
        status = "在职"
    if status in ("居民", ""):
        out["psn_type"] = next((g for g in RESIDENT_ADULT_GROUPS if g in t.psn_types), "") if sch == "resident" \
            else (t.psn_types[0] if t.psn_types else "")
    else:
        out["psn_type"] = status
    return out


def default_age(psn_type: str, scheme: str) -> int:
    if scheme == "employee":
        return DEFAULT_AGE.get(psn_type, 45)
    return RESIDENT_DEFAULT_AGE


def _line_frame(bill_lines) -> pd.DataFrame:
    if isinstance(bill_lines, pd.DataFrame):
        df = bill_lines.copy()
    else:
        df = pd.DataFrame(list(bill_lines))
    if df.empty:
        raise ValueError("the bill has no lines")
    df = rename_columns(df)                 # national field names from Chinese headers, as batch input
    if "med_type" not in df.columns:
        df["med_type"] = "21"
    return df


# ---------------------------------------------------------------------------------------------
# settling many what-ifs in one call
# ---------------------------------------------------------------------------------------------
def _settle(lines: pd.DataFrame, book: PolicyBook, accounts=None, members=None):
    from .api import settle
    return settle(lines, book, strict=False, accounts=accounts, source="<scenarios>", members=members)


def scenario_members(members, book: PolicyBook, psn_no: str | None, ids: Sequence[str], bill_psn=None):
    """(``Members`` with one member's spans copied to each scenario id, the member's psn_no).

    The spans keep the member's dates, payments, breaks and rewards, but not their 参保地/险种: each
    scenario asks what this member's enrolment means had the bill been incurred there. A member the
    file does not list gets no spans (each scenario is then settled as always enrolled, and says so)."""
    from .members import Members, read_members
    m = read_members(members, book)
    psn = psn_no
    if psn is None:
        known = [p for p in pd.unique(pd.Series(bill_psn, dtype=object).dropna().astype(str).str.strip()) if p] \
            if bill_psn is not None else []
        if len(known) == 1:
            psn = known[0]
        elif len(m.psn_nos) == 1:
            psn = str(m.psn_nos[0])
        else:
            raise ValueError(tr(f"{m.source} 列出 {len(m.psn_nos)} 名人员，账单没有人员编号（psn_no）：请指定一人"
                                f"（--psn-no / psn_no=）",
                                f"{m.source} lists {len(m.psn_nos)} members and the bill names none (psn_no): "
                                f"name one (--psn-no / psn_no=)"))
    own = m.spans[m.spans["psn_no"].astype(str) == str(psn)]
    spans = pd.concat([own.assign(psn_no=sid, region="", scheme="") for sid in ids], ignore_index=True) \
        if len(own) else own.copy()
    return Members(spans.reset_index(drop=True), m.source), str(psn)


def _results(settlement, ids: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    """Settled fields (fen) reindexed to ``ids`` and the reason for each id that did not settle."""
    raw = settlement.raw.set_index(settlement.raw["mdtrt_id"].astype(str))
    raw = raw.reindex(list(ids))
    reasons = pd.Series("", index=list(ids), dtype=object)
    errs = settlement.errors
    if len(errs):
        common = [i for i in errs.index.astype(str) if i in reasons.index]
        reasons.loc[common] = [str(errs[i]) for i in common]
    rej = settlement.rejects
    if len(rej):
        first = rej.drop_duplicates("mdtrt_id").set_index(rej.drop_duplicates("mdtrt_id")["mdtrt_id"].astype(str))
        for i in first.index:
            if i in reasons.index and not reasons[i]:
                r = first.loc[i]
                reasons[i] = tr(f"列 {r['column']}：{r['reason']}", f"column {r['column']}: {r['reason']}")
    missing = raw["medfee_sumamt"].isna() & (reasons == "")
    reasons[missing] = "not settled"
    return raw, reasons


def _money_columns(raw: pd.DataFrame) -> dict:
    out = {}
    for c in MONEY_FIELDS:
        out[c] = (raw[c].astype(float) / 100).round(2).to_numpy()
    return out


def compare_scenarios(bill_lines, regions: Iterable = DEFAULT_REGIONS, statuses: Iterable = ("在职", "退休"),
                      hosp_levels: Iterable = (3,), date=DEFAULT_DATE, book=None, *, scheme=None, age=None,
                      accounts=None, members=None, psn_no: str | None = None) -> pd.DataFrame:
    """Settle one bill as if it had been incurred in each region × status × hospital level.

    ``bill_lines``: the bill's lines (DataFrame or list of dicts, national or Chinese headers). Its
    member columns (insuplc, insutype, psn_type, age, hosp_lv, setl_time, mdtrt_area, fil_type) are
    replaced by each scenario's; ``med_type`` and item columns are kept. ``statuses``: 在职, 退休 (职工)
    or 居民 (the table's adult group) or a table's own group name. ``scheme`` forces 职工/居民.
    ``age``: default 45 在职 / 65 退休 / 40 居民. ``accounts``: personal account balance in yuan.
    ``members``: a members file (path, frame or ``read_members``): the member's enrolment (spans, waiting
    period, breaks, 大病 rewards) is applied in every scenario, under each scenario's scheme and rules
    (``psn_no``: which member; default the bill's). The table then gains ``eligibility`` (待遇资格),
    ``benefit_from``, ``wait_months`` and ``reward`` (yuan added to the 大病 cap); ``attrs["psn_no"]``.

    Returns one row per scenario in the order asked; rows that cannot be settled keep NaN amounts
    and the reason.
    """
    book = _book(book)
    lines = _line_frame(bill_lines)
    bill_psn = lines["psn_no"] if "psn_no" in lines.columns else None
    for c in _SCENARIO_COLUMNS:
        if c in lines.columns:
            lines = lines.drop(columns=c)
    day = str(pd.Timestamp(date).date())
    regions, statuses, hosp_levels = list(regions), list(statuses), [int(h) for h in hosp_levels]
    specs, frames = [], []
    for region in regions:
        for status in statuses:
            mem = resolve_member(book, region, status, scheme)
            for lv in hosp_levels:
                sid = f"scenario-{len(specs):04d}"
                a = age if age is not None else default_age(mem["psn_type"] or status, mem["scheme"] or "employee")
                specs.append({"id": sid, "region": mem["region"], "scheme":
                              codes.SCHEME_LABEL[mem["scheme"]][0] if mem["scheme"] else "",
                              "status": status, "psn_type": mem["psn_type"], "age": a, "hosp_lv": lv,
                              "pre_reason": mem["reason"]})
                if mem["reason"]:
                    continue
                f = lines.copy()
                f["mdtrt_id"] = sid
                f["psn_no"] = sid
                f["setl_time"] = day
                f["insuplc"] = mem["rid"]
                f["insutype"] = mem["scheme"]
                f["psn_type"] = mem["psn_type"]
                f["age"] = a
                f["hosp_lv"] = lv
                frames.append(f)
    spec = pd.DataFrame(specs)
    if not len(spec):
        return pd.DataFrame(columns=["region", "scheme", "status", "psn_type", "age", "hosp_lv", "settled",
                                     *MONEY_FIELDS, "fund_share", "patient_share", "n_warnings", "warnings",
                                     "reason"])
    ids = spec["id"].tolist()
    if frames:
        acc = None
        if accounts is not None:
            acc = {sid: accounts for sid in spec.loc[spec["pre_reason"] == "", "id"]}
        mem = None
        if members is not None:
            mem, psn_no = scenario_members(members, book, psn_no, spec.loc[spec["pre_reason"] == "", "id"].tolist(),
                                           bill_psn)
        settlement = _settle(pd.concat(frames, ignore_index=True), book, acc, mem)
        raw, reasons = _results(settlement, ids)
    else:
        raw = pd.DataFrame(index=ids, columns=[*MONEY_FIELDS, "warnings", "med_type"], dtype=float)
        reasons = pd.Series("", index=ids, dtype=object)
    reasons = pd.Series(np.where(spec["pre_reason"].to_numpy() != "", spec["pre_reason"].to_numpy(),
                                 reasons.to_numpy()), index=ids)
    out = spec[["region", "scheme", "status", "psn_type", "age", "hosp_lv"]].copy()
    med = lines["med_type"].astype(str).map(lambda v: codes.parse_med_type(v) or v).iat[0]
    out.insert(6, "med_type", codes.MED_TYPE_LABEL.get(med, (med,))[0])
    out["settled"] = (reasons == "").to_numpy()
    money = _money_columns(raw)
    for c in MONEY_FIELDS:
        out[c] = np.where(out["settled"], money[c], np.nan)
    total = out["medfee_sumamt"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["fund_share"] = np.round(out["fund_pay_sumamt"].to_numpy(float) / total, 4)
        out["patient_share"] = np.round(out["psn_part_amt"].to_numpy(float) / total, 4)
    warn = (raw["warnings"].astype(object).fillna("").astype(str).to_numpy() if "warnings" in raw
            else np.full(len(out), ""))
    out["n_warnings"] = [len([w for w in s.split("; ") if w]) for s in warn]
    out["warnings"] = warn
    out["reason"] = reasons.to_numpy()
    if members is not None:
        _member_columns(out, raw)
        out.attrs["psn_no"] = psn_no
    return out.reset_index(drop=True)


def _member_columns(out: pd.DataFrame, raw: pd.DataFrame) -> None:
    """The member's enrolment in each scenario (``compare_scenarios(members=…)``): 待遇资格 as the bills
    say it, the day benefits start after a wait, the wait in months and the 大病 cap reward (yuan)."""
    from .members import eligibility_texts
    ok = out["settled"].to_numpy(bool)
    elig = np.full(len(out), "", dtype=object)
    if ok.any() and "member_listed" in raw.columns:
        r = raw[ok]
        elig[ok] = eligibility_texts(r.assign(member_listed=r["member_listed"].astype(bool),
                                              member_eligible=r["member_eligible"].astype(bool)))
        frm = pd.to_datetime(raw["member_benefit_from"]).dt.strftime("%Y-%m-%d").fillna("").to_numpy(dtype=object)
        out["eligibility"] = elig
        out["eligible"] = np.where(ok, raw["member_eligible"].to_numpy(dtype=object), None)
        out["benefit_from"] = np.where(ok, frm, "")
        out["wait_months"] = np.where(ok, raw["member_wait_months"].fillna(-1).to_numpy(), np.nan)
        out["reward"] = np.where(ok, raw["member_reward"].fillna(0).to_numpy(float) / 100, np.nan)
    else:
        out["eligibility"] = elig
        out["eligible"] = None
        out["benefit_from"] = ""
        out["wait_months"] = np.nan
        out["reward"] = np.nan


def key_fields(settlement, mdtrt_id: str | None = None) -> pd.DataFrame:
    """One bill's settlement fields as a two-column table (项目, 金额 in yuan text)."""
    b = settlement.raw
    if mdtrt_id is None:
        if len(b) != 1:
            raise ValueError(f"{len(b)} bills settled: name one with mdtrt_id=")
        r = b.iloc[0]
    else:
        r = b.loc[b["mdtrt_id"].astype(str) == str(mdtrt_id)].iloc[0]
    return pd.DataFrame({"项目": [ZH[c] for c in MONEY_FIELDS],
                         "金额": [f"{int(r[c]) / 100:,.2f}" for c in MONEY_FIELDS]})


DISPLAY_COLUMNS = ("region", "scheme", "status", "psn_type", "hosp_lv", "medfee_sumamt", "act_pay_dedc",
                   "fund_pay_sumamt", "psn_part_amt", "patient_share", "eligibility", "reason")


def display_table(table: pd.DataFrame, columns: Sequence[str] = DISPLAY_COLUMNS, lang: str = "zh",
                  reason_width: int = 40) -> pd.DataFrame:
    """A compact, rounded copy for people: selected columns, Chinese headers, hospital level as a word,
    long reasons shortened (the full text stays in ``table['reason']``)."""
    cols = [c for c in columns if c in table.columns]
    out = table[cols].copy()
    if "hosp_lv" in out:
        out["hosp_lv"] = out["hosp_lv"].map(
            lambda v: tr(*codes.HOSP_LV_LABEL[int(v)], lang=lang) if pd.notna(v) and int(v) in codes.HOSP_LV_LABEL
            else ("" if pd.isna(v) else str(v)))
    for c in ("scheme", "status", "psn_type"):
        if c in out:
            out[c] = out[c].map(lambda v: member_word(v, lang))
    for c in out.columns:
        if c in ("fund_share", "patient_share", "mean_share", "median_share"):
            out[c] = out[c].map(lambda v: "" if pd.isna(v) else f"{v * 100:.1f}%")
        elif c in MONEY_FIELDS or c in ("total", "fund", "patient", "acct", "cash"):
            out[c] = out[c].map(lambda v: "" if pd.isna(v) else f"{v:,.2f}")
    if "reason" in out:
        out["reason"] = out["reason"].fillna("").astype(str).map(
            lambda s: s if len(s) <= reason_width else s[: reason_width - 1] + "…")
    out.columns = [tr(ZH.get(c, c), EN.get(c, c), lang=lang) for c in out.columns]
    return out.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# out-of-pocket curves
# ---------------------------------------------------------------------------------------------
DEFAULT_TOTALS = np.r_[1000, 2000, 3000, np.arange(5000, 500001, 5000)].astype(float)


def oop_curve_grid(regions: Iterable = DEFAULT_REGIONS, statuses: Iterable = ("在职", "退休"), hosp_lv: int = 3,
                   totals=None, date=DEFAULT_DATE, book=None, *, scheme=None, med_type="21", age=None,
                   class_b_share: float = 0.3, self_pay_share: float = 0.05, excluded: float = 0.0,
                   class_b_selfpay: float | None = 0.10) -> pd.DataFrame:
    """Out-of-pocket (psn_part_amt) against total cost for every region × status, settled in ONE call.

    Each point is its own member (a first bill of the year). Columns: region, scheme, status,
    psn_type, hosp_lv, total, medfee_sumamt, fund_pay_sumamt, psn_part_amt, patient_share, settled, reason.
    """
    book = _book(book)
    totals = np.asarray(DEFAULT_TOTALS if totals is None else totals, dtype=float)
    day = str(pd.Timestamp(date).date())
    mt = codes.parse_med_type(med_type) or str(med_type)
    curves, members = [], []
    for region in regions:
        for status in statuses:
            mem = resolve_member(book, region, status, scheme)
            k = len(curves)
            curves.append(mem)
            if mem["reason"]:
                continue
            ids = [f"curve{k:03d}-{i:04d}" for i in range(len(totals))]
            members.append(pd.DataFrame({
                "mdtrt_id": ids, "psn_no": ids, "setl_time": day, "insuplc": mem["rid"], "insutype": mem["scheme"],
                "psn_type": mem["psn_type"],
                "age": age if age is not None else default_age(mem["psn_type"] or status, mem["scheme"]),
                "med_type": mt, "hosp_lv": int(hosp_lv), "_total": totals}))
    raw = reasons = None
    if members:
        mem_frame = pd.concat(members, ignore_index=True)
        lines = _bills_frame(mem_frame["_total"].to_numpy(), class_b_share, self_pay_share, excluded,
                             class_b_selfpay, members=mem_frame.drop(columns="_total"))
        settlement = _settle(lines, book)
        raw, reasons = _results(settlement, mem_frame["mdtrt_id"].tolist())
    out = []
    for k, mem in enumerate(curves):
        f = pd.DataFrame({"region": mem["region"], "scheme": codes.SCHEME_LABEL[mem["scheme"]][0]
                          if mem["scheme"] else "", "status": mem["status"], "psn_type": mem["psn_type"],
                          "hosp_lv": int(hosp_lv), "total": totals})
        if mem["reason"]:
            for c in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt", "patient_share"):
                f[c] = np.nan
            f["settled"] = False
            f["reason"] = mem["reason"]
        else:
            ids = [f"curve{k:03d}-{i:04d}" for i in range(len(totals))]
            r, why = raw.loc[ids], reasons.loc[ids].to_numpy()
            ok = why == ""
            for c in ("medfee_sumamt", "fund_pay_sumamt", "psn_part_amt"):
                f[c] = np.where(ok, (r[c].astype(float) / 100).round(2).to_numpy(), np.nan)
            with np.errstate(invalid="ignore", divide="ignore"):
                f["patient_share"] = np.round(f["psn_part_amt"] / f["medfee_sumamt"], 4)
            f["settled"] = ok
            f["reason"] = why
        out.append(f)
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame()


def oop_curve(region, scheme="职工", psn_type: str = "在职", hosp_lv: int = 3, totals=None, date=DEFAULT_DATE,
              book=None, **kw) -> pd.DataFrame:
    """Out-of-pocket against total cost for one region × scheme × member group (one batch call)."""
    return oop_curve_grid([region], [psn_type], hosp_lv, totals, date, book, scheme=scheme, **kw)


def curve_summary(curves: pd.DataFrame, at=(10000, 50000, 100000, 200000, 500000)) -> pd.DataFrame:
    """个人负担 (yuan) at a few total costs: one row per curve (in the curves' order), one column per total."""
    rows = []
    for key, g in curves.groupby(["region", "scheme", "status", "hosp_lv"], sort=False):
        row = dict(zip(["region", "scheme", "status", "hosp_lv"], key))
        row["psn_type"] = g["psn_type"].iat[0]
        vals = g.set_index("total")["psn_part_amt"]
        for t in at:
            label = f"{t / 10000:g}万" if t >= 10000 else f"{t:g}"
            row[label] = vals.get(float(t), np.nan)
        row["reason"] = g["reason"].iat[0]
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# batch report
# ---------------------------------------------------------------------------------------------
def bill_shares(settlement) -> pd.DataFrame:
    """One row per settled bill: who/where/what and the fund vs patient split (yuan, share)."""
    b = settlement.raw
    book = settlement.book
    out = pd.DataFrame({
        "mdtrt_id": b["mdtrt_id"].astype(str).to_numpy(),
        "region": [book.region_label(r) for r in b["region"]],
        "scheme": [codes.SCHEME_LABEL.get(s, (s,))[0] for s in b["scheme"]],
        "psn_type": b["psn_type"].astype(str).to_numpy(),
        "visit": [codes.MED_TYPE_LABEL.get(m, (m,))[0] for m in b["med_type"]],
        "hosp_lv": b["hosp_lv"].astype(int).to_numpy(),
        "total": (b["medfee_sumamt"] / 100).round(2).to_numpy(),
        "fund": (b["fund_pay_sumamt"] / 100).round(2).to_numpy(),
        "patient": (b["psn_part_amt"] / 100).round(2).to_numpy(),
        "acct": (b["acct_pay"] / 100).round(2).to_numpy(),
        "cash": (b["psn_cash_pay"] / 100).round(2).to_numpy(),
    })
    with np.errstate(invalid="ignore", divide="ignore"):
        out["patient_share"] = np.round(out["patient"] / out["total"], 4)
    return out.sort_values("mdtrt_id", kind="stable").reset_index(drop=True)


def share_summary(bills: pd.DataFrame, by: Sequence[str] = ("region", "scheme", "visit")) -> pd.DataFrame:
    """Grouped totals: number of bills, cost, fund, patient (yuan) and the patient's share."""
    g = bills.groupby(list(by), sort=False)
    out = g.agg(bills=("mdtrt_id", "size"), total=("total", "sum"), fund=("fund", "sum"),
                patient=("patient", "sum"), median_share=("patient_share", "median")).reset_index()
    for c in ("total", "fund", "patient"):
        out[c] = out[c].round(2)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["patient_share"] = np.round(out["patient"] / out["total"], 4)
    out["median_share"] = out["median_share"].round(4)
    return out


def reject_summary(rejects: pd.DataFrame) -> pd.DataFrame:
    """One row per rejected bill: its first reason and the rows involved."""
    if not len(rejects):
        return pd.DataFrame(columns=["mdtrt_id", "rows", "column", "reason"])
    r = rejects.copy()
    r["mdtrt_id"] = r["mdtrt_id"].astype(str)
    g = r.groupby("mdtrt_id", sort=True)
    out = g.agg(rows=("row", lambda s: ",".join(str(int(x)) for x in sorted(set(s)))),
                column=("column", "first"), reason=("reason", "first")).reset_index()
    return out


def members_at_limits(settlement) -> pd.DataFrame:
    """Members whose year reached a cap (封顶线) or drew 大病保险 / 大额补助 payments.

    One row per member × region × scheme × policy year: bills, total cost, what the pooled fund
    paid, the cost above the cap, what 大病/大额 paid, and the patient's share (yuan; summed in fen).
    Needs the engine's intermediate columns (a settlement from ``settle``/``score_frame``).
    """
    b = settlement.raw
    book = settlement.book
    cols = ["medfee_sumamt", "hifp_pay", "above_cap", "hifmi_pay", "hifob_pay", "psn_part_amt"]
    if not len(b) or "above_cap" not in b.columns:
        return pd.DataFrame(columns=["psn_no", "region", "scheme", "year", "bills", "total", "fund", "above_cap",
                                     "critical", "patient", "hit_cap", "critical_illness"])
    g = b.groupby(["psn_no", "region", "scheme", "policy_year"], sort=True)
    agg = g[cols].sum()
    agg["bills"] = g.size()
    hit_cap = agg["above_cap"] > 0
    critical = (agg["hifmi_pay"] + agg["hifob_pay"]) > 0
    agg = agg[hit_cap | critical].reset_index()
    out = pd.DataFrame({
        "psn_no": agg["psn_no"].astype(str), "region": [book.region_label(r) for r in agg["region"]],
        "scheme": [codes.SCHEME_LABEL.get(s, (s,))[0] for s in agg["scheme"]],
        "year": agg["policy_year"].astype(int), "bills": agg["bills"].astype(int),
        "total": [fen_to_yuan(v) for v in agg["medfee_sumamt"]], "fund": [fen_to_yuan(v) for v in agg["hifp_pay"]],
        "above_cap": [fen_to_yuan(v) for v in agg["above_cap"]],
        "critical": [fen_to_yuan(v) for v in agg["hifmi_pay"] + agg["hifob_pay"]],
        "patient": [fen_to_yuan(v) for v in agg["psn_part_amt"]],
        "hit_cap": (agg["above_cap"] > 0).to_numpy(), "critical_illness": ((agg["hifmi_pay"] + agg["hifob_pay"]) > 0).to_numpy(),
    })
    return out


# ---------------------------------------------------------------------------------------------
# policy parameters per region × year
# ---------------------------------------------------------------------------------------------
def _attrs(psn_type, hosp_lv, hosp_type="", age=np.nan, med_type="21") -> dict:
    return {"psn_type": np.array([psn_type], dtype=object).astype(str),
            "hosp_lv": np.array([hosp_lv], dtype=np.int64), "hosp_type": np.array([hosp_type]).astype(str),
            "age": np.array([age], dtype=float), "psn_idet_type": np.array([""]),
            "med_type": np.array([med_type]), "fil_type": np.array(["local"]),
            "admission": np.array([1], dtype=np.int64)}


def _fmt_amount(fen) -> str:
    return "不设" if int(fen) >= INF_FEN // 2 else f"{int(fen) / 100:,.0f}" if int(fen) % 100 == 0 \
        else f"{int(fen) / 100:,.2f}"


def _fmt_rate(ppm) -> str:
    return f"{int(ppm) / PPM * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _fmt_seg(yuan) -> str:
    y = float(yuan)
    return f"{y / 10000:g}万" if y >= 10000 else f"{y:g}"


def _evaluate_entry(entry, field, target, attrs):
    """(values, rule index, applied adjustment descriptions) of one field for one member."""
    fv = entry.fields.get(field)
    if fv is None or not hasattr(fv, "evaluate"):
        return None, -1, []
    vals, rule = fv.evaluate(attrs, 1)
    if rule[0] < 0:
        return None, -1, []
    adj_done = []
    if entry.adjust:
        vals, applied = apply_adjustments(vals, entry.adjust, attrs, 1, target)
        adj_done = [a.describe() for a, m in zip(entry.adjust, applied) if m[0]]
    return vals, int(rule[0]), adj_done


def _entry_value(entry, kind: str, attrs) -> tuple[str, float, str] | None:
    """Display text, number (yuan or fraction) and rule text, or None if no rule matches."""
    if kind == "ratio":
        vals, ri, adj = _evaluate_entry(entry, "rates", "ratio", attrs)
        if vals is None:
            return None
        rates = [int(v) for v in np.atleast_2d(vals)[0]]
        segs = entry.raw.get("segments") or [0]
        parts = []
        for j, r in enumerate(rates):
            lo = segs[j] if j < len(segs) else None
            parts.append(_fmt_rate(r) + (f"（{_fmt_seg(lo)}起）" if j and lo is not None else ""))
        text, num = " / ".join(parts), rates[0] / PPM
        field = "rates"
    else:
        vals, ri, adj = _evaluate_entry(entry, "amount", "amount", attrs)
        if vals is None:
            return None
        fen = int(np.atleast_1d(vals)[0])
        text = _fmt_amount(fen)
        num = float("inf") if fen >= INF_FEN // 2 else fen / 100
        basis = entry.raw.get("basis")
        if kind == "deductible":
            text += {"per_year": " 元/年", "per_admission": " 元/次"}.get(basis, " 元")
            if entry.raw.get("nth_factor"):
                text += f"（再次住院 ×{entry.raw['nth_factor'][-1]}）"
            elif entry.raw.get("nth_decrement"):
                dec = entry.fields.get("nth_decrement")
                if hasattr(dec, "evaluate"):
                    dv, dr = dec.evaluate(attrs, 1)
                    if dr[0] >= 0 and int(dv[0]):
                        text += f"（再次住院每次递减 {_fmt_amount(int(dv[0]))}）"
                else:
                    text += f"（再次住院每次递减 {dec}）"
        elif kind == "cap" and fen < INF_FEN // 2:
            text += " 元" + {"fund": "（基金支付）", "cost": "（费用）"}.get(basis, "")
        field = "amount"
    rules = entry.fields[field].rules
    rule = rules[ri].describe() if rules[ri].when else ""
    if adj:
        rule = "; ".join([x for x in [rule, *("调整 " + a for a in adj)] if x])
    return text, num, rule


def policy_parameter_table(book=None, param: str = "inpatient.deductible", hosp_lv: int = 3,
                           years: Iterable[int] = (2023, 2024, 2025), *, scheme=None, psn_type: str | None = None,
                           regions: Iterable | None = None, lang: str = "zh") -> pd.DataFrame:
    """One parameter (``benefit.param``: inpatient.deductible / inpatient.ratio / inpatient.cap,
    outpatient.… ) for every region × scheme × year, as in force for a member group at a hospital level.

    One row per entry in force during the year (a rule starting mid-year gives two rows). Values
    with no sourced number are shown as ``missing`` with what was searched. ``psn_type``: default 在职
    for 职工 and the adult group for 居民. Tables whose rules depend on the hospital category (县区/市区 …)
    list each category's value.
    """
    from .policy.coverage import hosp_types
    book = _book(book)
    benefit, _, pname = param.partition(".")
    if pname not in ("deductible", "ratio", "cap"):
        raise ValueError(f"param must be benefit.deductible|ratio|cap, e.g. inpatient.deductible (got {param!r})")
    want_rids = None if regions is None else [book.region_id(r) or r for r in regions]
    want_scheme = None if scheme is None else scheme_code(scheme)
    med_type = {"inpatient": "21", "outpatient": "11", "chronic": "14"}.get(benefit, "21")
    rows = []
    items = sorted(book.tables.items(), key=lambda kv: (book.regions[kv[0][0]].code, kv[0][1]))
    for (rid, sch), t in items:
        if (want_rids is not None and rid not in want_rids) or (want_scheme and sch != want_scheme):
            continue
        if psn_type is not None and psn_type in t.psn_types:
            group = psn_type
        elif sch == "employee":
            group = "在职"
        else:
            group = resolve_member(book, rid, "居民", "resident")["psn_type"]
        base = {"region": book.region_label(rid), "scheme": codes.SCHEME_LABEL[sch][0], "psn_type": group}
        b = t.benefits.get(benefit)
        p = b.params.get(pname) if b is not None else None
        if b is not None and p is None and b.settle_as:
            p = t.benefits[b.settle_as].params.get(pname)
        for year in years:
            jan1, dec31 = dt.date(year, 1, 1), dt.date(year, 12, 31)
            if p is None:
                rows.append({**base, "year": year, "from": str(jan1), "value": "missing", "value_num": np.nan,
                             "rule": "", "status": "missing", "grade": "", "source": "", "issuer": "", "source_date": "", "url": "",
                             "note": f"{benefit}.{pname} not in the table"})
                continue
            entries = p.entries
            live = []
            for i, e in enumerate(entries):
                end = entries[i + 1].start if i + 1 < len(entries) else dt.date(9999, 1, 1)
                if e.start <= dec31 and end > jan1:
                    live.append(e)
            if not entries or entries[0].start > jan1:
                rows.append({**base, "year": year, "from": str(jan1), "value": "missing", "value_num": np.nan,
                             "rule": "", "status": "missing", "grade": "", "source": "", "issuer": "", "source_date": "", "url": "",
                             "note": f"no entry before {entries[0].start}" if entries else "no entries"})
            for e in live:
                start = str(max(e.start, jan1))
                if e.missing:
                    rows.append({**base, "year": year, "from": start, "value": "missing", "value_num": np.nan,
                                 "rule": "", "status": "missing", "grade": "", "source": "", "issuer": "",
                                 "source_date": "", "url": "", "note": " ".join(str(e.missing).split())})
                    continue
                got = _entry_value(e, pname, _attrs(group, hosp_lv, "", np.nan, med_type))
                if got is None:      # rules keyed on hospital category: list each
                    alts = []
                    for ht in hosp_types(t):
                        if not ht:
                            continue
                        g2 = _entry_value(e, pname, _attrs(group, hosp_lv, ht, np.nan, med_type))
                        if g2 is not None:
                            alts.append((ht, g2))
                    if alts:
                        text = " · ".join(f"{ht} {g[0]}" for ht, g in alts)
                        got = (text, alts[0][1][1], "; ".join(dict.fromkeys(g[2] for _, g in alts if g[2])))
                src = e.source
                grade = src.grade if src else ""
                if got is None:
                    rows.append({**base, "year": year, "from": start, "value": "no rule", "value_num": np.nan,
                                 "rule": f"no rule for {group or '(default)'} at {HOSP_LEVELS.get(hosp_lv)}",
                                 "status": "partial", "grade": GRADE_LABEL.get(grade, (grade, grade))[0 if lang ==
                                                                                             "zh" else 1],
                                 "source": src.title if src else "", "issuer": src.issuer if src else "",
                                 "source_date": src.date if src else "",
                                 "url": src.url if src else "", "note": ""})
                    continue
                rows.append({**base, "year": year, "from": start, "value": got[0], "value_num": got[1],
                             "rule": got[2], "status": "secondary" if grade == "secondary" else "sourced",
                             "grade": GRADE_LABEL.get(grade, (grade, grade))[0 if lang == "zh" else 1],
                             "source": src.title if src else "", "issuer": src.issuer if src else "",
                             "source_date": src.date if src else "",
                             "url": src.url if src else "", "note": ""})
    return pd.DataFrame(rows, columns=["region", "scheme", "psn_type", "year", "from", "value", "value_num", "rule",
                                       "status", "grade", "source", "issuer", "source_date", "url", "note"])


def parameter_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Region × scheme rows, one column per year: the value (with ``→`` where it changes mid-year) and a
    grade mark (◐ secondary, ✖ missing)."""
    mark = {"sourced": "", "secondary": " ◐", "missing": "", "partial": " △"}
    t = table.copy()
    gap = tr("✖ 缺失", "✖ missing")
    t["cell"] = [(gap if s == "missing" else f"{v}{mark.get(s, '')}")
                 for v, s in zip(t["value"], t["status"])]
    m = t.pivot_table(index=["region", "scheme"], columns="year", values="cell",
                      aggfunc=lambda cells: " → ".join(dict.fromkeys(cells)), sort=False)
    m.columns = [str(c) for c in m.columns]
    m.index.names = ["地区", "险种"]
    return m.reset_index()


def explanation_text(explanation, hide=("政策版本", "policy version")) -> str:
    """``str(explanation)`` without header lines that change whenever any table file changes."""
    lines = str(explanation).splitlines()
    return "\n".join(ln for ln in lines if not any(ln.startswith(h + ":") for h in hide))

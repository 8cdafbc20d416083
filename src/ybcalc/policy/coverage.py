"""What the tables can be relied on for: region × scheme × visit type × year.

A cell is
  ✔ sourced     every value a bill of that kind needs rests on an official or institutional source;
  ◐ secondary   it settles, but some needed value rests only on a secondary source;
  △ partial     sourced only for some member groups or hospital levels (a decision table with no
                default rule): other bills fail;
  ✖ missing     a needed value (起付线 or 支付比例) has no sourced value: bills fail.
A trailing ``*`` marks cells where the cap (封顶线) or 大病/大额 terms are missing: such bills settle
without them and carry a warning. A suffix says whether 乙类 lines settle without their own 自付比例:
  乙✖  the table has no 乙类先行自付 share: every 乙类 line without its own 自付比例 is refused;
  乙△  the share is sourced for some item kinds only (e.g. drugs): other 乙类 lines need their own.
A cell settles a bill with 甲类, 乙类 and 自费 lines from shipped values alone only when it shows ✔ or ◐
without an 乙 suffix.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .loader import PolicyBook

VISITS = {"21": "住院", "11": "普通门诊", "14": "门诊慢特病"}
RANK = {"official": 0, "institution": 0, "secondary": 1}
SYMBOL = {0: "✔", 1: "◐", 2: "✖"}
STATUS = {0: "sourced", 1: "secondary", 2: "missing"}


def hosp_types(table) -> list[str]:
    """Hospital categories (hosp_type) the table's rules distinguish, e.g. 县区/市区/市属/省属."""
    found = []
    for p in table.all_params():
        for e in p.entries:
            conds = [r.when for f in e.fields.values() for r in getattr(f, "rules", [])]
            conds += [a.when for a in e.adjust]
            for when in conds:
                v = when.get("hosp_type")
                for x in (v if isinstance(v, list) else [v] if v else []):
                    if str(x) not in found:
                        found.append(str(x))
    return found or [""]


def _incomplete(entry, table, med_type: str) -> bool:
    """True if some member group × hospital level (× category) × age has no matching rule."""
    import numpy as np
    groups = table.psn_types or [""]
    grid = [(g, lv, h, age) for g in groups for lv in (0, 1, 2, 3) for h in hosp_types(table)
            for age in (10, 40, 65, 75)]
    n = len(grid)
    attrs = {"psn_type": np.array([x[0] for x in grid]), "hosp_lv": np.array([x[1] for x in grid]),
             "hosp_type": np.array([x[2] for x in grid]), "age": np.array([x[3] for x in grid], dtype=float),
             "psn_idet_type": np.full(n, ""), "med_type": np.full(n, med_type), "fil_type": np.full(n, "local"),
             "admission": np.ones(n, dtype=np.int64)}
    for f in entry.fields.values():
        if hasattr(f, "evaluate"):
            _, rule = f.evaluate(attrs, n)
            if (rule < 0).any():
                return True
    return False


LEGEND_ZH = ("✔ 有来源（官方/机构转载） · ◐ 可结算，部分数值只有二手来源 · △ 只有部分人员类别或医院等级有来源 · "
             "✖ 缺失（账单无法结算） · * 缺少封顶线或大病/大额参数（未计入，账单带提示）")
LEGEND = ("✔ sourced (official/institution) · ◐ settles, some value secondary-only · △ only some member groups or "
          "hospital levels sourced · ✖ missing (bills fail) · * cap or 大病/大额 terms missing (not applied, bill warns) · "
          "乙✖ no 乙类先行自付 share (乙类 lines without their own 自付比例 are refused) · 乙△ share sourced for some "
          "item kinds only")

# 医疗收费项目类别 01–14 (national.yaml): the item kinds a 乙类 line may be
ITEM_KINDS = [f"{i:02d}" for i in range(1, 15)]
SELFPAY_MARK = {"sourced": "", "partial": " 乙△", "missing": " 乙✖"}


def _dates_in_year(params, year: int) -> list[dt.date]:
    dates = {dt.date(year, 1, 1)}
    for p in params:
        for e in p.entries:
            if e.start.year == year:
                dates.add(e.start)
    return sorted(dates)


def _entry_at(param, day: dt.date):
    chosen = None
    for e in param.entries:
        if e.start <= day:
            chosen = e
    return chosen


def _grade_rank(entry) -> int:
    ranks = [RANK.get(entry.source.grade, 1)] if entry.source else [1]
    for f in entry.fields.values():
        for r in getattr(f, "rules", []):
            if r.source is not None:
                ranks.append(RANK.get(r.source.grade, 1))
    for a in entry.adjust:
        if a.source is not None:
            ranks.append(RANK.get(a.source.grade, 1))
    return max(ranks)


def _status_on(t, b, mt, day, needed, optional):
    """(rank, partial, incomplete, notes) for one benefit on one day."""
    worst, partial, incomplete, notes = 0, False, False, []
    for name, p in zip(("起付线", "支付比例"), needed):
        e = _entry_at(p, day) if p else None
        if e is None or e.missing:
            worst = 2
            notes.append(f"{name} missing on {day}")
        else:
            worst = max(worst, _grade_rank(e))
            incomplete |= _incomplete(e, t, mt)
    for p in optional:
        e = _entry_at(p, day) if p else None
        if p is None or e is None or e.missing:
            partial = True
        elif worst < 2:
            worst = max(worst, _grade_rank(e))
    if b.params.get("cap") is None:
        partial = True
    return worst, partial, incomplete and worst < 2, notes


def _selfpay_on(t, day) -> tuple[str, int]:
    """("sourced" | "partial" | "missing", grade rank) of the table's 乙类先行自付 share on one day:
    partial where some item kind (医疗收费项目类别) has no rule."""
    e = _entry_at(t.params["selfpay_prop"], day) if t.params.get("selfpay_prop") else None
    if e is None or e.missing:
        return "missing", 0
    n = len(ITEM_KINDS)
    attrs = {"med_chrgitm_type": np.array(ITEM_KINDS), "chrgitm_lv": np.full(n, 2, dtype=np.int64)}
    f = e.fields.get("rate")
    if hasattr(f, "evaluate"):
        _, rule = f.evaluate(attrs, n)
        if (rule < 0).any():
            return "partial", _grade_rank(e)
    return "sourced", _grade_rank(e)


def _cell(rank, partial, incomplete, selfpay="sourced") -> str:
    sym = "△" if incomplete else SYMBOL[rank]
    return sym + ("*" if partial and rank < 2 else "") + (SELFPAY_MARK[selfpay] if rank < 2 else "")


def coverage(book: PolicyBook, years=(2023, 2024, 2025)) -> pd.DataFrame:
    """One row per region × scheme × visit type × year × date on which the terms change."""
    rows = []
    for (rid, scheme), t in sorted(book.tables.items(), key=lambda kv: (book.regions[kv[0][0]].code, kv[0][1])):
        for mt, visit in VISITS.items():
            bname = t.benefit_for(mt)
            for year in years:
                if bname is None:
                    rows.append((rid, scheme, visit, year, dt.date(year, 1, 1), 2, False, False, "missing",
                                 "no benefit settles this visit type"))
                    continue
                b = t.benefits[bname]
                needed = [b.params.get("deductible"), b.params.get("ratio")]
                optional = [b.params.get("cap"), *t.critical.values()]
                selfpay = [t.params["selfpay_prop"]] if t.params.get("selfpay_prop") else []
                for day in _dates_in_year([p for p in needed + optional + selfpay if p], year):
                    rank, partial, incomplete, notes = _status_on(t, b, mt, day, needed, optional)
                    sp, sp_rank = _selfpay_on(t, day)
                    if rank < 2 and sp != "missing":
                        rank = max(rank, sp_rank)
                    rows.append((rid, scheme, visit, year, day, rank, partial, incomplete, sp, "; ".join(notes)))
    df = pd.DataFrame(rows, columns=["region", "scheme", "visit", "year", "date", "rank", "partial", "incomplete",
                                     "selfpay", "detail"])
    df["status"] = df["rank"].map(STATUS).where(~df["incomplete"], "partial")
    df["cell"] = [_cell(r, p, i, sp) for r, p, i, sp in zip(df["rank"], df["partial"], df["incomplete"],
                                                              df["selfpay"])]
    return df


def coverage_matrix(book: PolicyBook, years=(2023, 2024, 2025)) -> pd.DataFrame:
    df = coverage(book, years)
    df["地区"] = df["region"].map(lambda r: book.regions[r].short)
    df["险种"] = df["scheme"].map({"employee": "职工", "resident": "居民"})
    # a year whose terms change shows each state in order: ✖→◐ (e.g. rules that start mid-year)
    m = df.pivot_table(index=["地区", "险种", "visit"], columns="year", values="cell",
                       aggfunc=lambda cells: "→".join(dict.fromkeys(cells)), sort=False)
    m.columns = [str(c) for c in m.columns]
    m.index.names = ["地区", "险种", "就诊"]
    return m.reset_index()


def coverage_markdown(book: PolicyBook, years=(2023, 2024, 2025)) -> str:
    m = coverage_matrix(book, years)
    head = "| " + " | ".join(m.columns) + " |"
    sep = "|" + "---|" * len(m.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in m.itertuples(index=False)]
    legend = LEGEND
    return "\n".join([head, sep, *body, "", legend])


SUMMARY_LEGEND = ("✔/◐ 用随附参数即可结算（◐ 有值只来自二手来源）· △ 只有部分人员类别或医院等级有值 · ✖ 缺起付线或支付比例，"
                  "不能结算 · * 缺封顶线或大病/大额（不计，账单带警告）· 乙✖ 没有乙类先行自付比例：乙类行须自带自付比例 · "
                  "乙△ 只有部分项目类别（如药品）有比例")


def coverage_summary(book: PolicyBook, year: int = 2025) -> pd.DataFrame:
    """One row per region × scheme: the state of each visit type at the end of ``year`` (the last state
    of the year in the full matrix)."""
    df = coverage(book, (year,))
    last = df.sort_values("date").groupby(["region", "scheme", "visit"], sort=False).tail(1)
    last = last.assign(地区=last["region"].map(lambda r: book.regions[r].short),
                       险种=last["scheme"].map({"employee": "职工", "resident": "居民"}))
    order = {rid: book.regions[rid].code for rid in last["region"]}
    last = last.assign(_o=last["region"].map(order)).sort_values(["_o", "scheme"], kind="stable")
    m = last.pivot_table(index=["地区", "险种"], columns="visit", values="cell", aggfunc="first", sort=False)
    return m[[v for v in VISITS.values() if v in m.columns]].reset_index()


def coverage_summary_markdown(book: PolicyBook, year: int = 2025) -> str:
    m = coverage_summary(book, year)
    head = "| " + " | ".join([*m.columns[:2], *(f"{c}（{year}）" for c in m.columns[2:])]) + " |"
    sep = "|" + "---|" * len(m.columns)
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in m.itertuples(index=False)]
    return "\n".join([head, sep, *body, "", SUMMARY_LEGEND])

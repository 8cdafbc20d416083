"""What the tables can be relied on for: region × scheme × visit type × year.

A cell is
  ✔ sourced     every value a bill of that kind needs rests on an official or institutional source;
  ◐ secondary   it settles, but some needed value rests only on a secondary source;
  △ partial     sourced only for some member groups or hospital levels (a decision table with no
                default rule): other bills fail;
  ✖ missing     a needed value (起付线 or 支付比例) has no sourced value: bills fail.
A trailing ``*`` marks cells where the cap (封顶线) or 大病/大额 terms are missing: such bills settle
without them and carry a warning.
"""
from __future__ import annotations

import datetime as dt

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
          "hospital levels sourced · ✖ missing (bills fail) · * cap or 大病/大额 terms missing (not applied, bill warns)")


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


def _cell(rank, partial, incomplete) -> str:
    sym = "△" if incomplete else SYMBOL[rank]
    return sym + ("*" if partial and rank < 2 else "")


def coverage(book: PolicyBook, years=(2023, 2024, 2025)) -> pd.DataFrame:
    """One row per region × scheme × visit type × year × date on which the terms change."""
    rows = []
    for (rid, scheme), t in sorted(book.tables.items(), key=lambda kv: (book.regions[kv[0][0]].code, kv[0][1])):
        for mt, visit in VISITS.items():
            bname = t.benefit_for(mt)
            for year in years:
                if bname is None:
                    rows.append((rid, scheme, visit, year, dt.date(year, 1, 1), 2, False, False,
                                 "no benefit settles this visit type"))
                    continue
                b = t.benefits[bname]
                needed = [b.params.get("deductible"), b.params.get("ratio")]
                optional = [b.params.get("cap"), *t.critical.values()]
                for day in _dates_in_year([p for p in needed + optional if p], year):
                    rank, partial, incomplete, notes = _status_on(t, b, mt, day, needed, optional)
                    rows.append((rid, scheme, visit, year, day, rank, partial, incomplete, "; ".join(notes)))
    df = pd.DataFrame(rows, columns=["region", "scheme", "visit", "year", "date", "rank", "partial", "incomplete",
                                     "detail"])
    df["status"] = df["rank"].map(STATUS).where(~df["incomplete"], "partial")
    df["cell"] = [_cell(r, p, i) for r, p, i in zip(df["rank"], df["partial"], df["incomplete"])]
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

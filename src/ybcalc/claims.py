"""直接结算 or 手工报销: a manual claim is paid only when filed within its region's deadline (issue 17).

A bill may say how it was settled (``settle_mode``, 结算方式) and, for a claim filed by hand (异地 without
filing, a hospital not connected, care without the card), the day it was filed (``claim_date``, 申报日期).
The deadline is each region's (``manual_claim_deadline`` in the region × scheme table: months or days from
费用发生之日 / 出院之日 / 结算之日). A claim filed after it gets nothing from the funds: it takes the same path
as a bill the member is not eligible for (``engine.settle``: ``_ineligible``), so the patient pays all.

The deadline counts as the 民法典 counts a period (第二百零一条、第二百零二条): the day of the event is not
counted, and a period of months ends on the corresponding day of the last month (its last day when the
month has none). The bill's date stands for the day the notice names: the settlement date, which for an
inpatient bill is the discharge day, or the bill's last fee day where only fee dates are given.

Everything here works on whole arrays of bills, table entry by table entry.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .engine.settle import map_distinct
from .i18n import tr

# claim_status per bill
DIRECT = -1        # settled directly at the hospital (no claim)
LATE = 0           # filed after the deadline: the funds pay nothing
IN_TIME = 1
UNDATED = 2        # no filing date: the deadline could not be checked (settled as in time)
UNKNOWN = 3        # the region's deadline is not in the tables (settled as in time)

COUNTS_FROM = {"care": ("费用发生之日", "the day of care"), "discharge": ("出院之日", "discharge"),
               "settlement": ("结算之日", "settlement")}


def claim_terms(bills: pd.DataFrame, book, warn) -> dict:
    """Per bill (arrays in ``bills`` order): ``status`` (see the constants above), ``deadline`` (the last day
    to file, datetime64[D], NaT where none) and ``entry`` (uid of the table entry, -1 where none).

    ``warn(rows, message, kind)`` records a bill warning. The rule is the one in force on the bill's policy
    date (its date of care, or ``--on``)."""
    n = len(bills)
    manual = bills["settle_mode"].to_numpy(dtype=object) == "manual"
    filed = bills["claim_date"].to_numpy("datetime64[D]")
    day = bills["setl_date"].to_numpy("datetime64[D]")
    policy_day = bills["policy_date"].to_numpy("datetime64[D]")
    status = np.where(manual, UNKNOWN, DIRECT).astype(np.int8)
    deadline = np.full(n, np.datetime64("NaT"), "datetime64[D]")
    entry = np.full(n, -1, np.int64)
    if not manual.any():
        return {"status": status, "deadline": deadline, "entry": entry}
    from .members import add_months
    region = bills["region"].to_numpy(dtype=object)
    scheme = bills["scheme"].to_numpy(dtype=object)
    key = pd.Series(region).str.cat(pd.Series(scheme), sep="/").to_numpy(dtype=object)
    for k in pd.unique(key[manual]):
        rows = manual & (key == k)
        t = book.tables.get(tuple(k.split("/", 1)))
        param = t.params.get("manual_claim_deadline") if t is not None else None
        which = param.entry_index(policy_day) if param is not None else np.full(n, -1, np.int64)
        for i in np.unique(which[rows]):
            r = np.flatnonzero(rows & (which == i))
            e = param.entries[i] if i >= 0 else None
            if e is None or e.missing:
                label = t.title if t is not None else k
                warn(r, tr(f"{label}：手工报销申报时限无已核实数值，未核对时限，按时限内结算",
                           f"{label}: no sourced manual-claim deadline, not checked, settled as filed in time"),
                     "missing")
                continue
            f = e.fields
            deadline[r] = (add_months(day[r], np.full(len(r), int(f["months"]))) if "months" in f
                           else day[r] + np.timedelta64(int(f["days"]), "D"))
            entry[r] = e.uid
            status[r] = np.where(np.isnat(filed[r]), UNDATED, np.where(filed[r] <= deadline[r], IN_TIME, LATE))
    undated = np.flatnonzero(status == UNDATED)
    if len(undated):
        warn(undated, tr("手工报销未填申报日期，未核对申报时限，按时限内结算",
                         "manual claim without a filing date (claim_date): the deadline was not checked, settled as "
                         "filed in time"), "input")
    return {"status": status, "deadline": deadline, "entry": entry}


def period_words(e, lang: str | None = None) -> str:
    """An entry's time limit as a notice words it: 费用发生之日起 12 个月."""
    f = e.fields
    start = tr(*COUNTS_FROM.get(f.get("counts_from"), (f.get("counts_from"),) * 2), lang=lang)
    if "months" in f:
        return tr(f"{start}起 {f['months']} 个月", f"{f['months']} months from {start}", lang=lang)
    return tr(f"{start}起 {f['days']} 天", f"{f['days']} days from {start}", lang=lang)


def _limit(e, lang):
    f = e.fields
    return (tr(f"{f['months']} 个月", f"{f['months']}-month", lang=lang) if "months" in f
            else tr(f"{f['days']} 天", f"{f['days']}-day", lang=lang))


def claim_texts(raw: pd.DataFrame, book, lang: str | None = None) -> np.ndarray:
    """The 申报时限 column of the bill output: empty for a direct settlement, else 是 / 否：超过 12 个月申报时限
    （至 2026-03-15） / 未核对：未填申报日期 / 未核对：时限未收录."""
    status = raw["claim_status"].to_numpy(np.int64)
    entry = raw["claim_entry"].to_numpy(np.int64)
    last = raw["claim_deadline"].to_numpy("datetime64[D]")
    key = pd.Series(status).astype(str).str.cat([pd.Series(entry).astype(str),
                                                 pd.Series(np.datetime_as_string(last, unit="D"))], sep="|")
    return map_distinct(key.to_numpy(dtype=object), lambda u: _claim_text(u, book, lang))


def _claim_text(u: str, book, lang) -> str:
    s, uid, d = u.split("|")
    s = int(s)
    if s == DIRECT:
        return ""
    if s == IN_TIME:
        return tr(f"是（至 {d}）", f"yes (by {d})", lang)
    if s == LATE:
        lim = _limit(book.entries[int(uid)], lang)
        return tr(f"否：超过 {lim}申报时限（至 {d}）", f"no: past the {lim} deadline ({d})", lang)
    if s == UNDATED:
        return tr("未核对：未填申报日期", "not checked: no filing date", lang)
    return tr("未核对：时限未收录", "not checked: deadline not in the tables", lang)


def explain_step(book, r, lang: str) -> tuple[str, str, str, str] | None:
    """(item, status, rule, source) of the claim step of one bill row; None for a direct settlement."""
    if "claim_status" not in r.index or int(r["claim_status"]) == DIRECT:
        return None
    status = int(r["claim_status"])
    item = tr("手工报销申报时限", "manual claim deadline", lang)
    filed = r["claim_date"]
    filed_text = (tr(f"申报日期 {pd.Timestamp(filed).date()}", f"filed on {pd.Timestamp(filed).date()}", lang)
                  if pd.notna(filed) else tr("未填申报日期", "no filing date", lang))
    uid = int(r["claim_entry"])
    if uid < 0:
        return (item, tr("未核对", "not checked", lang),
                tr(f"手工报销，{filed_text}；本地区申报时限未收录，未核对，按时限内结算",
                   f"manual claim, {filed_text}, the region's deadline is not in the tables: not checked, settled as "
                   f"filed in time", lang), "")
    e = book.entries[uid]
    last = pd.Timestamp(r["claim_deadline"]).date()
    rule = tr(f"手工报销，{filed_text}；时限：{period_words(e, lang)}（至 {last}）",
              f"manual claim, {filed_text}, time limit: {period_words(e, lang)} (by {last})", lang)
    if status == LATE:
        rule += tr("：已超过时限，医保基金不予支付，全部费用由个人负担",
                   ": filed too late, the funds pay nothing and the patient pays all", lang)
        amount = tr("否", "no", lang)
    elif status == IN_TIME:
        rule += tr("：在时限内，按参保地规定结算", ": in time, settled under the insured region's rules", lang)
        amount = tr("是", "yes", lang)
    else:
        rule += tr("：未核对，按时限内结算", ": not checked, settled as filed in time", lang)
        amount = tr("未核对", "not checked", lang)
    source = (e.source.cite(lang) + f" — {e.key}") if e.source else e.key
    return item, amount, rule, source

"""One member's year on a timeline (notebook “一年的就医”, ``plotting.member_year``, ``widgets.MemberYearView``).

``member_year(settlement, psn_no, members)`` gathers from a settlement (of a members file's bills, with
``members=``) what a person follows through a year: the enrolment spans and their 参保地, the waiting
periods, each bill (date, cost, what the funds paid and what the patient paid, eligible or why not), the
deductible paid so far, the pooled fund's cap reached, the personal account's balance after each payment
from it (the member's own bills and, with family accounts (家庭共济), the family's bills it paid), and the
payments made for this member from a relative's account. Amounts are yuan, summed from the engine's fen.

``with_break(members, psn_no, break_years=…, repaid_years=…)`` is the what-if of the notebook's toggles
(断缴 N 年 / 补缴 M 年): the same members with one member's span changed, to settle again.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import codes
from .i18n import tr


@dataclass
class MemberYear:
    """What ``member_year`` returns (yuan; dates as ``datetime64``)."""
    psn_no: str
    year: int
    spans: pd.DataFrame          # begin, end (clipped to the year), region, scheme, wait_from, benefit_from, wait_months
    bills: pd.DataFrame          # one row per bill of the member in the year, in date order (see member_year)
    account: pd.DataFrame        # date, mdtrt_id, psn_no (whose bill), paid, balance: this member's account
    opening_balance: float | None  # the account at the start (None: no account given)

    @property
    def deductible_paid(self) -> float:
        return float(self.bills["deductible"].sum()) if len(self.bills) else 0.0

    @property
    def cap_reached(self) -> bool:
        return bool(self.bills["cap_reached"].any()) if len(self.bills) else False


def _yuan(fen) -> np.ndarray:
    return np.round(np.asarray(fen, dtype=float) / 100, 2)


def _col(raw: pd.DataFrame, name: str, default=0) -> np.ndarray:
    return raw[name].fillna(default).to_numpy() if name in raw.columns else np.full(len(raw), default)


def member_year(settlement, psn_no: str, members=None, year: int | None = None, accounts=None,
                lang: str | None = None) -> MemberYear:
    """The year of ``psn_no`` (default: the year of the member's first bill) from a settlement with the
    engine's intermediate columns (``settle``, ``score_frame``, ``score_file(keep_intermediate=True)``).

    ``members``: the members file the settlement used (path, frame or ``read_members``), for the spans and
    waiting periods (without it: no spans). ``accounts``: the opening balances given to the settlement
    (a frame psn_no/acct_balance in yuan, or a mapping); without it the balance before the member's first
    payment stands in. ``bills`` columns: date, mdtrt_id, visit (就诊类型), region, total, fund, patient,
    acct (own account), family (paid from a relative's account, 共济), paid_by (whose), cash, eligible,
    eligibility (text: why not, a late manual claim included), claim (申报时限 of a 手工报销, else ""), deductible (起付线 paid on the bill), deductible_so_far, fund_so_far (统筹 in the
    policy year), cap (统筹 cap of the bill, NaN when none), cap_reached. Texts (visit, scheme,
    eligibility) are in ``lang`` (default: the current language)."""
    raw = settlement.raw
    book = settlement.book
    if "cap_amount" not in raw.columns:        # score_file keeps only the output columns by default
        raise ValueError(tr("member_year 需要结算的中间列：用 ybcalc.settle、score_frame 或 "
                            "score_file(keep_intermediate=True) 结算",
                            "member_year needs the settlement's intermediate columns: settle with ybcalc.settle, "
                            "score_frame or score_file(keep_intermediate=True)"))
    psn = str(psn_no)
    mine = raw[raw["psn_no"].astype(str) == psn].copy()
    mine["_day"] = mine["setl_date"].to_numpy("datetime64[D]")
    if year is None:
        year = int(pd.Timestamp(mine["_day"].min()).year) if len(mine) else pd.Timestamp.today().year
    y0, y1 = np.datetime64(f"{year}-01-01"), np.datetime64(f"{year}-12-31")
    mine = mine[(mine["_day"] >= y0) & (mine["_day"] <= y1)]
    mine = mine.sort_values(["_day", "first_row"] if "first_row" in mine.columns else ["_day"], kind="stable")
    bills = _bill_rows(mine, book, lang)
    spans = _spans(members, book, psn, mine, raw, y0, y1, lang) if members is not None else _no_spans()
    account, opening = _account(raw, psn, accounts, y0, y1)
    return MemberYear(psn, year, spans, bills, account, opening)


def _bill_rows(mine: pd.DataFrame, book, lang=None) -> pd.DataFrame:
    from .members import eligibility_texts
    n = len(mine)
    acct = _col(mine, "acct_pay")
    family = _col(mine, "acct_mulaid_pay")
    payer = (mine["acct_payer"].fillna("").astype(str).to_numpy(dtype=object) if "acct_payer" in mine.columns
             else np.full(n, "", dtype=object))
    hifp = _col(mine, "hifp_pay")
    cap = _col(mine, "cap_amount", np.nan).astype(float) if "cap_amount" in mine.columns else np.full(n, np.nan)
    from .money import INF_FEN
    cap = np.where(cap >= INF_FEN // 2, np.nan, cap)
    # the pooled fund so far against the bill's cap: per policy year, table and cap (住院, 门诊 … each
    # have their own, or share one: the engine's cap_group); a new year or a new region starts again
    group = mine["cap_group"] if "cap_group" in mine.columns else mine["benefit"]
    key = (mine["region"].astype(str) + "|" + mine["scheme"].astype(str) + "|" + group.astype(str) + "|" +
           (mine["policy_year"].astype(str) if "policy_year" in mine.columns else "")).to_numpy()
    fund_so_far = pd.Series(hifp, dtype="int64").groupby(key).cumsum().to_numpy() if n else np.zeros(0)
    listed = "member_listed" in mine.columns
    eligible = mine["member_eligible"].astype(bool).to_numpy() if listed else np.ones(n, bool)
    eligibility = eligibility_texts(mine, lang) if listed and n else np.full(n, "", dtype=object)
    claim = np.full(n, "", dtype=object)
    if "claim_status" in mine.columns and n:     # 手工报销: a claim filed too late gets nothing from the funds
        from .claims import LATE, claim_texts
        claim = claim_texts(mine, book, lang)
        late = eligible & (mine["claim_status"].to_numpy(np.int64) == LATE)
        eligible = eligible & ~late
        eligibility = np.where(late, claim, eligibility)
    out = pd.DataFrame({
        "date": mine["_day"].to_numpy("datetime64[D]"),
        "mdtrt_id": mine["mdtrt_id"].astype(str).to_numpy(),
        "visit": [tr(*codes.MED_TYPE_LABEL.get(m, (m, m)), lang=lang) for m in mine["med_type"]],
        "region": [book.region_label(r) for r in mine["region"]],
        "scheme": [tr(*codes.SCHEME_LABEL.get(s, (s, s)), lang=lang) for s in mine["scheme"]],
        "total": _yuan(mine["medfee_sumamt"]), "fund": _yuan(mine["fund_pay_sumamt"]),
        "patient": _yuan(mine["psn_part_amt"]), "acct": _yuan(acct), "family": _yuan(family),
        "paid_by": np.where(family > 0, payer, ""), "cash": _yuan(mine["psn_cash_pay"]),
        "eligible": eligible, "eligibility": eligibility, "claim": claim,
        "deductible": _yuan(mine["act_pay_dedc"]),
        "deductible_so_far": _yuan(np.cumsum(mine["act_pay_dedc"].to_numpy(np.int64))),
        "fund_so_far": _yuan(fund_so_far), "cap": _yuan(cap),
        "cap_reached": _col(mine, "above_cap").astype(float) > 0,
    })
    return out.reset_index(drop=True)


def _no_spans() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in (
        ("begin", "datetime64[s]"), ("end", "datetime64[s]"), ("region", object), ("scheme", object),
        ("wait_from", "datetime64[s]"), ("benefit_from", "datetime64[s]"), ("wait_months", "int64"))})


def _spans(members, book, psn, mine, raw, y0, y1, lang=None) -> pd.DataFrame:
    """The member's spans that touch the year, clipped to it, with the waiting period each starts with
    (computed by the same rule as the bills: ``members.eligibility`` on the span's first day)."""
    from .members import eligibility, read_members
    m = read_members(members, book)
    sp = m.spans[m.spans["psn_no"].astype(str) == psn].sort_values("begin").reset_index(drop=True)
    if not len(sp):
        return _no_spans()
    begin = sp["begin"].to_numpy("datetime64[D]")
    end = sp["end"].to_numpy("datetime64[D]")
    # a span without its own 参保地/险种 takes the member's bills' (else the first bill of anyone's)
    anyb = mine if len(mine) else raw[raw["psn_no"].astype(str) == psn]
    region0 = str(anyb["region"].iat[0]) if len(anyb) else ""
    scheme0 = str(anyb["scheme"].iat[0]) if len(anyb) else ""
    region = np.where(sp["region"].to_numpy(dtype=object) != "", sp["region"].to_numpy(dtype=object), region0)
    scheme = np.where(sp["scheme"].to_numpy(dtype=object) != "", sp["scheme"].to_numpy(dtype=object), scheme0)
    # the wait starts on the span's first day or on a later payment (outside the 集中缴费期)
    paid = sp["paid_on"].to_numpy("datetime64[D]")
    start = np.where(~np.isnat(paid) & (paid >= begin), paid, begin)
    probe = pd.DataFrame({"psn_no": psn, "setl_date": start.astype("datetime64[ns]"), "region": region,
                          "scheme": scheme})
    got = eligibility(probe, m, book, lambda *a, **k: None)
    months = got["wait_months"]
    benefit = got["benefit_from"]
    keep = (begin <= y1) & (np.isnat(end) | (end >= y0))
    out = pd.DataFrame({
        "begin": np.maximum(begin, y0), "end": np.where(np.isnat(end) | (end > y1), y1, end),
        "region": [book.region_label(r) if r else "" for r in region],
        "scheme": [tr(*codes.SCHEME_LABEL.get(s, (s, s)), lang=lang) if s else "" for s in scheme],
        "wait_from": np.where(months >= 0, start, np.datetime64("NaT")),
        "benefit_from": benefit, "wait_months": months})
    return out[keep].reset_index(drop=True)


def _account(raw: pd.DataFrame, psn: str, accounts, y0, y1) -> tuple[pd.DataFrame, float | None]:
    """Every payment from ``psn``'s account in date order — the member's own bills (acct_pay) and, with
    family accounts, the relatives' bills it paid (acct_mulaid_pay where acct_payer is ``psn``) — and
    the balance after each."""
    own = raw["psn_no"].astype(str).to_numpy() == psn
    paid_own = _col(raw, "acct_pay").astype(np.int64) * own
    fam = np.zeros(len(raw), np.int64)
    if "acct_mulaid_pay" in raw.columns and "acct_payer" in raw.columns:
        fam = np.where(raw["acct_payer"].fillna("").astype(str).to_numpy() == psn,
                       raw["acct_mulaid_pay"].fillna(0).to_numpy(np.int64), 0)
    paid = paid_own + fam
    opening = None
    if accounts is not None:             # the balances the settlement was given
        if isinstance(accounts, pd.DataFrame):
            a = accounts.set_index(accounts["psn_no"].astype(str))["acct_balance"]
            opening = float(a[psn]) if psn in a.index else None
        elif isinstance(accounts, dict):
            opening = float(accounts[psn]) if psn in accounts else None
        else:
            opening = float(accounts)
    elif own.any() and "acct_balance_before" in raw.columns:
        first = raw[own].sort_values("setl_date", kind="stable")
        opening = float(first["acct_balance_before"].iat[0]) / 100
    day = raw["setl_date"].to_numpy("datetime64[D]")
    sel = (paid > 0) & (day >= y0) & (day <= y1)
    rows = pd.DataFrame({"_day": day[sel], "_paid": paid[sel], "_row": _col(raw, "first_row")[sel],
                         "mdtrt_id": raw["mdtrt_id"].to_numpy()[sel], "psn_no": raw["psn_no"].to_numpy()[sel]})
    rows = rows.sort_values(["_day", "_row"], kind="stable")
    spent = np.cumsum(rows["_paid"].to_numpy(np.int64))
    out = pd.DataFrame({"date": rows["_day"].to_numpy("datetime64[D]"), "mdtrt_id": rows["mdtrt_id"].astype(str).to_numpy(),
                        "psn_no": rows["psn_no"].astype(str).to_numpy(), "paid": _yuan(rows["_paid"]),
                        "balance": (np.round(opening - spent / 100, 2) if opening is not None
                                    else np.full(len(rows), np.nan))})
    return out.reset_index(drop=True), opening


def with_break(members, psn_no: str, break_years: int | None = None, repaid_years: int | None = None,
               book=None, late: bool | None = None):
    """The members with ``psn_no``'s latest span changed: ``break_years`` (断缴年数 before it),
    ``repaid_years`` (补缴年数) and, with ``late``, paid on its first day (outside the 集中缴费期) or
    before it. Returns a ``Members`` to settle again (the notebook's toggles)."""
    from .members import Members, read_members
    m = read_members(members, book)
    sp = m.spans.copy()
    rows = np.flatnonzero(sp["psn_no"].astype(str).to_numpy() == str(psn_no))
    if not len(rows):
        raise ValueError(tr(f"{m.source} 未列出人员 {psn_no}", f"{m.source} does not list member {psn_no}"))
    last = rows[np.argmax(sp["begin"].to_numpy()[rows])]
    if break_years is not None:
        sp.loc[last, "break_years"] = int(break_years)
    if repaid_years is not None:
        sp.loc[last, "repaid_years"] = int(repaid_years)
    if late is not None:
        begin = sp.loc[last, "begin"]
        sp.loc[last, "paid_on"] = begin if late else begin - pd.Timedelta(days=30)
    return Members(sp, m.source)


_BILL_HEADERS = {"date": ("日期", "date"), "visit": ("就诊类型", "visit"), "region": ("参保地", "region"),
                 "total": ("医疗费总额", "total cost"), "fund": ("基金支付", "fund pays"),
                 "patient": ("个人负担", "patient pays"), "acct": ("个人账户", "own account"),
                 "family": ("共济账户", "family account"), "paid_by": ("共济人", "paid by"),
                 "cash": ("个人现金", "cash"), "deductible_so_far": ("起付线累计", "deductible so far"),
                 "eligibility": ("待遇资格", "eligibility"), "claim": ("申报时限", "claim filed in time")}


def bills_table(year: MemberYear, lang: str | None = None) -> pd.DataFrame:
    """The member's bills for people: dates as text, yuan with two decimals, headers in the reader's language."""
    b = year.bills
    shown = {"family": (b["family"] > 0).any(), "paid_by": (b["family"] > 0).any(),
             "claim": (b["claim"] != "").any() if "claim" in b else False}
    cols = [c for c in _BILL_HEADERS if c in b.columns and shown.get(c, True)]
    out = b[cols].copy()
    out["date"] = [str(np.datetime64(d, "D")) for d in b["date"]]
    for c in ("total", "fund", "patient", "acct", "family", "cash", "deductible_so_far"):
        if c in out:
            out[c] = out[c].map(lambda v: f"{v:,.2f}")
    out.columns = [tr(*_BILL_HEADERS[c], lang=lang) for c in cols]
    return out.reset_index(drop=True)


def summary_text(year: MemberYear, lang: str | None = None) -> str:
    """A few lines on the year: bills, what the funds and the member paid, the waits, the deductible, the
    cap, the account."""
    b = year.bills
    lines = [tr(f"{year.psn_no} 的 {year.year} 年：账单 {len(b)} 张，医疗费总额 {b['total'].sum():,.2f} 元，基金支付 "
                f"{b['fund'].sum():,.2f} 元，个人负担 {b['patient'].sum():,.2f} 元",
                f"{year.psn_no} in {year.year}: {len(b)} bill(s), total cost {b['total'].sum():,.2f} yuan, the funds "
                f"paid {b['fund'].sum():,.2f}, the patient {b['patient'].sum():,.2f}", lang=lang)]
    for r in year.spans.itertuples():
        if r.wait_months >= 0 and not pd.isna(r.benefit_from):
            last = np.datetime64(r.benefit_from, "D") - np.timedelta64(1, "D")
            lines.append(tr(f"待遇等待期 {r.wait_months} 个月，至 {last}；{np.datetime64(r.benefit_from, 'D')} 起享受待遇",
                            f"waiting period {r.wait_months} months, until {last}; benefits from "
                            f"{np.datetime64(r.benefit_from, 'D')}", lang=lang))
    refused = b[~b["eligible"]]
    if len(refused):
        lines.append(tr(f"不享受待遇的账单 {len(refused)} 张（{refused['total'].sum():,.2f} 元）：基金不支付，全部由个人负担",
                        f"{len(refused)} bill(s) without benefits ({refused['total'].sum():,.2f} yuan): the funds pay "
                        f"nothing, the patient pays all", lang=lang))
    lines.append(tr(f"起付线累计 {year.deductible_paid:,.2f} 元；" + ("已达到统筹基金最高支付限额" if year.cap_reached
                                                                    else "未达到统筹基金最高支付限额"),
                    f"deductible paid {year.deductible_paid:,.2f} yuan; " + ("the pooled fund's cap was reached"
                                                                          if year.cap_reached else
                                                                          "the pooled fund's cap was not reached"),
                    lang=lang))
    fam = b[b["family"] > 0]
    if len(fam):
        lines.append(tr(f"家人账户共济支付 {fam['family'].sum():,.2f} 元（{'、'.join(dict.fromkeys(fam['paid_by']))}）",
                        f"paid from a relative's account {fam['family'].sum():,.2f} yuan "
                        f"({', '.join(dict.fromkeys(fam['paid_by']))})", lang=lang))
    a = year.account
    if year.opening_balance is not None:
        end = a["balance"].iat[-1] if len(a) else year.opening_balance
        others = a[a["psn_no"] != year.psn_no]
        text_zh = f"个人账户：年初 {year.opening_balance:,.2f} 元，年末 {end:,.2f} 元"
        text_en = f"personal account: {year.opening_balance:,.2f} yuan at the start, {end:,.2f} at the end"
        if len(others):
            text_zh += f"，其中为家人支付 {others['paid'].sum():,.2f} 元"
            text_en += f", of which {others['paid'].sum():,.2f} paid for relatives"
        lines.append(tr(text_zh, text_en, lang=lang))
    return "\n".join(lines)


def account_table(year: MemberYear, lang: str | None = None) -> pd.DataFrame:
    """Each payment from the member's personal account in date order (whose bill, the amount, the balance)."""
    a = year.account
    return pd.DataFrame({tr("日期", "date", lang=lang): [str(np.datetime64(d, "D")) for d in a["date"]],
                         tr("就诊ID", "visit id", lang=lang): a["mdtrt_id"].to_numpy(),
                         tr("为谁支付", "whose bill", lang=lang): [
                             tr("本人", "own", lang=lang) if p == year.psn_no else tr(f"家人 {p}（共济）", f"relative {p} (family account)", lang=lang)
                             for p in a["psn_no"]],
                         tr("支付", "paid", lang=lang): [f"{v:,.2f}" for v in a["paid"]],
                         tr("余额", "balance", lang=lang): ["" if pd.isna(v) else f"{v:,.2f}" for v in a["balance"]]})

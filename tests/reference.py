"""A plain, step-by-step reference implementation of the settlement rules (for differential tests).

Written from docs/tables.md and the conventions in the engine's module docstring, *not* from the
engine's code: one bill at a time, in date order, with exact rational arithmetic (``Fraction``) and
explicit year state. Parameter values are read from the policy model's raw entries
(``entry.raw``); decision tables and adjustments are evaluated here.

Money is integer fen; ratios are ``Fraction``. Fund-type amounts stay exact until the cumulative
yearly total is rounded half up to the fen; each bill gets the difference of rounded totals.
"""
from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import pandas as pd

OUT_COLUMNS = ["medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
               "act_pay_dedc", "hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt",
               "psn_part_amt", "acct_pay", "acct_mulaid_pay", "psn_cash_pay"]
INF = Fraction(10) ** 30          # "no bound" on a money axis (fen)

# Rounding conventions on which docs/tables.md and the engine docstring are silent. They are set to
# the engine's choices so that the random comparison finds real disagreements; flip them to see the
# alternatives (see test_differential.py's docstring).
# * cost covered by a capped fund payment (the rest is above_cap): floor to the fen ("floor") or
#   half up ("half_up");
# * the out-of-area reduction removed from a 大病 base: rounded half up to the fen per bill
#   ("half_up") or kept exact ("exact");
# * fund_paid segment bounds turned into cost bounds: rounded up to the fen ("ceil") or exact.
COVERED_ROUNDING = "floor"
REDUCTION_ROUNDING = "half_up"
FUND_PAID_BOUNDS = "ceil"
SCHEMES = {"310": "employee", "390": "resident", "职工": "employee", "居民": "resident",
           "employee": "employee", "resident": "resident"}


class RefError(ValueError):
    """The reference cannot settle a bill (missing parameter, no matching rule)."""


# ---- small exact helpers ----------------------------------------------------------------------
def frac(x) -> Fraction:
    """A table or input number (int, float, str) as an exact Fraction of its decimal text."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, int):
        return Fraction(x)
    return Fraction(Decimal(str(x)))


def yuan_fen(x) -> Fraction:
    """Yuan (table/input value or 'unlimited') to fen, exact."""
    if x == "unlimited":
        return INF
    return frac(x) * 100


def round_half_up(x: Fraction) -> int:
    x = Fraction(x)
    if x < 0:
        return -round_half_up(-x)
    return math.floor(x + Fraction(1, 2))


def is_nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and v.strip() == "") \
        or v is pd.NA


def overlap(lo, hi, slo, shi) -> Fraction:
    return max(Fraction(0), min(hi, shi) - max(lo, slo))


# ---- decision tables and adjustments ------------------------------------------------------------
def is_table(raw) -> bool:
    return isinstance(raw, list) and len(raw) > 0 and isinstance(raw[0], dict)


def matches(when: dict | None, attrs: dict) -> bool:
    for key, want in (when or {}).items():
        have = attrs.get(key)
        if is_nan(have):
            return False
        if key == "age":
            lo, hi = want
            a = float(have)
            if lo is not None and not a >= lo:
                return False
            if hi is not None and not a < hi:
                return False
        else:
            wants = want if isinstance(want, list) else [want]
            if str(have) not in {str(w) for w in wants}:
                return False
    return True


def evaluate(raw, attrs: dict, what: str):
    """Value of a field: a plain value, or the first rule of a decision table whose `when` matches."""
    if is_table(raw):
        for rule in raw:
            if matches(rule.get("when"), attrs):
                return rule["value"]
        raise RefError(f"no rule of {what} matches {attrs}")
    return raw


def adjust_amount(v: int, adjustments, attrs) -> int:
    for adj in adjustments or []:
        if not matches(adj.get("when"), attrs):
            continue
        if "factor" in adj:
            v = round_half_up(v * frac(adj["factor"]))
        if "subtract" in adj:
            v = v - round_half_up(yuan_fen(adj["subtract"]))
        if "min" in adj:
            v = max(v, round_half_up(yuan_fen(adj["min"])))
        if "max" in adj:
            v = min(v, round_half_up(yuan_fen(adj["max"])))
        v = max(v, 0)
    return v


def adjust_ratio(r: Fraction, adjustments, attrs) -> Fraction:
    for adj in adjustments or []:
        if not matches(adj.get("when"), attrs):
            continue
        if "share_factor" in adj:
            r = 1 - (1 - r) * frac(adj["share_factor"])
        if "add" in adj:
            r = r + frac(adj["add"])
        if "max" in adj:
            r = min(r, frac(adj["max"]))
        if "min" in adj:
            r = max(r, frac(adj["min"]))
        r = min(max(r, Fraction(0)), Fraction(1))
    return r


def entry_on(param, date: dt.date, what: str) -> dict | None:
    """Raw dict of the dated entry in force on ``date`` (None when the parameter is absent)."""
    if param is None:
        return None
    chosen = None
    for e in param.entries:
        if e.start <= date:
            chosen = e
    if chosen is None:
        raise RefError(f"{what}: no entry in force on {date}")
    if chosen.missing:
        raise RefError(f"{what}: missing on {date}")
    return chosen.raw


def segments_fen(raw_entry: dict) -> list[Fraction]:
    return [yuan_fen(s) for s in raw_entry.get("segments", [0])]


def rates_list(raw_entry: dict, attrs: dict, what: str) -> list[Fraction]:
    return [frac(r) for r in evaluate(raw_entry["rates"], attrs, what)]


def piecewise(lo: Fraction, hi: Fraction, bounds: list[Fraction], rates: list[Fraction]):
    """Pieces (length, rate) of the interval [lo, hi] on segments with lower ``bounds``, in axis order."""
    out = []
    for s, r in enumerate(rates):
        slo = bounds[s]
        shi = bounds[s + 1] if s + 1 < len(bounds) else INF
        L = overlap(lo, hi, slo, shi)
        if L > 0:
            out.append((L, r))
    return out


# ---- exclusions ----------------------------------------------------------------------------------
def excluded(book, name: str, med_chrgitm_type: str, item_code: str, med_type: str, date: dt.date) -> bool:
    for rule in book.exclusions:
        if rule.enforce != "exclude":
            continue
        if rule.start is not None and date < rule.start:
            continue
        if rule.until is not None and date > rule.until:
            continue
        if rule.name_contains and not any(k in name for k in rule.name_contains):
            continue
        if rule.name_excludes and any(k in name for k in rule.name_excludes):
            continue
        if rule.med_chrgitm_type and med_chrgitm_type not in rule.med_chrgitm_type:
            continue
        if rule.code_prefix and not any(item_code.startswith(p) for p in rule.code_prefix):
            continue
        exc = rule.except_when or {}
        if "med_type" in exc and med_type in exc["med_type"]:
            continue
        return True
    return False


# ---- the settlement ------------------------------------------------------------------------------
def _text(v) -> str:
    if is_nan(v):
        return ""
    s = str(v).strip()
    return s[:-2] if s.endswith(".0") else s


def _parse_bills(lines_df: pd.DataFrame, book) -> list[dict]:
    bills: dict[str, dict] = {}
    for pos, row in enumerate(lines_df.to_dict("records")):
        mid = str(row["mdtrt_id"])
        if mid not in bills:
            region = book.region_id(_text(row["insuplc"])) if _text(row["insuplc"]) else ""
            area = _text(row.get("mdtrt_area"))
            given = bool(area)
            area = (book.region_id(area) or f"?{area}") if area else region
            fil = _text(row.get("fil_type")) or "none"
            bills[mid] = {
                "mdtrt_id": mid, "psn_no": str(row["psn_no"]), "order": pos,
                "date": pd.Timestamp(row["setl_time"]).date(),
                "region": region, "scheme": SCHEMES.get(_text(row["insutype"]), ""), "mdtrt_area_given": given,
                "psn_type": _text(row.get("psn_type")), "psn_idet_type": _text(row.get("psn_idet_type")),
                "contrib_tier": {"1": "一档", "2": "二档"}.get(_text(row.get("contrib_tier")),
                                                             _text(row.get("contrib_tier"))),
                "age": row.get("age"), "med_type": _text(row["med_type"]), "hosp_lv": int(float(row["hosp_lv"])),
                "hosp_type": _text(row.get("hosp_type")), "mdtrt_area": area, "fil_type": fil, "lines": [],
                "claim": _claim(row),
            }
        bills[mid]["lines"].append(row)
    return list(bills.values())


def _claim(row: dict):
    """(manual claim?, filing date or None) as docs say: 手工报销/零星报销, or a filing date with no mode."""
    mode = _text(row.get("settle_mode"))
    filed = _text(row.get("claim_date"))
    filed = pd.Timestamp(filed).date() if filed else None
    return (mode in ("手工报销", "零星报销", "manual") or (mode == "" and filed is not None)), filed


def _filed_late(bill: dict, table) -> bool:
    """A manual claim filed after its table's deadline: months (the day of the month kept, else the
    month's last day) or days after the bill's date (the 民法典's count)."""
    manual, filed = bill["claim"]
    param = table.params.get("manual_claim_deadline")
    if not manual or filed is None or param is None:
        return False
    try:
        e = entry_on(param, bill["date"], "manual_claim_deadline")
    except RefError:                    # before the first entry, or missing: not checked
        return False
    d = bill["date"]
    if "months" in e:
        m = d.month - 1 + e["months"]
        y, m = d.year + m // 12, m % 12 + 1
        last_day = (dt.date(y + (m == 12), m % 12 + 1, 1) - dt.timedelta(days=1)).day
        last = dt.date(y, m, min(d.day, last_day))
    else:
        last = d + dt.timedelta(days=e["days"])
    return filed > last


def _line_amounts(bill: dict, table, book) -> None:
    """Step 1: 自费/不予支付 → 超限价 → 乙类先行自付 → 政策范围内, per line, summed per bill."""
    sums = dict(medfee=0, ownpay=0, over=0, pre=0, inscp=0)
    sp_entry = None
    for ln in bill["lines"]:
        amount = round_half_up(frac(ln["det_item_fee_sumamt"]) * 100)
        lv = int(float(ln["chrgitm_lv"]))
        name = _text(ln.get("item_name"))
        mct = _text(ln.get("med_chrgitm_type"))
        if mct.isdigit() and len(mct) == 1:
            mct = mct.zfill(2)
        sums["medfee"] += amount
        if lv == 3 or excluded(book, name, mct, _text(ln.get("item_code")), bill["med_type"], bill["date"]):
            sums["ownpay"] += amount
            continue
        over = 0
        if not is_nan(ln.get("pric_uplmt_amt")):
            limit = frac(ln["pric_uplmt_amt"]) * 100
            cnt = frac(ln["cnt"]) if not is_nan(ln.get("cnt")) else Fraction(1)
            # the allowed amount limit × quantity is money: rounded half up to the fen
            over = max(0, amount - round_half_up(limit * cnt))
        allowed = amount - over
        pre = 0
        if lv == 2:
            if not is_nan(ln.get("selfpay_prop")):
                rate = frac(ln["selfpay_prop"])
            else:
                if sp_entry is None:
                    sp_entry = entry_on(table.params.get("selfpay_prop"), bill["date"], "selfpay_prop")
                    if sp_entry is None:
                        raise RefError("no selfpay_prop table and no line selfpay_prop")
                attrs = dict(bill["attrs"], med_chrgitm_type=mct, chrgitm_lv=lv)
                rate = frac(evaluate(sp_entry["rate"], attrs, "selfpay_prop.rate"))
            pre = round_half_up(allowed * rate)
        sums["over"] += over
        sums["pre"] += pre
        sums["inscp"] += allowed - pre
    bill.update(sums)


def _policy_year(date: dt.date, start: tuple[int, int]) -> int:
    return date.year if (date.month, date.day) >= tuple(start) else date.year - 1


def _fil_category(bill: dict) -> str:
    f = bill["fil_type"]
    if f in ("long_term", "referral", "temporary", "emergency"):
        return f
    return "emergency" if bill["med_type"] == "13" else "unfiled"


def _date(v):
    return None if is_nan(v) else pd.Timestamp(str(v).strip()).date()


def _spans(members_df, book) -> dict:
    """psn_no -> the member's spans in date order, each with its year-state key.

    Docs (docs/tables.md, README members file): a span naming its 参保地 and 险种 decides the bill's table; a
    move (the next span names another region or scheme) continues the previous span's year only where the
    receiving table's ``transfer_carryover`` in force on the new span's first day says ``carried_over: true``;
    a span of the same region and scheme as the one before (re-enrolment) continues it."""
    out: dict = defaultdict(list)
    if members_df is None:
        return out
    for row in members_df.to_dict("records"):
        region = _text(row.get("insuplc"))
        scheme = _text(row.get("insutype"))
        out[str(row["psn_no"]).strip()].append({
            "begin": _date(row["begin"]), "end": _date(row.get("end")),
            "region": book.region_id(region) if region else "", "scheme": SCHEMES[scheme] if scheme else ""})
    for psn, spans in out.items():
        spans.sort(key=lambda x: x["begin"])
        prev = None
        for i, sp in enumerate(spans):
            complete = bool(sp["region"] and sp["scheme"])
            sp["move"] = None
            if not complete or prev is None or not (prev["region"] and prev["scheme"]):
                sp["key"] = ("span", psn, i)
            elif (sp["region"], sp["scheme"]) == (prev["region"], prev["scheme"]):
                sp["key"] = prev["key"]
            else:
                t = book.tables.get((sp["region"], sp["scheme"]))
                e = entry_on(t.params.get("transfer_carryover"), sp["begin"], "transfer_carryover") if t else None
                carried = e is not None and e.get("carried_over") is True
                sp["key"] = prev["key"] if carried else ("span", psn, i)
                sp["move"] = "carried" if carried else ("not_carried" if e is not None else "missing")
            prev = sp
    return out


def reference_settle(lines_df: pd.DataFrame, book, accounts: dict | None = None,
                     admissions_before: dict | None = None, members: pd.DataFrame | None = None,
                     family: dict | None = None, payer_regions: dict | None = None) -> pd.DataFrame:
    """Settle ``lines_df`` (national field names) bill by bill; one row per mdtrt_id, integer fen.

    ``admissions_before``: psn_no -> admissions earlier in the year (the state file's ``admissions``),
    counted before the member's first bill of each benefit in the member's first policy year here, in the
    table (or carried-over chain of tables) of the member's earliest bill.
    ``members``: enrolment spans (psn_no, begin, end, insuplc, insutype); every bill of a listed member must
    fall in one of its spans (no waiting periods here). The span's 参保地/险种 replace the bill's.
    ``family``: payee psn_no -> payer psn_no (家庭共济, the members file's 共济账户, for all dates);
    ``payer_regions``: payer psn_no -> the region id of the payer's 参保地 (absent: not given, taken as the
    payee's province).
    """
    accounts = accounts or {}
    family = family or {}
    payer_regions = payer_regions or {}
    admissions_before = admissions_before or {}
    bills = _parse_bills(lines_df, book)
    spans = _spans(members, book)
    for b in bills:
        b["state"] = (b["region"], b["scheme"])
        b["move"] = None
        if b["psn_no"] not in spans:
            continue
        sp = [x for x in spans[b["psn_no"]] if x["begin"] <= b["date"] and (x["end"] is None or b["date"] <= x["end"])]
        if not sp:
            raise RefError("bill outside its member's spans (not modelled here)")
        sp = sp[-1]
        b["region"] = sp["region"] or b["region"]
        b["scheme"] = sp["scheme"] or b["scheme"]
        if sp["region"] and sp["scheme"]:
            b["state"] = sp["key"]
            start = book.tables[(b["region"], b["scheme"])].policy_year_start
            if sp["move"] and _policy_year(b["date"], start) == _policy_year(sp["begin"], start):
                b["move"] = sp["move"]
        else:
            b["state"] = (b["region"], b["scheme"])
        if not b["mdtrt_area_given"]:
            b["mdtrt_area"] = b["region"]          # care where the member is insured, as the bill names no place
    bills.sort(key=lambda b: (b["psn_no"], b["date"], b["order"]))
    first_year: dict = {}
    earliest: dict = {}
    for b in bills:
        y = _policy_year(b["date"], book.tables[(b["region"], b["scheme"])].policy_year_start)
        first_year[b["psn_no"]] = min(y, first_year.get(b["psn_no"], y))
        earliest.setdefault(b["psn_no"], b["state"])            # sorted by date, then input order

    # year state, keyed by (psn_no, region, scheme, policy year, ...)
    admissions = defaultdict(int)          # + benefit
    ded_used = defaultdict(int)            # + benefit: deductible used so far (per_year)
    ded_max = defaultdict(int)             # + benefit: running max of the yearly deductible
    cum_cost = defaultdict(int)            # + benefit: cumulative eligible cost C
    cum_above = defaultdict(int)           # + benefit: cumulative above-deductible cost A
    cap_cost = defaultdict(int)            # + cap group: cumulative eligible cost (cost-basis cap)
    cap_fund = defaultdict(Fraction)       # + cap group: exact cumulative fund S
    supp_base = defaultdict(Fraction)      # + payer: cumulative base B
    supp_paid = defaultdict(Fraction)      # + payer: exact cumulative payment P
    balances = {str(k): int(v) for k, v in accounts.items()}

    out = []
    for bill in bills:
        table = book.tables[(bill["region"], bill["scheme"])]
        date = bill["date"]
        year = _policy_year(date, table.policy_year_start)
        ykey = (bill["psn_no"], bill["state"], year)
        away = bill["mdtrt_area"] != bill["region"]
        fil = _fil_category(bill) if away else "none"
        base_attrs = {"psn_type": bill["psn_type"], "contrib_tier": bill["contrib_tier"],
                      "hosp_lv": bill["hosp_lv"], "hosp_type": bill["hosp_type"],
                      "age": bill["age"], "psn_idet_type": bill["psn_idet_type"], "med_type": bill["med_type"],
                      "fil_type": fil}
        oa = entry_on(table.params.get("out_of_area"), date, "out_of_area") if away else None
        if away and oa is None and fil != "long_term":
            raise RefError("out-of-area bill but no out_of_area table")
        if oa is not None and "hosp_lv_as" in oa:
            base_attrs["hosp_lv"] = int(evaluate(oa["hosp_lv_as"], base_attrs, "hosp_lv_as"))
        # ---- step 2: benefit, admission number (the nth bill of the year settled by this benefit)
        benefit = None
        for b in table.benefits.values():
            if bill["med_type"] in [str(m) for m in b.med_types]:
                benefit = b.settle_as or b.name
                break
        if benefit is None:
            raise RefError(f"no benefit for med_type {bill['med_type']}")
        bparams = table.benefits[benefit].params
        bkey = ykey + (benefit,)
        if bkey not in admissions and year == first_year[bill["psn_no"]] and bill["state"] == earliest[bill["psn_no"]]:
            admissions[bkey] = int(admissions_before.get(bill["psn_no"], 0))
        # a manual claim filed too late is not covered: the funds pay nothing, it is no admission of the
        # year and uses none of the year's deductible or caps
        in_cover = not _filed_late(bill, table)
        n = admissions[bkey] + 1
        if in_cover:
            admissions[bkey] = n
        attrs = dict(base_attrs, admission=n)

        # ---- step 1: line amounts (line tables see the bill's attributes, incl. hosp_lv_as)
        bill["attrs"] = attrs
        _line_amounts(bill, table, book)
        E = bill["inscp"] if in_cover else 0

        # ---- step 3: deductible
        de = entry_on(bparams.get("deductible"), date, "deductible")
        if de is None:
            raise RefError("no deductible")
        d = round_half_up(yuan_fen(evaluate(de["amount"], attrs, "deductible.amount")))
        d = adjust_amount(d, de.get("adjust"), attrs)
        if de.get("nth_factor"):
            f = de["nth_factor"]
            d = round_half_up(d * frac(f[min(n - 1, len(f) - 1)]))
        if de.get("nth_decrement") is not None:
            dec = round_half_up(yuan_fen(evaluate(de["nth_decrement"], attrs, "nth_decrement")))
            lo = round_half_up(yuan_fen(evaluate(de["min"], attrs, "min"))) if de.get("min") is not None else 0
            d = max(d - dec * (n - 1), lo)
        if oa is not None and oa.get("deductible_factor") is not None:
            d = round_half_up(d * frac(evaluate(oa["deductible_factor"], attrs, "deductible_factor")))
        if de["basis"] == "per_admission":
            used = min(E, d)
        else:
            ded_max[bkey] = max(ded_max[bkey], d)
            used = max(0, min(E, ded_max[bkey] - ded_used[bkey]))
            ded_used[bkey] += used
        a = E - used

        # ---- step 4: ratio segments
        re_ = entry_on(bparams.get("ratio"), date, "ratio")
        if re_ is None:
            raise RefError("no ratio")
        local_rates = [adjust_ratio(r, re_.get("adjust"), attrs) for r in rates_list(re_, attrs, "ratio.rates")]
        add = frac(evaluate(oa["ratio_add"], attrs, "ratio_add")) if (oa is not None and "ratio_add" in oa) else 0
        factor = (frac(evaluate(oa["ratio_factor"], attrs, "ratio_factor"))
                  if (oa is not None and "ratio_factor" in oa) else Fraction(1))
        # the documented rounding point: local rate × factor, half up to the millionth
        rates = [min(max(Fraction(round_half_up(r * factor * 10**6), 10**6) + add, Fraction(0)), Fraction(1))
                 for r in local_rates]
        bounds = segments_fen(re_)
        basis = re_.get("basis", "above_deductible")
        accumulate = re_.get("accumulate", "per_bill")
        if basis == "fund_paid":
            cost_bounds = [Fraction(0)]
            for s in range(1, len(bounds)):
                r = rates[s - 1]
                prev = cost_bounds[-1]
                if r == 0 or prev >= INF:
                    cost_bounds.append(INF)
                    continue
                length = (bounds[s] - bounds[s - 1]) / r
                if FUND_PAID_BOUNDS == "ceil":
                    length = Fraction(math.ceil(length))
                cost_bounds.append(prev + length)
            bounds = cost_bounds
        C_prev = cum_cost[bkey]
        C = C_prev + E
        cum_cost[bkey] = C
        A_prev = cum_above[bkey]
        A = A_prev + a
        cum_above[bkey] = A
        if accumulate == "per_bill":
            lo, hi = (Fraction(used), Fraction(E)) if basis == "cumulative_cost" else (Fraction(0), Fraction(a))
        else:
            lo, hi = (Fraction(C - a), Fraction(C)) if basis == "cumulative_cost" else (Fraction(A_prev), Fraction(A))

        # ---- step 5: cap
        ce = entry_on(bparams.get("cap"), date, "cap")
        cap_basis = (ce or {}).get("basis", "fund")
        group = (ce or {}).get("group", benefit)
        gkey = ykey + ("cap", group)
        cap = yuan_fen(evaluate(ce["amount"], attrs, "cap.amount")) if ce is not None else INF
        above_cap = 0
        if cap_basis == "cost":
            cprev = cap_cost[gkey]
            cap_cost[gkey] = cprev + E
            above = max(0, cprev + E - cap) - max(0, cprev - cap)
            above_cap = int(min(above, a))
            hi = hi - above_cap
        pieces = piecewise(lo, hi, bounds, rates)
        uncapped = sum((L * r for L, r in pieces), Fraction(0))
        S_prev = cap_fund[gkey]
        S = S_prev + uncapped
        cap_fund[gkey] = S
        if cap_basis == "cost":
            hifp = round_half_up(S) - round_half_up(S_prev)
        else:
            paid_exact = min(S, cap) - min(S_prev, cap)
            hifp = round_half_up(min(S, cap)) - round_half_up(min(S_prev, cap))
            if paid_exact < uncapped:
                room, covered = paid_exact, Fraction(0)
                for L, r in pieces:
                    if r * L <= room:
                        covered += L
                        room -= r * L
                    else:
                        covered += room / r
                        break
                if COVERED_ROUNDING == "floor":
                    covered = math.floor(covered)
                above_cap = round_half_up(a - covered)
        coins = a - above_cap - hifp
        # out-of-area reduction: what the local rates would have paid on the interval, minus the paid rates
        # (only for care away without filing, 未备案; and only what the fund would have paid within its cap)
        reduction = Fraction(0)
        if away and fil == "unfiled":
            local_uncapped = Fraction(0)
            for s, r in enumerate(rates):
                slo = bounds[s]
                shi = bounds[s + 1] if s + 1 < len(bounds) else INF
                local_uncapped += overlap(lo, hi, slo, shi) * local_rates[s]
            room = (cap - min(S_prev, cap)) if cap_basis == "fund" else Fraction(INF)
            reduction = min(local_uncapped, room) - min(uncapped, room)
            if REDUCTION_ROUNDING == "half_up":
                reduction = Fraction(round_half_up(reduction))
        pre = bill["pre"] if in_cover else 0
        comp = {"deductible": used, "preselfpay": pre, "coinsurance": coins, "above_cap": above_cap}
        burden = used + pre + coins + above_cap

        # ---- step 6: critical illness (hifob, then hifmi) and medical assistance
        supp = {"hifob": 0, "hifmi": 0, "maf": 0}
        programs = [(p, table.critical.get(p)) for p in ("hifob", "hifmi")]
        programs.append(("maf", table.params.get("medical_assistance")))
        for payer, param in programs:
            if not in_cover:
                break
            pe = entry_on(param, date, payer)
            if pe is None:
                continue
            applies = pe.get("applies_to")
            if applies is not None and benefit not in applies:
                continue
            try:
                T = yuan_fen(evaluate(pe["threshold"], attrs, f"{payer}.threshold"))
                prates = rates_list(pe, attrs, f"{payer}.rates")
                pcap = yuan_fen(evaluate(pe["cap"], attrs, f"{payer}.cap")) if "cap" in pe else INF
            except RefError:
                if payer == "maf":
                    continue          # members whose type no rule names get nothing
                raise
            pbounds = segments_fen(pe)
            base = Fraction(sum(comp[c] for c in pe["base"]))
            if pe.get("out_of_area_reduction_excluded"):
                base -= reduction
            if payer == "maf":
                base -= supp["hifob"] + supp["hifmi"]
            base = max(base, Fraction(0))       # a reduction never makes a base negative
            pkey = ykey + ("supp", payer)
            B_prev = supp_base[pkey]
            B = B_prev + base
            supp_base[pkey] = B
            lo_p, hi_p = max(B_prev - T, Fraction(0)), max(B - T, Fraction(0))
            pay_exact = sum((L * r for L, r in piecewise(lo_p, hi_p, pbounds, prates)), Fraction(0))
            P_prev = supp_paid[pkey]
            P = P_prev + pay_exact
            supp_paid[pkey] = P
            pay = round_half_up(min(P, pcap)) - round_half_up(min(P_prev, pcap))
            remaining = burden - supp["hifob"] - supp["hifmi"] - supp["maf"]
            supp[payer] = max(0, min(pay, remaining))

        # ---- step 7: totals (the accounts pay below, over all bills in date order)
        fund = hifp + supp["hifmi"] + supp["hifob"] + supp["maf"]
        psn_part = bill["medfee"] - fund
        selfpay = burden - supp["hifob"] - supp["hifmi"] - supp["maf"]
        own_eligible = 0
        pa = entry_on(table.params.get("personal_account"), date, "personal_account")
        if pa is not None and bill["med_type"] in [str(m) for m in pa["med_types"]]:
            if "selfpay" in pa["pays"]:
                own_eligible += selfpay
            if "ownpay" in pa["pays"]:
                own_eligible += bill["ownpay"] + bill["over"]
        out.append({
            "mdtrt_id": bill["mdtrt_id"], "medfee_sumamt": bill["medfee"], "fulamt_ownpay_amt": bill["ownpay"],
            "overlmt_selfpay": bill["over"], "preselfpay_amt": bill["pre"], "inscp_scp_amt": bill["inscp"],
            "act_pay_dedc": used, "hifp_pay": hifp, "hifmi_pay": supp["hifmi"], "hifob_pay": supp["hifob"],
            "maf_pay": supp["maf"], "fund_pay_sumamt": fund, "psn_part_amt": psn_part,
            "_bill": bill, "_own_eligible": own_eligible, "_selfpay": selfpay,
        })

    # ---- step 8: the personal accounts, bill by bill in date order over all members (one balance may
    # pay for a family): the member's own account first, then the family account (共济账户) for the
    # parts the national family_account rule in force lets it pay, within its province unless the rule
    # allows sharing across provinces
    fam_rules = [e for e in (book.national.get("family_account") or []) if isinstance(e, dict)]
    province = {rid: r.province for rid, r in book.regions.items()}
    for rec in sorted(out, key=lambda r: (r["_bill"]["date"], r["_bill"]["order"])):
        bill = rec.pop("_bill")
        own_eligible, selfpay = rec.pop("_own_eligible"), rec.pop("_selfpay")
        psn = bill["psn_no"]
        bal = balances.get(psn, 0)
        acct = max(0, min(bal, own_eligible))
        balances[psn] = bal - acct
        mulaid = 0
        payer = family.get(psn, "")
        rule = None
        for e in fam_rules:
            if pd.Timestamp(e["from"]).date() <= bill["date"]:
                rule = e
        if payer and rule is not None and "missing" not in rule:
            payer_prov = province.get(payer_regions.get(payer, ""), "")
            same = not payer_prov or payer_prov == province.get(bill["region"], bill["region"])
            if rule["cross_province"] or same:
                parts = (selfpay if "selfpay" in rule["pays"] else 0) + \
                    (bill["ownpay"] + bill["over"] if "ownpay" in rule["pays"] else 0)
                want = max(0, min(parts - acct, rec["psn_part_amt"] - acct))
                pbal = balances.get(payer, 0)
                mulaid = min(pbal, want)
                balances[payer] = pbal - mulaid
        rec["acct_pay"] = acct
        rec["acct_mulaid_pay"] = mulaid
        rec["psn_cash_pay"] = rec["psn_part_amt"] - acct - mulaid
    df = pd.DataFrame(out, columns=["mdtrt_id", *OUT_COLUMNS])
    for c in OUT_COLUMNS:
        df[c] = df[c].astype("int64")
    return df.set_index("mdtrt_id", drop=False)

"""The settlement engine: many lines, many bills, many members at once.

Line level (费用明细): exclusions → 超限价 → 乙类先行自付 → 政策范围内.
Bill level (结算), carrying each member's year state:
    起付线 → 分段比例 → 封顶线 → 大病保险/大额补助 → 医疗救助 → 个人账户 → 现金.

Year state without a loop over bills. Bills are sorted by member, region, scheme, policy year and
date. Whatever a member's k-th bill gets depends only on cumulative sums up to k:
  * fund paid by bill k = G(S_k) − G(S_{k−1}), where S is the cumulative uncapped payment and
    G(x) = min(x, cap) — a grouped cumsum and two evaluations;
  * a yearly deductible with running maximum Dm: used_k = C_k + min(0, min_{j≤k}(Dm_j − C_j)), C the
    cumulative eligible cost (the closed form of ``used_k = min(used_{k−1} + E_k, Dm_k)``);
  * segments climbed across a year: the bill occupies the interval [A_{k−1}, A_k] of the member's
    cumulative axis, and pays Σ_s rate_s × |interval ∩ segment_s|.
Money is integer fen; fund amounts are fen × ppm until the cumulative total is rounded half up to
the fen, so the bills of a year add up exactly to the rounded year total.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..i18n import tr
from ..money import INF_FEN, PPM, div_half_up, mul_ratio
from ..policy.loader import PolicyBook
from ..policy.model import Value, match
from ..divisions import province_of
from ..i18n import tr
from ..inputs import dense_codes, full_object, text
from .resolve import Errors, Rows, WarnMasks, resolve

ASSUMED_GRADE = "assumed"                  # the grade of a value the user assumed (ybcalc.assume)


def assumed_warning(source) -> str:
    """A bill's warning (kind ``assumption``) for a value the user assumed (``--assume``): the source of
    an assumed entry holds its label in Chinese (title) and English (note), see ``ybcalc.assume``."""
    return tr(f"{source.title}（假设值，用户给定）", f"{source.note} (assumed value, given by the user)")


def _is_assumed_source(src) -> bool:
    return src is not None and src.grade == ASSUMED_GRADE


def _line_rate_source(book: PolicyBook, uid: int, rule: int):
    """The source of the 乙类 share a line used: its rule's own (an assumed rule --assume added to a share
    sourced for some item kinds only), else its entry's."""
    e = book.entries[int(uid)]
    f = e.fields.get("rate")
    return f.rule_source(int(rule), e.source) if hasattr(f, "rule_source") else e.source


def _assumed_uids(book: PolicyBook) -> np.ndarray:
    """Entries holding a value the user assumed (none in the tables as loaded)."""
    cached = getattr(book, "_assumed_uids", None)
    if cached is None:
        cached = np.array([e.uid for e in book.entries if _is_assumed_source(e.source)
                           or any(_is_assumed_source(r.source) for r in getattr(e.fields.get("rate"), "rules", []))],
                          dtype=np.int64)
        book._assumed_uids = cached
    return cached

BASE_COMPONENTS = ("deductible", "preselfpay", "coinsurance", "above_cap")
PAYER_ORDER = ("hifob", "hifmi")  # 大额补助 first; either consumes the same personal burden


# ---------------------------------------------------------------------------------------------
# grouped cumulative helpers (rows already sorted within groups)
#
# Each sorts the rows by group once (stable, so each group keeps its row order; the bills come
# nearly sorted by member, which makes the sort cheap) and works on contiguous groups with plain
# numpy: 3-4x faster than a pandas groupby, which hashes the group numbers on every call.
def _sorted_groups(gid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row order by group, first row of a group in that order, group number 0.. in that order)."""
    gid = np.asarray(gid)
    order = np.argsort(gid, kind="stable")
    g = gid[order]
    start = np.ones(len(g), bool)
    start[1:] = g[1:] != g[:-1]
    return order, start, np.cumsum(start) - 1


def gcumsum(values: np.ndarray, gid: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind not in "iu":
        return pd.Series(values).groupby(gid, sort=False).cumsum().to_numpy()
    order, start, seg = _sorted_groups(gid)
    v = values[order].astype(np.int64, copy=False)
    # one running sum over all rows, less the sum before each group's first row; should the running sum
    # wrap around past int64, the differences within a group are still exact (arithmetic modulo 2**64)
    c = np.cumsum(v)
    out = np.empty(len(v), np.int64)
    out[order] = c - (c - v)[start][seg]
    return out


def _gcum_extreme(values: np.ndarray, gid: np.ndarray, running_max: bool) -> np.ndarray | None:
    """Running maximum (or minimum) within groups of integers, as one running max/min over all rows:
    each group's values are shifted into a band of its own, ordered so that no earlier group's band
    can win. None where the bands would not fit in int64 (e.g. a cap of "no limit" = int64 max)."""
    if values.dtype.kind not in "iu" or not len(values):
        return None
    lo, hi = int(values.min()), int(values.max())
    span = hi - lo + 1
    order, start, seg = _sorted_groups(gid)
    nseg = int(seg[-1]) + 1
    if span * nseg >= 2**62:
        return None
    band = (seg if running_max else nseg - 1 - seg) * span
    key = (values[order].astype(np.int64) - lo) + band
    run = (np.maximum.accumulate(key) if running_max else np.minimum.accumulate(key)) - band + lo
    out = np.empty(len(values), np.int64)
    out[order] = run
    return out


def gcummax(values: np.ndarray, gid: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    out = _gcum_extreme(values, gid, True)
    return out if out is not None else pd.Series(values).groupby(gid, sort=False).cummax().to_numpy()


def gcummin(values: np.ndarray, gid: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    out = _gcum_extreme(values, gid, False)
    return out if out is not None else pd.Series(values).groupby(gid, sort=False).cummin().to_numpy()


def gshift(values: np.ndarray, gid: np.ndarray, fill) -> np.ndarray:
    """Previous row's value within the group; ``fill`` (scalar or per row) for a group's first row.

    Works on row positions only, so int64 amounts never pass through floats.
    """
    values = np.asarray(values)
    order, start, _ = _sorted_groups(gid)
    shifted = np.empty(len(values), dtype=values.dtype)
    v = values[order]
    shifted[1:] = v[:-1]
    shifted[start] = np.asarray(fill)[order][start] if np.ndim(fill) else fill
    out = np.empty_like(shifted)
    out[order] = shifted
    return out


def codes_of(values) -> tuple[np.ndarray, int]:
    """Integer codes of one key column (hash-based; numbers pass through factorize too). A missing
    value (None, NaN) is a value of its own."""
    values = np.asarray(values)
    if values.dtype.kind == "b":
        return values.astype(np.int64), 2
    if values.dtype.kind in "iu" and len(values):
        # small non-negative integers (group numbers, codes) are codes already: no hash pass
        lo, hi = int(values.min()), int(values.max())
        if lo >= 0 and hi < 4 * len(values) + 64:
            return values.astype(np.int64, copy=False), hi + 1
    # the default factorize (missing -> -1), then missing as one more code: asking pandas to keep
    # missing values (use_na_sentinel=False) costs a second pass over Python objects
    c, uniques = pd.factorize(values.astype(object) if values.dtype.kind in "US" else values)
    c = c.astype(np.int64)
    missing = c < 0
    if missing.any():
        c[missing] = len(uniques)
        return c, len(uniques) + 1
    return c, max(len(uniques), 1)


def group_ids(*keys) -> np.ndarray:
    """Dense group number for each row of several key columns (combined integer codes, no MultiIndex)."""
    combined = np.zeros(len(keys[0]), np.int64)
    span = 1
    for k in keys:
        c, n = codes_of(k)
        if span * n >= 2**62:                 # re-densify before the combined code could overflow
            combined, _ = codes_of(combined)
            span = int(combined.max()) + 1 if len(combined) else 1
        combined = combined * n + c
        span *= n
    return pd.factorize(combined)[0]


def map_distinct(values: np.ndarray, fn) -> np.ndarray:
    """``fn`` applied to each distinct value once, spread back over the rows (object array)."""
    c, uniques = pd.factorize(values, use_na_sentinel=False)
    return np.array([fn(u) for u in uniques] or [None], dtype=object)[c] if len(values) else \
        np.empty(0, dtype=object)


def overlap(lo, hi, seg_lo, seg_hi):
    """|[lo, hi] ∩ [seg_lo, seg_hi]| for bills × segments."""
    return np.clip(np.minimum(hi[:, None], seg_hi) - np.maximum(lo[:, None], seg_lo), 0, None)


def seg_upper(seg_lo: np.ndarray) -> np.ndarray:
    up = np.empty_like(seg_lo)
    up[:, :-1] = seg_lo[:, 1:]
    up[:, -1] = INF_FEN
    return up


# ---------------------------------------------------------------------------------------------
def settle_prepared(lines: pd.DataFrame, book: PolicyBook, *, on=None, state: pd.DataFrame | None = None,
                    members=None):
    """Settle canonical lines (see ``inputs.prepare``). Returns (bills, lines, errors).

    ``bills`` has one row per bill with every intermediate amount; ``errors`` is a Series of
    messages for bills that could not be settled (missing parameters, no table …), which are left
    out of the year state of their member. ``members``: enrolment spans (``ybcalc.members.Members``); a
    bill outside its member's spans or in a waiting period gets no fund payment.
    """
    lines, bills, errors, line_rates, params = _resolve_terms(lines, book, on, state, members)
    bad = errors.error != None  # noqa: E711
    if bad.any():
        err = pd.Series(errors.error[bad], index=bills.loc[bad, "mdtrt_id"].to_numpy())
        keep_bills = ~bad
        bills = bills[keep_bills].reset_index(drop=True)
        kept = np.flatnonzero(keep_bills)
        params = _take_params(params, kept, len(keep_bills))
        warnings = errors.warnings.take(kept)
        line_keep = keep_bills[line_rates["bill_pos"]]
        lines = lines[line_keep].reset_index(drop=True)
        line_rates = {k: v[line_keep] for k, v in line_rates.items()}
    else:
        err = pd.Series([], dtype=object)
        warnings = errors.warnings
    _line_amounts(lines, line_rates)
    _bill_amounts(bills, lines)
    warnings.merge(params["_warn"])
    _warn_unknown_account(bills, params, state, warnings)
    _warn_unknown_payer_balance(bills, state, warnings)
    uncovered = _not_covered(bills)
    if uncovered is not None:
        params["_ineligible"] = uncovered
    bills = _compute(bills, params, state, warnings)
    extra = {}
    assumed = _assumed_uids(book)
    if len(assumed):             # the values each bill assumed (--assume): its policy version lists them
        extra["assumptions"] = _assumptions_used(bills, lines, book, assumed)
    if "_catalogue" in lines.columns:        # lines classed by an item catalogue (--catalogue), per bill
        extra["catalogue_lines"] = np.bincount(bill_positions(bills, lines), weights=lines["_catalogue"].to_numpy(),
                                               minlength=len(bills)).astype(np.int64)
    if extra:
        bills = pd.concat([bills, pd.DataFrame(extra, index=bills.index)], axis=1)
    return bills, lines, err


def _warn_unknown_account(bills: pd.DataFrame, P: dict, state, warnings) -> None:
    """A member with an account balance whose table has no sourced account rule (left out, or a
    `missing` entry): the account pays nothing, and the bill says so."""
    unknown = P.get("acct_unknown")
    if unknown is None or state is None or "acct_balance" not in state.columns or not (unknown != "").any():
        return
    balance = state.set_index("psn_no")["acct_balance"].reindex(bills["psn_no"]).fillna(0).to_numpy(np.int64)
    for label in pd.unique(unknown[unknown != ""]):
        rows = np.flatnonzero((unknown == label) & (balance > 0))
        if len(rows):
            warnings.add(rows, tr(f"{label}：无已核实参数，未计入", f"{label}: no sourced value, not applied"),
                         kind="missing")


def _warn_unknown_payer_balance(bills: pd.DataFrame, state, warnings) -> None:
    """A bill linked to a family account (共济账户) whose balance was not given (``--accounts``): that account
    pays nothing, and the bill says so, as for an unknown own account."""
    if "acct_payer" not in bills.columns:
        return
    payer = bills["acct_payer"].to_numpy(dtype=object)
    linked = payer != ""
    if not linked.any():
        return
    known = state["psn_no"].astype(str).to_numpy() if state is not None and "acct_balance" in state.columns \
        else np.empty(0, dtype=object)
    unknown = linked & ~np.isin(payer, known)
    for p in pd.unique(payer[unknown]):
        warnings.add(np.flatnonzero(unknown & (payer == p)),
                     tr(f"共济账户 {p}：余额未知（--accounts 未列出），未计入", f"family account {p}: balance unknown "
                        f"(not in --accounts), not applied"), kind="missing")


def _assumptions_used(bills: pd.DataFrame, lines: pd.DataFrame, book: PolicyBook, assumed: np.ndarray):
    """Per bill, the assumed values it was settled with ("shanghai:selfpay_prop=0.1; …", as categories):
    read off the entries of its parameters and of its lines' 乙类 shares."""
    used: dict[str, np.ndarray] = {}

    def mark(rows, uid, label=None):
        label = label or book.entries[int(uid)].source.id
        m = used.setdefault(label, np.zeros(len(bills), bool))
        m[rows] = True

    for c in [c for c in bills.columns if c.endswith("_entry")]:
        uid = bills[c].to_numpy(np.int64)
        hit = np.isin(uid, assumed)
        for u in np.unique(uid[hit]):
            mark(np.flatnonzero(uid == u), u)
    if "selfpay_entry" in lines.columns and len(lines):
        uid = lines["selfpay_entry"].to_numpy(np.int64)
        rule = lines["selfpay_rule"].to_numpy(np.int64) if "selfpay_rule" in lines.columns else np.zeros(len(uid), np.int64)
        hit = np.isin(uid, assumed)
        if hit.any():
            pos = bill_positions(bills, lines)
            for u, ri in {(int(u), int(ri)) for u, ri in zip(uid[hit], rule[hit])}:
                src = _line_rate_source(book, u, ri)
                if _is_assumed_source(src):     # not the sourced rules of a partly assumed share
                    mark(np.unique(pos[hit & (uid == u) & (rule == ri)]), u, src.id)
    masks = WarnMasks(len(bills))
    masks.masks = used
    return masks.categorical()


def resolve_parameters(lines: pd.DataFrame, book: PolicyBook, *, on=None, state: pd.DataFrame | None = None):
    """The table values each bill would be settled with, without settling it.

    Returns (bills, P, errors): the bill frame, the per-bill parameter arrays of the settlement
    (entry -1 where a value could not be resolved) and the errors that would reject each bill. A
    parameter that resolves is returned even when another one the bill needs is missing, so a sourced
    value can be checked before the rest of its table is known.
    """
    _, bills, errors, _, P = _resolve_terms(lines, book, on, state)
    return bills, P, errors


def _resolve_terms(lines: pd.DataFrame, book: PolicyBook, on, state: pd.DataFrame | None = None, members=None):
    """Bills from lines, and every table value they need; a bill failing here is rejected before computing."""
    lines = line_codes(lines.reset_index(drop=True))
    bills = _bill_frame(lines, on)
    if members is not None:
        bills = _member_year_groups(bills, members, book)
    errors = Errors(len(bills))
    _assign_tables(bills, book, errors)
    if members is not None:
        _member_eligibility(bills, members, book, errors)
    if "settle_mode" in bills.columns:
        _manual_claims(bills, book, errors)
    uncovered = _not_covered(bills)
    if uncovered is not None and uncovered.any():
        _count_covered_admissions(bills, ~uncovered)
    # the admission number counts the year's admissions before the batch (state `admissions`) here,
    # before any table value is looked up: rules and adjustments keyed on `admission` see the same
    # number as the nth-admission factors
    bills["admission"] = bills["admission"].to_numpy(np.int64) + _ytd(bills, state, "admissions", _first_year(bills))
    ooa_errors, params, param_errors = _bill_terms(bills, book)
    # errors keep their order of discovery (the first one is the bill's reason): 异地 terms, line
    # rules, then the bill's own parameters
    errors.absorb(ooa_errors)
    line_rates = _line_rules(lines, bills, book, errors)
    errors.absorb(param_errors)
    return lines, bills, errors, line_rates, params


# Attributes a table value may depend on (see ``_attrs``), besides the date and the age.
PROFILE_COLUMNS = ("table", "benefit", "psn_type", "contrib_tier", "hosp_lv", "hosp_type", "psn_idet_type",
                   "med_type", "ooa", "admission", "mdtrt_province", "mdtrt_scope")


def _profile_breaks(book: PolicyBook) -> tuple[np.ndarray, np.ndarray]:
    """Every date on which some entry starts, and every age bound some rule or adjustment names.

    Two bills on either side of no such date, and of no such age, get the same value from every
    table: the dates and ages a table can tell apart are these classes, not the days and years.
    """
    cached = getattr(book, "_profile_breaks", None)
    if cached is not None:
        return cached
    starts = {d for t in book.tables.values() for p in t.all_params() for d in p._starts}
    ages = set()
    for e in book.entries:
        whens = [a.when for a in e.adjust]
        whens += [r.when for v in e.fields.values() if isinstance(v, Value) for r in v.rules]
        for w in whens:
            if "age" in w:
                ages.update(x for x in w["age"] if x is not None)
    out = (np.array(sorted(starts), dtype="datetime64[D]"), np.array(sorted(ages), dtype=float))
    book._profile_breaks = out
    return out


def _profiles(bills: pd.DataFrame, book: PolicyBook, exact_age: np.ndarray | None = None) -> np.ndarray:
    """Profile number per bill: bills alike in every attribute a table can tell apart.

    ``exact_age`` (bool per bill): these bills are told apart by their exact age too (their errors
    describe the bill, age included).
    """
    starts, ages = _profile_breaks(book)
    date_class = np.searchsorted(starts, bills["policy_date"].to_numpy("datetime64[D]"), side="right")
    age = bills["age"].to_numpy(float)
    age_class = np.where(np.isnan(age), -1, np.searchsorted(ages, age, side="right"))
    keys = [date_class, age_class] + [bills[c].to_numpy() for c in PROFILE_COLUMNS]
    if exact_age is not None:
        keys.append(np.where(exact_age, pd.factorize(age, use_na_sentinel=False)[0], -1))
    return group_ids(*keys)


def _take_params(P: dict, idx: np.ndarray, n: int) -> dict:
    """Row ``i`` of every per-row array of ``P`` (``n`` rows, programs included) becomes row ``idx[i]``."""
    out = {}
    for k, v in P.items():
        if isinstance(v, np.ndarray) and len(v) == n:
            out[k] = v[idx]
        elif k == "_warn":
            out[k] = v.take(idx)
        elif k == "programs":
            out[k] = [(payer, _take_params(arrs, idx, n)) for payer, arrs in v]
        else:
            out[k] = v
    return out


def _bill_terms(bills: pd.DataFrame, book: PolicyBook):
    """异地 terms and table values per bill, resolved once per profile (a batch of tens of thousands of
    bills has a few thousand) and spread to the bills. Sets ``hosp_lv_used``.

    Returns (errors of the 异地 terms, parameters, errors of the parameters), per bill.
    """
    exact_age = None
    while True:
        prof = _profiles(bills, book, exact_age)
        first = np.full(int(prof.max()) + 1 if len(prof) else 0, len(prof), np.int64)
        np.minimum.at(first, prof, np.arange(len(prof)))
        rep = bills.take(first).reset_index(drop=True)         # one bill stands for its profile
        ooa_err, param_err = Errors(len(rep)), Errors(len(rep))
        ooa = _out_of_area(rep, book, ooa_err)          # first: it can change the hospital level used
        params = _resolve_bill_params(rep, book, param_err, ooa)
        failed = (ooa_err.error != None) | (param_err.error != None)  # noqa: E711
        if exact_age is not None or not failed.any():
            break
        exact_age = failed[prof]                        # once more, telling their ages apart
    bills["hosp_lv_used"] = rep["hosp_lv_used"].to_numpy()[prof]
    return ooa_err.take(prof), _take_params(params, prof, len(rep)), param_err.take(prof)


BILL_ATTRS = ["psn_no", "setl_date", "region", "scheme", "psn_type", "contrib_tier", "psn_idet_type", "age", "med_type",
              "hosp_lv", "hosp_type", "mdtrt_area", "fil_type"]


def line_codes(lines: pd.DataFrame) -> pd.DataFrame:
    """Integer keys the engine groups by: ``_bill`` (per mdtrt_id) and ``_member`` (per psn_no, numbered
    in the members' text order, so sorting by it sorts by psn_no). Hashing the text once here spares
    every later grouping a pass over strings."""
    lines = lines.copy(deep=False)     # copy-on-write: the caller's frame is untouched, and no column is copied
    if "_bill" in lines.columns:          # from inputs.prepare: renumber densely (rejected bills leave gaps)
        lines["_bill"] = dense_codes(lines["_bill"].to_numpy())
    else:
        lines["_bill"] = pd.factorize(lines["mdtrt_id"].to_numpy())[0].astype(np.int64)
    if "_member" in lines.columns:        # keeps the numbers' order, which is psn_no's text order
        lines["_member"] = dense_codes(lines["_member"].to_numpy())
    else:
        lines["_member"] = pd.factorize(lines["psn_no"].to_numpy(), sort=True)[0].astype(np.int64)
    return lines


def _bill_frame(lines: pd.DataFrame, on) -> pd.DataFrame:
    bill = lines["_bill"].to_numpy()
    nb = int(bill.max()) + 1 if len(bill) else 0
    n = len(bill)
    first = np.full(nb, n, np.int64)
    np.minimum.at(first, bill, np.arange(n))          # a bill's first line carries its attributes
    first_row = np.full(nb, np.iinfo(np.int64).max, np.int64)
    np.minimum.at(first_row, bill, lines["_row"].to_numpy(np.int64))
    n_lines = np.bincount(bill, minlength=nb)
    setl_date = lines["setl_date"].to_numpy("datetime64[D]")[first]
    policy_date = (np.full(nb, np.datetime64(pd.Timestamp(on).date(), "D")) if on is not None
                   else setl_date.copy())
    setl_date = np.where(np.isnat(setl_date), policy_date, setl_date)
    # integer codes of region and scheme (in text order) for sorting and for every later grouping
    region = pd.factorize(lines["region"].to_numpy()[first], sort=True)[0].astype(np.int64)
    scheme = pd.factorize(lines["scheme"].to_numpy()[first], sort=True)[0].astype(np.int64)
    # Order that carries the year state: member, region, scheme, date, then input order. The bills
    # are built in that order (one take per column, not a take of the whole frame afterwards).
    order = np.lexsort((first_row, setl_date, scheme, region, lines["_member"].to_numpy()[first]))
    at = first[order]
    # column by column: a frame-wide take would first merge the text columns into one block
    # region_note (inputs.prepare): how a 参保地 was read, where that is worth telling (a county code)
    # settle_mode, claim_date (inputs.prepare): a manual claim and its filing date, where the input says
    extra = [c for c in ("region_note", "settle_mode", "claim_date") if c in lines.columns]
    bills = pd.DataFrame({c: _take_column(lines[c], at) for c in ["mdtrt_id", "_bill", "_member"] + BILL_ATTRS + extra})
    bills["setl_date"] = setl_date[order]
    bills["first_row"] = first_row[order]
    bills["n_lines"] = n_lines[order]
    bills["policy_date"] = policy_date[order]
    bills["_region"] = region[order]
    bills["_scheme"] = scheme[order]
    # whose year state a bill shares: one per member's region and scheme (a move that carries the year over
    # joins two, see ``_member_year_groups``); numbered in the sort order above
    bills["_year_group"] = region[order] * (int(scheme.max(initial=0)) + 1) + scheme[order]
    return bills


def _member_year_groups(bills: pd.DataFrame, members, book: PolicyBook) -> pd.DataFrame:
    """With a members file: the year state follows the member's spans (``ybcalc.members.year_groups``): a move
    into a region whose table says the year carries over continues the previous span's state. The bills are
    re-sorted so that each year group's bills are in date order."""
    from ..members import year_groups
    info = year_groups(bills, members, book)
    bills = bills.assign(**info)
    keys = (bills["first_row"].to_numpy(), bills["setl_date"].to_numpy("datetime64[D]"),
            bills["_year_group"].to_numpy(), bills["_member"].to_numpy())
    order = _lexsort_unless_sorted(keys)
    if (order != np.arange(len(order))).any():
        bills = bills.take(order).reset_index(drop=True)
    return bills


def _take_column(col: pd.Series, idx: np.ndarray) -> pd.Series:
    """Rows ``idx`` of a column, keeping object text as object (see ``inputs.text``)."""
    values = col.to_numpy()
    return pd.Series(values[idx], dtype=object) if values.dtype == object else pd.Series(values[idx])


def date_horizon(book: PolicyBook) -> tuple[np.datetime64, np.datetime64] | None:
    """(newest entry, the last day the tables speak for): 31 December of the year after the newest
    dated entry of any table of the book. The tables were researched up to that entry; a table
    whose values have not changed since (杭州's 2021 values, still in force) is taken as current as
    long, not only until its own newest entry. A bill dated later (9999-12-31, a typing slip) is
    settled with the latest entries, with a warning. None for a book without entries."""
    starts = [e.start for e in book.entries if e.start is not None]
    if not starts:
        return None
    newest = max(starts)
    return np.datetime64(newest, "D"), np.datetime64(f"{newest.year + 1}-12-31", "D")


def _warn_dates_out_of_range(t, idx: np.ndarray, days: np.ndarray, horizon, errors: Errors, book) -> None:
    """Warn bills of table ``t`` dated before its earliest entry or beyond the tables' horizon."""
    label = f"{book.region_label(t.region)}{'职工' if t.scheme == 'employee' else '居民'}"
    starts = [e.start for p in t.all_params() for e in p.entries if e.start is not None]
    if starts:
        earliest = np.datetime64(min(starts), "D")
        early = idx[days[idx] < earliest]
        if len(early):
            errors.warn(early, tr(f"结算日期早于{label}政策表的最早条目（{earliest}）：表中没有该日适用的政策",
                                   f"settlement date before the earliest entry of the {t.key} table "
                                   f"({earliest}): the tables hold no policy for that day"), kind="input")
    if horizon is not None:
        newest, last = horizon
        late = idx[days[idx] > last]
        if len(late):
            errors.warn(late, tr(f"结算日期晚于政策表的适用期（最新条目 {newest}，适用至 {last}）："
                                  f"按最新条目计算，请核对日期及是否已有新政策",
                                  f"settlement date beyond the tables' horizon (newest entry {newest}, "
                                  f"taken as current until {last}): settled with the latest entries; check "
                                  f"the date and whether a newer policy applies"), kind="input")


def _assign_tables(bills: pd.DataFrame, book: PolicyBook, errors: Errors) -> None:
    n = len(bills)
    tkey = full_object(n, "")
    benefit = full_object(n, "")
    year = np.zeros(n, np.int64)
    days = bills["setl_date"].to_numpy("datetime64[D]")
    calendar_year = days.astype("datetime64[Y]")
    tiers, med_type = (bills[c].to_numpy() for c in ("contrib_tier", "med_type"))
    psn_type = bills["psn_type"].to_numpy().astype(object)        # a copy: groups derived from the age go here
    derived = np.full((2, n), -1, np.int64)                        # (entry, rule) of a group derived from the age
    policy_days = bills["policy_date"].to_numpy("datetime64[D]")        # the day whose values are used
    horizon = date_horizon(book)
    for (region, scheme), idx in bills.groupby(["region", "scheme"], sort=False).indices.items():
        t = book.tables.get((region, scheme))
        if t is None:
            r = book.regions.get(region)
            name, code = book.region_label(region), r.code if r else "?"
            zh, en = ("职工", "employee") if scheme == "employee" else ("居民", "resident")
            errors.fail(idx, tr(f"{name}（{code}）还没有{zh}参数表，可用 `ybcalc tables new {name} --scheme {zh}` 新建",
                                f"no {en} table for {name} ({code}) yet; make one with "
                                f"`ybcalc tables new {name} --scheme {zh}`"))
            continue
        tkey[idx] = t.key
        _warn_dates_out_of_range(t, idx, policy_days, horizon, errors, book)
        _derive_psn_type(t, idx[psn_type[idx] == ""], bills, psn_type, derived, errors, book)
        if t.psn_types:
            odd = idx[~pd.Series(psn_type[idx], dtype=object).isin(t.psn_types).to_numpy()]
            for v in np.unique(psn_type[odd]):
                if v:
                    errors.warn(odd[psn_type[odd] == v],
                                tr(f"人员类别 {v} 不是{book.region_label(region)}"
                                   f"{_scheme_word(scheme)}的类别（{'/'.join(t.psn_types)}），按默认规则计算",
                                   f"member group {v} is not one of {book.region_label(region)} "
                                   f"{_scheme_word(scheme)} ({'/'.join(t.psn_types)}): settled by the default rule"),
                                kind="input")
                    continue
                errors.warn(odd[psn_type[odd] == v], tr(
                    f"人员类别（psn_type）未填写：{book.region_label(region)}{'职工' if scheme == 'employee' else '居民'}"
                    f"按不分类别的规则计算（类别：{'/'.join(t.psn_types)}），请核对或填写",
                    f"no member group (psn_type): settled by the rules of {book.region_label(region)} {scheme} that "
                    f"name no group (groups: {'/'.join(t.psn_types)}); check it or fill it in"), kind="input")
        if t.contrib_tiers:
            odd = idx[~pd.Series(tiers[idx], dtype=object).isin(t.contrib_tiers).to_numpy()]
            for v in np.unique(tiers[odd]):
                errors.warn(odd[tiers[odd] == v],
                            tr(f"缴费档次 {v or '(未给出)'} 不是{book.region_label(region)}"
                               f"{_scheme_word(scheme)}的档次（{'/'.join(t.contrib_tiers)}），"
                               f"按表中未注明档次的规则计算",
                               f"contribution tier {v or '(not given)'} is not one of {book.region_label(region)} "
                               f"{_scheme_word(scheme)} ({'/'.join(t.contrib_tiers)}): settled by the rules "
                               f"that name no tier"),
                            kind="input")
        mt_code, mts = pd.factorize(med_type[idx])
        for j, m in enumerate(mts):
            b = t.benefit_for(m)
            sel = idx[mt_code == j]
            if b is None:
                errors.fail(sel, tr(f"{book.region_label(region)}{_scheme_word(scheme)}没有结算医疗类别 "
                                    f"{_med_type_word(m)} 的待遇（benefits.*.med_types）",
                                    f"{book.region_label(region)} {_scheme_word(scheme)}: no benefit settles visit "
                                    f"type {_med_type_word(m)} (benefits.*.med_types)"))
            else:
                benefit[sel] = b
        # policy year: the calendar year, less one before the table's year start (e.g. 07-01)
        mo, dd = t.policy_year_start
        cy = calendar_year[idx]
        start = (cy.astype("datetime64[M]") + np.timedelta64(mo - 1, "M")).astype("datetime64[D]") \
            + np.timedelta64(dd - 1, "D")
        year[idx] = cy.astype(np.int64) + 1970 - (days[idx] < start)
    bills["table"] = text(tkey)
    bills["benefit"] = text(benefit)
    bills["psn_type"] = text(psn_type)
    bills["psn_type_entry"], bills["psn_type_rule"] = derived
    bills["policy_year"] = year
    # Out-of-area category: local care, or how the member's care elsewhere was filed.
    local = bills["mdtrt_area"].to_numpy() == bills["region"].to_numpy()
    fil = bills["fil_type"].to_numpy().astype(object)
    emerg = med_type == "13"
    # assigned into an object array (np.where over strings builds fixed-width text, then objects again)
    cat = fil.copy()
    not_filed = pd.Series(fil, dtype=object).isin(["none", "unfiled"]).to_numpy()
    cat[not_filed & emerg] = "emergency"
    cat[not_filed & ~emerg] = "unfiled"
    cat[local] = "local"
    bills["ooa"] = text(cat)
    if "region_note" in bills.columns:
        notes = bills["region_note"].to_numpy()
        for note in pd.unique(notes[notes != ""]):
            errors.warn(np.flatnonzero(notes == note), note, kind="input")
    # where care happened, for rules that depend on it (e.g. 京津冀 vs elsewhere, 省内 vs 省外)
    prov = {rid: r.province for rid, r in book.regions.items()}
    area = bills["mdtrt_area"].to_numpy().astype(object)
    own = bills["region"].to_numpy().astype(object)
    mprov = map_distinct(area, lambda a: province_of(book, str(a)))      # a division without a table too
    oprov = map_distinct(own, lambda a: prov.get(a, ""))
    bills["mdtrt_province"] = text(mprov)
    scope = full_object(len(bills), "out_of_province")
    scope[mprov == oprov] = "in_province"
    scope[mprov == ""] = "unknown"
    scope[local] = "local"
    bills["mdtrt_scope"] = text(scope)
    unknown_area = map_distinct(area, lambda a: str(a).startswith("?")).astype(bool)
    errors.warn(np.flatnonzero(unknown_area), tr("就医地不在 regions.yaml 中，按异地就医处理",
                                                 "place of care not in regions.yaml: settled as out-of-area care"),
                kind="input")
    # admission counter of the year, per benefit (1-based): tables may key on `admission`
    gid = group_ids(bills["_member"].to_numpy(), bills["_year_group"].to_numpy(),
                    bills["policy_year"].to_numpy(), pd.factorize(benefit)[0])
    bills["admission"] = pd.Series(np.ones(len(bills), np.int64)).groupby(gid).cumsum().to_numpy()


def _derive_psn_type(t, idx, bills, psn_type, derived, errors: Errors, book: PolicyBook) -> None:
    """The 人员类别 of bills ``idx`` (which give none) from their age, by the table's ``psn_type_by_age``.

    Sets ``psn_type[idx]`` and ``derived`` (entry uid, rule index). Without a rule in force (none in the
    table, or a ``missing`` entry) nothing is derived: the bills settle as before, by the rules that
    name no group, or fail naming the column to fill. A bill without an age, or whose age no band
    holds, fails naming both columns.
    """
    param = t.params.get("psn_type_by_age")
    if param is None or not len(idx):
        return
    dates = bills["policy_date"].to_numpy("datetime64[D]")[idx]
    age = bills["age"].to_numpy(float)[idx]
    which = param.entry_index(dates)
    what = f"{book.region_label(t.region)}{'职工' if t.scheme == 'employee' else '居民'}"
    what_en = f"{book.region_label(t.region)} {t.scheme}"
    for e_i in np.unique(which):
        sel = which == e_i
        if e_i < 0 or param.entries[e_i].missing:
            continue
        entry = param.entries[e_i]
        rows, a = idx[sel], age[sel]
        rule_of = np.full(len(rows), -1, np.int64)
        for i, rule in enumerate(entry.raw["groups"]):
            m = (rule_of < 0) & match(rule["when"], {"age": a}, len(rows))
            rule_of[m] = i
            psn_type[rows[m]] = rule["value"]
        derived[0, rows[rule_of >= 0]] = entry.uid
        derived[1, rows] = rule_of
        no_age = np.isnan(a)
        errors.fail(rows[no_age], tr(
            f"人员类别（psn_type）和年龄（age）均未填写：{what}的人员类别按年龄确定（{'/'.join(t.psn_types)}），请填写其一",
            f"member group (psn_type) and age are both empty: {what_en} groups ({'/'.join(t.psn_types)}) go by "
            f"age; fill in either"))
        unmatched = (rule_of < 0) & ~no_age
        for v in np.unique(a[unmatched]):
            errors.fail(rows[unmatched & (a == v)], tr(
                f"人员类别（psn_type）未填写，年龄 {v:g} 不在{what}按年龄划分人员类别的规则内（{entry.key}），请填写人员类别",
                f"member group (psn_type) is empty and age {v:g} is in no age band of {entry.key}: fill in psn_type"))
        for i in np.unique(rule_of[rule_of >= 0]):
            rule = entry.raw["groups"][i]
            errors.warn(rows[rule_of == i], tr(
                f"人员类别未填写，按年龄推定为{rule['value']}（{age_band(rule['when']['age'], 'zh')}，{entry.key}）",
                f"no member group: {rule['value']} by age ({age_band(rule['when']['age'], 'en')}, {entry.key})"),
                kind="input")


def age_band(band, lang: str = "zh") -> str:
    """``[lo, hi]`` as a reader writes it: 18 ≤ 年龄 < 60 (hi excluded)."""
    lo, hi = band
    word = tr("年龄", "age", lang=lang)
    left = "" if lo is None else f"{lo:g} ≤ "
    right = "" if hi is None else f" < {hi:g}"
    return f"{word} ≥ {lo:g}" if hi is None else f"{left}{word}{right}"


def _member_eligibility(bills: pd.DataFrame, members, book: PolicyBook, errors: "Errors") -> None:
    """Whether each bill's member could be paid on its date (``ybcalc.members``), as bill columns; a bill
    the member is not eligible for does not count as an admission of the year."""
    from ..members import eligibility, transfer_warnings
    elig = eligibility(bills, members, book, errors.warn)
    transfer_warnings(bills, book, errors.warn)
    bills["member_span_row"] = elig["span_row"]
    bills["member_listed"] = elig["listed"]
    bills["member_eligible"] = elig["eligible"]
    bills["member_reason"] = elig["reason"]
    bills["member_benefit_from"] = elig["benefit_from"]
    bills["member_wait_months"] = elig["wait_months"]
    bills["member_wait_rule"] = elig["wait_rule"]          # which rule set the wait (waiting_period / employee_gap)
    bills["member_reward"] = elig["reward"]
    bills["member_reward_share"] = elig["reward_share"]
    from ..members import family_account                 # 家庭共济: whose account pays the rest
    fam = family_account(bills, elig["acct_payer"], members, book, errors.warn)
    bills["acct_payer"] = fam["payer"]
    bills["family_pays_selfpay"] = fam["pays_selfpay"]
    bills["family_pays_ownpay"] = fam["pays_ownpay"]


def _manual_claims(bills: pd.DataFrame, book: PolicyBook, errors: "Errors") -> None:
    """A manual claim (手工报销) and whether it was filed in time (``ybcalc.claims``), as bill columns."""
    from ..claims import claim_terms
    terms = claim_terms(bills, book, errors.warn)
    bills["claim_status"] = terms["status"]
    bills["claim_deadline"] = terms["deadline"]
    bills["claim_entry"] = terms["entry"]


def _not_covered(bills: pd.DataFrame) -> np.ndarray | None:
    """Bills the funds pay nothing for: the member not eligible on the bill's date (members file) or a manual
    claim filed after its deadline. None when neither was said."""
    out = None
    if "member_eligible" in bills.columns:
        out = ~bills["member_eligible"].to_numpy(bool)
    late = _late_claims(bills)
    if late is not None:
        out = late if out is None else out | late
    return out


def _late_claims(bills) -> np.ndarray | None:
    """Per bill: a manual claim filed after its deadline (None when no bill said how it was settled)."""
    if "claim_status" not in bills.columns:
        return None
    from ..claims import LATE
    return bills["claim_status"].to_numpy() == LATE


def _waiting_or_late(bills) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per bill: in a waiting period (enrolled, benefits not yet due); a manual claim filed too late."""
    waiting = None
    if "member_eligible" in bills.columns:
        waiting = ~bills["member_eligible"].to_numpy(bool) & (bills["member_wait_months"].to_numpy(np.int64) >= 0)
    return waiting, _late_claims(bills)


def _count_covered_admissions(bills: pd.DataFrame, ok: np.ndarray) -> None:
    """A bill the funds do not cover does not count as an admission of the year."""
    gid = group_ids(bills["_member"].to_numpy(), bills["_year_group"].to_numpy(),
                    bills["policy_year"].to_numpy(), pd.factorize(bills["benefit"].to_numpy())[0])
    n_ok = gcumsum(ok.astype(np.int64), gid)
    bills["admission"] = np.where(ok, n_ok, n_ok + 1)


class _Lazy(dict):
    """Attribute arrays built on first use (rules name few of them; each costs a pass over the bills)."""

    def __init__(self, makers: dict):
        super().__init__()
        self.makers = makers

    def get(self, key, default=None):
        if key not in self.makers:
            return default
        if not super().__contains__(key):
            super().__setitem__(key, self.makers[key]())
        return super().__getitem__(key)

    def __getitem__(self, key):
        if key not in self.makers:
            raise KeyError(key)
        return self.get(key)

    def __contains__(self, key) -> bool:
        return key in self.makers

    def keys(self):
        return self.makers.keys()

    def items(self):
        return ((k, self.get(k)) for k in self.makers)


def _attrs(bills: pd.DataFrame, hosp_lv=None) -> dict:
    """The bill attributes decision tables may name (``when:`` keys), as arrays over ``bills``."""
    def text(col):
        return lambda: bills[col].to_numpy().astype(str)
    return _Lazy({
        "psn_type": text("psn_type"),
        "contrib_tier": text("contrib_tier"),
        "hosp_lv": lambda: (hosp_lv if hosp_lv is not None else bills["hosp_lv"].to_numpy()).astype(np.int64),
        "hosp_type": text("hosp_type"),
        "age": lambda: bills["age"].to_numpy(float),
        "psn_idet_type": text("psn_idet_type"),
        "med_type": text("med_type"),
        "fil_type": text("ooa"),
        "admission": lambda: bills["admission"].to_numpy(np.int64),
        "mdtrt_province": text("mdtrt_province"),
        "mdtrt_scope": text("mdtrt_scope"),
    })


def _label(book: PolicyBook, region, scheme, what) -> str:
    """A parameter's name in messages, in Chinese in both languages: the notice's own terms
    ("莆田 职工 住院 起付线"), as the English README writes them too."""
    return f"{book.region_label(region)} {'职工' if scheme == 'employee' else '居民'} {what}"


def _scheme_word(scheme: str) -> str:
    from ..codes import SCHEME_LABEL
    return tr(*SCHEME_LABEL.get(scheme, (scheme, scheme)))


def _med_type_word(m: str) -> str:
    from ..codes import MED_TYPE_LABEL
    return tr(*MED_TYPE_LABEL[m]) + f" ({m})" if m in MED_TYPE_LABEL else str(m)


def _line_rules(lines, bills, book, errors: Errors) -> dict:
    """Per line: exclusion reason and the 乙类先行自付 rate (with its provenance)."""
    n = len(lines)
    bill_pos = bill_positions(bills, lines)
    reason = full_object(n, "")
    lv = lines["chrgitm_lv"].to_numpy()
    reason[lv == 3] = "chrgitm_lv"
    names = lines["item_name"].to_numpy(dtype=object)
    codes_ = lines["item_code"].to_numpy(dtype=object)
    cats = lines["med_chrgitm_type"].to_numpy(dtype=object)
    bill_mt = bills["med_type"].to_numpy()[bill_pos]
    line_dates = bills["policy_date"].to_numpy("datetime64[D]")[bill_pos]
    child = lines["chld_medc_flag"].astype(str).to_numpy() if "chld_medc_flag" in lines.columns else np.full(n, "")
    warn_rule = full_object(n, "")
    # Name/code/category tests run on the distinct (name, code, category) combinations only.
    # (inputs.prepare numbers the items from its per-column codes; lines from elsewhere are numbered here)
    kcode = (pd.factorize(lines["_item"].to_numpy())[0] if "_item" in lines.columns
             else group_ids(names, codes_, cats))
    first = np.full(kcode.max() + 1 if n else 0, -1, np.int64)
    first[kcode[::-1]] = np.arange(n)[::-1]              # one representative line per combination
    u_names = pd.Series(names[first].astype(str))
    u_codes = pd.Series(codes_[first].astype(str))
    u_cats = np.asarray(cats)[first].astype(str)
    for rule in book.exclusions:
        um = np.ones(len(first), bool)
        if rule.name_contains:
            um &= u_names.str.contains("|".join(map(_re_escape, rule.name_contains)), regex=True).to_numpy()
        if rule.name_excludes:
            um &= ~u_names.str.contains("|".join(map(_re_escape, rule.name_excludes)), regex=True).to_numpy()
        if rule.med_chrgitm_type:
            um &= np.isin(u_cats, rule.med_chrgitm_type)
        if rule.code_prefix:
            um &= u_codes.str.startswith(tuple(rule.code_prefix)).to_numpy()
        if not um.any():
            continue
        m = um[kcode]
        if "med_type" in rule.except_when:
            m &= ~np.isin(bill_mt, rule.except_when["med_type"])
        if "chld_medc_flag" in rule.except_when:
            m &= ~np.isin(child, rule.except_when["chld_medc_flag"])
        if rule.start is not None:
            m &= line_dates >= np.datetime64(rule.start, "D")
        if rule.until is not None:
            m &= line_dates <= np.datetime64(rule.until, "D")
        m &= (reason == "") & (lv != 3)
        if rule.enforce == "warn":
            warn_rule[m & (warn_rule == "")] = rule.id
            continue
        reason[m] = "exclusion:" + rule.id
    for rid in np.unique(warn_rule[warn_rule != ""]):
        rule = next(r for r in book.exclusions if r.id == rid)
        for bp in np.unique(bill_pos[warn_rule == rid]):
            errors.warn([bp], tr(f"{rule.label_zh}（{rule.id}，按所标甲乙类计算，请核对）",
                                 f"{rule.label_en} ({rule.id}; settled by its catalogue class: check it)"),
                        kind="exclusion")
    rate = np.zeros(n, np.int64)
    entry = np.full(n, -1, np.int64)
    rule_i = np.full(n, -1, np.int64)
    own = lines["selfpay_prop"].to_numpy(float)
    has_own = ~np.isnan(own)
    rate[has_own] = np.round(own[has_own] * PPM).astype(np.int64)
    need = (lv == 2) & ~has_own & (reason == "")
    if need.any():
        # the bill's attributes seen from each line, sliced only for the attributes a rule names
        lattrs = Rows(_attrs(bills, bills["hosp_lv_used"].to_numpy()), bill_pos,
                      extra={"med_chrgitm_type": cats.astype(str), "chrgitm_lv": lv.astype(np.int64)})
        dates = bills["policy_date"].to_numpy("datetime64[D]")[bill_pos]
        line_err = Errors(n)
        tables = bills["table"].to_numpy()[bill_pos]
        for tk in np.unique(tables[need]):
            idx = np.flatnonzero(need & (tables == tk))
            if not tk:
                continue
            t = book.tables[tuple(tk.split("/"))]
            r = resolve(t.params.get("selfpay_prop"), idx, dates, lattrs, line_err,
                        _label(book, t.region, t.scheme, "乙类先行自付比例"),
                        {"rate": 0})
            rate[idx] = r["rate"]
            entry[idx] = r["_entry"]
            rule_i[idx] = r["_rule_rate"]
            for uid in np.unique(r["_entry"][r["_entry"] >= 0]):     # a rate the user assumed (--assume)
                of_entry = r["_entry"] == uid
                for ri in np.unique(r["_rule_rate"][of_entry]):
                    src = _line_rate_source(book, uid, ri)
                    if _is_assumed_source(src):
                        rows = idx[of_entry & (r["_rule_rate"] == ri)]
                        errors.warn(np.unique(bill_pos[rows]), assumed_warning(src), kind="assumption")
        bad = line_err.error != None  # noqa: E711
        if bad.any():
            msgs = line_err.error[bad]
            errors.fail(bill_pos[bad], np.array([m + tr(" — 或在明细中给出自付比例 selfpay_prop（可来自项目目录：--catalogue 文件）",
                                                         " — or give the line's selfpay_prop (from an item catalogue: "
                                                         "--catalogue FILE)") for m in msgs], dtype=object))
    return {"exclusion": reason, "exclusion_warn": warn_rule, "rate": rate, "rate_entry": entry, "rate_rule": rule_i,
            "rate_from_line": has_own, "bill_pos": bill_pos}


def _re_escape(s: str) -> str:
    import re
    return re.escape(s)


def _line_amounts(lines: pd.DataFrame, r: dict) -> None:
    amount = lines["amount"].to_numpy(np.int64)
    excluded = r["exclusion"] != ""
    lim = lines["limit"].to_numpy(np.int64)
    cnt = lines["cnt"].to_numpy(float)
    # a limit × quantity beyond int64 (an absurd quantity) limits nothing: the line's own amount is
    # bounded far below (inputs.MAX_LINE_FEN)
    huge = ~np.isfinite(cnt) | (np.abs(lim * 1000.0 * cnt) >= 2.0**62)
    has_lim = (lim >= 0) & ~excluded & (amount > 0) & ~huge
    # limit × quantity, half up at the fen: quantities are taken to 1/1000 (exact integer arithmetic)
    cnt_milli = np.round(np.where(huge, 0, cnt) * 1000).astype(np.int64)
    allowed_cap = np.where(has_lim, div_half_up(np.where(has_lim, lim, 0) * cnt_milli, 1000), INF_FEN)
    over = np.where(has_lim, np.clip(amount - allowed_cap, 0, None), 0)
    allowed = np.where(excluded, 0, amount - over)
    is_b = lines["chrgitm_lv"].to_numpy() == 2
    pre = np.where(is_b & ~excluded, mul_ratio(allowed, r["rate"]), 0)
    lines["exclusion"] = text(r["exclusion"], lines.index)      # object, not re-encoded as Arrow text
    lines["exclusion_warn"] = text(r["exclusion_warn"], lines.index)
    lines["fulamt_ownpay_amt"] = np.where(excluded, amount, 0)
    lines["overlmt_selfpay"] = over
    lines["selfpay_rate"] = np.where(is_b & ~excluded, r["rate"], 0)
    lines["selfpay_entry"] = r["rate_entry"]
    lines["selfpay_rule"] = r["rate_rule"]
    lines["selfpay_from_line"] = r["rate_from_line"]
    lines["preselfpay_amt"] = pre
    lines["inscp_scp_amt"] = allowed - pre


def bill_positions(bills: pd.DataFrame, lines: pd.DataFrame) -> np.ndarray:
    """For each line, the row of its bill in ``bills``."""
    code = bills["_bill"].to_numpy()
    pos = np.full(int(max(code.max(initial=-1), lines["_bill"].max() if len(lines) else -1)) + 1, -1, np.int64)
    pos[code] = np.arange(len(bills))
    return pos[lines["_bill"].to_numpy()]


def _bill_amounts(bills: pd.DataFrame, lines: pd.DataFrame) -> None:
    pos = bill_positions(bills, lines)
    for src, dst in (("amount", "medfee_sumamt"), ("fulamt_ownpay_amt", "fulamt_ownpay_amt"),
                     ("overlmt_selfpay", "overlmt_selfpay"), ("preselfpay_amt", "preselfpay_amt"),
                     ("inscp_scp_amt", "inscp_scp_amt")):
        total = np.zeros(len(bills), np.int64)
        np.add.at(total, pos, lines[src].to_numpy(np.int64))     # exact integer sums per bill
        bills[dst] = total


# ---------------------------------------------------------------------------------------------
def _out_of_area(bills: pd.DataFrame, book: PolicyBook, errors: Errors) -> dict:
    """异地就医 terms per bill; sets ``hosp_lv_used`` (a table may settle care elsewhere as another level)."""
    n = len(bills)
    dates = bills["policy_date"].to_numpy("datetime64[D]")
    P: dict = {}

    def put(name, arr_shape, dtype, default):
        P[name] = full_object(arr_shape, default) if dtype is object else np.full(arr_shape, default, dtype=dtype)

    # 异地就医 first: it can change the hospital level used for the local tables.
    ooa = bills["ooa"].to_numpy()
    hosp_lv = bills["hosp_lv"].to_numpy().astype(np.int64).copy()
    put("ooa_add", n, np.int64, 0)
    put("ooa_ded_factor", n, np.int64, PPM)
    put("ooa_factor", n, np.int64, PPM)       # × every local rate ("按市内就医支付比例的 90%")
    put("ooa_entry", n, np.int64, -1)
    put("ooa_rule_add", n, np.int64, -1)
    put("ooa_rate", n, np.int64, -1)          # absolute rate replacing every local rate (-1: none)
    put("ooa_deductible", n, np.int64, -1)    # absolute deductible replacing the local one (-1: none)
    base_attrs = _attrs(bills)
    groups = bills.groupby(["table", "benefit"], sort=False).indices
    for (tk, bname), idx in groups.items():
        if not tk or not bname:        # already failed: no table, or no benefit for the visit type
            continue
        t = book.tables[tuple(tk.split("/"))]
        # long-term residents settle like local care: they need no 异地 terms when the table has none
        for away, required in ((idx[(ooa[idx] != "local") & (ooa[idx] != "long_term")], True),
                               (idx[ooa[idx] == "long_term"], False)):
            if not len(away):
                continue
            r = resolve(t.params.get("out_of_area"), away, dates, base_attrs, errors,
                        _label(book, t.region, t.scheme, "异地就医调整"),
                        {"ratio_add": 0, "ratio_factor": PPM, "deductible_factor": PPM, "hosp_lv_as": -1,
                         "rate": -1, "deductible": -1}, required=required)
            P["ooa_add"][away] = r["ratio_add"]
            P["ooa_factor"][away] = r["ratio_factor"]
            P["ooa_rate"][away] = r["rate"]
            P["ooa_deductible"][away] = r["deductible"]
            P["ooa_ded_factor"][away] = r["deductible_factor"]
            P["ooa_entry"][away] = r["_entry"]
            P["ooa_rule_add"][away] = r["_rule_ratio_add"]
            as_lv = r["hosp_lv_as"]
            hosp_lv[away] = np.where(as_lv >= 0, as_lv, hosp_lv[away])
    bills["hosp_lv_used"] = hosp_lv
    return P


def _resolve_bill_params(bills: pd.DataFrame, book: PolicyBook, errors: Errors, ooa: dict) -> dict:
    """Every table value each bill needs, as arrays aligned with ``bills``."""
    n = len(bills)
    dates = bills["policy_date"].to_numpy("datetime64[D]")
    P: dict = {"_warn": WarnMasks(n)}
    width = 1
    for t in book.tables.values():
        for p in t.all_params():
            for e in p.entries:
                if "segments" in e.raw:
                    width = max(width, len(e.raw["segments"]))
    P["_width"] = width

    def put(name, arr_shape, dtype, default):
        if name not in P:
            P[name] = full_object(arr_shape, default) if dtype is object else np.full(arr_shape, default, dtype=dtype)

    hosp_lv = bills["hosp_lv_used"].to_numpy()
    P.update(ooa)
    groups = bills.groupby(["table", "benefit"], sort=False).indices
    attrs = _attrs(bills, hosp_lv)

    specs = {
        "deductible": {"basis": "per_admission", "amount": 0, "nth_factor": "", "nth_decrement": 0, "min": 0},
        "ratio": {"basis": "above_deductible", "accumulate": "per_bill", "segments": 0, "rates": 0},
        "cap": {"basis": "fund", "group": "", "amount": int(INF_FEN)},
    }
    what = {"deductible": "起付线", "ratio": "支付比例", "cap": "最高支付限额"}
    for pname, fields in specs.items():
        for f, d in fields.items():
            if f in ("rates", "segments"):
                put(f"{pname}_{f}", (n, width), np.int64, 0)
            else:
                put(f"{pname}_{f}", n, object if isinstance(d, str) else np.int64, d)
            put(f"{pname}_rule_{f}", n, np.int64, -1)
        put(f"{pname}_entry", n, np.int64, -1)
        put(f"{pname}_adjust", n, np.int64, 0)
    for (tk, bname), idx in groups.items():
        if not tk or not bname:        # already failed: no table, or no benefit for the visit type
            continue
        t = book.tables[tuple(tk.split("/"))]
        b = t.benefits[bname]
        for pname, fields in specs.items():
            # where the 异地 terms give this value outright, the local value is not needed: a failed
            # local lookup (e.g. a hospital category only local hospitals have) must not reject the bill
            override = {"deductible": P["ooa_deductible"], "ratio": P["ooa_rate"]}.get(pname)
            err = errors
            if override is not None and (override[idx] >= 0).any():
                err = Errors(n)
            r = resolve(b.params.get(pname), idx, dates, attrs, err,
                        _label(book, t.region, t.scheme, f"{b.label} {what[pname]}"), fields, width,
                        warn_if_missing=pname == "cap")
            if err is not errors:
                failed = idx[(err.error[idx] != None) & (override[idx] < 0)]  # noqa: E711
                errors.fail(failed, err.error[failed])
                errors.warnings.merge(err.warnings)
            for f in fields:
                P[f"{pname}_{f}"][idx] = r[f]
                P[f"{pname}_rule_{f}"][idx] = r[f"_rule_{f}"]
            P[f"{pname}_entry"][idx] = r["_entry"]
            P[f"{pname}_adjust"][idx] = r["_adjust"]
    P["cap_group"] = np.where(P["cap_group"] == "", bills["benefit"].to_numpy(), P["cap_group"])
    # Unmentioned segments/rates: a plain ratio without segments is one segment from 0.
    seg = P["ratio_segments"]
    no_seg = (seg == 0).all(axis=1)
    seg[no_seg, 1:] = INF_FEN

    # 大病保险 / 大额补助 and 医疗救助, per payer.
    P["programs"] = []
    for payer in PAYER_ORDER + ("maf",):
        fields = {"threshold": 0, "segments": 0, "rates": 0, "cap": int(INF_FEN), "base": "",
                  "applies_to": "", "out_of_area_reduction_excluded": ""}
        arrs = {f: (np.zeros((n, width), np.int64) if f in ("segments", "rates") else
                    (full_object(n, d) if isinstance(d, str) else np.full(n, d, np.int64))) for f, d in fields.items()}
        arrs["entry"] = np.full(n, -1, np.int64)
        for f in ("threshold", "rates", "cap"):
            arrs[f"rule_{f}"] = np.full(n, -1, np.int64)
        arrs["active"] = np.zeros(n, bool)
        any_table = False
        for tk, idx in bills.groupby("table", sort=False).indices.items():
            if not tk:
                continue
            t = book.tables[tuple(tk.split("/"))]
            param = t.critical.get(payer) if payer != "maf" else t.params.get("medical_assistance")
            if param is None and payer == PAYER_ORDER[0] and t.user_files and not t.critical:
                # a user's table that leaves 大病/大额 out: said on every bill, as a `missing` entry is
                what = "大额医疗补助" if t.scheme == "employee" else "大病保险"
                P["_warn"].add(idx, tr(f"{_label(book, t.region, t.scheme, what)}：无已核实参数，未计入",
                                       f"{_label(book, t.region, t.scheme, what)}: no sourced value, not applied"),
                               kind="missing")
            if param is None:
                if payer == "maf":
                    flagged = idx[bills["psn_idet_type"].to_numpy()[idx] != ""]
                    P["_warn"].add(flagged, tr("医疗救助：本地区无已核实参数，未计算",
                                               "medical assistance: no sourced terms for this region, not computed"),
                                   kind="missing")
                continue
            any_table = True
            label = {"hifmi": "大病保险", "hifob": "大额医疗补助", "maf": "医疗救助"}[payer]
            sub_err = Errors(n)
            r = resolve(param, idx, dates, attrs, sub_err, _label(book, t.region, t.scheme, label), fields, width,
                        warn_if_missing=payer != "maf", required=payer != "maf")
            errors.warnings.merge(sub_err.warnings)
            failed = sub_err.error[idx] != None  # noqa: E711
            # 医疗救助 applies to the members a rule names; others get nothing (not an error).
            if payer == "maf":
                ok_rows = idx[~failed]
            else:
                ok_rows = idx
                if failed.any():
                    errors.fail(idx[failed], sub_err.error[idx][failed])
            pos = np.isin(idx, ok_rows)
            for f in fields:
                arrs[f][ok_rows] = r[f][pos]
            arrs["entry"][ok_rows] = r["_entry"][pos]
            for f in ("threshold", "rates", "cap"):
                arrs[f"rule_{f}"][ok_rows] = r[f"_rule_{f}"][pos]
            # applies_to is one list per table entry: test each entry's list once
            applies = np.ones(len(ok_rows), bool)
            bn_rows = bills["benefit"].to_numpy()[ok_rows]
            ent = arrs["entry"][ok_rows]
            for uid in np.unique(ent[ent >= 0]):
                at = arrs["applies_to"][ok_rows[np.argmax(ent == uid)]]
                if at:
                    m = ent == uid
                    applies[m] = np.isin(bn_rows[m], list(at))
            arrs["active"][ok_rows] = (arrs["entry"][ok_rows] >= 0) & applies
        if any_table:
            seg = arrs["segments"]
            no_seg = (seg == 0).all(axis=1)
            seg[no_seg, 1:] = INF_FEN
            P["programs"].append((payer, arrs))

    # 个人账户: which parts of the personal burden it may pay, and for which visits.
    P["acct_pays"] = full_object(n, "")
    P["acct_entry"] = np.full(n, -1, np.int64)
    # 职工 bills of a user's table without a sourced account rule: the label their warning names
    P["acct_unknown"] = full_object(n, "")
    for tk, idx in bills.groupby("table", sort=False).indices.items():
        if not tk:
            continue
        t = book.tables[tuple(tk.split("/"))]
        param = t.params.get("personal_account")
        if t.scheme == "employee" and t.user_files:
            if param is None:
                unknown = idx
            else:
                which = param.entry_index(dates[idx])
                unknown = idx[[w < 0 or param.entries[w].missing is not None for w in which]]
            P["acct_unknown"][unknown] = _label(book, t.region, t.scheme, "个人账户")
        if param is None:
            continue
        r = resolve(param, idx, dates, attrs, Errors(n), "个人账户", {"pays": "", "med_types": ""}, required=False)
        mts = r["med_types"]
        ok = np.zeros(len(idx), bool)
        ent = r["_entry"]
        mt_rows = bills["med_type"].to_numpy()[idx]
        for uid in np.unique(ent[ent >= 0]):           # med_types is one list per table entry
            m = ent == uid
            listed = mts[np.argmax(m)]
            if listed:
                ok[m] = np.isin(mt_rows[m], [str(x) for x in listed])
        P["acct_pays"][idx] = np.where(ok, r["pays"], "")
        P["acct_entry"][idx] = np.where(ok, r["_entry"], -1)

    # Secondary-grade values used by each bill become warnings: the entry's source, the matched
    # rule's own source, and the sources of adjustments applied.
    entries = book.entries

    def flag(entry_arr, rule_arr, field, adjust_arr=None, active=None):
        adj_arr = adjust_arr if adjust_arr is not None else np.zeros_like(entry_arr)
        ok = entry_arr >= 0 if active is None else (entry_arr >= 0) & active
        rows_ok = np.flatnonzero(ok)
        if not len(rows_ok):
            return
        # one check per distinct (entry, matched rule, adjustments) combination
        g = group_ids(entry_arr[rows_ok], rule_arr[rows_ok], adj_arr[rows_ok])
        first = np.full(g.max() + 1, len(g), np.int64)
        np.minimum.at(first, g, np.arange(len(g)))
        for k, i in enumerate(first):
            uid, ri, adj = entry_arr[rows_ok[i]], rule_arr[rows_ok[i]], adj_arr[rows_ok[i]]
            e = entries[uid]
            srcs = [e.source]
            fv = e.fields.get(field)
            if fv is not None and hasattr(fv, "rule_source"):
                srcs.append(fv.rule_source(int(ri), e.source))
            srcs += [a.source for j, a in enumerate(e.adjust) if adj >> j & 1]
            if any(sr is not None and sr.grade == "secondary" for sr in srcs):
                P["_warn"].add(rows_ok[g == k], tr(f"二手来源: {e.key}", f"secondary source: {e.key}"), kind="note")
            if e.source is not None and e.source.grade == ASSUMED_GRADE:
                P["_warn"].add(rows_ok[g == k], assumed_warning(e.source), kind="assumption")

    flag(P["deductible_entry"], P["deductible_rule_amount"], "amount", P["deductible_adjust"])
    flag(P["ratio_entry"], P["ratio_rule_rates"], "rates", P["ratio_adjust"])
    flag(P["cap_entry"], P["cap_rule_amount"], "amount")
    flag(P["ooa_entry"], P["ooa_rule_add"], "ratio_add")
    for payer, arrs in P["programs"]:
        flag(arrs["entry"], arrs["rule_rates"], "rates", active=arrs["active"])
    return P


# ---------------------------------------------------------------------------------------------
def _state_col(bills: pd.DataFrame, state: pd.DataFrame | None, col: str, first_mask: np.ndarray) -> np.ndarray:
    """Year-to-date amount (fen) from the member state, applied to the member's first year in the batch."""
    n = len(bills)
    if state is None or col not in state.columns:
        return np.zeros(n, np.int64)
    s = state.set_index("psn_no")[col]
    vals = s.reindex(bills["psn_no"]).fillna(0).to_numpy(np.int64)
    return np.where(first_mask, vals, 0)


class _Columns:
    """New per-bill columns, collected and joined once (adding ~100 columns one by one fragments pandas)."""

    def __init__(self, base: pd.DataFrame):
        self.base = base
        self.new: dict[str, np.ndarray] = {}

    def __setitem__(self, k, v):
        if isinstance(v, pd.Categorical):        # kept as categories (warnings: few texts, many bills)
            self.new[k] = v
        else:
            self.new[k] = np.asarray(v) if not np.isscalar(v) else np.full(len(self.base), v)

    def __getitem__(self, k):
        if k in self.new:
            return pd.Series(self.new[k])
        return self.base[k]

    @property
    def columns(self):
        return list(self.base.columns) + list(self.new)

    def __len__(self):
        return len(self.base)

    def frame(self) -> pd.DataFrame:
        keep = self.base.drop(columns=[c for c in self.new if c in self.base.columns])
        # object arrays stay object (pandas 3 would re-encode them as Arrow text, see inputs.text)
        new = {k: pd.Series(v, index=self.base.index, dtype=object) if v.dtype == object
               else pd.Series(v, index=self.base.index) if isinstance(v, pd.Categorical) else v
               for k, v in self.new.items()}
        # copy=False: ~100 columns are joined as they are, not first copied into one 2-D block
        return pd.concat([keep, pd.DataFrame(new, index=self.base.index, copy=False)], axis=1)


def _compute(base: pd.DataFrame, P: dict, state: pd.DataFrame | None, warnings) -> pd.DataFrame:
    bills = _Columns(base)
    base_cols = set(base.columns)
    n = len(bills)
    psn, ygroup, yr = (bills[c].to_numpy() for c in ("_member", "_year_group", "policy_year"))
    first_year = _first_year(bills)
    # one integer per member's policy year in one region and scheme (or a chain of them the year carried
    # over across, see _member_year_groups); later keys refine it
    gid_y = group_ids(psn, ygroup, yr)
    member = bills["_member"].to_numpy()
    benefit = bills["benefit"].to_numpy()
    gid_b = group_ids(gid_y, pd.factorize(benefit)[0])
    E = np.maximum(bills["inscp_scp_amt"].to_numpy(np.int64), 0)
    # a bill the member is not eligible for (未参保, 等待期) is not covered: it neither uses the year's
    # deductible and caps nor gets any fund payment; the patient pays it all
    inel = P.get("_ineligible")
    if inel is not None:
        E = np.where(inel, 0, E)

    # --- 起付线 -------------------------------------------------------------------------------
    adm = bills["admission"].to_numpy(np.int64)          # year-to-date admissions included (_resolve_terms)
    d = P["deductible_amount"].copy()
    # nth-admission factors are per table entry: evaluate each entry's list on its bills at once
    nth = P["deductible_nth_factor"]
    d_entry = P["deductible_entry"]
    for uid in np.unique(d_entry[d_entry >= 0]):
        rows = np.flatnonzero(d_entry == uid)
        factors = nth[rows[0]]
        if not factors:
            continue
        f_ppm = np.array([round(float(f) * PPM) for f in factors], dtype=np.int64)
        k = np.minimum(adm[rows] - 1, len(f_ppm) - 1)
        d[rows] = div_half_up(d[rows] * f_ppm[k], PPM)
    dec = P["deductible_nth_decrement"]
    has_dec = dec > 0
    d = np.where(has_dec, np.maximum(d - dec * (adm - 1), P["deductible_min"]), d)
    d = div_half_up(d * P["ooa_ded_factor"], PPM)
    d = np.where(P["ooa_deductible"] >= 0, P["ooa_deductible"], d)     # 异地 terms stated as an amount
    bills["deductible_due"] = d
    per_year = P["deductible_basis"] == "per_year"
    u = np.minimum(E, d)
    if per_year.any():
        U0 = _ytd(bills, state, "deductible_used", first_year)
        Dm = gcummax(np.where(per_year, d, 0), gid_b)
        C = U0 + gcumsum(E, gid_b)
        U = C + np.minimum(0, gcummin(Dm - C, gid_b))
        U = np.maximum(U, U0)
        U_prev = gshift(U, gid_b, U0)
        u = np.where(per_year, U - U_prev, u)
        bills["deductible_used_before"] = np.where(per_year, U_prev, 0)
    else:
        bills["deductible_used_before"] = 0
    a = E - u
    bills["act_pay_dedc"] = u
    bills["above_deductible"] = a

    # --- 分段比例 -------------------------------------------------------------------------------
    L = P["ratio_segments"].copy()
    R_local = P["ratio_rates"]
    # 异地: local rate × factor (rounded half up to the ppm), plus points added, within 0..100%
    R = np.clip(div_half_up(R_local * P["ooa_factor"][:, None], PPM) + P["ooa_add"][:, None], 0, PPM)
    R = np.where(P["ooa_rate"][:, None] >= 0, P["ooa_rate"][:, None], R)   # 异地 terms stated as a rate
    basis = P["ratio_basis"]
    acc_year = P["ratio_accumulate"] == "per_year"
    fund_basis = basis == "fund_paid"
    if fund_basis.any():
        # Bounds on what the fund has paid become bounds on cost at this bill's rates.
        Lf = L[fund_basis]
        Rf = R[fund_basis]
        lengths = np.diff(Lf, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cost_len = np.where((Rf[:, :-1] > 0) & (lengths < INF_FEN // 2),
                                (lengths * PPM + Rf[:, :-1] - 1) // np.maximum(Rf[:, :-1], 1), INF_FEN)
        Lc = np.zeros_like(Lf)
        Lc[:, 1:] = np.minimum(np.cumsum(np.minimum(cost_len, INF_FEN // 8), axis=1), INF_FEN)
        L[fund_basis] = Lc
    cum_cost = basis == "cumulative_cost"
    C_b = _ytd(bills, state, "eligible", first_year) + gcumsum(E, gid_b)
    A_b = _ytd(bills, state, "above_deductible", first_year) + gcumsum(a, gid_b)
    lo = np.where(acc_year, np.where(cum_cost, C_b - a, A_b - a), np.where(cum_cost, u, 0))
    hi = lo + a
    # cost-basis cap: eligible cost above the cap amount (yearly, per cap group) is not paid
    cap_group = P["cap_group"]
    gid_c = group_ids(gid_y, pd.factorize(cap_group)[0])
    cap_amt = P["cap_amount"]
    cost_cap = P["cap_basis"] == "cost"
    C_c = _ytd(bills, state, "eligible", first_year) + gcumsum(E, gid_c)
    above_cost = np.where(cost_cap, np.clip(C_c - np.maximum(C_c - a, cap_amt), 0, None), 0)
    above_cost = np.minimum(above_cost, a)
    hi_eff = hi - above_cost
    U_seg = seg_upper(L)
    O = overlap(lo, hi_eff, L, U_seg)
    pay_seg = O * R                       # fen × ppm per segment
    P_exact = pay_seg.sum(axis=1)
    P_local = (O * R_local).sum(axis=1)
    # fund-basis cap: cumulative within the cap group
    fund_cap = ~cost_cap & (cap_amt < INF_FEN)
    S0 = _ytd(bills, state, "fund_paid", first_year) * PPM
    S = S0 + gcumsum(P_exact, gid_c)
    capP = np.where(fund_cap, np.minimum(cap_amt, INF_FEN // PPM) * PPM, np.iinfo(np.int64).max)
    Q = gcummax(np.minimum(S, capP), gid_c)
    Q_prev = gshift(Q, gid_c, np.minimum(S0, capP))
    hifp = div_half_up(Q, PPM) - div_half_up(Q_prev, PPM)
    c_exact = Q - Q_prev
    # 异地未备案 reduction (what local rates would have paid, within the cap's remaining room, minus
    # what was paid): some regions keep it out of the 大病 base
    room = np.where(fund_cap, np.maximum(capP - Q_prev, 0), np.iinfo(np.int64).max)
    reduction_exact = np.where(bills["ooa"].to_numpy() == "unfiled",
                               np.maximum(np.minimum(P_local, room) - np.minimum(P_exact, room), 0), 0)
    # cost covered before the fund cap bit (exact inversion within the bill's segments)
    capped = c_exact < P_exact
    covered = hi_eff - lo
    if capped.any():
        cf = np.cumsum(pay_seg[capped], axis=1)
        ce = c_exact[capped]
        t = np.argmax(cf >= ce[:, None], axis=1)
        rows = np.arange(capped.sum())
        before_cost = np.where(t > 0, np.cumsum(O[capped], axis=1)[rows, np.maximum(t - 1, 0)], 0)
        before_fund = np.where(t > 0, cf[rows, np.maximum(t - 1, 0)], 0)
        rate_t = np.maximum(R[capped][rows, t], 1)
        covered_c = before_cost + div_half_up(ce - before_fund, 1) // rate_t
        covered[capped] = np.minimum(covered_c, covered[capped])
    hifp = np.minimum(hifp, covered)
    above_cap = a - covered
    coins = covered - hifp
    bills["segment_lo"] = lo
    bills["segment_hi"] = hi_eff
    bills["fund_before"] = div_half_up(Q_prev, PPM)
    bills["cap_amount"] = cap_amt
    bills["hifp_uncapped"] = div_half_up(P_exact, PPM)
    bills["hifp_pay"] = hifp
    bills["above_cap"] = above_cap
    bills["coinsurance"] = coins
    bills["ooa_reduction"] = div_half_up(reduction_exact, PPM)
    bills["ooa_rate_add"] = P["ooa_add"]
    bills["ooa_rate_factor"] = P["ooa_factor"]
    bills["ooa_rate"] = P["ooa_rate"]
    bills["ooa_deductible"] = P["ooa_deductible"]
    for s in range(L.shape[1]):
        bills[f"seg{s}_lo"] = L[:, s]
        bills[f"seg{s}_rate"] = R[:, s]
        bills[f"seg{s}_rate_local"] = R_local[:, s]
        bills[f"seg{s}_amount"] = O[:, s]
    for k in ("deductible", "ratio", "cap", "ooa"):
        bills[f"{k}_entry"] = P[f"{k}_entry"]
    for k in ("deductible_rule_amount", "ratio_rule_rates", "cap_rule_amount", "ooa_rule_add",
              "deductible_adjust", "ratio_adjust"):
        bills[k] = P[k]
    bills["deductible_basis"] = P["deductible_basis"]
    bills["ratio_basis"] = basis
    bills["ratio_accumulate"] = P["ratio_accumulate"]
    bills["cap_basis"] = P["cap_basis"]
    bills["cap_group"] = cap_group
    bills["admission_no"] = adm

    # --- 大病保险 / 大额补助 / 医疗救助 ---------------------------------------------------------------
    pre = bills["preselfpay_amt"].to_numpy(np.int64)
    if inel is not None:
        pre = np.where(inel, 0, pre)
    comps = {"deductible": u, "preselfpay": pre, "coinsurance": coins, "above_cap": above_cap}
    inscope_burden = u + pre + coins + above_cap
    paid_so_far = np.zeros(n, np.int64)
    bills["hifmi_pay"] = 0
    bills["hifob_pay"] = 0
    bills["maf_pay"] = 0
    for payer, arrs in P["programs"]:
        active = arrs["active"] if inel is None else arrs["active"] & ~inel
        base = np.zeros(n, np.int64)
        excl = np.zeros(n, bool)
        p_entry = arrs["entry"]
        for uid in np.unique(p_entry[active]):          # components are per table entry
            rows = np.flatnonzero(active & (p_entry == uid))
            for c in arrs["base"][rows[0]]:
                base[rows] += comps[c][rows]
            excl[rows] = bool(arrs["out_of_area_reduction_excluded"][rows[0]])
        base = np.where(excl, base - np.minimum(bills["ooa_reduction"].to_numpy(), base), base)
        if payer == "maf":
            base = np.maximum(base - paid_so_far, 0)
        base = np.where(active, base, 0)
        gid_p = group_ids(gid_y, active)
        B0 = _ytd(bills, state, f"{payer}_base", first_year)
        B = B0 + gcumsum(base, gid_p)
        T = arrs["threshold"]
        lo_p = np.maximum(B - base - T, 0)
        hi_p = np.maximum(B - T, 0)
        Lp = arrs["segments"]
        Op = overlap(lo_p, hi_p, Lp, seg_upper(Lp))
        Pp = (Op * arrs["rates"]).sum(axis=1)
        Pp = np.where(active, Pp, 0)
        cap_p = arrs["cap"]
        if payer == "hifmi" and "member_reward" in base_cols:
            # 连续参保/零报销激励 (ybcalc.members): the cap raised, by at most its share of the original cap
            raise_by = np.minimum(bills["member_reward"].to_numpy(np.int64),
                                  div_half_up(np.minimum(cap_p, INF_FEN // PPM) * bills["member_reward_share"].to_numpy(np.int64), PPM))
            cap_p = np.where(cap_p < INF_FEN, cap_p + raise_by, cap_p)
        capp = np.where(cap_p < INF_FEN, np.minimum(cap_p, INF_FEN // PPM) * PPM,
                        np.iinfo(np.int64).max)
        S0p = _ytd(bills, state, f"{payer}_paid", first_year) * PPM
        Sp = S0p + gcumsum(Pp, gid_p)
        Qp = gcummax(np.minimum(Sp, capp), gid_p)
        Qp_prev = gshift(Qp, gid_p, np.minimum(S0p, capp))
        pay = div_half_up(Qp, PPM) - div_half_up(Qp_prev, PPM)
        pay = np.clip(np.minimum(pay, inscope_burden - paid_so_far), 0, None)
        pay = np.where(active, pay, 0)
        paid_so_far += pay
        col = {"hifmi": "hifmi_pay", "hifob": "hifob_pay", "maf": "maf_pay"}[payer]
        bills[col] = bills[col].to_numpy() + pay
        bills[f"{payer}_base"] = base
        bills[f"{payer}_base_before"] = B - base
        bills[f"{payer}_threshold"] = T
        bills[f"{payer}_cap"] = cap_p
        bills[f"{payer}_paid_before"] = div_half_up(Qp_prev, PPM)
        bills[f"{payer}_entry"] = np.where(active, arrs["entry"], -1)
        bills[f"{payer}_rule_rates"] = arrs["rule_rates"]
        bills[f"{payer}_rule_threshold"] = arrs["rule_threshold"]
        for s in range(Lp.shape[1]):
            bills[f"{payer}_seg{s}_lo"] = Lp[:, s]
            bills[f"{payer}_seg{s}_rate"] = arrs["rates"][:, s]
            bills[f"{payer}_seg{s}_amount"] = Op[:, s]

    # --- totals -----------------------------------------------------------------------------
    fund = hifp + bills["hifmi_pay"].to_numpy() + bills["hifob_pay"].to_numpy() + bills["maf_pay"].to_numpy()
    medfee = bills["medfee_sumamt"].to_numpy(np.int64)
    bills["fund_pay_sumamt"] = fund
    bills["psn_part_amt"] = medfee - fund

    # --- 个人账户: each member's balance pays, bill by bill in date order ------------------------
    pays = P["acct_pays"]
    selfpay_part = inscope_burden - paid_so_far
    ownpay_part = bills["fulamt_ownpay_amt"].to_numpy(np.int64) + bills["overlmt_selfpay"].to_numpy(np.int64)
    # A bill in a waiting period (insured, benefits not yet due): the funds pay nothing, so the in-scope cost
    # is the patient's own burden (个人负担) like any 自付, which an account may pay as its rule says. A manual
    # claim filed too late is not accepted at all (逾期不予受理): no account pays it either.
    waiting, late = _waiting_or_late(bills)
    if waiting is not None:
        selfpay_part = np.where(waiting, medfee - ownpay_part, selfpay_part)
    has_self = np.zeros(n, bool)
    has_own = np.zeros(n, bool)
    a_entry = P["acct_entry"]
    for uid in np.unique(a_entry[a_entry >= 0]):      # `pays` is one list per table entry
        m = a_entry == uid
        listed = pays[np.argmax(m)] or []
        has_self[m] = "selfpay" in listed
        has_own[m] = "ownpay" in listed
    eligible = np.where(has_self, selfpay_part, 0) + np.where(has_own, ownpay_part, 0)
    eligible = np.clip(np.minimum(eligible, medfee - fund), 0, None)
    if late is not None:
        eligible = np.where(late, 0, eligible)
    balances = None
    if state is not None and "acct_balance" in state.columns:
        balances = state.set_index("psn_no")["acct_balance"]
    balance = balances.reindex(bills["psn_no"]).fillna(0).to_numpy(np.int64) if balances is not None \
        else np.zeros(n, np.int64)
    setl_day = bills["setl_date"].to_numpy("datetime64[D]")
    first_row = bills["first_row"].to_numpy()
    # 家庭共济 (ybcalc.members): a payer's account serves its own bills and its payees' remainders, so it is
    # settled after every other account. Stage A: accounts that pay for no one, each over its member's bills
    # in date order, as ``used = min(cumsum(eligible), balance)``. Stage B: each payer's account over its own
    # bills and its payees' remainders after their own accounts (stage A: payees pay for no one), in date
    # order (setl_date, then input order): the same closed form on one group per payer.
    payer = bills["acct_payer"].to_numpy(dtype=object) if "acct_payer" in base_cols else None
    linked = (payer != "") if payer is not None else np.zeros(n, bool)
    psn_text = bills["psn_no"].to_numpy(dtype=object)
    pays_for_others = np.isin(psn_text, pd.unique(payer[linked])) if linked.any() else None
    order = _lexsort_unless_sorted((first_row, setl_day, member))
    acct, bal_before = _draw_down(eligible if pays_for_others is None else np.where(pays_for_others, 0, eligible),
                                  balance, member, order)
    mulaid = np.zeros(n, np.int64)
    mulaid_eligible = np.zeros(n, np.int64)
    mulaid_before = np.zeros(n, np.int64)
    if linked.any():
        fam_parts = (np.where(bills["family_pays_selfpay"].to_numpy(bool), selfpay_part, 0)
                     + np.where(bills["family_pays_ownpay"].to_numpy(bool), ownpay_part, 0))
        if late is not None:
            fam_parts = np.where(late, 0, fam_parts)
        rest = medfee - fund - acct
        mulaid_eligible = np.where(linked, np.clip(np.minimum(fam_parts - acct, rest), 0, None), 0)
        own_rows = np.flatnonzero(pays_for_others)
        fam_rows = np.flatnonzero(linked)
        rows = np.concatenate([own_rows, fam_rows])
        key = np.concatenate([psn_text[own_rows], payer[fam_rows]])
        amount = np.concatenate([eligible[own_rows], mulaid_eligible[fam_rows]])
        acct_code, acct_ids = pd.factorize(key)
        bal = balances.reindex(acct_ids).fillna(0).to_numpy(np.int64)[acct_code] if balances is not None \
            else np.zeros(len(rows), np.int64)
        paid, before = _draw_down(amount, bal, acct_code, np.lexsort((first_row[rows], setl_day[rows], acct_code)))
        n_own = len(own_rows)
        acct[own_rows] = paid[:n_own]
        bal_before[own_rows] = before[:n_own]
        mulaid[fam_rows] = paid[n_own:]
        mulaid_before[fam_rows] = before[n_own:]
    bills["acct_balance_before"] = bal_before
    bills["acct_eligible"] = eligible
    bills["acct_pay"] = acct
    bills["acct_entry"] = P["acct_entry"]
    bills["acct_mulaid_pay"] = mulaid
    if linked.any() or "acct_payer" in base_cols:
        bills["acct_mulaid_eligible"] = mulaid_eligible
        bills["acct_mulaid_balance_before"] = mulaid_before
    bills["psn_cash_pay"] = medfee - fund - acct - mulaid
    bills["warnings"] = warnings.categorical()          # by kind, most important first
    bills["notes"] = warnings.categorical(notes=True)   # information (a value's grade …), not warnings
    return bills.frame()


def _draw_down(amount: np.ndarray, balance: np.ndarray, account: np.ndarray, order: np.ndarray):
    """One balance per account paying ``amount`` row by row in ``order`` (account, then date), in closed form:
    what was used by a row is ``min(cumsum(amount), balance)``, so each row pays the step from its
    predecessor. Returns (paid, balance before) per row, in the rows' own order."""
    g = account[order]
    used = np.minimum(gcumsum(amount[order], g), balance[order])
    used_prev = gshift(used, g, 0)
    paid = np.empty(len(amount), np.int64)
    paid[order] = used - used_prev
    before = np.empty(len(amount), np.int64)
    before[order] = balance[order] - used_prev
    return paid, before


def _first_year(bills) -> np.ndarray:
    """Per bill: is it in its member's first policy year in the batch, in the year group (region and scheme, or
    the chain of them a move carried the year over across) of the member's earliest bill — where the year-to-date
    state (``--accounts``) applies. A member whose bills of that year are under two tables that do not share
    the year gets it once, in the table of the earliest bill, not in both."""
    yr = bills["policy_year"].to_numpy()
    member = bills["_member"].to_numpy()
    first = yr == pd.Series(yr).groupby(member).transform("min").to_numpy()
    group = bills["_year_group"].to_numpy()
    # the bills come sorted by member, then year group: a member with two groups shows as a change between rows
    if ((member[1:] == member[:-1]) & (group[1:] != group[:-1])).any():
        day = bills["setl_date"].to_numpy("datetime64[D]")
        order = np.lexsort((bills["first_row"].to_numpy(), day, member))
        earliest = np.full(int(member.max()) + 1, -1, np.int64)
        earliest[member[order][::-1]] = group[order][::-1]        # the first-dated bill's group wins
        first &= group == earliest[member]
    return first


def _lexsort_unless_sorted(keys) -> np.ndarray:
    """``np.lexsort(keys)`` (last key first), or the rows as they are when they already are in that
    order: the bills come sorted by member, region, scheme and date, which is this order unless a
    member has bills under two tables."""
    n = len(keys[0])
    if n < 2:
        return np.arange(n)
    later = np.zeros(n - 1, bool)         # row i+1 sorts strictly after row i on the keys seen so far
    tied = np.ones(n - 1, bool)
    for k in reversed(keys):
        k = np.asarray(k)
        later |= tied & (k[1:] > k[:-1])
        tied &= k[1:] == k[:-1]
    return np.arange(n) if (later | tied).all() else np.lexsort(keys)


def _ytd(bills, state, name, first_year) -> np.ndarray:
    """Year-to-date state per bill: a ``<benefit>_<name>`` column of the member state, else ``name``."""
    if state is None:
        return np.zeros(len(bills), np.int64)
    out = _state_col(bills, state, name, first_year)
    for b in pd.unique(bills["benefit"]):
        col = f"{b}_{name}"
        if col in state.columns:
            m = bills["benefit"].to_numpy() == b
            out = np.where(m, _state_col(bills, state, col, first_year), out)
    return out

"""A member's year: enrolment spans and waiting periods (issue 17, first part).

``--members FILE`` / ``members=`` gives, per member, the spans they were enrolled (参保起止) and how they
paid (缴费日期, 断缴年数, 补缴年数). From these and the national rules in ``tables/national.yaml``
(``waiting_period``, 国办发〔2024〕38号) each bill learns whether the member could be paid on its date:
outside every span (未参保) or inside a waiting period (等待期) the funds pay nothing.

Everything here is per bill and vectorised: one merge of bills with their members' spans.
A member absent from the file is settled as before (always enrolled).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .engine.settle import map_distinct
from .i18n import tr

# canonical column -> Chinese headers accepted
MEMBER_COLUMNS = {
    "psn_no": ("人员编号",),
    "begin": ("参保开始日期", "参保开始", "开始日期"),
    "end": ("参保结束日期", "参保结束", "结束日期"),
    "insuplc": ("参保地",),
    "insutype": ("险种", "险种类型"),
    "paid_on": ("缴费日期",),
    "break_years": ("断缴年数", "断保年数"),
    "repaid_years": ("补缴年数", "修复年数"),
    "continuous_years": ("连续参保年数",),
    "prev_year_no_claim": ("上年零报销",),
    "acct_payer": ("共济账户",),
    "waiting_exempt": ("免等待期",),
}
_ALIASES = {alias: canon for canon, zhs in MEMBER_COLUMNS.items() for alias in (canon, *zhs)}
#: columns ``Settlement.bills()`` adds when a members file was given (the Dask engine's metadata lists them)
MEMBER_BILL_COLUMNS = ("eligibility", "acct_paid_by", "hifmi_cap")    # the text columns a members file adds to the bills
_TRUE = {"1", "是", "y", "yes", "true", "t", "是的"}
_FALSE = {"0", "否", "n", "no", "false", "f", ""}


class MembersError(ValueError):
    """A members file that cannot be read: the message names the file, row and column."""


@dataclass
class Members:
    """Enrolment spans, one row per span (a member may have several), typed and checked."""
    spans: pd.DataFrame          # psn_no, begin, end (NaT = still enrolled), region, scheme, paid_on, …
    source: str

    @property
    def psn_nos(self) -> np.ndarray:
        return pd.unique(self.spans["psn_no"])


def _parse_dates(values: pd.Series) -> pd.Series:
    s = values.astype("string").str.strip().fillna("")
    s = s.str.replace(r"^(\d{4})(\d{2})(\d{2})$", r"\1-\2-\3", regex=True)
    s = s.str.replace(r"[/.年月]", "-", regex=True).str.replace("日", "", regex=False)
    s = s.str.replace(r"[ T]\d{1,2}:\d{2}(:\d{2})?$", "", regex=True)
    return pd.to_datetime(s.where(s != "", None), format="%Y-%m-%d", errors="coerce")


def read_members(src, book=None, source: str | None = None) -> Members:
    """Members from a CSV/Parquet path or a DataFrame (Chinese or English headers).

    A bad cell raises :class:`MembersError` naming the file, the row (as a person counts it) and the column."""
    if isinstance(src, Members):
        return src
    if isinstance(src, (str, Path)):
        from .batch import read_bills
        df, rows = read_bills(src)
        source = source or str(src)
    else:
        df = pd.DataFrame(src).copy()
        rows = np.arange(len(df)) + 1
        source = source or "<members>"
    df.columns = [str(c).strip() for c in df.columns]
    unknown = [c for c in df.columns if c not in _ALIASES]
    if unknown:
        known = ", ".join(f"{k} ({v[0]})" for k, v in MEMBER_COLUMNS.items())
        raise MembersError(tr(f"{source}：未知的列 {', '.join(unknown)}；可用的列：{known}",
                              f"{source}: unknown column(s) {', '.join(unknown)}; known columns: {known}"))
    df = df.rename(columns=_ALIASES)
    if df.columns.duplicated().any():
        dup = df.columns[df.columns.duplicated()][0]
        raise MembersError(tr(f"{source}：列 {dup} 出现了两次（中英文表头各一）",
                              f"{source}: column {dup} is given twice (Chinese and English header)"))
    for need in ("psn_no", "begin"):
        if need not in df.columns:
            raise MembersError(tr(f"{source}：缺少 {need}（{MEMBER_COLUMNS[need][0]}）列",
                                  f"{source}: needs a {need} ({MEMBER_COLUMNS[need][0]}) column"))

    def fail(i, col, value, zh, en):
        raise MembersError(tr(f"{source}，第 {rows[i]} 行，{col} 列：{zh}：{value!r}",
                              f"{source}, row {rows[i]}, column {col}: {en}: {value!r}"))

    text = {c: df[c].astype("string").str.strip().fillna("") for c in df.columns}
    out = pd.DataFrame({"psn_no": text["psn_no"].astype(object)})
    empty = (out["psn_no"] == "").to_numpy()
    if empty.any():
        i = int(np.flatnonzero(empty)[0])
        fail(i, "psn_no", "", "人员编号为空", "member id is empty")
    for c in ("begin", "end", "paid_on"):
        if c not in df.columns:
            out[c] = pd.NaT
            continue
        d = _parse_dates(df[c])
        bad = (d.isna() & (text[c] != "")).to_numpy()
        if c == "begin":
            bad |= (text[c] == "").to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            fail(i, c, df[c].iat[i], "不是日期（写作 2025-03-15）", "not a date (write 2025-03-15)")
        out[c] = d.to_numpy()
    for c in ("break_years", "repaid_years", "continuous_years"):
        if c not in df.columns:
            out[c] = 0 if c != "continuous_years" else -1
            continue
        num = pd.to_numeric(text[c].where(text[c] != "", "0" if c != "continuous_years" else "-1"), errors="coerce")
        bad = (num.isna() | (num != num.round()) | ((num < 0) & (text[c] != ""))).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            fail(i, c, df[c].iat[i], "应为不小于 0 的整数（年）", "must be a whole number of years, 0 or more")
        out[c] = num.to_numpy(np.int64)
    for c in ("prev_year_no_claim", "waiting_exempt"):
        if c not in df.columns:
            out[c] = False
            continue
        low = text[c].str.lower()
        bad = ~(low.isin(_TRUE) | low.isin(_FALSE)).to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            fail(i, c, df[c].iat[i], "应为 是/否", "must be yes/no (是/否, 1/0)")
        out[c] = low.isin(_TRUE).to_numpy()
    out["acct_payer"] = text["acct_payer"].astype(object) if "acct_payer" in df.columns else ""
    # 参保地 and 险种 of the span, as ids (empty: the bill's own)
    from . import codes
    regions = text.get("insuplc", pd.Series([""] * len(df), dtype="string"))
    schemes = text.get("insutype", pd.Series([""] * len(df), dtype="string"))
    rid = np.empty(len(df), dtype=object)
    for v in pd.unique(regions):
        r = "" if v == "" else (book.region_id(v) if book is not None else v)
        if r is None:
            i = int(np.flatnonzero((regions == v).to_numpy())[0])
            fail(i, "insuplc", v, "未知地区", "unknown region")
        rid[(regions == v).to_numpy()] = r
    sch = np.empty(len(df), dtype=object)
    for v in pd.unique(schemes):
        s = "" if v == "" else codes.parse_insutype(v)
        if s is None:
            i = int(np.flatnonzero((schemes == v).to_numpy())[0])
            fail(i, "insutype", v, "未知险种（职工/居民 或 310/390）", "unknown scheme (职工/居民 or 310/390)")
        sch[(schemes == v).to_numpy()] = s
    out["region"] = rid
    out["scheme"] = sch
    out["row"] = rows
    # a span ends on or after it begins; one member's spans do not overlap
    back = (out["end"].notna() & (out["end"] < out["begin"])).to_numpy()
    if back.any():
        i = int(np.flatnonzero(back)[0])
        fail(i, "end", df["end"].iat[i], "参保结束日期早于开始日期", "enrolment ends before it begins")
    srt = out.sort_values(["psn_no", "begin"], kind="stable")
    same = srt["psn_no"].to_numpy()[1:] == srt["psn_no"].to_numpy()[:-1]
    prev_end = srt["end"].to_numpy()[:-1]
    nxt_begin = srt["begin"].to_numpy()[1:]
    overl = same & (pd.isna(prev_end) | (prev_end >= nxt_begin))
    if overl.any():
        j = int(np.flatnonzero(overl)[0])
        i = int(srt.index[j + 1])
        fail(i, "begin", df["begin"].iat[i], "与同一人员的上一段参保期重叠", "overlaps the member's previous span")
    _check_one_level(out, fail)
    return Members(out.reset_index(drop=True), source)


def _check_one_level(out: pd.DataFrame, fail) -> None:
    """共济账户 one level deep: a member whose account pays for someone is paid from no one else's account
    (the engine settles the payers' accounts after every other account, in one pass). Refused at any date,
    not only overlapping ones: a chain over time would need the accounts settled in turn, bill by bill."""
    payer = out["acct_payer"].to_numpy(dtype=object)
    psn = out["psn_no"].to_numpy(dtype=object)
    own = np.flatnonzero((payer != "") & (payer == psn))
    if len(own):
        i = int(own[0])
        fail(i, "acct_payer", payer[i], "共济账户不能是本人（本人账户总是先支付）",
             "the family account cannot be the member's own (the own account always pays first)")
    payers = pd.unique(payer[payer != ""])
    chained = np.flatnonzero((payer != "") & (pd.Index(payers).get_indexer(psn) >= 0)) if len(payers) else []
    if len(chained):
        i = int(chained[0])
        whom = ", ".join(sorted(set(psn[payer == psn[i]]))[:3])
        fail(i, "acct_payer", payer[i],
             f"人员 {psn[i]} 的账户是 {whom} 的共济账户，本人不能再由他人的共济账户支付（共济只支持一层）",
             f"member {psn[i]}'s account pays for {whom}, so it cannot itself be paid from another member's "
             f"account (family accounts are one level deep)")


# ---- rules -------------------------------------------------------------------------------------------
# the parts of a bill's personal burden an account may pay: 政策范围内自付 and 自费 (as `personal_account.pays`)
ACCOUNT_PARTS = ("selfpay", "ownpay")
ACCOUNT_PART_WORDS = {"selfpay": ("政策范围内个人自付", "in-scope patient share"),
                      "ownpay": ("自费（全自费、超限价）", "self-paid items (excluded, above price limits)")}
WAITING_FIELDS = ("fixed_months", "months_per_break_year", "months_per_repaid_year", "long_break_years",
                  "long_break_min_months")
GAP_FIELDS = ("max_gap_months", "wait_months")


def check_national(national: dict, ck) -> None:
    """Validate the member-year rules of national.yaml (the loader calls this)."""
    for i, e in enumerate(national.get("waiting_period") or []):
        if not isinstance(e, dict) or "missing" in e:
            continue
        for f in WAITING_FIELDS:
            v = e.get(f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                ck.add(f"waiting_period[{i}].{f}", f"must be a whole number ≥ 0, got {v!r}")
        bad = [s for s in e.get("schemes") or [] if s not in ("employee", "resident")]
        if not e.get("schemes") or bad:
            ck.add(f"waiting_period[{i}].schemes", "must list employee and/or resident")
        if e.get("fund_pays_during_wait") not in (False, True):
            ck.add(f"waiting_period[{i}].fund_pays_during_wait", "must be true or false")
    for i, e in enumerate(national.get("critical_illness_rewards") or []):
        if not isinstance(e, dict) or "missing" in e:
            continue
        for f in ("continuous_after_years", "continuous_step_min", "zero_claim_step_min"):
            v = e.get(f)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                ck.add(f"critical_illness_rewards[{i}].{f}", f"must be a number ≥ 0, got {v!r}")
        v = e.get("total_max_share_of_cap")
        if not isinstance(v, (int, float)) or not 0 <= v <= 1:
            ck.add(f"critical_illness_rewards[{i}].total_max_share_of_cap", f"must be a share 0..1, got {v!r}")
    for i, e in enumerate(national.get("family_account") or []):
        if not isinstance(e, dict) or "missing" in e:
            continue
        pays = e.get("pays")
        if not isinstance(pays, list) or not pays or any(p not in ACCOUNT_PARTS for p in pays):
            ck.add(f"family_account[{i}].pays", f"must list selfpay and/or ownpay, got {pays!r}")
        if e.get("cross_province") not in (False, True):
            ck.add(f"family_account[{i}].cross_province", "must be true or false")
        rel = e.get("relatives")
        if not isinstance(rel, list) or not rel or not all(isinstance(r, str) for r in rel):
            ck.add(f"family_account[{i}].relatives", f"must list the relatives a payer may be linked to, got {rel!r}")
    for key in ("waiting_period", "employee_gap", "critical_illness_rewards", "manual_claim_deadline",
                "family_account"):
        lst = national.get(key)
        if lst is not None and not isinstance(lst, list):
            ck.add(key, "must be a list of dated entries")
            continue
        dates = [e.get("from") for e in lst or [] if isinstance(e, dict)]
        if any(not hasattr(d, "year") for d in dates):
            ck.add(key, "every entry needs a `from` date")
        elif dates != sorted(dates):
            ck.add(key, "entries must be oldest first")


def check_region_rules(params: dict, national: dict, ck) -> None:
    """A region's reward amounts may not fall below the national minimums in force over the entry's dates: the
    national rule (“原则上每次提高限额均不低于1000元”) is a floor, so a lower amount is a table error (the loader
    calls this for every region table, shipped or the user's)."""
    import datetime as dt
    param = params.get("critical_illness_rewards")
    if param is None:
        return
    nat = [e for e in national.get("critical_illness_rewards") or [] if isinstance(e, dict) and hasattr(e.get("from"), "year")]
    for j, e in enumerate(param.entries):
        if e.missing:
            continue
        end = param.entries[j + 1].start if j + 1 < len(param.entries) else dt.date.max
        for k, ne in enumerate(nat):
            n_end = nat[k + 1]["from"] if k + 1 < len(nat) else dt.date.max
            if "missing" in ne or not (ne["from"] < end and n_end > e.start):
                continue
            for field, floor in (("continuous_step", "continuous_step_min"), ("zero_claim_step", "zero_claim_step_min")):
                v, low = e.raw.get(field), ne.get(floor)
                if isinstance(v, (int, float)) and isinstance(low, (int, float)) and v < low:
                    ck.add(f"{e.path}[{e.index}].{field}",
                           tr(f"{v:,} 元低于国家最低标准 {low:,} 元（national.yaml critical_illness_rewards[{k}]，"
                              f"自 {ne['from']} 起）：国家规定是下限",
                              f"{v:,} yuan is below the national minimum of {low:,} yuan (national.yaml "
                              f"critical_illness_rewards[{k}], from {ne['from']}): the national rule is a floor"))


def _entries(book, key) -> list[dict]:
    return [e for e in (book.national.get(key) or []) if isinstance(e, dict)]


def _cite(book, e, lang=None) -> str:
    doc = book.national_sources.get(e.get("document")) if e.get("document") else None
    src = book.national_sources.get(e.get("source"))
    parts = []
    if doc is not None:
        parts.append(doc.cite(lang or _lang()))
    if src is not None:
        parts.append(src.cite(lang or _lang()))
    return "；".join(parts) if (lang or _lang()) == "zh" else "; ".join(parts)


def _lang():
    from .i18n import current
    return current()


def rule_in_force(book, key: str, day) -> dict | None:
    """The entry of ``national[key]`` in force on ``day`` (None before the first)."""
    best = None
    for e in _entries(book, key):
        if pd.Timestamp(e["from"]) <= pd.Timestamp(day):
            best = e
    return best


@dataclass
class RuleInForce:
    """A member-year rule as it applies to one region, scheme and date: the national entry with what the region's
    table (or its province's) states laid over it (a region states only what deviates)."""
    fields: dict                  # the merged fields (region's over national)
    region_entry: object | None   # the region's policy Entry, None when the region states nothing (national rule)
    national: dict | None         # the national entry in force, None when there is none or it is missing
    holder: str = ""              # id of the region whose table stated it ("" for the national rule)

    @property
    def regional(self) -> bool:
        return self.region_entry is not None

    def from_region(self, field: str) -> bool:
        return self.region_entry is not None and field in self.region_entry.raw


_META = ("from", "source", "document", "missing", "note", "schemes")


def _region_param(book, region: str, scheme: str, key: str):
    """(param, holder): ``key`` as the table of region × scheme states it (its baseline's included), else as
    the table of the region's province states it; (None, "") when neither does."""
    t = book.tables.get((region, scheme))
    if t is not None and key in t.params:
        return t.params[key], region
    r = book.regions.get(region)
    province = r.province if r is not None else None
    if province and province != region:
        pt = book.tables.get((province, scheme))
        if pt is not None and key in pt.params:
            return pt.params[key], province
    return None, ""


def _merge(book, key: str, scheme: str, nat: dict | None, entry, holder: str) -> RuleInForce | None:
    if nat is not None and "missing" in nat:
        nat = None
    if entry is not None and entry.missing:
        entry = None                                 # the region's rule is unknown: the national one is used
    if entry is None and nat is None:
        return None
    fields = {k: v for k, v in (nat or {}).items() if k not in _META}
    fields["schemes"] = list((nat or {}).get("schemes") or [])
    if entry is not None:
        fields.update({k: v for k, v in entry.raw.items() if k not in _META})
        fields["schemes"] = [scheme]                 # a region's table is the scheme's own
    return RuleInForce(fields, entry, nat, holder if entry is not None else "")


def rule_for(book, key: str, region: str, scheme: str, day) -> RuleInForce | None:
    """The rule ``key`` in force for a bill of region × scheme on ``day`` (None: neither the region nor the
    nation states one)."""
    param, holder = _region_param(book, region, scheme, key)
    entry = None
    for e in param.entries if param is not None else ():
        if np.datetime64(e.start, "D") <= np.datetime64(pd.Timestamp(day).date(), "D"):
            entry = e
    return _merge(book, key, scheme, rule_in_force(book, key, day), entry, holder)


def rule_groups(book, key: str, regions: np.ndarray, schemes: np.ndarray, days: np.ndarray):
    """Yield (positions, RuleInForce or None) over arrays of bills: one group per rule, vectorised by the
    entries' dates (few groups, however many bills)."""
    n = len(days)
    days = days.astype("datetime64[D]")
    nat = _entries(book, key)
    nat_starts = np.array([np.datetime64(e["from"], "D") for e in nat], dtype="datetime64[D]")
    k_nat = np.searchsorted(nat_starts, days, side="right") - 1 if len(nat) else np.full(n, -1)
    k_reg = np.full(n, -1, np.int64)
    holder = np.full(n, "", dtype=object)
    pairs = pd.DataFrame({"r": regions.astype(object), "s": schemes.astype(object)})
    for (r, s), idx in pairs.groupby(["r", "s"], sort=False).indices.items():
        param, h = _region_param(book, r, s, key)
        if param is None:
            continue
        starts = np.array([np.datetime64(e.start, "D") for e in param.entries], dtype="datetime64[D]")
        k_reg[idx] = np.searchsorted(starts, days[idx], side="right") - 1
        holder[idx] = h
    keys = pd.DataFrame({"h": holder, "s": schemes.astype(object), "kr": k_reg, "kn": k_nat})
    for (h, s, kr, kn), idx in keys.groupby(["h", "s", "kr", "kn"], sort=False).indices.items():
        entry = book.tables[(h, s)].params[key].entries[kr] if h and kr >= 0 else None
        yield idx, _merge(book, key, s, nat[kn] if kn >= 0 else None, entry, h)


def add_months(days: np.ndarray, months: np.ndarray) -> np.ndarray:
    """``days`` (datetime64[D]) + whole calendar months, the day of month kept (or the month's last day)."""
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    day_of_month = (d - m.astype("datetime64[D]")).astype(np.int64)
    target = m + months.astype(np.int64)
    last = ((target + 1).astype("datetime64[D]") - np.timedelta64(1, "D"))
    length = (last - target.astype("datetime64[D]")).astype(np.int64)
    return target.astype("datetime64[D]") + np.minimum(day_of_month, length)


# ---- the span in force: 参保地 and 险种 of a bill (change of region or scheme within a year) -----------
def span_index(members: Members, psn: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Per (member, day): the row of ``members.spans`` in force (-1: none; the latest-begun span wins, though
    spans do not overlap). Looked up once per distinct (member, day), not per line."""
    n = len(psn)
    out = np.full(n, -1, np.int64)
    if not n:
        return out
    psn = np.asarray(psn, dtype=object).astype(str)
    day = np.asarray(day, dtype="datetime64[D]")
    pc, _ = pd.factorize(psn)
    dc, _ = pd.factorize(day.view(np.int64))
    key, first = np.unique(pc.astype(np.int64) * (int(dc.max()) + 1) + dc, return_index=True)
    inv = np.searchsorted(key, pc.astype(np.int64) * (int(dc.max()) + 1) + dc)
    sp = members.spans
    pairs = pd.DataFrame({"pos": np.arange(len(first)), "psn_no": psn[first], "day": day[first]}).merge(
        pd.DataFrame({"psn_no": sp["psn_no"].astype(str).to_numpy(), "begin": sp["begin"].to_numpy(),
                      "end": sp["end"].to_numpy(), "span": np.arange(len(sp))}), on="psn_no", how="inner")
    b = pairs["begin"].to_numpy("datetime64[D]")
    e = pairs["end"].to_numpy("datetime64[D]")
    d = pairs["day"].to_numpy("datetime64[D]")
    pairs = pairs[(b <= d) & (np.isnat(e) | (d <= e))].sort_values(["pos", "begin"]).drop_duplicates("pos", keep="last")
    per_key = np.full(len(first), -1, np.int64)
    per_key[pairs["pos"].to_numpy()] = pairs["span"].to_numpy()
    return per_key[inv]


def fill_from_spans(df: pd.DataFrame, psn: np.ndarray, day: np.ndarray, members: Members, book):
    """The bill's 参保地 (``insuplc``) and 险种 (``insutype``) from the span in force on its date.

    The members file is the enrolment record, so where it names the span's region or scheme it decides the
    bill's table: an empty cell takes it, and a cell that says otherwise is settled as the members file says,
    with a note (kind ``input``) naming both. Returns (df with the two columns filled, the note per line)."""
    from . import codes
    from .divisions import region_lookup
    from .inputs import Distinct
    n = len(df)
    notes = np.full(n, "", dtype=object)
    idx = span_index(members, psn, day)
    sp = members.spans
    has = idx >= 0
    df = df.copy(deep=False)
    for col, span_col in (("insuplc", "region"), ("insutype", "scheme")):
        span_val = np.full(n, "", dtype=object)
        span_val[has] = sp[span_col].to_numpy(dtype=object)[idx[has]]
        if col not in df.columns:
            df[col] = ""
        d = Distinct(df[col])
        if col == "insuplc":
            parsed = d.each(lambda t: (region_lookup(book, t).region or "?") if t else "")
        else:
            parsed = d.each(lambda t: (codes.parse_insutype(t) or "?") if t else "")
        bill_val = d.spread(parsed) if n else np.array([], dtype=object)
        raw = d.spread(d.texts) if n else np.array([], dtype=object)
        take = (span_val != "") & (bill_val != span_val)
        if not take.any():
            continue
        differs = take & (bill_val != "")
        if differs.any():
            word = tr("参保地", "insured region") if col == "insuplc" else tr("险种", "scheme")
            label = (lambda v: book.region_label(v)) if col == "insuplc" else (lambda v: tr(*_scheme_label(v)))
            for r, v in sorted(set(zip(raw[differs], span_val[differs]))):
                rows = np.flatnonzero(differs & (raw == r) & (span_val == v))
                note = tr(f"账单的{word} {r} 与参保信息（{members.source}）该日的{word}（{label(v)}）不一致："
                          f"按参保信息结算",
                          f"the bill's {word} {r} differs from the members file ({members.source}) on that day "
                          f"({label(v)}): settled as the members file says")
                # one warning text per bill (a bill's warnings are joined by "; ", so never that inside one)
                notes[rows] = np.where(notes[rows] == "", note, notes[rows] + tr("；", " — ") + note)
        col_text = pd.Series(raw, index=df.index, dtype=object)
        col_text[take] = span_val[take]
        df[col] = col_text
    return df, notes


TRANSFER_KINDS = ("carried", "not_carried", "missing")


def _carryover_rule(book, region: str, scheme: str, day) -> tuple[str, int]:
    """(kind, entry uid) of the receiving table's ``transfer_carryover`` on the transfer day: ``carried``, ``not_carried``,
    or ``missing`` (no table, no entry in force, or a ``missing`` entry; uid -1 where there is no entry)."""
    t = book.tables.get((region, scheme))
    p = t.params.get("transfer_carryover") if t is not None else None
    if p is None:
        return "missing", -1
    i = int(p.entry_index(np.array([np.datetime64(day, "D")]))[0])
    if i < 0:
        return "missing", -1
    e = p.entries[i]
    if e.missing:
        return "missing", e.uid
    return ("carried" if e.raw.get("carried_over") is True else "not_carried"), e.uid


def _policy_year(book, region, scheme, days: np.ndarray) -> np.ndarray:
    t = book.tables.get((region, scheme))
    mo, dd = t.policy_year_start if t is not None else (1, 1)
    cy = days.astype("datetime64[Y]")
    start = (cy.astype("datetime64[M]") + np.timedelta64(mo - 1, "M")).astype("datetime64[D]") + np.timedelta64(dd - 1, "D")
    return cy.astype(np.int64) + 1970 - (days < start)


def year_groups(bills: pd.DataFrame, members: Members, book) -> dict:
    """Whose year state each bill continues, following the member's spans (issue 17: change of 参保地/险种).

    A member's consecutive spans that name both a region and a scheme and differ in either are a move. The
    receiving table's ``transfer_carryover`` in force on the new span's first day decides: ``carried`` — the
    new span continues the previous span's year state (deductible used, amounts paid, 大病 segments);
    otherwise (not carried, or missing) the new span starts afresh. Consecutive spans of one region and scheme
    (re-enrolment) continue. Bills outside every span, or in a span that does not name both, keep the state
    of their bill's region and scheme, as without a members file.

    Returns per-bill columns: ``_year_group`` (int), ``member_span`` (row of ``members.spans``, -1),
    ``member_transfer`` (the move's kind for bills of the transfer's policy year in the receiving span, else ""),
    ``member_transfer_from`` ("region/scheme" of the previous span), ``member_transfer_date`` and
    ``member_transfer_entry`` (uid of the rule's entry, -1)."""
    n = len(bills)
    sp = members.spans
    m = len(sp)
    order = np.lexsort((sp["begin"].to_numpy("datetime64[D]"), sp["psn_no"].astype(str).to_numpy()))
    psn = sp["psn_no"].astype(str).to_numpy()[order]
    reg = sp["region"].to_numpy(dtype=object)[order]
    sch = sp["scheme"].to_numpy(dtype=object)[order]
    begin = sp["begin"].to_numpy("datetime64[D]")[order]
    complete = (reg != "") & (sch != "")
    same = np.zeros(m, bool)
    same[1:] = psn[1:] == psn[:-1]
    prev_complete = np.zeros(m, bool)
    prev_complete[1:] = complete[:-1]
    prev_reg = np.concatenate([[""], reg[:-1]]).astype(object)
    prev_sch = np.concatenate([[""], sch[:-1]]).astype(object)
    moved = same & complete & prev_complete & ((reg != prev_reg) | (sch != prev_sch))
    kind = np.full(m, "", dtype=object)
    entry = np.full(m, -1, np.int64)
    rules: dict = {}
    for k in np.flatnonzero(moved):
        key = (reg[k], sch[k], begin[k])
        if key not in rules:
            rules[key] = _carryover_rule(book, *key)
        kind[k], entry[k] = rules[key]
    new_chain = ~same | ~complete | ~prev_complete | (moved & (kind != "carried"))
    chain = np.cumsum(new_chain) - 1
    # back to the spans' own rows
    at = np.empty(m, np.int64)
    at[order] = np.arange(m)

    year_group = bills["_year_group"].to_numpy(np.int64).copy()
    span = span_index(members, bills["psn_no"].to_numpy(dtype=object), bills["setl_date"].to_numpy("datetime64[D]"))
    out = {"member_span": span, "member_transfer": np.full(n, "", dtype=object),
           "member_transfer_from": np.full(n, "", dtype=object),
           "member_transfer_date": np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"),
           "member_transfer_entry": np.full(n, -1, np.int64)}
    has = span >= 0
    pos = np.flatnonzero(has)
    k = at[span[pos]]                       # the span's place in the sorted order
    in_chain = complete[k]
    offset = int(year_group.max(initial=-1)) + 1          # chain numbers after the region/scheme numbers
    year_group[pos[in_chain]] = offset + chain[k[in_chain]]
    out["_year_group"] = year_group
    # which bills a move concerns: those of the receiving span in the policy year of the transfer
    mv = moved[k]
    if mv.any():
        p, km = pos[mv], k[mv]
        day = bills["setl_date"].to_numpy("datetime64[D]")[p]
        same_year = np.zeros(len(p), bool)
        for (r, s_) in set(zip(reg[km], sch[km])):
            sel = (reg[km] == r) & (sch[km] == s_)
            same_year[sel] = _policy_year(book, r, s_, day[sel]) == _policy_year(book, r, s_, begin[km][sel])
        p, km = p[same_year], km[same_year]
        out["member_transfer"][p] = kind[km]
        out["member_transfer_from"][p] = [f"{a}/{b}" for a, b in zip(prev_reg[km], prev_sch[km])]
        out["member_transfer_date"][p] = begin[km]
        out["member_transfer_entry"][p] = entry[km]
    return out


def transfer_warnings(bills: pd.DataFrame, book, warn) -> None:
    """Each bill a move concerns says what happened to the year so far: a ``missing`` warning where the receiving
    table has no sourced rule (computed as not carried over), a note where the rule is sourced."""
    kind = bills["member_transfer"].to_numpy(dtype=object)
    if not (kind != "").any():
        return
    frm = bills["member_transfer_from"].to_numpy(dtype=object)
    to = (bills["region"].astype(str) + "/" + bills["scheme"].astype(str)).to_numpy(dtype=object)
    for k, f, t in sorted(set(zip(kind[kind != ""], frm[kind != ""], to[kind != ""]))):
        rows = np.flatnonzero((kind == k) & (frm == f) & (to == t))
        move = f"{_place(book, f, 'zh')} → {_place(book, t, 'zh')}"
        move_en = f"{_place(book, f, 'en')} → {_place(book, t, 'en')}"
        if k == "missing":
            warn(rows, tr(f"参保地/险种变更（{move}）：{_place(book, t, 'zh')}年度内转入人员已发生费用是否累计计算无已核实规定；"
                          f"起付线、已支付金额和大病保险累计未结转，按不累计重新计算",
                          f"change of region/scheme ({move_en}): no sourced rule on whether {_place(book, t, 'en')} "
                          f"counts the year so far: the deductible used, amounts paid and critical-illness totals were "
                          f"not carried over (computed afresh)"), "missing")
        elif k == "carried":
            warn(rows, tr(f"参保地/险种变更（{move}）：年度内已发生费用累计计算（起付线、已支付金额、大病保险累计结转）",
                          f"change of region/scheme ({move_en}): the year so far counts (deductible used, amounts paid "
                          f"and critical-illness totals carried over)"), "note")
        else:
            warn(rows, tr(f"参保地/险种变更（{move}）：按{_place(book, t, 'zh')}规定，年度内已发生费用不累计计算（重新计算）",
                          f"change of region/scheme ({move_en}): by {_place(book, t, 'en')}'s rule the year so far does "
                          f"not count (computed afresh)"), "note")


def _place(book, key: str, lang: str) -> str:
    """"chengdu/employee" → 成都职工 / 成都 employee."""
    region, _, scheme = key.partition("/")
    label = book.region_label(region)
    return f"{label}{tr(*_scheme_label(scheme), lang=lang)}" if lang == "zh" else \
        f"{label} {tr(*_scheme_label(scheme), lang=lang)}"


def _with_prev_end(sp: pd.DataFrame) -> pd.DataFrame:
    """The spans with ``span`` (their number) and ``prev_end``: the end of the member's span before (NaT for the
    first), from which a 职工 contribution gap is measured."""
    order = sp.sort_values(["psn_no", "begin"], kind="stable").index.to_numpy()
    srt = sp.loc[order]
    same = np.r_[False, srt["psn_no"].to_numpy()[1:] == srt["psn_no"].to_numpy()[:-1]]
    prev = np.r_[np.datetime64("NaT"), srt["end"].to_numpy("datetime64[D]")[:-1]].astype("datetime64[D]")
    prev_end = np.full(len(sp), np.datetime64("NaT"), dtype="datetime64[D]")
    prev_end[order] = np.where(same, prev, np.datetime64("NaT"))
    return sp.assign(span=np.arange(len(sp)), prev_end=prev_end)


# ---- per bill ----------------------------------------------------------------------------------------
def eligibility(bills: pd.DataFrame, members: Members, book, warn) -> dict:
    """Per bill: whether the member could be paid on the bill's date, and why not.

    ``warn(rows, message, kind)`` records a bill warning. Returns arrays in ``bills`` order:
    ``listed`` (member in the file), ``eligible``, ``reason`` (text), ``benefit_from`` (datetime64[D], NaT
    when no wait), ``wait_months`` (-1 when no wait), ``reward`` (fen added to the 大病 cap) and ``reward_share``."""
    n = len(bills)
    psn = bills["psn_no"].astype(str).to_numpy(dtype=object)
    day = bills["setl_date"].to_numpy("datetime64[D]")
    sp = members.spans
    listed = pd.Index(members.psn_nos).get_indexer(psn) >= 0
    eligible = np.ones(n, bool)
    reason = np.full(n, "", dtype=object)
    benefit_from = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    wait_months = np.full(n, -1, np.int64)
    out = {"listed": listed, "eligible": eligible, "reason": reason, "benefit_from": benefit_from,
           "wait_months": wait_months, "span_row": np.full(n, -1, np.int64),
           "reward": np.zeros(n, np.int64), "reward_share": np.zeros(n, np.int64),
           "wait_rule": np.full(n, "", dtype=object), "acct_payer": np.full(n, "", dtype=object)}
    if not listed.any():
        return out
    pairs = pd.DataFrame({"pos": np.arange(n)[listed], "psn_no": psn[listed], "day": day[listed]}).merge(
        _with_prev_end(sp), on="psn_no", how="inner")
    b = pairs["begin"].to_numpy("datetime64[D]")
    e = pairs["end"].to_numpy("datetime64[D]")
    d = pairs["day"].to_numpy("datetime64[D]")
    cover = (b <= d) & (np.isnat(e) | (d <= e))
    pairs = pairs[cover].sort_values(["pos", "begin"]).drop_duplicates("pos", keep="last")
    pos = pairs["pos"].to_numpy()
    covered = np.zeros(n, bool)
    covered[pos] = True
    not_enrolled = listed & ~covered
    eligible[not_enrolled] = False
    reason[not_enrolled] = tr("未参保", "not enrolled")
    if not len(pairs):
        return out
    out["span_row"][pos] = pairs["row"].to_numpy()
    out["acct_payer"][pos] = pairs["acct_payer"].to_numpy(dtype=object)
    _rewards(out, pairs, pos, bills, day, book, warn)

    # the span's 参保地/险种 are the bill's already where the span names them (inputs.prepare, fill_from_spans)
    span_scheme = pairs["scheme"].to_numpy(dtype=object)
    scheme = np.where(span_scheme != "", span_scheme, bills["scheme"].to_numpy(dtype=object)[pos])

    begin = pairs["begin"].to_numpy("datetime64[D]")
    paid = pairs["paid_on"].to_numpy("datetime64[D]")
    # paid on or after the span's first day: outside the 集中缴费期 (which precedes the year it pays for);
    # a span without a payment date counts as paid in time
    late = ~np.isnat(paid) & (paid >= begin)
    brk = pairs["break_years"].to_numpy(np.int64)
    rep = pairs["repaid_years"].to_numpy(np.int64)
    exempt = pairs["waiting_exempt"].to_numpy(bool)
    needs = (late | (brk > 0)) & ~exempt
    start = np.where(late, paid, begin)
    region = bills["region"].to_numpy(dtype=object)[pos]
    prev_end = pairs["prev_end"].to_numpy("datetime64[D]")
    wait_rule = out["wait_rule"]

    def apply_wait(r: np.ndarray, total: np.ndarray, rule: RuleInForce, key: str) -> None:
        """Bills ``r`` (positions in ``pairs``) wait ``total`` months from ``start`` under ``rule``."""
        frm = add_months(start[r], total)
        p = pos[r]
        benefit_from[p] = frm
        wait_months[p] = total
        wait_rule[p] = key
        waiting = day[p] < frm
        if not rule.fields.get("fund_pays_during_wait", False):
            eligible[p[waiting]] = False
        last = frm - np.timedelta64(1, "D")
        reason[p[waiting]] = [tr(f"等待期至 {_date(x)}", f"waiting period until {_date(x)}") if m else
                              tr(f"缴费之日 {_date(x + 1)} 起享受待遇", f"benefits only from the payment day {_date(x + 1)}")
                              for x, m in zip(last[waiting], np.broadcast_to(total, p.shape)[waiting])]
        if not rule.regional:
            docname = _doc_no(book.national_sources.get(rule.national.get("document") or rule.national.get("source")))
            warn(p, tr(f"待遇等待期：本地区细则未收录，按国家规定计算（{docname}）",
                       f"waiting period: the region's own rule is not in the tables, the national rule is used "
                       f"({docname})"), "national")

    # 职工: a contribution gap longer than the region's limit stops benefits until M months after paying again
    handled = np.zeros(len(pos), bool)
    emp = np.flatnonzero((scheme == "employee") & ~exempt)
    for g, rule in rule_groups(book, "employee_gap", region[emp], scheme[emp], start[emp]) if len(emp) else ():
        if rule is None or any(f not in rule.fields for f in GAP_FIELDS):
            continue
        r = emp[g]
        handled[r] = True
        limit = int(rule.fields["max_gap_months"])
        after_span = ~np.isnat(prev_end[r])
        resumed = np.where(after_span, prev_end[r], begin[r]) + np.timedelta64(1, "D")
        over = np.where(after_span, begin[r] > add_months(resumed, np.full(len(r), limit)), brk[r] * 12 > limit)
        if over.any():
            apply_wait(r[over], np.full(int(over.sum()), int(rule.fields["wait_months"]), np.int64), rule,
                       "employee_gap")
    needs &= ~handled

    # 待遇等待期: the rule in force when the wait starts, the region's where its table states one
    todo = np.flatnonzero(needs)
    for g, rule in rule_groups(book, "waiting_period", region[todo], scheme[todo], start[todo]) if len(todo) else ():
        r = todo[g]
        sch = scheme[r[0]]
        label = tr(*_scheme_label(sch))
        if rule is None or any(f not in rule.fields for f in WAITING_FIELDS):
            warn(pos[r], tr(f"{label}：{_date(start[r].min())} 时无已核实的待遇等待期规定，未计入",
                            f"{label}: no sourced waiting-period rule on {_date(start[r].min())}, not applied"),
                 "missing")
            continue
        if sch not in rule.fields["schemes"]:
            if sch == "employee":
                warn(pos[r], tr(f"{label}：断缴或补缴后的待遇等待期无已核实规定，未计入",
                                f"{label}: no sourced rule for the wait after a contribution gap, not applied"),
                     "missing")
            continue
        f = rule.fields
        if f.get("extended_payment_months"):
            # paid in the first months of the span's year: still the (extended) concentrated period, no wait
            year_start = begin[r].astype("datetime64[Y]").astype("datetime64[D]")
            ext_end = add_months(year_start, np.full(len(r), int(f["extended_payment_months"])))
            in_time = late[r] & (brk[r] == 0) & (paid[r] >= year_start) & (paid[r] < ext_end)
            if f.get("benefits_from_payment") and in_time.any():     # 从缴费之日起享受 (福建)
                apply_wait(r[in_time], np.zeros(int(in_time.sum()), np.int64), rule, "waiting_period")
            r = r[~in_time]
            if not len(r):
                continue
        var = np.maximum(brk[r] * int(f["months_per_break_year"]) - rep[r] * int(f["months_per_repaid_year"]), 0)
        total = int(f["fixed_months"]) + var
        total = np.where(brk[r] >= int(f["long_break_years"]), np.maximum(total, int(f["long_break_min_months"])), total)
        apply_wait(r, total.astype(np.int64), rule, "waiting_period")
    return out


def _rewards(out: dict, pairs: pd.DataFrame, pos: np.ndarray, bills: pd.DataFrame, day: np.ndarray, book,
             warn) -> None:
    """大病保险 cap raised for continuous enrolment and a zero-claim year: the region's amounts where its table
    states them, else the national floors (warned). ``reward`` (fen) and ``reward_share`` (ppm of the original
    cap, its ceiling) per bill."""
    n = len(bills)
    out["reward"] = np.zeros(n, np.int64)
    out["reward_share"] = np.zeros(n, np.int64)
    scheme = np.where(pairs["scheme"].to_numpy(dtype=object) != "", pairs["scheme"].to_numpy(dtype=object),
                      bills["scheme"].to_numpy(dtype=object)[pos])
    region = bills["region"].to_numpy(dtype=object)[pos]
    cont = pairs["continuous_years"].to_numpy(np.int64)
    no_claim = pairs["prev_year_no_claim"].to_numpy(bool)
    for g, rule in rule_groups(book, "critical_illness_rewards", region, scheme, day[pos]):
        if rule is None or scheme[g[0]] not in rule.fields["schemes"]:
            continue
        f = rule.fields
        step_c, step_z = reward_steps(rule)
        if step_c is None or step_z is None or "continuous_after_years" not in f:
            continue
        steps_c = np.maximum(cont[g] - int(f["continuous_after_years"]), 0)
        steps_z = no_claim[g].astype(np.int64)
        fen = steps_c * round(step_c * 100) + steps_z * round(step_z * 100)
        if "total_max" in f:                                    # a region's ceiling in yuan (e.g. 8 万)
            fen = np.minimum(fen, round(f["total_max"] * 100))
        got = fen > 0
        if not got.any():
            continue
        p = pos[g][got]
        out["reward"][p] = fen[got]
        share = f.get("total_max_share_of_cap")
        out["reward_share"][p] = round(float(share) * 1_000_000) if share is not None else 1_000_000
        national_c = ~np.bool_(rule.from_region("continuous_step")) & (steps_c[got] > 0)
        national_z = ~np.bool_(rule.from_region("zero_claim_step")) & (steps_z[got] > 0)
        by_nation = national_c | national_z
        if not by_nation.any():
            continue
        doc = _doc_no(book.national_sources.get(rule.national.get("document") or rule.national.get("source"))) \
            if rule.national else ""
        if not rule.regional:
            for y in np.unique(fen[got][by_nation]):
                warn(p[by_nation & (fen[got] == y)],
                     tr(f"大病保险最高支付限额：连续参保/零报销激励本地区标准未收录，按国家最低标准提高 {y / 100:,.0f} 元"
                        f"（{doc}）",
                        f"critical-illness cap: the region's reward is not in the tables, raised by the national minimum "
                        f"{y / 100:,.0f} yuan ({doc})"), "national")
            continue
        for mask, zh, en in ((national_c, "连续参保激励", "continuous-enrolment reward"),
                             (national_z, "零报销激励", "zero-claim reward")):
            if mask.any():
                warn(p[mask], tr(f"大病保险最高支付限额：{zh}本地区标准未收录，按国家最低标准计入（{doc}）",
                                 f"critical-illness cap: the region's {en} is not in the tables, the national minimum "
                                 f"is used ({doc})"), "national")


def reward_steps(rule: RuleInForce) -> tuple:
    """(continuous step, zero-claim step) in yuan: the region's amounts, else the national minimums."""
    f = rule.fields
    step_c = f["continuous_step"] if rule.from_region("continuous_step") else f.get("continuous_step_min")
    step_z = f["zero_claim_step"] if rule.from_region("zero_claim_step") else f.get("zero_claim_step_min")
    return step_c, step_z


def family_account(bills: pd.DataFrame, payer: np.ndarray, members: Members, book, warn) -> dict:
    """Per bill: whose account may pay the rest of its personal burden (家庭共济, ``national.family_account``).

    ``payer``: the 共济账户 of the member's span on the bill's date ("" = none). A link is kept where a rule is
    in force on the bill's date and, before cross-province sharing, the payer is insured in the same province
    (the payer's span on that date; a payer without a 参保地 in the file counts as the member's province, and
    the bill says so). Returns ``payer`` (object, "" where no family account pays), ``pays_selfpay``,
    ``pays_ownpay`` (bool: the parts of the personal burden it may pay)."""
    n = len(bills)
    payer = np.asarray(payer, dtype=object).copy()
    out = {"payer": payer, "pays_selfpay": np.zeros(n, bool), "pays_ownpay": np.zeros(n, bool)}
    linked = payer != ""
    if not linked.any():
        return out
    day = bills["setl_date"].to_numpy("datetime64[D]")
    entries = _entries(book, "family_account")
    starts = np.array([np.datetime64(e["from"], "D") for e in entries], dtype="datetime64[D]")
    k = np.searchsorted(starts, day, side="right") - 1 if len(entries) else np.full(n, -1)
    before = linked & (k < 0)
    if before.any():
        first = _date(starts[0]) if len(entries) else ""
        warn(np.flatnonzero(before),
             tr(f"家庭共济：就诊日早于个人账户家庭共济规定（{first} 起），共济账户不支付",
                f"family account: the bill is before the family-account rule ({first}), the payer's account pays "
                f"nothing") if first else
             tr("家庭共济：无已核实的个人账户家庭共济规定，共济账户不支付",
                "family account: no sourced family-account rule, the payer's account pays nothing"),
             "missing" if not first else "other")
        payer[before] = ""
    # the payer's 参保地 on the bill's date, where the members file gives it
    payer_region = _payer_regions(bills, payer, members)
    province = {rid: r.province for rid, r in book.regions.items()}
    bill_prov = np.array([province.get(r, r) for r in bills["region"].to_numpy(dtype=object)], dtype=object)
    payer_prov = np.array([province.get(r, r) if r else "" for r in payer_region], dtype=object)
    for j in np.unique(k[(payer != "") & (k >= 0)]):
        e = entries[j]
        rows = (payer != "") & (k == j)
        if "missing" in e:
            warn(np.flatnonzero(rows), tr(f"家庭共济：{e['from']} 起无已核实规定，共济账户不支付",
                                          f"family account: no sourced rule from {e['from']}, the payer's account "
                                          f"pays nothing"), "missing")
            payer[rows] = ""
            continue
        if not e.get("cross_province"):
            unknown = rows & (payer_prov == "")
            if unknown.any():
                warn(np.flatnonzero(unknown),
                     tr("家庭共济：参保信息未给出共济账户人员的参保地，按与本人同省计",
                        "family account: the members file gives no 参保地 for the payer, taken as the member's "
                        "province"), "input")
            other = rows & (payer_prov != "") & (payer_prov != bill_prov)
            if other.any():
                warn(np.flatnonzero(other),
                     tr(f"家庭共济：共济账户人员在外省参保，{e['from']} 起的规定只允许省内共济，共济账户不支付",
                        f"family account: the payer is insured in another province; the rule from {e['from']} "
                        f"allows sharing within a province only, the payer's account pays nothing"), "other")
                payer[other] = ""
                rows &= ~other
        listed = e.get("pays") or []
        out["pays_selfpay"][rows] = "selfpay" in listed
        out["pays_ownpay"][rows] = "ownpay" in listed
    return out


def family_explain(book, r, lang: str) -> tuple[str, str, str]:
    """(item, rule, source) of the explanation step of a family account's payment (家庭共济) on one bill."""
    from .money import fmt_yuan
    payer = str(r["acct_payer"])
    rule = rule_in_force(book, "family_account", r["setl_date"])
    pays = tr("、", ", ", lang).join(tr(*ACCOUNT_PART_WORDS[p], lang=lang) for p in (rule or {}).get("pays", []))
    before = int(r["acct_mulaid_balance_before"])
    after = before - int(r["acct_mulaid_pay"])
    text = tr(f"本人账户先付，余下的个人负担由 {payer} 的职工医保个人账户支付（本工具的计算顺序）；"
              f"共济账户可付部分 {fmt_yuan(r['acct_mulaid_eligible'])}（{pays}）；"
              f"{payer} 账户余额：支付前 {fmt_yuan(before)}，支付后 {fmt_yuan(after)}",
              f"the member's own account pays first, then {payer}'s employee account pays the rest of the "
              f"patient's share (the order this tool uses); payable from the family account {fmt_yuan(r['acct_mulaid_eligible'])} "
              f"({pays}); {payer}'s balance before {fmt_yuan(before)}, after {fmt_yuan(after)}", lang)
    return (tr(f"共济账户支付（{payer}）", f"family account pays ({payer})", lang), text,
            _cite(book, rule, lang) if rule else "")


def _payer_regions(bills: pd.DataFrame, payer: np.ndarray, members: Members) -> np.ndarray:
    """The 参保地 of each bill's payer on the bill's date from the payer's own span ("" when not given)."""
    n = len(bills)
    out = np.full(n, "", dtype=object)
    has = np.flatnonzero(payer != "")
    if not len(has):
        return out
    pairs = pd.DataFrame({"pos": has, "psn_no": payer[has],
                          "day": bills["setl_date"].to_numpy("datetime64[D]")[has]}).merge(
        members.spans[["psn_no", "begin", "end", "region"]], on="psn_no", how="inner")
    b = pairs["begin"].to_numpy("datetime64[D]")
    e = pairs["end"].to_numpy("datetime64[D]")
    d = pairs["day"].to_numpy("datetime64[D]")
    pairs = pairs[(b <= d) & (np.isnat(e) | (d <= e))]
    out[pairs["pos"].to_numpy()] = pairs["region"].to_numpy(dtype=object)
    return out


def _scheme_label(s):
    from . import codes
    return codes.SCHEME_LABEL.get(s, (s, s))


def _date(x) -> str:
    return str(np.datetime64(x, "D"))


def _doc_no(src) -> str:
    if src is None:
        return ""
    m = re.search(r"[（(]([^（）()]*〔\d{4}〕\d+号)[）)]", src.title)
    return m.group(1) if m else src.title


def _rule_cite(book, rule: RuleInForce | None, lang: str) -> str:
    """The documents a rule was read from: the region's source when its table stated it, and the national
    document for what it left to the national rule."""
    if rule is None:
        return ""
    parts = []
    if rule.regional and rule.region_entry.source is not None:
        parts.append(rule.region_entry.source.cite(lang))
    if rule.national is not None:
        parts.append(_cite(book, rule.national, lang))
    return ("；" if lang == "zh" else "; ").join(p for p in parts if p)


def _rule_owner(book, rule: RuleInForce, lang: str) -> str:
    """Whose rule it is, in words: 成都市规定 / 四川省规定 / 国家规定."""
    if rule.regional:
        e = rule.region_entry                   # the table that stated it: a baseline the region's table extends
        rid = e.table.split("/")[0] if not e.user and e.table.split("/")[0] in book.regions else rule.holder
        name = book.regions[rid].name if rid in book.regions else rid
        return tr(f"{name}规定", f"rule of {name}", lang)
    return tr("国家规定", "national rule", lang)


def explain_text(book, r, lang: str) -> tuple[str, str, str] | None:
    """(item, amount, rule, source) of the eligibility step of one bill row, or None when no members file said."""
    if "member_listed" not in r or not bool(r["member_listed"]):
        return None
    months = int(r.get("member_wait_months", -1))
    frm = r.get("member_benefit_from")
    key = str(r.get("member_wait_rule") or "waiting_period")
    rule = rule_for(book, key, r["region"], r["scheme"], pd.Timestamp(frm) - pd.DateOffset(months=max(months, 0))) \
        if months >= 0 and pd.notna(frm) else None
    src = _rule_cite(book, rule, lang)
    owner = f"（{_rule_owner(book, rule, lang)}）" if rule is not None and lang == "zh" else \
        (f" ({_rule_owner(book, rule, lang)})" if rule is not None else "")
    what = tr("职工医保中断缴费后的待遇等待期", "wait after an employee contribution gap", lang) \
        if key == "employee_gap" else tr("待遇等待期", "waiting period", lang)
    if bool(r["member_eligible"]):
        if months == 0:
            text = tr(f"延长缴费期内缴费{owner}，缴费之日 {_date(np.datetime64(frm, 'D'))} 起享受待遇；就诊日在其后",
                      f"paid in the extended payment period{owner}: benefits from the payment day "
                      f"{_date(np.datetime64(frm, 'D'))}; the bill is after it", lang)
        elif months > 0:
            text = tr(f"{what} {months} 个月{owner}，{_date(np.datetime64(frm, 'D'))} 起享受待遇；就诊日在其后",
                      f"{what} {months} months{owner}, benefits from {_date(np.datetime64(frm, 'D'))}; the bill "
                      f"is after it", lang)
        else:
            text = tr("就诊日在参保期内，无待遇等待期", "enrolled on the bill's date, no waiting period", lang)
        reward = int(r.get("member_reward", 0))
        if reward > 0:
            rw = rule_for(book, "critical_illness_rewards", r["region"], r["scheme"], r["setl_date"])
            if rw is not None and rw.regional and rw.from_region("continuous_step") and rw.from_region("zero_claim_step"):
                whose = _rule_owner(book, rw, lang)
            else:
                whose = tr("国家最低标准", "national minimum", lang)
            share = int(r["member_reward_share"]) / 10_000
            text += tr(f"；大病保险最高支付限额因连续参保/零报销激励提高 {reward / 100:,.0f} 元（{whose}，"
                       f"至多原封顶线的 {share:.0f}%）",
                       f"; critical-illness cap raised by {reward / 100:,.0f} yuan for continuous enrolment / a "
                       f"zero-claim year ({whose}, at most {share:.0f}% of the original cap)", lang)
            cite = _rule_cite(book, rw, lang)
            src = ("；" if lang == "zh" else "; ").join(x for x in (src, cite) if x)
        return tr("待遇资格", "eligibility", lang), tr("享受", "eligible", lang), text, src
    if months == 0:
        day = _date(np.datetime64(frm, 'D'))
        whose = _rule_owner(book, rule, lang) if rule else ""
        text = tr(f"缴费之日 {day} 起享受待遇（{whose}：延长缴费期内缴费的，从缴费之日起享受）：就诊日在缴费之前，"
                  f"医保基金不支付",
                  f"benefits only from the payment day {day} ({whose}: paid in the extended payment period, benefits "
                  f"start that day): the bill is before it, the funds pay nothing", lang)
    elif months > 0:
        why = tr(f"等待期至 {_date(np.datetime64(frm, 'D') - np.timedelta64(1, 'D'))}",
                 f"waiting period until {_date(np.datetime64(frm, 'D') - np.timedelta64(1, 'D'))}", lang)
        text = tr(f"{why}（{what} {months} 个月，{_rule_owner(book, rule, lang) if rule else ''}）：医保基金不支付"
                  f"等待期内发生的医疗费用，全部由个人负担",
                  f"{why} ({what} {months} months{', ' + _rule_owner(book, rule, lang) if rule else ''}): the "
                  f"funds pay nothing for care during the wait; the patient pays all", lang)
    else:
        why = tr("未参保", "not enrolled", lang)
        text = tr(f"{why}：就诊日不在任何参保期内，基金不支付", f"{why}: no enrolment span covers the bill's date; "
                  f"the funds pay nothing", lang)
    return tr("待遇资格", "eligibility", lang), tr("不享受", "not eligible", lang), text, src


def move_explain_text(book, r, lang: str) -> tuple[str, str, str, str] | None:
    """(item, amount, rule, source) of the step for a change of 参保地/险种 (a bill a move concerns), or None."""
    kind = r.get("member_transfer", "") if hasattr(r, "get") else ""
    if not isinstance(kind, str) or not kind:
        return None
    frm, to = str(r["member_transfer_from"]), f"{r['region']}/{r['scheme']}"
    day = _date(np.datetime64(pd.Timestamp(r["member_transfer_date"]), "D"))
    row = int(r.get("member_span_row", -1))
    where = tr(f"参保信息第 {row} 行：", f"members file row {row}: ", lang) if row > 0 else ""
    head = tr(f"{where}{day} 起由{_place(book, frm, 'zh')}转入{_place(book, to, 'zh')}，本账单按{_place(book, to, 'zh')}的参数表结算",
              f"{where}moved from {_place(book, frm, 'en')} to {_place(book, to, 'en')} on {day}; this bill is settled "
              f"by the {_place(book, to, 'en')} table", lang)
    uid = int(r.get("member_transfer_entry", -1))
    entry = book.entries[uid] if uid >= 0 else None
    if kind == "carried":
        amount = tr("累计计算", "carried over", lang)
        text = tr("；转出地年度内已发生的费用累计计算：起付线、统筹基金已支付金额和大病保险累计接续",
                  "; the year so far counts: deductible used, fund payments and critical-illness totals continue", lang)
    elif kind == "not_carried":
        amount = tr("不累计", "not carried over", lang)
        text = tr("；转出地年度内已发生的费用不累计：起付线、封顶线和大病保险在本参保地重新计算",
                  "; the year so far does not count: deductible, cap and critical illness start afresh here", lang)
    else:
        amount = tr("缺失：按不累计", "missing: not carried over", lang)
        text = tr(f"；{_place(book, to, 'zh')}年度内转入人员已发生费用是否累计计算无已核实规定，按不累计计算（起付线、"
                  f"已支付金额和大病保险累计未结转）",
                  f"; no sourced rule on whether {_place(book, to, 'en')} counts the year so far: computed as not "
                  f"carried over (deductible used, amounts paid and critical-illness totals start afresh)", lang)
    src = []
    if entry is not None and entry.source is not None and not entry.missing:
        src.append(entry.source.cite(lang) + f" — {entry.key}")
    elif entry is not None:
        src.append(entry.key)
    acct = rule_in_force(book, "account_transfer", r["setl_date"])
    if acct is not None and "missing" not in acct:
        text += tr("；个人账户余额随本人转移（同一余额）", "; the personal account balance moves with the member (one balance)",
                   lang)
        src.append(_cite(book, acct, lang))
    return tr("变更参保地/险种", "change of region/scheme", lang), amount, head + text, \
        ("；" if lang == "zh" else "; ").join(x for x in src if x)


def eligibility_texts(raw: pd.DataFrame, lang: str | None = None) -> np.ndarray:
    """The 待遇资格 column of the bill output: 是 / 否：等待期至 … / 否：未参保 / 未列入参保信息."""
    listed = raw["member_listed"].to_numpy(bool)
    ok = raw["member_eligible"].to_numpy(bool)
    frm = raw["member_benefit_from"].to_numpy("datetime64[D]")
    waiting = ~ok & ~np.isnat(frm)
    months = raw["member_wait_months"].to_numpy(np.int64) if "member_wait_months" in raw else np.full(len(raw), -1)
    key = np.where(~listed, "absent", np.where(ok, "yes", np.where(waiting, np.where(months == 0, "paid", "wait"),
                                                                      "out")))
    last = np.where(waiting, frm - np.timedelta64(1, "D"), np.datetime64("NaT"))
    combo = pd.Series(key).str.cat(pd.Series(np.datetime_as_string(last, unit="D")), sep="|").to_numpy(dtype=object)

    def text(u):
        k, d = u.split("|")
        return {"absent": tr("未列入参保信息（按一直参保）", "not in the members file (as always enrolled)", lang),
                "yes": tr("是", "yes", lang),
                "wait": tr(f"否：等待期至 {d}", f"no: waiting period until {d}", lang),
                "paid": tr(f"否：缴费前（{_date(np.datetime64(d) + 1)} 起享受）",
                           f"no: before the payment (benefits from {_date(np.datetime64(d) + 1)})", lang)
                if d != "NaT" else "",
                "out": tr("否：未参保", "no: not enrolled", lang)}[k]
    return map_distinct(combo, text)


def account_payer_texts(raw: pd.DataFrame, lang: str | None = None) -> np.ndarray:
    """The 账户支付 column: 本人 / 共济：<payer> / 本人+共济：<payer> / empty when no account paid."""
    own = raw["acct_pay"].to_numpy(np.int64) > 0
    fam = raw["acct_mulaid_pay"].to_numpy(np.int64) > 0
    payer = raw["acct_payer"].to_numpy(dtype=object) if "acct_payer" in raw.columns else np.full(len(raw), "", object)
    key = np.where(fam, payer, "")
    combo = pd.Series(np.where(own, "1", "0"), dtype=object).str.cat(pd.Series(key, dtype=object), sep="|")

    def text(u):
        o, p = u.split("|", 1)
        if p:
            return tr(f"本人+共济：{p}", f"own+family: {p}", lang) if o == "1" else tr(f"共济：{p}", f"family: {p}", lang)
        return tr("本人", "own", lang) if o == "1" else ""
    return map_distinct(combo.to_numpy(dtype=object), text)


def critical_illness_cap_texts(raw: pd.DataFrame, lang: str | None = None) -> np.ndarray:
    """The 大病保险最高支付限额 column: the cap in force on the bill after the member's rewards, in yuan
    (``402000.00``), 不封顶 when the table sets none, empty where no 大病保险 applies (e.g. 职工)."""
    n = len(raw)
    if "hifmi_cap" not in raw.columns or "hifmi_entry" not in raw.columns:
        return np.full(n, "", dtype=object)
    from .money import INF_FEN
    # bills settled in parts (worker partitions) lack the columns where no 大病 applied: NaN there
    cap = raw["hifmi_cap"].fillna(0).to_numpy(np.int64)
    applies = raw["hifmi_entry"].fillna(-1).to_numpy(np.int64) >= 0
    key = np.where(~applies, -2, np.where(cap >= INF_FEN, -1, cap))
    return map_distinct(key, lambda u: "" if u == -2 else tr("不封顶", "no cap", lang) if u == -1
                        else f"{u // 100}.{u % 100:02d}")


_RULE_TEXT = {
    "waiting_period": ("待遇等待期", "waiting period"),
    "employee_gap": ("职工医保断缴后的待遇恢复", "employee insurance after a contribution gap"),
    "critical_illness_rewards": ("大病保险连续参保激励和零报销激励", "critical-illness cap rewards"),
    "manual_claim_deadline": ("手工报销申报时限", "manual claim deadline"),
    "account_transfer": ("基本医疗保险关系转移接续：个人账户", "transfer of enrolment: the personal account"),
    "family_account": ("职工医保个人账户家庭共济", "family use of an employee's personal account"),
}


def national_rules_text(book, lang: str | None = None) -> str:
    """The member-year rules of national.yaml as a notice reads (``ybcalc tables show 全国``)."""
    out = [tr("== 国家规定：参保人的一年（待遇等待期、激励、手工报销、转移接续、家庭共济）",
              "== National rules: a member's year (waiting periods, rewards, manual claims, transfers, family accounts)", lang)]
    for key, (zh, en) in _RULE_TEXT.items():
        for e in _entries(book, key):
            head = f"  {tr(zh, en, lang)} {tr('自', 'from', lang)} {e['from']}"
            if "missing" in e:
                out.append(head + tr("：缺失 — ", ": MISSING — ", lang) + " ".join(str(e["missing"]).split()))
                continue
            out.append(head + tr("：", ":", lang))
            schemes = "、".join(tr(*_scheme_label(s), lang=lang) for s in e.get("schemes") or [])
            if key == "waiting_period":
                out += [tr(f"      适用：{schemes}；未在集中缴费期参保（缴费日期晚于参保开始）或断缴后再参保",
                           f"      applies to: {schemes}, enrolled outside the concentrated period (paid after the "
                           f"span began) or after a break", lang),
                        tr(f"      固定待遇等待期 {e['fixed_months']} 个月；每断缴 1 年增加 {e['months_per_break_year']} 个月",
                           f"      fixed wait {e['fixed_months']} months, +{e['months_per_break_year']} month per year "
                           f"of break", lang),
                        tr(f"      每补缴 1 年减少 {e['months_per_repaid_year']} 个月变动等待期；断缴 {e['long_break_years']} 年及以上，"
                           f"合计不少于 {e['long_break_min_months']} 个月",
                           f"      −{e['months_per_repaid_year']} month of the variable wait per year repaid; a break of "
                           f"{e['long_break_years']} years or more waits at least {e['long_break_min_months']} months "
                           f"in total", lang),
                        tr(f"      不适用：{'、'.join(e.get('exempt') or [])}（参保信息中 免等待期=是）",
                           f"      exempt: {'、'.join(e.get('exempt') or [])} (waiting_exempt=yes in the members file)",
                           lang),
                        tr("      等待期内发生的医疗费用医保基金不支付" if not e.get("fund_pays_during_wait") else "",
                           "      the funds pay nothing for care during the wait" if not e.get("fund_pays_during_wait")
                           else "", lang)]
            elif key == "critical_illness_rewards":
                out += [tr(f"      适用：{schemes}", f"      applies to: {schemes}", lang),
                        tr(f"      连续参保满 {e['continuous_after_years']} 年后，每连续参保 1 年提高大病保险最高支付限额"
                           f"不低于 {e['continuous_step_min']:,} 元",
                           f"      after {e['continuous_after_years']} continuous years, each further year raises the "
                           f"critical-illness cap by at least {e['continuous_step_min']:,} yuan", lang),
                        tr(f"      当年基金零报销的，次年提高不低于 {e['zero_claim_step_min']:,} 元",
                           f"      a year without fund payment raises next year's cap by at least "
                           f"{e['zero_claim_step_min']:,} yuan", lang),
                        tr(f"      累计提高不超过原封顶线的 {e['total_max_share_of_cap']:.0%}；断保后连续参保年数重新计算"
                           f"（各省定具体标准；未收录时按此最低标准计入并提示）",
                           f"      in total at most {e['total_max_share_of_cap']:.0%} of the original cap; a break "
                           f"resets the count (provinces set the amounts; where not in the tables, these minimums are used and "
                           f"warned)", lang)]
            elif key == "family_account":
                pays = tr("、", ", ", lang).join(tr(*ACCOUNT_PART_WORDS[p], lang=lang) for p in e.get("pays") or [])
                rel = "、".join(e.get("relatives") or [])
                out += [tr(f"      职工医保个人账户可支付已参保亲属（{rel}）的个人负担：{pays}",
                           f"      an employee's personal account may pay the patient's share of insured relatives "
                           f"({rel}): {pays}", lang),
                        tr("      可跨省共济" if e.get("cross_province") else "      限省内共济（共济双方在同一省份参保）",
                           "      across provinces too" if e.get("cross_province")
                           else "      within a province only (both insured in the same province)", lang),
                        tr("      计算顺序：先由本人账户支付，余下的由共济账户支付（参保信息 共济账户 列；只支持一层）",
                           "      order: the member's own account first, then the family account (members file "
                           "column acct_payer; one level only)", lang)]
            elif key == "account_transfer":
                out += [tr("      职工医保个人账户余额随本人转移：跨地区只有一个余额；年度内已发生费用是否累计计算由转入地规定"
                           "（各地参数表 transfer_carryover）",
                           "      the employee personal account balance moves with the member: one balance across "
                           "regions; whether the year so far counts is the receiving region's rule (transfer_carryover)",
                           lang)]
            cite = _cite(book, e, lang)
            if cite:
                out.append(tr("      来源：", "      source: ", lang) + cite)
    return "\n".join(line for line in out if line.strip())

"""Turning itemized bill lines (费用明细) into the engine's canonical columns.

Every input row ends up either in the clean line frame or in the rejects frame with its source
row number, the column and the reason; nothing is dropped silently. A bill (``mdtrt_id``) with a
rejected line is rejected whole, because settling the rest of it would understate its cost.
Parsing works on whole columns (and on unique values for codes) so that it scales to large files.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import codes
from .divisions import care_area, region_lookup
from .i18n import tr

BILL_ATTRS = ("psn_no", "setl_date", "insuplc", "insutype", "psn_type", "contrib_tier", "psn_idet_type", "age", "med_type",
              "hosp_lv", "hosp_type", "mdtrt_area", "fil_type")
REQUIRED = ("mdtrt_id", "det_item_fee_sumamt", "chrgitm_lv", "med_type")


class BillError(ValueError):
    """Input lines could not be settled; ``rejects`` lists every row with its column and reason."""

    def __init__(self, rejects: pd.DataFrame, source: str):
        self.rejects = rejects
        self.source = source
        lines = [tr(f"  {source}，第 {r.row} 行，列 {r.column}：{r.reason}（值 {r.value!r}）",
                    f"  {source}, row {r.row}, column {r.column}: {r.reason} (value {r.value!r})")
                 for r in rejects.head(20).itertuples()]
        more = tr(f"\n  … 另有 {len(rejects) - 20} 行", f"\n  … and {len(rejects) - 20} more") if len(rejects) > 20 else ""
        super().__init__(tr(f"{len(rejects)} 行输入无法结算：\n", f"{len(rejects)} input row(s) cannot be settled:\n")
                         + "\n".join(lines) + more)


@dataclass
class Prepared:
    lines: pd.DataFrame      # canonical, valid lines
    rejects: pd.DataFrame    # row, column, value, reason, mdtrt_id
    n_read: int


REJECT_COLUMNS = ["row", "mdtrt_id", "column", "value", "reason"]


def header_conflicts(names) -> list[str]:
    """What is wrong with headers that name one field twice: two names of one field (就诊ID and
    mdtrt_id), or one header repeated (pandas reads a repeated header as ``金额`` and ``金额.1``).
    Either would leave one of the columns silently unread. [] when every field is named once."""
    import re
    names = [str(nm).lstrip("\ufeff") for nm in names]
    columns: dict[str, list[tuple[int, str]]] = {}
    for i, nm in enumerate(names):
        field = codes.canonical_header(nm)
        mangled = re.fullmatch(r"(.+)\.\d+", nm)
        if field is None and mangled and mangled.group(1) in names:
            field = codes.canonical_header(mangled.group(1))
        if field:
            columns.setdefault(field, []).append((i + 1, nm))
    out = []
    for field, cols in columns.items():
        if len(cols) < 2:
            continue
        where = " and ".join(f"{nm} (column {i})" for i, nm in cols)
        where_zh = "与".join(f"{nm}（第 {i} 列）" for i, nm in cols)
        out.append(tr(f"表头 {where_zh} 指同一字段 {field}：请只保留其中一列",
                       f"headers {where} name the same field, {field}: keep one of these columns"))
    return out


def check_headers(names, source) -> None:
    """Refuse, before any row is read, headers that name one field twice (see ``header_conflicts``)."""
    problems = header_conflicts(names)
    if problems:
        raise ValueError(f"{source}: " + "; ".join(problems))


def rename_columns(df: pd.DataFrame) -> pd.DataFrame:
    mapping, seen = {}, set()
    for c in df.columns:
        canon = codes.canonical_header(c)
        if canon and canon not in seen:
            mapping[c] = canon
            seen.add(canon)
    return df.rename(columns=mapping)


def amount_unreadable() -> str:
    return tr("金额缺失或无法读取", "missing or unreadable amount")


def amount_ambiguous() -> str:
    return tr("金额有歧义：逗号只能用作千位分隔（1,234.50）；小数逗号（12,50）不按小数读取",
              "ambiguous amount: commas must group thousands (1,234.50); a decimal comma (12,50) is not read as one")

# Bounds that keep the engine's integer arithmetic exact. The engine multiplies a member's running
# totals (fen) by ratios in ppm (10^6) in int64 (at most 9.2 × 10^18): a member's amounts must stay
# below 9.2 × 10^12 fen. A line may hold at most 10 亿元 (10^11 fen) and one member's lines in one
# input at most 100 亿元 (10^12 fen) in all, so every bill sum, year total and fen × ppm product stays
# at least 9-fold inside int64 — and far above any real bill (the largest 住院 bills are a few 百万元).
MAX_LINE_FEN = 10**11
MAX_MEMBER_FEN = 10**12


def amount_too_large() -> str:
    return tr("金额超出每行上限 1,000,000,000 元（10 亿元）", "amount beyond the bound of 1,000,000,000 yuan per line")


def member_total_too_large() -> str:
    return tr("此参保人各行金额合计超出上限 10,000,000,000 元（100 亿元）",
               "this member's amounts add up beyond the bound of 10,000,000,000 yuan")


def parse_amount(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Exact yuan -> fen for a column of numbers or text ('1,234.5', '¥12'); returns (fen, bad)."""
    fen, problem = parse_amount_problems(s)
    return fen, problem != 0


def parse_amount_problems(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(fen, problem) per cell: problem 0 read, 1 missing or unreadable, 2 ambiguous commas, 3 beyond
    ``MAX_LINE_FEN`` (the fen of such a cell is 0).

    Text may carry a currency sign or 元, spaces, full-width characters (１２３．４５, ￥) and commas
    that group thousands. A comma that groups nothing ('1,23', '12,3456.00') is refused, never
    dropped: it is a decimal comma or a typing slip, and reading it as thousands would multiply the
    amount by 100. More than two decimals round half up at the fen.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):       # each category read once, spread by the codes
        fen, problem = parse_amount_problems(pd.Series(s.cat.categories))
        at = s.cat.codes.to_numpy()                     # -1, a missing cell: the appended missing amount
        return np.append(fen, 0)[at], np.append(problem, 1).astype(np.int8)[at]
    if pd.api.types.is_integer_dtype(s):
        # nullable Int64 may hold pd.NA (a missing amount); yuan beyond the bound are refused before
        # the product in fen could wrap
        missing = s.isna().to_numpy(bool)
        yuan = s.to_numpy(dtype=float, na_value=0.0)
        big = np.abs(yuan) > MAX_LINE_FEN // 100
        ok = ~missing & ~big
        fen = np.zeros(len(s), np.int64)
        fen[ok] = s[ok].to_numpy(np.int64) * 100
        return fen, np.where(missing, 1, np.where(big, 3, 0)).astype(np.int8)
    if pd.api.types.is_float_dtype(s):
        v = s.to_numpy(dtype=float, na_value=np.nan)
        bad = ~np.isfinite(v)
        big = ~bad & (np.abs(v) * 100 > MAX_LINE_FEN)
        # Floats carry at most 2 meaningful decimals in a bill; round at the fen (half away from 0).
        fen = np.where(bad | big, 0, np.sign(v) * np.floor(np.abs(v) * 100 + 0.5 + 1e-7)).astype(np.int64)
        return fen, np.where(bad, 1, np.where(big, 3, 0)).astype(np.int8)
    fast = _amount_fast(s)
    if fast is not None:
        big = np.abs(fast) > MAX_LINE_FEN
        return np.where(big, 0, fast), big.astype(np.int8) * 3
    t = s.astype("string").str.normalize("NFKC").str.strip()
    t = t.str.replace(r"[¥元\s]", "", regex=True)
    has_comma = t.str.contains(",", regex=False).fillna(False).to_numpy(bool)
    grouped = t.str.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d*)?").fillna(False).to_numpy(bool)
    t = t.str.replace(",", "", regex=False)
    number = t.str.fullmatch(r"[-+]?\d+(\.\d*)?|[-+]?\.\d+").fillna(False).to_numpy(bool)
    ambiguous = number & has_comma & ~grouped         # a number but for where its commas stand
    ok = number & ~ambiguous
    t = t.where(ok, "0")
    neg = t.str.startswith("-").to_numpy(bool)
    t = t.str.lstrip("+-")
    parts = t.str.split(".", n=1, expand=True)
    # more integer digits than the bound has cannot be read into int64 safely: refused before the cast
    whole = parts[0].str.lstrip("0")
    big = (whole.str.len() > len(str(MAX_LINE_FEN // 100))).fillna(False).to_numpy(bool)
    ip = parts[0].where(~big, "0").replace("", "0").astype("int64").to_numpy()
    if parts.shape[1] > 1:
        fp = parts[1].fillna("").str.pad(3, side="right", fillchar="0").str[:3]
        frac3 = fp.astype("int64").to_numpy()
    else:
        frac3 = np.zeros(len(t), np.int64)
    fen = ip * 100 + (frac3 + 5) // 10          # half up at the third decimal
    fen = np.where(neg, -fen, fen)
    big |= np.abs(fen) > MAX_LINE_FEN
    fen = np.where(big, 0, fen)
    problem = np.where(ambiguous, 2, np.where(~ok, 1, np.where(big, 3, 0))).astype(np.int8)
    return fen.astype(np.int64), problem


def _amount_fast(s: pd.Series):
    """Plain decimal text with at most 2 decimals ('194.70'): exact via Arrow's decimal cast, else None."""
    import pyarrow as pa
    import pyarrow.compute as pc
    try:
        arr = pa.array(s.astype("string"), type=pa.string()) if not isinstance(s.dtype, pd.ArrowDtype) else \
            pa.array(s)
        if arr.null_count:
            return None
        dec = pc.cast(arr, pa.decimal128(18, 2))          # raises on text, or on a third decimal
        if isinstance(dec, pa.ChunkedArray):
            dec = dec.combine_chunks()
        # a decimal(18, 2) is stored as its unscaled integer, i.e. the fen, in 128 bits (little endian):
        # 18 digits fit the low 64-bit word, read as is
        words = np.frombuffer(dec.buffers()[1], np.int64, count=2 * (dec.offset + len(dec)))
        return words[2 * dec.offset::2].copy()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def text(values, index=None) -> pd.Series:
    """A column of Python strings kept as ``object``.

    pandas 3 stores text as Arrow-backed ``str``; the engine reads its key columns as numpy arrays
    many times, and every such read of an Arrow column builds new Python strings. Object columns are
    converted once, here.
    """
    if isinstance(values, pd.Series):
        index = values.index if index is None else index
        values = values.to_numpy(dtype=object, na_value="")
    # copy=False: the arrays passed here are new; pandas 3 would otherwise copy (and incref) every string
    return pd.Series(np.asarray(values, dtype=object), index=index, dtype=object, copy=False)


def full_object(n, value="") -> np.ndarray:
    """An object array of ``n`` times the same Python value. (``np.full(n, "x", dtype=object)`` builds
    a new string for every element: 30 times slower, and as many objects.)"""
    out = np.empty(n, dtype=object)
    out.fill(value)
    return out


DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d", "%Y年%m月%d日")
# A time of day after the date, as settlement records and spreadsheets write it: "2025-03-01 10:23:45",
# "2025/3/1 9:05" (Excel), "2025-03-01T10:23:45.123+08:00" (ISO), "… 00:00:00.000000" (a Parquet
# timestamp read as text). The settlement date is the date as written; the time is not needed.
TIME_OF_DAY = (r"(?:T|\s+)(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:[.,]\d+)?)?"
               r"\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?$")


def parse_date(x: str):
    """One date in the usual forms (2025-03-01, 2025/3/1, 20250301, 2025年3月1日, with or without a
    time of day), or NaT."""
    import re
    x = re.sub(TIME_OF_DAY, "", x.strip())
    excel = re.fullmatch(r"(\d{8})\.0*", x)          # 20250301.0: a date typed as a number in a spreadsheet
    x2 = excel.group(1) if excel else x
    for fmt in DATE_FORMATS:
        val = pd.to_datetime(x2, format=fmt, errors="coerce")
        if not pd.isna(val):
            return np.datetime64(val.date(), "D")
    return np.datetime64("NaT", "D")


def parse_date_texts(texts: np.ndarray) -> np.ndarray:
    """Distinct date texts -> datetime64[D]: the time of day cut off in one Arrow pass (settlement
    times make nearly every text distinct; their dates are few), one vectorized pass for ISO dates (the
    usual case), then each other form on its own; NaT for empty or unreadable text."""
    if not len(texts):
        return np.empty(0, "datetime64[D]")
    import pyarrow as pa
    import pyarrow.compute as pc
    arrow_texts = texts if isinstance(texts, pa.Array) else pa.array(texts, pa.string())
    day = pc.replace_substring_regex(arrow_texts, pattern=TIME_OF_DAY, replacement="")
    codes_, days = pd.factorize(day.to_numpy(zero_copy_only=False))
    iso = pd.to_datetime(pd.Series(days, dtype=object), format="%Y-%m-%d", errors="coerce")
    out = iso.to_numpy("datetime64[D]")
    for i in np.flatnonzero(np.isnat(out)):
        if days[i]:
            out[i] = parse_date(days[i])
    return out[codes_]


def date_column(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(datetime64[D], empty) per row of a date column, all in Arrow: settlement times make nearly
    every cell distinct (one per bill), their dates are few, so the cells are numbered by a hash,
    the time of day is cut off the distinct texts, and only the distinct dates are parsed."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def per_value():                 # numbers, dates, categories or mixed objects: the general path
        dt = Distinct(col)
        return dt.spread(parse_date_texts(dt.texts)), dt.empty()

    if isinstance(col.dtype, pd.CategoricalDtype) or not pd.api.types.is_string_dtype(col.dtype):
        return per_value()
    try:
        arr = pa.array(col.array) if col.dtype != object else pa.array(col.to_numpy(), type=pa.string(),
                                                                          from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return per_value()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    enc = pc.dictionary_encode(arr.cast(pa.string()))
    texts = pc.utf8_trim_whitespace(enc.dictionary)
    # a missing cell points one past the distinct texts, at NaT and empty
    idx = enc.indices.fill_null(len(texts)).to_numpy(zero_copy_only=False)
    days = np.append(parse_date_texts(texts), np.datetime64("NaT", "D"))
    empty = np.append(np.asarray(pc.equal(texts, ""), dtype=bool), True)
    return days[idx], empty[idx]


def _to_float(x: str) -> float:
    try:
        return float(x) if x else np.nan
    except ValueError:
        return np.nan


def _share(x: str) -> float:
    """A co-payment share as written: '0.1' or '10%'."""
    return _to_float(x[:-1].strip()) / 100 if x.endswith("%") else _to_float(x)


def dense_codes(codes: np.ndarray) -> np.ndarray:
    """Non-negative integer codes renumbered 0..k-1, keeping their order (what ``np.unique(codes,
    return_inverse=True)`` gives, by a table of the values present instead of a sort); unchanged when
    already dense, as they are unless rows were rejected."""
    codes = np.asarray(codes)
    if not len(codes):
        return codes.astype(np.int64)
    lo, hi = int(codes.min()), int(codes.max())
    if lo < 0 or hi >= 4 * len(codes) + 64:        # not small codes: the sort-based renumbering
        return np.unique(codes, return_inverse=True)[1].reshape(-1).astype(np.int64)
    present = np.zeros(hi + 1, bool)
    present[codes] = True
    if present.all():
        return codes.astype(np.int64, copy=False)
    return (np.cumsum(present) - 1)[codes]


class Distinct:
    """A text column as integer codes over its distinct values.

    Bill files repeat the same few codes, dates and ages millions of times: every parser here runs
    once per distinct value and is spread back to the rows by the codes (one hash pass per column,
    no per-row Python). ``texts`` are the distinct values stripped, with empty for a missing cell.
    """

    def __init__(self, s: pd.Series):
        codes_, uniques = pd.factorize(s, use_na_sentinel=False)
        self.codes = codes_.astype(np.int64)
        if pd.api.types.is_string_dtype(uniques.dtype) and uniques.dtype != object:
            # text read from a file: strip in Arrow, then one Python string per distinct value
            raw = pd.Series(uniques)
            stripped = raw.str.strip()
            self.merged = bool(raw.isna().any() or (stripped != raw).any())
            self.texts = stripped.fillna("").to_numpy(dtype=object)
        else:
            self.texts = np.array([("" if (u is None or u is pd.NA or (isinstance(u, float) and np.isnan(u)))
                                    else str(u).strip()) for u in uniques], dtype=object)
            self.merged = True
        self.n = len(s)

    def text_codes(self) -> np.ndarray:
        """One code per row for each distinct text after stripping (" V1" and "V1" share one)."""
        if not self.merged or not len(self.texts):       # no value changed by stripping: codes as they are
            return self.codes
        return pd.factorize(self.texts)[0][self.codes]

    def each(self, fn, dtype=object) -> np.ndarray:
        return np.array([fn(t) for t in self.texts], dtype=dtype) if len(self.texts) else np.empty(0, dtype)

    def spread(self, per_value: np.ndarray) -> np.ndarray:
        return per_value[self.codes] if len(per_value) else np.empty(self.n, per_value.dtype)

    def empty(self) -> np.ndarray:
        return self.spread(self.texts == "") if len(self.texts) else np.zeros(self.n, bool)


def _last_day_per_bill(days: np.ndarray, bill: np.ndarray) -> np.ndarray:
    """Each line's bill's latest date (NaT only where the bill has no readable date)."""
    v = days.view(np.int64)
    ok = ~np.isnat(days)
    last = np.full(int(bill.max()) + 1 if len(bill) else 0, np.iinfo(np.int64).min, np.int64)
    np.maximum.at(last, bill[ok], v[ok])
    return last[bill].view("datetime64[D]")          # int64's minimum is NaT


def _claim_columns(df: pd.DataFrame, out: pd.DataFrame, n: int, coded, reject, consistency) -> None:
    """结算方式 (``settle_mode``: direct / manual) and the claim's filing date (``claim_date``, 申报日期), both
    bill-level and optional. A filing date with no 结算方式 is a manual claim (only those are filed); a direct
    settlement with a filing date, or a claim filed before the bill's date, is refused."""
    if "settle_mode" in df.columns:
        mode = coded("settle_mode", codes.parse_settle_mode,
                     tr("未知的结算方式（应为 直接结算 或 手工报销/零星报销）",
                        "unknown settlement mode (expected 直接结算/direct or 手工报销/manual)"), "", default="")
    else:
        mode = full_object(n, "")
    if "claim_date" in df.columns:
        filed, empty = date_column(df["claim_date"])
        reject(np.isnat(filed) & ~empty, "claim_date", tr("无法读取的申报日期（请用 2025-03-01、2025/3/1 或 20250301）",
                                                          "unreadable filing date (use 2025-03-01, 2025/3/1 or 20250301)"))
        consistency["claim_date"] = filed.view(np.int64)
    else:
        filed = np.full(n, np.datetime64("NaT"), "datetime64[D]")
    has_date = ~np.isnat(filed)
    reject((mode == "direct") & has_date, "claim_date",
           tr("直接结算的账单不填申报日期（申报日期只用于手工报销）",
              "a direct settlement has no filing date (the filing date is for manual claims only)"))
    day = out["setl_date"].to_numpy("datetime64[D]")
    reject(has_date & ~np.isnat(day) & (filed < day), "claim_date",
           tr("申报日期早于结算日期", "filing date before the bill's settlement date"))
    out["settle_mode"] = text(np.where((mode == "manual") | ((mode == "") & has_date), "manual", "direct"))
    out["claim_date"] = filed


def prepare(df: pd.DataFrame, *, source: str = "<lines>", row_numbers=None, book=None,
            default_region: str | None = None, default_scheme: str | None = None,
            require_date: bool = True, prior_rejects: dict | None = None, catalogue=None, members=None) -> Prepared:
    """Validate and normalise input lines. ``row_numbers`` are the rows as the user sees them.
    ``prior_rejects``: {mdtrt_id: reason} of bills one of whose lines was rejected before these lines
    were read (a broken CSV row): their lines here are rejected too, with that reason. ``catalogue``
    (``ybcalc.catalogue.Catalogue``): lines lacking 收费项目等级, 自付比例 or 限价 take them from it.
    ``members`` (``ybcalc.members.Members``): a line's 参保地/险种 is the one of its member's span in force on the
    bill's date where the span names it (an empty cell may then be left empty)."""
    check_headers(df.columns, source)
    df = rename_columns(df.reset_index(drop=True))
    classed = None
    if catalogue is not None:
        df, classed = catalogue.fill(df)
    n = len(df)
    rows = np.asarray(row_numbers if row_numbers is not None else np.arange(n) + 1)
    problems: list[pd.DataFrame] = []
    consistency: dict[str, np.ndarray] = {}     # per bill-level column: codes that must agree within a bill

    def reject(mask, column, reason, values=None):
        mask = np.asarray(mask, bool)
        if mask.any():
            idx = np.flatnonzero(mask)
            vals = (values if values is not None else
                    (df[column] if column in df.columns else pd.Series([""] * n)))
            problems.append(pd.DataFrame({
                "row": rows[idx],
                "mdtrt_id": df["mdtrt_id"].iloc[idx].astype("string").fillna("").to_numpy(dtype=object)
                if "mdtrt_id" in df.columns else "",
                "column": column,
                "value": pd.Series(vals).iloc[idx].astype("string").fillna("").to_numpy(dtype=object),
                "reason": reason}))

    def missing_column(col, reason):
        raise BillError(pd.DataFrame({"row": [0], "mdtrt_id": [""], "column": [col], "value": [""],
                                      "reason": [reason]}), source)

    for col in REQUIRED:
        if col not in df.columns:
            missing_column(col, tr(f"缺少必需的列 {col}（现有表头：{'、'.join(map(str, df.columns))}）",
                                   f"required column {col} is missing (headers: {', '.join(map(str, df.columns))})"))
    out = pd.DataFrame(index=df.index)
    out["_row"] = rows
    if classed is not None:
        out["_catalogue"] = classed.astype(np.int64)     # 1: the line took a value from the catalogue

    mid = Distinct(df["mdtrt_id"])
    # one code per visit id as written after stripping (" V1" and "V1" are one bill)
    bill_codes = mid.text_codes()
    reject(mid.empty(), "mdtrt_id", tr("缺少就诊ID（mdtrt_id）", "missing visit id (mdtrt_id)"))
    out["mdtrt_id"] = text(mid.spread(mid.texts))
    if "psn_no" in df.columns:
        psn = Distinct(df["psn_no"])
        psn_rows = psn.spread(psn.texts)
        out["psn_no"] = text(np.where(psn.empty(), out["mdtrt_id"].to_numpy(), psn_rows))
    else:
        out["psn_no"] = out["mdtrt_id"]
    member_codes = None
    if "psn_no" in df.columns and not psn.empty().any():
        # members numbered in the text order of psn_no, so that the engine can sort by the number
        member_codes = np.unique(psn.texts, return_inverse=True)[1].reshape(-1)[psn.codes]

    fen, problem = parse_amount_problems(df["det_item_fee_sumamt"])
    reject(problem == 1, "det_item_fee_sumamt", amount_unreadable())
    reject(problem == 2, "det_item_fee_sumamt", amount_ambiguous())
    reject(problem == 3, "det_item_fee_sumamt", amount_too_large())
    out["amount"] = fen
    # A member's running totals must stay within the engine's exact range (see MAX_MEMBER_FEN): one
    # sum over all lines tells at once that none can exceed it (the usual case)
    magnitude = np.abs(fen).astype(float)
    if magnitude.sum() > MAX_MEMBER_FEN:
        member = pd.factorize(out["psn_no"].to_numpy())[0]
        per_member = np.bincount(member, weights=magnitude)
        reject(per_member[member] > MAX_MEMBER_FEN, "det_item_fee_sumamt", member_total_too_large())

    raw_codes: dict[str, np.ndarray] = {}        # per column read through ``coded``: its Distinct codes

    def coded(col, parser, reason, fill, dtype=object, default=None, check=True):
        """A code column parsed per distinct value; empty cells take ``default`` when given. ``reason``
        is a text, or a function giving each bad distinct value its own."""
        d = Distinct(df[col])
        raw_codes[col] = d.codes
        vals = d.each(lambda t: default if (default is not None and t == "") else parser(t))
        bad = np.array([v is None for v in vals], bool)
        if callable(reason):
            per_value = np.array([reason(t) if b else "" for t, b in zip(d.texts, bad)], dtype=object)
            mask = d.spread(bad)
            reject(mask, col, d.spread(per_value)[mask] if len(per_value) else "")
        else:
            reject(d.spread(bad), col, reason)
        vals = np.where(bad, fill, vals)
        if check:
            consistency[col] = d.spread(pd.factorize(vals.astype(object))[0]) if len(vals) else d.codes
        return d.spread(vals.astype(dtype)) if len(vals) else np.full(n, fill, dtype)

    out["chrgitm_lv"] = coded("chrgitm_lv", codes.parse_chrgitm_lv,
                              tr("未知的收费项目等级（应为 1/2/3、甲/乙/丙 或 自费）",
                                 "unknown catalogue class (expected 1/2/3, 甲/乙/丙, 自费)"), 3, np.int8, check=False)
    out["med_type"] = text(coded("med_type", codes.parse_med_type,
                                 tr("未知的医疗类别（应为 11/13/14/21/41 或 普通门诊/急诊/门诊慢特病/住院/药店购药）",
                                    "unknown visit type (expected 11/13/14/21/41 or 普通门诊/急诊/门诊慢特病/住院/药店购药)"),
                                 ""))

    # The settlement date (结算时间); a detail file without one dates each line by its fee (费用发生时间),
    # and a bill then settles on its last fee day, as its settlement record would be dated.
    date_col = next((c for c in ("setl_time", "fee_ocur_time") if c in df.columns), None)
    if date_col is not None:
        d, empty = date_column(df[date_col])
        bad_d = np.isnat(d) & ~empty
        reject(bad_d, date_col, tr("无法读取的日期（请用 2025-03-01、2025/3/1 或 20250301）",
                                   "unreadable date (use 2025-03-01, 2025/3/1 or 20250301)"))
        if require_date:
            reject(np.isnat(d) & ~bad_d, date_col, tr("缺少结算日期", "missing settlement date") if date_col == "setl_time"
                   else tr("缺少费用发生日期", "missing fee date"))
        if date_col == "fee_ocur_time":
            d = _last_day_per_bill(d, bill_codes)
        out["setl_date"] = d
        consistency["setl_date"] = d.view(np.int64)
    else:
        if require_date:
            missing_column("setl_time", tr("缺少必需的列 setl_time（或 fee_ocur_time）（或给出 on=日期）",
                                           "required column setl_time (or fee_ocur_time) is missing (or pass on=DATE)"))
        out["setl_date"] = np.full(n, np.datetime64("NaT"), "datetime64[D]")

    def code_column(col, parser, default, out_name, unknown):
        """A bill-level code column: parsed per distinct value; empty cells take the policy's default."""
        if col in df.columns and (col != "insuplc" or book is not None):
            out[out_name] = text(coded(col, parser, unknown, "", default=default or None))
            consistency[out_name] = consistency.pop(col)
        elif default:
            out[out_name] = text(full_object(n, default))
        else:
            missing_column(col, tr(f"缺少必需的列 {col}（或给出一种政策）", f"required column {col} is missing (or pass a policy)"))

    member_notes = None
    if members is not None and book is not None:
        # the enrolment record decides 参保地/险种 where it names them (ybcalc.members.fill_from_spans)
        from .members import fill_from_spans
        df, member_notes = fill_from_spans(df, out["psn_no"].to_numpy(), out["setl_date"].to_numpy(), members, book)
    no_span = (tr(f"，参保信息文件（{members.source}）中该人员在结算日也没有", f"; neither does the members file "
                  f"({members.source}) for this member on the bill's date") if members is not None else "")
    code_column("insutype", codes.parse_insutype, default_scheme, "scheme",
                lambda x: tr("未知的险种（应为 310/职工 或 390/居民）", "unknown scheme (expected 310/职工 or 390/居民)")
                if x else tr(f"险种（insutype）为空{no_span}", f"scheme (insutype) is empty{no_span}"))
    # 参保地: a region of the tables by id, name, alias or code; else what the value is, read against
    # the national division list (a region without a table yet, a county code, the nearest names)
    regions_seen: dict = {}

    def region_of(value):
        if value not in regions_seen:
            regions_seen[value] = region_lookup(book, value)
        return regions_seen[value]
    code_column("insuplc", lambda x: region_of(x).region if x else None, default_region, "region",
                lambda x: region_of(x).reject if x else tr(f"参保地（insuplc）为空{no_span}",
                                                           f"insured region (insuplc) is empty{no_span}"))
    notes = {k: v.note for k, v in regions_seen.items() if v.note and v.region}
    if notes:                                   # a county-level code settled as its prefecture: said on the bill
        d = Distinct(df["insuplc"])
        out["region_note"] = text(d.spread(np.array([notes.get(t, "") for t in d.texts], dtype=object)))
    if member_notes is not None and (member_notes != "").any():      # said on the bill as the county notes are
        base = out["region_note"].to_numpy(dtype=object) if "region_note" in out.columns else full_object(n, "")
        out["region_note"] = text(np.where(base == "", member_notes,
                                           np.where(member_notes == "", base, base + tr("；", " — ") + member_notes)))

    if "hosp_lv" in df.columns:
        out["hosp_lv"] = coded("hosp_lv", lambda x: codes.parse_hosp_lv(x) if x else -1,
                               tr("未知的医院等级（应为 1/2/3、一级/二级/三级 或 社区）",
                                  "unknown hospital level (expected 1/2/3, 一级/二级/三级, 社区)"), -1, np.int8)
    else:
        out["hosp_lv"] = np.int8(-1)

    for col, parser in (("psn_type", codes.parse_psn_type), ("contrib_tier", codes.parse_contrib_tier)):
        if col in df.columns:
            out[col] = text(coded(col, parser, "", ""))
        else:
            out[col] = text(full_object(n, ""))
    for col in ("psn_idet_type", "hosp_type", "med_chrgitm_type", "item_code", "item_name"):
        if col in df.columns:
            # category codes are two digits: '1' -> '01'
            fix = (lambda x: x.zfill(2) if x.isdigit() and len(x) == 1 else x) if col == "med_chrgitm_type" else str
            out[col] = text(coded(col, fix, "", "", check=col in ("psn_idet_type", "hosp_type")))
        else:
            out[col] = text(full_object(n, ""))

    # one integer per distinct item (name, code, category) as written: the engine tests the exclusion
    # rules once per item, not once per line
    item = np.zeros(n, np.int64)
    for col in ("item_name", "item_code", "med_chrgitm_type"):
        if col in raw_codes:
            item = pd.factorize(item * (int(raw_codes[col].max(initial=0)) + 1) + raw_codes[col])[0].astype(np.int64)
    out["_item"] = item

    if "age" in df.columns:
        d = Distinct(df["age"])
        age = d.spread(d.each(_to_float, float))
        reject(np.isnan(age) & ~d.empty(), "age", tr("无法读取的年龄", "unreadable age"))
        reject((age < 0) | (age > 130), "age", tr("年龄超出 0..130", "age out of range 0..130"))
        out["age"] = age
        consistency["age"] = pd.factorize(age, use_na_sentinel=False)[0]
    else:
        out["age"] = np.nan

    if "fil_type" in df.columns:
        out["fil_type"] = text(coded("fil_type", codes.parse_fil_type,
                                     tr("未知的异地备案类型（应为 无/长期居住/临时外出/转诊/急诊抢救/未备案）",
                                        "unknown out-of-area filing (none/long_term/temporary/referral/emergency/unfiled)"),
                                     "none"))
    else:
        out["fil_type"] = text(full_object(n, "none"))
    if "settle_mode" in df.columns or "claim_date" in df.columns:
        _claim_columns(df, out, n, coded, reject, consistency)
    region = out["region"].to_numpy()
    if "mdtrt_area" in df.columns and book is not None:
        # 就医地: a region of the tables (a county code as its prefecture), else "?" and what it is: the
        # division's code where the value names one (its province tells 省内 from 省外), else the value
        area = coded("mdtrt_area", lambda x: care_area(book, x) if x else "", "", "", check=False)
        out["mdtrt_area"] = text(np.where(area == "", region, area))
        consistency["mdtrt_area"] = pd.factorize(out["mdtrt_area"].to_numpy())[0]
    else:                                   # the insured region: its lines already agree or not
        out["mdtrt_area"] = text(region)

    if "selfpay_prop" in df.columns:
        d = Distinct(df["selfpay_prop"])
        sp = d.spread(d.each(_share, float))
        reject(np.isnan(sp) & ~d.empty(), "selfpay_prop", tr("无法读取的自付比例", "unreadable co-payment share"))
        reject((sp < 0) | (sp > 1), "selfpay_prop", tr("自付比例须在 0..1（或 0%..100%）之间",
                                                       "co-payment share must be within 0..1 (or 0%..100%)"))
        out["selfpay_prop"] = sp
    else:
        out["selfpay_prop"] = np.nan
    if "pric_uplmt_amt" in df.columns:
        lim_raw = df["pric_uplmt_amt"]
        present = ~Distinct(lim_raw).empty()
        if pd.api.types.is_string_dtype(lim_raw.dtype) and not isinstance(lim_raw.dtype, pd.CategoricalDtype):
            lim_raw = lim_raw.where(present, "0")        # text: an empty cell would take the slow path
        lim, badl = parse_amount(lim_raw)                # (categories, Int64: no "0" to set; read as they are)
        reject(badl & present, "pric_uplmt_amt", tr("无法读取的最高限价", "unreadable price limit"))
        out["limit"] = np.where(present, lim, -1)
    else:
        out["limit"] = np.int64(-1)
    if "cnt" in df.columns:
        d = Distinct(df["cnt"])
        cnt = d.spread(d.each(_to_float, float))
        out["cnt"] = np.where(np.isnan(cnt), 1.0, cnt)
    else:
        out["cnt"] = 1.0

    # Negative amounts are accepted only as refund lines (冲销): the same bill must hold a positive
    # line for the same item at least as large.
    neg = out["amount"] < 0
    if neg.any():
        item = pd.Series(np.where(out["item_code"] != "", out["item_code"], out["item_name"]), index=out.index)
        key = out["mdtrt_id"] + "\x1f" + item
        pos_total = out.loc[~neg].groupby(key[~neg])["amount"].sum()
        neg_total = (-out.loc[neg, "amount"]).groupby(key[neg]).sum()
        covered = key[neg].map(pos_total).fillna(0).to_numpy() >= key[neg].map(neg_total).to_numpy()
        covered &= (item[neg] != "").to_numpy()   # a refund must name the item it refunds
        bad_neg = np.zeros(n, bool)
        bad_neg[np.flatnonzero(neg.to_numpy())[~covered]] = True
        reject(bad_neg, "det_item_fee_sumamt", tr("负金额，但不是本账单中同一项目（item_code/item_name）某行的退费",
                                                  "negative amount that is not a refund of a line of the same item "
                                                  "(item_code/item_name) in this bill"))

    rejects = pd.concat(problems, ignore_index=True) if problems else pd.DataFrame(columns=REJECT_COLUMNS)
    bad_rows = np.isin(rows, rejects["row"].to_numpy()) if len(rejects) else np.zeros(n, bool)

    # Lines of one bill must agree on who, where, when and what kind of visit: compare every line's
    # code of each bill-level column with its bill's first line.
    keep = np.flatnonzero(~bad_rows)
    disagree = []
    if len(keep):
        bill_code = dense_codes(bill_codes[keep])             # integer codes: no second pass over text
        first = np.full(bill_code.max() + 1, len(keep), np.int64)
        np.minimum.at(first, bill_code, np.arange(len(keep)))
        ref = first[bill_code]
        consistency["psn_no"] = member_codes if member_codes is not None else pd.factorize(out["psn_no"].to_numpy())[0]
        for col in ("psn_no", "setl_date", "region", "scheme", "psn_type", "contrib_tier", "psn_idet_type", "age",
                    "med_type", "hosp_lv", "hosp_type", "mdtrt_area", "fil_type", "settle_mode", "claim_date"):
            if col not in consistency:
                continue
            vcode = consistency[col][keep]
            diff = vcode != vcode[ref]
            if diff.any():
                for bill in pd.unique(out["mdtrt_id"].to_numpy()[keep][diff]):
                    disagree.append((bill, col))
    bill_reasons = dict(prior_rejects or {})
    bill_column: dict = {}                      # the column a bill's lines disagree on
    for bill, col in disagree:
        if bill not in bill_reasons:
            bill_reasons[bill] = tr(f"本账单各行的 {col} 不一致", f"lines of this bill disagree on {col}")
            bill_column[bill] = col
    # A bill with any rejected line is rejected whole.
    for bill in pd.unique(out.loc[bad_rows, "mdtrt_id"]):
        bill_reasons.setdefault(bill, None)
    if bill_reasons:
        whole = out["mdtrt_id"].isin(list(bill_reasons)).to_numpy() & ~bad_rows
        if whole.any():
            idx = np.flatnonzero(whole)
            ids = out["mdtrt_id"].to_numpy()[idx]
            reasons = [bill_reasons[b] or tr("本账单另有一行被拒绝", "another line of this bill was rejected") for b in ids]
            cols = [bill_column.get(b, "mdtrt_id") for b in ids]
            values = [str(out[c].iat[i]) if c in out.columns else "" for c, i in zip(cols, idx)]
            extra = pd.DataFrame({"row": rows[idx], "mdtrt_id": out["mdtrt_id"].to_numpy()[idx],
                                  "column": cols, "value": values, "reason": reasons})
            rejects = pd.concat([rejects, extra], ignore_index=True)
            bad_rows |= whole
    rejects = rejects.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
    # integer keys for the engine (see engine.settle.line_codes), from the codes already computed here
    out["_bill"] = bill_codes
    if member_codes is not None:
        out["_member"] = member_codes
    return Prepared(out[~bad_rows].reset_index(drop=True) if bad_rows.any() else out, rejects, n)

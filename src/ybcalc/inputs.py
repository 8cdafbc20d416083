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

BILL_ATTRS = ("psn_no", "setl_date", "insuplc", "insutype", "psn_type", "psn_idet_type", "age", "med_type",
              "hosp_lv", "hosp_type", "mdtrt_area", "fil_type")
REQUIRED = ("mdtrt_id", "det_item_fee_sumamt", "chrgitm_lv", "med_type")


class BillError(ValueError):
    """Input lines could not be settled; ``rejects`` lists every row with its column and reason."""

    def __init__(self, rejects: pd.DataFrame, source: str):
        self.rejects = rejects
        self.source = source
        lines = [f"  {source}, row {r.row}, column {r.column}: {r.reason} (value {r.value!r})"
                 for r in rejects.head(20).itertuples()]
        more = f"\n  … and {len(rejects) - 20} more" if len(rejects) > 20 else ""
        super().__init__(f"{len(rejects)} input row(s) cannot be settled:\n" + "\n".join(lines) + more)


@dataclass
class Prepared:
    lines: pd.DataFrame      # canonical, valid lines
    rejects: pd.DataFrame    # row, column, value, reason, mdtrt_id
    n_read: int


REJECT_COLUMNS = ["row", "mdtrt_id", "column", "value", "reason"]


def rename_columns(df: pd.DataFrame) -> pd.DataFrame:
    mapping, seen = {}, set()
    for c in df.columns:
        canon = codes.canonical_header(c)
        if canon and canon not in seen:
            mapping[c] = canon
            seen.add(canon)
    return df.rename(columns=mapping)


def parse_amount(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Exact yuan -> fen for a column of numbers or text ('1,234.5', '¥12'); returns (fen, bad)."""
    if pd.api.types.is_integer_dtype(s):
        return s.to_numpy(np.int64) * 100, np.zeros(len(s), bool)
    if pd.api.types.is_float_dtype(s):
        v = s.to_numpy(float)
        bad = ~np.isfinite(v)
        # Floats carry at most 2 meaningful decimals in a bill; round at the fen (half away from 0).
        fen = np.where(bad, 0, np.sign(v) * np.floor(np.abs(v) * 100 + 0.5 + 1e-7)).astype(np.int64)
        return fen, bad
    fast = _amount_fast(s)
    if fast is not None:
        return fast, np.zeros(len(s), bool)
    t = s.astype("string").str.strip()
    t = t.str.replace(r"[,，¥￥元\s]", "", regex=True)
    ok = t.str.fullmatch(r"[-+]?\d+(\.\d*)?|[-+]?\.\d+").fillna(False).to_numpy(bool)
    t = t.where(ok, "0")
    neg = t.str.startswith("-").to_numpy(bool)
    t = t.str.lstrip("+-")
    parts = t.str.split(".", n=1, expand=True)
    ip = parts[0].replace("", "0").astype("int64").to_numpy()
    if parts.shape[1] > 1:
        fp = parts[1].fillna("").str.pad(3, side="right", fillchar="0").str[:3]
        frac3 = fp.astype("int64").to_numpy()
    else:
        frac3 = np.zeros(len(t), np.int64)
    fen = ip * 100 + (frac3 + 5) // 10          # half up at the third decimal
    fen = np.where(neg, -fen, fen)
    return fen.astype(np.int64), ~ok


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
        fen = pc.cast(pc.multiply(dec, pa.scalar(100, pa.int64())), pa.int64())
        return fen.to_numpy(zero_copy_only=False).astype(np.int64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None


def _map_unique(s: pd.Series, fn) -> pd.Series:
    """Apply a code parser to each distinct value only (bills repeat the same few codes)."""
    codes_, uniques = pd.factorize(s.astype("string").fillna(""), use_na_sentinel=False)
    mapped = np.array([fn(str(x)) for x in uniques], dtype=object)
    return pd.Series(mapped[codes_], index=s.index, dtype=object)


def text(values, index=None) -> pd.Series:
    """A column of Python strings kept as ``object``.

    pandas 3 stores text as Arrow-backed ``str``; the engine reads its key columns as numpy arrays
    many times, and every such read of an Arrow column builds new Python strings. Object columns are
    converted once, here.
    """
    if isinstance(values, pd.Series):
        index = values.index if index is None else index
        values = values.to_numpy(dtype=object, na_value="")
    return pd.Series(np.asarray(values, dtype=object), index=index, dtype=object)


DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y.%m.%d",
                "%Y年%m月%d日")


def parse_dates(s: pd.Series) -> np.ndarray:
    """Dates in the usual forms (2025-03-01, 2025/3/1, 20250301, with or without time) -> datetime64[D]."""
    text = s.astype("string").str.strip()
    u = text.dropna().unique()
    lookup = {}
    for x in u:
        val = pd.NaT
        x2 = str(x).split(".")[0] if str(x).replace(".", "").isdigit() else str(x)
        for fmt in DATE_FORMATS:
            val = pd.to_datetime(x2, format=fmt, errors="coerce")
            if not pd.isna(val):
                break
        lookup[x] = val
    out = text.map(lookup)
    return pd.to_datetime(out).to_numpy("datetime64[D]")


def prepare(df: pd.DataFrame, *, source: str = "<lines>", row_numbers=None, book=None,
            default_region: str | None = None, default_scheme: str | None = None,
            require_date: bool = True) -> Prepared:
    """Validate and normalise input lines. ``row_numbers`` are the rows as the user sees them."""
    df = rename_columns(df.reset_index(drop=True))
    n = len(df)
    rows = np.asarray(row_numbers if row_numbers is not None else np.arange(n) + 1)
    problems: list[pd.DataFrame] = []

    def reject(mask, column, reason, values=None):
        mask = np.asarray(mask, bool)
        if mask.any():
            vals = (values if values is not None else
                    (df[column] if column in df.columns else pd.Series([""] * n)))
            idx = np.flatnonzero(mask)
            problems.append(pd.DataFrame({
                "row": rows[idx],
                "mdtrt_id": df["mdtrt_id"].astype("string").to_numpy()[idx] if "mdtrt_id" in df.columns else "",
                "column": column,
                "value": pd.Series(vals).astype("string").fillna("").to_numpy()[idx],
                "reason": reason}))

    for col in REQUIRED:
        if col not in df.columns:
            raise BillError(pd.DataFrame({"row": [0], "mdtrt_id": [""], "column": [col], "value": [""],
                                          "reason": [f"required column {col} is missing (headers: "
                                                     f"{', '.join(map(str, df.columns))})"]}), source)
    out = pd.DataFrame(index=df.index)
    out["_row"] = rows
    mid = df["mdtrt_id"].astype("string").str.strip()
    reject(mid.isna() | (mid == ""), "mdtrt_id", "missing visit id (mdtrt_id)")
    out["mdtrt_id"] = text(mid)
    psn = (text(df["psn_no"].astype("string").str.strip()) if "psn_no" in df.columns else out["mdtrt_id"]).to_numpy()
    out["psn_no"] = text(np.where(psn == "", out["mdtrt_id"].to_numpy(), psn))

    fen, bad = parse_amount(df["det_item_fee_sumamt"])
    reject(bad, "det_item_fee_sumamt", "missing or unreadable amount")
    out["amount"] = fen

    lv = _map_unique(df["chrgitm_lv"], codes.parse_chrgitm_lv)
    reject(lv.isna(), "chrgitm_lv", "unknown catalogue class (expected 1/2/3, 甲/乙/丙, 自费)")
    out["chrgitm_lv"] = lv.fillna(3).astype(np.int8)

    mt = _map_unique(df["med_type"], codes.parse_med_type)
    reject(mt.isna(), "med_type", "unknown visit type (expected 11/13/14/21/41 or 普通门诊/急诊/门诊慢特病/住院/药店购药)")
    out["med_type"] = text(mt.fillna(""))

    if "setl_time" in df.columns:
        d = parse_dates(df["setl_time"])
        bad_d = np.isnat(d) & df["setl_time"].notna().to_numpy() & (df["setl_time"].astype("string").str.strip() != "").fillna(False).to_numpy()
        reject(bad_d, "setl_time", "unreadable date (use 2025-03-01, 2025/3/1 or 20250301)")
        if require_date:
            reject(np.isnat(d) & ~bad_d, "setl_time", "missing settlement date")
        out["setl_date"] = d
    else:
        if require_date:
            raise BillError(pd.DataFrame({"row": [0], "mdtrt_id": [""], "column": ["setl_time"], "value": [""],
                                          "reason": ["required column setl_time is missing (or pass on=DATE)"]}), source)
        out["setl_date"] = np.full(n, np.datetime64("NaT"), "datetime64[D]")

    def code_column(col, parser, default, out_name, what, unknown):
        """A bill-level code column: parsed per distinct value; empty cells take the policy's default."""
        if col in df.columns and (col != "insuplc" or book is not None):
            parsed = _map_unique(df[col], parser)
            empty = df[col].astype("string").fillna("").str.strip() == ""
            if default:
                parsed = parsed.where(~empty, default)
            reject(parsed.isna(), col, unknown)
            out[out_name] = text(parsed.fillna(""))
        elif default:
            out[out_name] = text(np.full(n, default, dtype=object))
        else:
            raise BillError(pd.DataFrame({"row": [0], "mdtrt_id": [""], "column": [col], "value": [""],
                                          "reason": [f"required column {col} is missing (or pass a policy)"]}),
                            source)

    code_column("insutype", codes.parse_insutype, default_scheme, "scheme", "scheme",
                "unknown scheme (expected 310/职工 or 390/居民)")
    code_column("insuplc", lambda x: book.region_id(x) if x else None, default_region, "region", "region",
                "unknown insured region (参保地): not in tables/regions.yaml")

    if "hosp_lv" in df.columns:
        hl = _map_unique(df["hosp_lv"], lambda x: codes.parse_hosp_lv(x) if x else -1)
        reject(hl.isna(), "hosp_lv", "unknown hospital level (expected 1/2/3, 一级/二级/三级, 社区)")
        out["hosp_lv"] = hl.fillna(-1).astype(np.int8)
    else:
        out["hosp_lv"] = np.int8(-1)

    out["psn_type"] = (text(_map_unique(df["psn_type"], codes.parse_psn_type).map(str))
                       if "psn_type" in df.columns else text(np.full(n, "", dtype=object)))
    for col in ("psn_idet_type", "hosp_type", "med_chrgitm_type", "item_code", "item_name"):
        if col in df.columns:
            # strip and normalise each distinct value once (category codes: '1' -> '01')
            fix = (lambda x: x.strip().zfill(2) if x.strip().isdigit() and len(x.strip()) == 1 else x.strip()) \
                if col == "med_chrgitm_type" else str.strip
            out[col] = text(_map_unique(df[col], fix))
        else:
            out[col] = text(np.full(n, "", dtype=object))

    if "age" in df.columns:
        age = pd.to_numeric(df["age"].astype(object), errors="coerce").astype(float)
        reject(age.isna() & df["age"].notna() & (df["age"].astype("string").str.strip() != ""), "age", "unreadable age")
        reject((age < 0) | (age > 130), "age", "age out of range 0..130")
        out["age"] = age.astype(float)
    else:
        out["age"] = np.nan

    if "fil_type" in df.columns:
        ft = _map_unique(df["fil_type"], codes.parse_fil_type)
        reject(ft.isna(), "fil_type", "unknown out-of-area filing (none/long_term/temporary/referral/emergency/unfiled)")
        out["fil_type"] = text(ft.fillna("none"))
    else:
        out["fil_type"] = text(np.full(n, "none", dtype=object))
    if "mdtrt_area" in df.columns and book is not None:
        raw_area = df["mdtrt_area"].astype("string").str.strip().fillna("")
        area = _map_unique(raw_area, lambda x: (book.region_id(x) or f"?{x}") if x else "")
        out["mdtrt_area"] = text(area)
    else:
        out["mdtrt_area"] = text(np.full(n, "", dtype=object))
    area = out["mdtrt_area"].to_numpy()
    out["mdtrt_area"] = text(np.where(area == "", out["region"].to_numpy(), area))

    if "selfpay_prop" in df.columns:
        sp_text = df["selfpay_prop"].astype("string").str.strip()
        pct = sp_text.str.endswith("%").fillna(False)
        sp = pd.to_numeric(sp_text.str.rstrip("%").astype(object), errors="coerce").astype(float)
        sp = sp.where(~pct, sp / 100)
        reject(sp.isna() & sp_text.notna() & (sp_text != ""), "selfpay_prop", "unreadable co-payment share")
        reject((sp < 0) | (sp > 1), "selfpay_prop", "co-payment share must be within 0..1 (or 0%..100%)")
        out["selfpay_prop"] = sp.astype(float)
    else:
        out["selfpay_prop"] = np.nan
    if "pric_uplmt_amt" in df.columns:
        lim_raw = df["pric_uplmt_amt"]
        present = lim_raw.notna() & (lim_raw.astype("string").str.strip() != "")
        lim, badl = parse_amount(lim_raw.where(present, "0"))
        reject(badl & present.to_numpy(), "pric_uplmt_amt", "unreadable price limit")
        out["limit"] = np.where(present.to_numpy(), lim, -1)
    else:
        out["limit"] = np.int64(-1)
    if "cnt" in df.columns:
        cnt = pd.to_numeric(df["cnt"].astype(object), errors="coerce").astype(float)
        out["cnt"] = cnt.fillna(1.0).astype(float)
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
        reject(bad_neg, "det_item_fee_sumamt", "negative amount that is not a refund of a line of the same item "
                                               "(item_code/item_name) in this bill")

    rejects = pd.concat(problems, ignore_index=True) if problems else pd.DataFrame(columns=REJECT_COLUMNS)
    bad_rows = np.isin(rows, rejects["row"].to_numpy()) if len(rejects) else np.zeros(n, bool)

    # Lines of one bill must agree on who, where, when and what kind of visit: compare every line
    # with its bill's first line (vectorized over factorized columns).
    ok = out[~bad_rows]
    disagree = []
    if len(ok):
        bill_code, _ = pd.factorize(ok["mdtrt_id"])
        first = np.full(bill_code.max() + 1, -1, np.int64)
        first[bill_code[::-1]] = np.arange(len(bill_code))[::-1]
        ref = first[bill_code]
        for col in ("psn_no", "setl_date", "region", "scheme", "psn_type", "psn_idet_type", "age", "med_type",
                    "hosp_lv", "hosp_type", "mdtrt_area", "fil_type"):
            vcode, _ = pd.factorize(ok[col], use_na_sentinel=False)
            diff = vcode != vcode[ref]
            if diff.any():
                for bill in pd.unique(ok["mdtrt_id"].to_numpy()[diff]):
                    disagree.append((bill, col))
    bill_reasons = {}
    for bill, col in disagree:
        bill_reasons.setdefault(bill, f"lines of this bill disagree on {col}")
    # A bill with any rejected line is rejected whole.
    for bill in pd.unique(out.loc[bad_rows, "mdtrt_id"]):
        bill_reasons.setdefault(bill, None)
    if bill_reasons:
        whole = out["mdtrt_id"].isin(list(bill_reasons)).to_numpy() & ~bad_rows
        if whole.any():
            idx = np.flatnonzero(whole)
            reasons = [bill_reasons[b] or "another line of this bill was rejected" for b in out["mdtrt_id"].to_numpy()[idx]]
            cols = [r.split(" on ")[-1] if "disagree" in r else "mdtrt_id" for r in reasons]
            values = [str(out[c].iat[i]) if c in out.columns else "" for c, i in zip(cols, idx)]
            extra = pd.DataFrame({"row": rows[idx], "mdtrt_id": out["mdtrt_id"].to_numpy()[idx],
                                  "column": cols, "value": values, "reason": reasons})
            rejects = pd.concat([rejects, extra], ignore_index=True)
            bad_rows |= whole
    rejects = rejects.sort_values(["row", "column"], kind="stable").reset_index(drop=True)
    return Prepared(out[~bad_rows].reset_index(drop=True), rejects, n)

"""Item catalogues (医保目录), as a hospital's HIS maps its lines through them.

A catalogue file (CSV or Parquet, national or Chinese headers) maps an item's national code
(``item_code``, 医疗目录编码) and/or its name (``item_name``, 项目名称) to its 收费项目等级
(``chrgitm_lv``: 甲/乙/丙), its 自付比例 (``selfpay_prop``) and its 限价 (``pric_uplmt_amt``). A bill
line that lacks one of those takes it from the catalogue: by national code first, then by exact
name. A line's own values always stand; a line that matches nothing is read as without a catalogue.

The match is a hash join on the distinct codes and names of the input (bill files repeat a few
thousand items millions of times), so it costs a pass over each key column, and nothing at all
when no catalogue is given.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import codes

FIELDS = ("chrgitm_lv", "selfpay_prop", "pric_uplmt_amt")
KEYS = ("item_code", "item_name")


class CatalogueError(ValueError):
    """A catalogue file that cannot be used: the message names the file, row and column (zh / en)."""


def _err(file, row, column, value, zh: str, en: str) -> CatalogueError:
    from .i18n import tr
    where_zh = f"目录文件 {file}" + (f" 第 {row} 行" if row else "") + (f"，列 {column}" if column else "")
    where_en = f"catalogue {file}" + (f", row {row}" if row else "") + (f", column {column}" if column else "")
    shown = value not in (None, "")
    return CatalogueError(tr(f"{where_zh}：{zh}" + (f"（值 {value!r}）" if shown else ""),
                             f"{where_en}: {en}" + (f" (value {value!r})" if shown else "")))


@dataclass
class Catalogue:
    """Catalogue values as normalised text, indexed by national code and by name."""
    source: str
    by_code: pd.Index            # distinct codes; position i -> row i of ``code_values``
    code_values: dict            # field -> object array of normalised text ("" = the catalogue does not say)
    by_name: pd.Index
    name_values: dict

    def __len__(self) -> int:
        return len(self.by_code) + len(self.by_name)

    def fill(self, df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """``df`` (canonical headers) with the values its lines lack taken from the catalogue, and a
        bool per line: did it take any."""
        n = len(df)
        code_pos = self._lookup(df, "item_code", self.by_code)
        name_pos = self._lookup(df, "item_name", self.by_name)
        by_code = code_pos >= 0
        classed = np.zeros(n, bool)
        df = df.copy(deep=False)
        for f in FIELDS:
            cat_val = np.where(by_code, _take(self.code_values[f], code_pos), _take(self.name_values[f], name_pos))
            if f in df.columns:
                col = df[f]
                lacks = _empty(col)
            else:
                col = None
                lacks = np.ones(n, bool)
            take = lacks & (cat_val != "")
            if not take.any():
                continue
            vals = (col.to_numpy(dtype=object, na_value="") if col is not None else np.full(n, "", dtype=object)).copy()
            vals[take] = cat_val[take]
            df[f] = pd.Series(vals, index=df.index, dtype=object)
            classed |= take
        return df, classed

    @staticmethod
    def _lookup(df: pd.DataFrame, col: str, index: pd.Index) -> np.ndarray:
        """Row of the catalogue per line (-1: no match), joined on the column's distinct texts."""
        if col not in df.columns or not len(index):
            return np.full(len(df), -1, np.int64)
        codes_, uniques = pd.factorize(df[col], use_na_sentinel=True)
        texts = pd.Index(["" if u is None else str(u).strip() for u in uniques], dtype=object)
        pos = index.get_indexer(texts) if len(texts) else np.empty(0, np.int64)
        pos = np.append(pos, -1)                       # a missing cell (code -1) matches nothing
        return pos[codes_]


def _take(values: np.ndarray, pos: np.ndarray) -> np.ndarray:
    out = np.full(len(pos), "", dtype=object)
    ok = pos >= 0
    out[ok] = values[pos[ok]]
    return out


def _empty(col: pd.Series) -> np.ndarray:
    """Cells that hold nothing (missing, or only spaces)."""
    if pd.api.types.is_numeric_dtype(col.dtype):
        return col.isna().to_numpy()
    codes_, uniques = pd.factorize(col, use_na_sentinel=True)
    blank = np.array([str(u).strip() == "" for u in uniques] + [True], bool)
    return blank[codes_]


def load_catalogue(source, *, encoding: str | None = None) -> Catalogue:
    """A catalogue from a CSV/Parquet file (or a DataFrame). Raises ``CatalogueError`` naming the file,
    row and column of the first problem: an unknown class, a share outside 0..1, an unreadable price
    limit, a row with neither code nor name, or a code (or, in a catalogue without codes, a name) listed
    twice with different values."""
    from .batch import read_bills
    from .inputs import _share, parse_amount_problems, rename_columns
    if isinstance(source, Catalogue):
        return source
    if isinstance(source, pd.DataFrame):
        df, rows, name = source, np.arange(len(source)) + 1, "<catalogue>"
    else:
        path = Path(source)
        if not path.exists():
            from .i18n import tr
            raise CatalogueError(tr(f"目录文件 {source} 不存在", f"catalogue file {source} not found"))
        df, rows = read_bills(path, encoding)
        name = str(source)
    original = {codes.canonical_header(c) or c: c for c in reversed(list(df.columns))}
    df = rename_columns(df.reset_index(drop=True)).astype(object).where(lambda d: d.notna(), "")
    rows = np.asarray(rows)

    def col_name(c):
        return original.get(c, c)

    if not any(k in df.columns for k in KEYS):
        raise _err(name, None, None, None, "需要 医疗目录编码（item_code）或 项目名称（item_name）列",
                   "needs an item_code (医疗目录编码) or item_name (项目名称) column")
    if not any(f in df.columns for f in FIELDS):
        raise _err(name, None, None, None, "需要 收费项目等级、自付比例 或 限价 中至少一列",
                   "needs at least one of chrgitm_lv (收费项目等级), selfpay_prop (自付比例), pric_uplmt_amt (限价)")
    n = len(df)
    text = {c: df[c].map(lambda v: str(v).strip()).to_numpy(dtype=object) if c in df.columns
            else np.full(n, "", dtype=object) for c in (*KEYS, *FIELDS)}
    # values normalised to one text per meaning, as ``inputs.prepare`` reads them: 乙 and 2 are one class
    norm = {f: np.full(n, "", dtype=object) for f in FIELDS}
    lv = text["chrgitm_lv"]
    for i in np.flatnonzero(lv != ""):
        v = codes.parse_chrgitm_lv(lv[i])
        if v is None:
            raise _err(name, rows[i], col_name("chrgitm_lv"), lv[i], "不认识的收费项目等级（应为 甲/乙/丙 或 1/2/3）",
                       "unknown catalogue class (expected 甲/乙/丙 or 1/2/3)")
        norm["chrgitm_lv"][i] = str(v)
    sp = text["selfpay_prop"]
    for i in np.flatnonzero(sp != ""):
        v = _share(sp[i])
        if np.isnan(v) or not 0 <= v <= 1:
            raise _err(name, rows[i], col_name("selfpay_prop"), sp[i], "自付比例须在 0–1 之间（或 0%–100%）",
                       "a co-payment share must be within 0..1 (or 0%..100%)")
        norm["selfpay_prop"][i] = repr(round(float(v), 6))
    lim = text["pric_uplmt_amt"]
    has_lim = np.flatnonzero(lim != "")
    if len(has_lim):
        fen, problem = parse_amount_problems(pd.Series(lim[has_lim], dtype=object).astype("string"))
        bad = np.flatnonzero((problem != 0) | (fen < 0))
        if len(bad):
            i = has_lim[bad[0]]
            raise _err(name, rows[i], col_name("pric_uplmt_amt"), lim[i], "限价不是金额", "the price limit is not an amount")
        norm["pric_uplmt_amt"][has_lim] = [f"{f // 100}.{f % 100:02d}" for f in fen]
    neither = np.flatnonzero((text["item_code"] == "") & (text["item_name"] == ""))
    if len(neither):
        i = neither[0]
        raise _err(name, rows[i], None, None, "既没有医疗目录编码也没有项目名称", "neither an item code nor a name")
    values = pd.DataFrame(norm)
    signature = values[list(FIELDS)].agg("\x1f".join, axis=1).to_numpy(dtype=object)

    def index(key: str, strict: bool, among: np.ndarray):
        keys = text[key]
        sel = np.flatnonzero((keys != "") & among)
        frame = pd.DataFrame({"k": keys[sel], "sig": signature[sel], "i": sel})
        first = frame.drop_duplicates(["k", "sig"])
        dup = first["k"].duplicated(keep=False)
        if dup.any():
            clash = first[dup]
            k = clash["k"].iat[0]
            at = clash.loc[clash["k"] == k, "i"].to_numpy()
            if strict:
                a, b = at[0], at[1]
                diff = next(f for f in FIELDS if norm[f][a] != norm[f][b])
                raise _err(name, rows[b], col_name(diff), text[diff][b],
                           f"{'医疗目录编码' if key == 'item_code' else '项目名称'} {k} 已在第 {rows[a]} 行出现，值不同"
                           f"（{text[diff][a]!r}）", f"{key} {k} is listed on row {rows[a]} too, with another value "
                           f"({text[diff][a]!r})")
            first = first[~dup]               # a name shared by differently classed codes: not matched by name
        return pd.Index(first["k"].to_numpy(dtype=object)), {f: norm[f][first["i"].to_numpy()] for f in FIELDS}

    by_code, code_values = index("item_code", True, np.ones(n, bool))
    # names: a catalogue without codes must not list a name twice differently; one with codes may (the same
    # name for differently classed items), and such a name is then not matched by name
    by_name, name_values = index("item_name", True, text["item_code"] == "")
    if (text["item_code"] != "").any():
        by_name_all, name_values_all = index("item_name", False, np.ones(n, bool))
        by_name, name_values = by_name_all, name_values_all
    return Catalogue(name, by_code, code_values, by_name, name_values)

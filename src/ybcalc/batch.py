"""Scoring files of bills: read, settle, and account for every input row.

``score`` never stops at a bad row: rows that cannot be read, and bills that cannot be settled,
are returned as rejects with their source row, column and reason, and the summary checks
rows read = rows scored + rows rejected.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .api import Policy, Settlement, _state_frame, load_tables
from .engine.settle import settle_prepared
from .inputs import REJECT_COLUMNS, prepare
from .money import fen_to_arrow_decimal
from .policy.loader import PolicyBook

ENCODINGS = ("utf-8-sig", "gb18030")


def read_bills(path: str | Path, encoding: str | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a CSV (UTF-8, UTF-8 with BOM, GBK/GB18030) or Parquet file of lines, every cell as text.

    Returns the frame and the row numbers a person sees (CSV: the line number, header = 1).
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        df = pd.read_parquet(path)
        return df, np.arange(len(df)) + 1
    encodings = (encoding,) if encoding else ENCODINGS
    last = None
    for enc in encodings:
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=enc, skipinitialspace=True)
            return df, np.arange(len(df)) + 2
        except UnicodeDecodeError as exc:
            last = exc
    raise ValueError(f"{path}: cannot decode as {' or '.join(encodings)} ({last}); use --encoding")


@dataclass
class ScoreResult:
    settlement: Settlement
    rejects: pd.DataFrame       # row, mdtrt_id, column, value, reason
    rows_read: int
    rows_scored: int

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.rows_scored

    def summary(self) -> str:
        t = self.settlement.totals()
        bills = len(self.settlement)
        rej_bills = self.rejects["mdtrt_id"].nunique() if len(self.rejects) else 0
        warn = int((self.settlement.raw["warnings"] != "").sum()) if bills else 0
        return (f"rows read {self.rows_read} = scored {self.rows_scored} + rejected {self.rows_rejected}; "
                f"bills settled {bills}, rejected {rej_bills}; bills with warnings {warn}\n"
                f"total cost {t['medfee_sumamt']:,}  fund {t['fund_pay_sumamt']:,} (统筹 {t['hifp_pay']:,}, "
                f"大病 {t['hifmi_pay']:,}, 大额 {t['hifob_pay']:,}, 救助 {t['maf_pay']:,})  "
                f"patient {t['psn_part_amt']:,} (账户 {t['acct_pay']:,}, 现金 {t['psn_cash_pay']:,})")


def score_frame(df: pd.DataFrame, policy: Policy | PolicyBook | None = None, *, row_numbers=None,
                source: str = "<frame>", on=None, accounts=None, state=None) -> ScoreResult:
    """Settle every bill in ``df``; bad rows and unsettleable bills become rejects, never errors."""
    if policy is None:
        policy = load_tables()
    book = policy.book if isinstance(policy, Policy) else policy
    prepared = prepare(df, source=source, row_numbers=row_numbers, book=book,
                       default_region=policy.region if isinstance(policy, Policy) else None,
                       default_scheme=policy.scheme if isinstance(policy, Policy) else None,
                       require_date=on is None)
    st = _state_frame(accounts, state, prepared.lines)
    bills, lines, errors = settle_prepared(prepared.lines, book, on=on, state=st)
    rejects = prepared.rejects
    if len(errors):
        # every line of a bill that could not be settled is listed with the reason
        bad = prepared.lines[prepared.lines["mdtrt_id"].isin(errors.index)]
        extra = pd.DataFrame({"row": bad["_row"].to_numpy(), "mdtrt_id": bad["mdtrt_id"].to_numpy(),
                              "column": "(policy)", "value": "",
                              "reason": errors.reindex(bad["mdtrt_id"]).to_numpy()})
        rejects = pd.concat([rejects, extra], ignore_index=True).sort_values("row", kind="stable")
    rejects = rejects[REJECT_COLUMNS].reset_index(drop=True)
    result = ScoreResult(Settlement(bills, lines, book, rejects, errors), rejects, prepared.n_read, len(lines))
    assert result.rows_scored + rejects["row"].nunique() == result.rows_read, "row accounting broken"
    return result


def score(df: pd.DataFrame, policy=None, **kw) -> pd.DataFrame:
    """``ybcalc.score(df)``: one row per settled bill (raises nothing for bad rows: see ``score_frame``)."""
    return score_frame(df, policy, **kw).settlement.bills()


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells a spreadsheet would run as a formula (=, +, -, @) with a quote."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object:
            s = out[c].astype(str)
            risky = s.str.match(r"^[=+\-@\t\r]") & ~s.str.fullmatch(r"[-+]?\d+(\.\d+)?")
            out[c] = np.where(risky, "'" + s, out[c])
    return out


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """CSV (formula-neutralised, UTF-8 with BOM when headers are Chinese) or Parquet.

    Money columns given as int64 fen are written to Parquet as exact decimal128(18, 2).
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq
        from .labels import SETTLEMENT_FIELDS, label
        money = set(SETTLEMENT_FIELDS) | {label(f, "zh") for f in SETTLEMENT_FIELDS}
        arrays, names = [], []
        for c in df.columns:
            col = df[c]
            if c in money and pd.api.types.is_integer_dtype(col):
                arrays.append(fen_to_arrow_decimal(col.to_numpy()))
            elif col.dtype == object and len(col) and hasattr(col.iat[0], "as_tuple"):
                arrays.append(pa.array(col.astype(str)))
            else:
                arrays.append(pa.array(col))
            names.append(str(c))
        pq.write_table(pa.table(arrays, names=names), path)
    else:
        neutralise_formulas(df).to_csv(path, index=False, encoding="utf-8-sig" if _has_cjk(df) else "utf-8")


def _has_cjk(df: pd.DataFrame) -> bool:
    text = "".join(map(str, df.columns))
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)

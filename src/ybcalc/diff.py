"""Comparing two policies on the same bills: a reform, a year's change, or a user's draft table.

``compare_policies`` scores the bills twice (A and B: two dates, or two table sets such as the
shipped tables and a draft) and reports how fund outlay (统筹), critical-illness outlay (大病/大额)
and members' out-of-pocket (个人负担) change, in total and by region, scheme, member group and visit
type, with the bills that change most.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from . import codes
from .i18n import tr
from .batch import score_frame
from .money import fen_to_yuan
from .policy.loader import PolicyBook, load_book

MEASURES = {"hifp_pay": "统筹基金", "critical": "大病/大额", "maf_pay": "医疗救助", "psn_part_amt": "个人负担"}
MEASURES_EN = {"hifp_pay": "pooled fund", "critical": "critical illness", "maf_pay": "assistance",
               "psn_part_amt": "patient share"}
# the words for the columns of the comparison (printed, and written with -o in Chinese)
COLUMN_WORDS = {"mdtrt_id": ("就诊ID", "visit id"), "psn_no": ("人员编号", "member"), "region": ("参保地", "region"),
                "scheme": ("险种", "scheme"), "psn_type": ("人员类别", "member group"),
                "med_type": ("医疗类别", "visit type"), "medfee_sumamt": ("医疗费总额", "total cost"),
                "bills": ("账单数", "bills")}


def column_words(column: str, lang: str | None = None) -> str:
    """hifp_pay_delta → Δ统筹基金 / Δ pooled fund; psn_part_amt_a → 个人负担 A; region → 参保地."""
    if column in COLUMN_WORDS:
        return tr(*COLUMN_WORDS[column], lang=lang)
    for m in MEASURES:
        for suffix, fmt in (("_delta", "Δ{}"), ("_a", "{} A"), ("_b", "{} B")):
            if column == m + suffix:
                return fmt.format(tr(MEASURES[m], MEASURES_EN[m], lang=lang))
    return column


def _words(frame: pd.DataFrame) -> pd.DataFrame:
    """A table for the terminal: words for the columns and the index, aligned with CJK text."""
    out = frame.rename(columns=column_words)
    out.index.names = [column_words(n) if n else n for n in out.index.names]
    return out


def _aligned(frame: pd.DataFrame, **kw) -> str:
    from .i18n import terminal_table
    return terminal_table(frame, **kw)


def book_with_drafts(drafts, base: str | Path | None = None) -> PolicyBook:
    """The shipped tables (or ``base``: a user's folder or a complete tables folder) with draft table
    files laid over them.

    A draft names the region and scheme it changes (``region: 上海``, ``scheme: 职工``: names from the
    tables, never paths); its parameters replace the tables' from their first date on. Nothing is
    copied or written: the drafts are read where they are.
    """
    return load_book(base, overlay=[Path(d) for d in drafts])


@dataclass
class PolicyDiff:
    bills: pd.DataFrame          # one row per bill settled under both: A, B and Δ of each measure (yuan)
    only_a: list
    only_b: list
    label_a: str
    label_b: str

    def _money_cols(self):
        return [c for c in self.bills.columns if c.endswith(("_a", "_b", "_delta")) or c == "medfee_sumamt"]

    def by(self, *keys) -> pd.DataFrame:
        """Sums (Decimal yuan) of A, B and Δ of each measure, grouped by ``keys`` (none: the total)."""
        cols = [c for c in self._money_cols() if c != "medfee_sumamt"]
        g = self.bills.groupby(list(keys), dropna=False)[cols].sum() if keys else self.bills[cols].sum().to_frame().T
        g = g.map(fen_to_yuan)
        g.insert(0, "bills", self.bills.groupby(list(keys)).size() if keys else len(self.bills))
        return g

    def table(self) -> pd.DataFrame:
        """Every bill with A, B and Δ in Decimal yuan."""
        out = self.bills.copy()
        for c in self._money_cols():
            out[c] = out[c].map(fen_to_yuan)
        return out

    def top(self, n: int = 10) -> pd.DataFrame:
        t = self.table()
        d = t.reindex(self.bills["psn_part_amt_delta"].abs().sort_values(ascending=False, kind="stable").index)
        d = d[d["psn_part_amt_delta"] != 0]
        return d.head(n)[["mdtrt_id", "psn_no", "region", "scheme", "psn_type", "med_type", "medfee_sumamt",
                          "hifp_pay_delta", "critical_delta", "psn_part_amt_a", "psn_part_amt_b", "psn_part_amt_delta"]]

    def report(self) -> str:
        """The comparison for people, in the current language (:mod:`ybcalc.i18n`)."""
        from .i18n import current
        from .i18n import pad, width
        out = [tr(f"A = {self.label_a}    B = {self.label_b}    比较的账单：{len(self.bills)} 张",
                  f"A = {self.label_a}    B = {self.label_b}    bills compared: {len(self.bills)}")]
        if self.only_a or self.only_b:
            out.append(tr(f"只在 A 下结算：{len(self.only_a)} 张；只在 B 下结算：{len(self.only_b)} 张（未比较）",
                          f"settled only under A: {len(self.only_a)}; only under B: {len(self.only_b)} (not compared)"))
        tot = self.by()
        out.append(tr("\n合计（元）：", "\nTotal (yuan):"))
        names = MEASURES if current() == "zh" else MEASURES_EN
        cols = max(width(n) for n in names.values())
        for m, label in names.items():
            a, b, d = (tot[f"{m}_{s}"].iat[0] for s in ("a", "b", "delta"))
            out.append(f"  {pad(label, cols)} A {a:>14,}   B {b:>14,}   Δ {d:>+14,}")
        for keys, title in ((["region"], tr("按参保地", "by region")), (["scheme"], tr("按险种", "by scheme")),
                            (["psn_type"], tr("按人员类别", "by member group")),
                            (["med_type"], tr("按医疗类别", "by visit type"))):
            t = self.by(*keys)[["bills"] + [f"{m}_delta" for m in MEASURES]]
            out.append(tr(f"\n{title}的变化：\n", f"\nChange {title}:\n") + _aligned(_words(t)))
        top = self.top()
        out.append(tr("\n个人负担变化最大的账单：\n", "\nBills whose out-of-pocket changes most:\n")
                   + _aligned(_words(top), index=False))
        return "\n".join(out)


def _measures(settlement) -> pd.DataFrame:
    raw = settlement.raw
    df = pd.DataFrame({
        "mdtrt_id": raw["mdtrt_id"], "psn_no": raw["psn_no"], "region": raw["region"], "scheme": raw["scheme"],
        "psn_type": raw["psn_type"], "med_type": raw["med_type"].map(lambda m: codes.MED_TYPE_LABEL.get(m, (m,))[0]),
        "medfee_sumamt": raw["medfee_sumamt"],
        "hifp_pay": raw["hifp_pay"], "critical": raw["hifmi_pay"] + raw["hifob_pay"],
        "maf_pay": raw["maf_pay"], "psn_part_amt": raw["psn_part_amt"],
    })                                  # integer fen; converted to yuan only for output
    return df


def compare_policies(df: pd.DataFrame, *, book_a: PolicyBook, book_b: PolicyBook, on_a=None, on_b=None,
                     label_a="A", label_b="B", row_numbers=None, state=None, catalogue=None,
                     members=None) -> PolicyDiff:
    """``state``: accounts / year-to-date amounts; ``members``: enrolment spans (a path or a frame), read
    under each side's tables, so a draft that changes a region's waiting period or rewards shows its effect."""
    ra = score_frame(df, book_a, on=on_a, row_numbers=row_numbers, state=state, catalogue=catalogue, members=members)
    rb = score_frame(df, book_b, on=on_b, row_numbers=row_numbers, state=state, catalogue=catalogue, members=members)
    a, b = _measures(ra.settlement), _measures(rb.settlement)
    keys = ["mdtrt_id", "psn_no", "region", "scheme", "psn_type", "med_type", "medfee_sumamt"]
    m = a.merge(b, on=keys, suffixes=("_a", "_b"))
    for k in MEASURES:
        m[f"{k}_delta"] = m[f"{k}_b"] - m[f"{k}_a"]
    m["region"] = m["region"].map(lambda r: book_a.region_label(r))
    m["scheme"] = m["scheme"].map({"employee": "职工", "resident": "居民"})
    only_a = sorted(set(a["mdtrt_id"]) - set(b["mdtrt_id"]))
    only_b = sorted(set(b["mdtrt_id"]) - set(a["mdtrt_id"]))
    return PolicyDiff(m, only_a, only_b, label_a, label_b)

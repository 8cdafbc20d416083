"""Tables for people, in notebooks: Chinese headers, money as ``1,234.50``, shares as ``12.3%``.

The computations (``ybcalc.scenarios``) return plain numbers so that charts and tests can use them;
this module only formats them for reading, so a notebook cell stays one call::

    from ybcalc import display as D
    D.table(S.members_at_limits(settlement))     # headers 人员编号, 医保年度 …; 111,435.00
    D.rejects(result.rejects)                     # 无拒绝 when nothing was rejected

A :class:`Table` shows as HTML in Jupyter (no row numbers; short columns never wrap, long text
columns do) and as aligned text elsewhere; ``.frame`` is the formatted DataFrame.
"""
from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable
from decimal import Decimal

import numpy as np
import pandas as pd

from . import codes, labels
from .i18n import current, tr

#: columns holding yuan (formatted as 1,234.50)
MONEY = {"medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
         "act_pay_dedc", "hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt", "psn_part_amt",
         "acct_pay", "acct_mulaid_pay", "psn_cash_pay", "det_item_fee_sumamt", "total", "fund", "patient", "acct", "cash",
         "above_cap", "critical"}
#: columns holding a fraction (formatted as 12.3%)
SHARES = {"fund_share", "patient_share", "mean_share", "median_share", "selfpay_prop"}
#: headers of the notebooks' columns that are not national fields (those take ``labels.label``)
HEADERS = {
    "region": ("地区", "region"), "scheme": ("险种", "scheme"), "status": ("人员", "member"),
    "psn_type": ("人员类别", "member group"), "age": ("年龄", "age"), "hosp_lv": ("医院等级", "hospital level"),
    "med_type": ("就诊类型", "visit type"), "visit": ("就诊类型", "visit type"), "settled": ("可结算", "settled"),
    "total": ("总费用", "total cost"), "fund": ("基金支付", "fund"), "patient": ("个人负担", "patient"),
    "acct": ("个人账户", "account"), "cash": ("个人现金", "cash"), "fund_share": ("基金占比", "fund share"),
    "patient_share": ("个人占比", "patient share"), "mean_share": ("平均个人占比", "mean patient share"),
    "median_share": ("个人占比中位数", "median patient share"), "bills": ("单据数", "bills"),
    "reason": ("无法结算原因", "why not settled"), "n_warnings": ("提示数", "warnings"),
    "year": ("医保年度", "policy year"), "above_cap": ("超过封顶线的费用", "cost above the cap"),
    "critical": ("大病/大额支付", "critical-illness payment"), "hit_cap": ("达到封顶线", "reached the cap"),
    "critical_illness": ("获大病/大额支付", "critical-illness paid"), "rows": ("行号", "rows"),
    "column": ("列", "column"), "value": ("值", "value"), "grade": ("来源等级", "grade"),
    "source": ("来源", "source"), "issuer": ("发布者", "issuer"), "url": ("网址", "address"),
    "source_date": ("来源日期", "source date"),
    "from": ("起始日期", "from"), "rule": ("条件", "rule"), "note": ("说明", "note"),
}
#: headers of the one-bill lines table
LINE_COLUMNS = ("item_name", "chrgitm_lv", "selfpay_prop", "det_item_fee_sumamt")

# inline styles, not a <style> element: JupyterLab strips <style> from the outputs of a notebook it
# has not run itself (an untrusted notebook), but keeps these
_TABLE = "border-collapse:collapse;font-size:12px"
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap"
_HEAD = _CELL + ";background:#f4f4f4"
_WRAP = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;white-space:normal;min-width:16em"


def yuan(value) -> str:
    """Yuan with thousands separators and two decimals (``111,435.00``); empty for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    return f"{float(value):,.2f}"


def percent(value) -> str:
    """A fraction as a percentage with one decimal (``0.2284`` → ``22.8%``); empty when missing."""
    if value is None or pd.isna(value):
        return ""
    return f"{float(value) * 100:.1f}%"


def header(column: str, lang: str | None = None) -> str:
    """The header a reader sees for a column: Chinese with ``lang="zh"`` (or a Chinese session)."""
    if column in HEADERS:
        return tr(*HEADERS[column], lang=lang)
    lang = lang or current()
    return labels.label(column, lang) if lang == "zh" else column


def _code_word(column: str, value):
    """Hospital level and catalogue class as words (三级, 乙类); None when the value is no such code."""
    table = {"hosp_lv": codes.HOSP_LV_LABEL, "chrgitm_lv": codes.CHRGITM_LV_LABEL}.get(column)
    if table is None or not isinstance(value, numbers.Number) or pd.isna(value) or int(value) not in table:
        return None
    return tr(*table[int(value)])


def _cell(column: str, value, money: bool):
    if money:
        return yuan(value)
    if column in SHARES:
        return percent(value)
    word = _code_word(column, value)
    if word is not None:
        return word
    if isinstance(value, (bool, np.bool_)):
        return tr("是", "yes") if value else tr("否", "no")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


class Table:
    """A formatted table: HTML in Jupyter (no row numbers, only ``wrap`` columns wrap), text elsewhere.
    An empty table shows ``empty`` (e.g. 无拒绝) instead of an empty grid."""

    def __init__(self, frame: pd.DataFrame, *, wrap: Iterable[str] = (), empty: str = ""):
        self.frame = frame.reset_index(drop=True)
        self.wrap = [c for c in wrap if c in self.frame.columns]
        self.empty = empty or tr("（无）", "(none)")

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        if not len(self.frame):
            return self.empty
        with pd.option_context("display.unicode.east_asian_width", True, "display.width", 200,
                               "display.max_columns", None, "display.max_colwidth", 60):
            return self.frame.to_string(index=False)

    def _repr_html_(self) -> str:
        if not len(self.frame):
            return f"<p>{html.escape(self.empty)}</p>"
        cols = list(self.frame.columns)
        styles = [_WRAP if c in self.wrap else _CELL for c in cols]
        head = "".join(f'<th style="{_HEAD}">{html.escape(str(c))}</th>' for c in cols)
        body = "".join("<tr>" + "".join(f'<td style="{s}">{html.escape(str(v))}</td>' for s, v in zip(styles, row))
                       + "</tr>" for row in self.frame.itertuples(index=False))
        return f'<table style="{_TABLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def table(frame: pd.DataFrame, columns: Iterable[str] | None = None, *, money: Iterable[str] = (),
          wrap: Iterable[str] = (), empty: str = "", lang: str | None = None) -> Table:
    """``frame`` for reading: the ``columns`` chosen (default all), money (the known money fields and
    those in ``money``) and shares formatted, hospital level and catalogue class as words, booleans as
    是/否, headers in the reader's language. Columns in ``wrap`` (long text) may wrap; all others stay
    on one line."""
    cols = [c for c in (columns if columns is not None else frame.columns) if c in frame.columns]
    money = MONEY | set(money)
    out = pd.DataFrame({c: [_cell(c, v, c in money) for v in frame[c].tolist()] for c in cols}, columns=cols)
    names = {c: header(c, lang) for c in cols}
    out.columns = [names[c] for c in cols]
    return Table(out, wrap=[names[c] for c in wrap if c in names], empty=empty)


def bill_lines(lines) -> Table:
    """A bill's lines as the hospital's list shows them: 项目名称, 收费项目等级, 自付比例, 金额."""
    frame = pd.DataFrame(lines)
    frame = frame.assign(chrgitm_lv=frame["chrgitm_lv"].map(codes.parse_chrgitm_lv)) if "chrgitm_lv" in frame else frame
    return table(frame, LINE_COLUMNS)


def rejects(rejects_frame: pd.DataFrame) -> Table:
    """One row per rejected bill with its rows, column and reason; 无拒绝 when nothing was rejected."""
    from .scenarios import reject_summary
    return table(reject_summary(rejects_frame), wrap=("reason",), empty=tr("无拒绝", "nothing rejected"))


def curves(curve_frame: pd.DataFrame, at=(10000, 50000, 100000, 200000, 500000)) -> Table:
    """个人负担 (yuan) of each out-of-pocket curve at a few total costs (``scenarios.curve_summary``)."""
    from .scenarios import curve_summary
    summary = curve_summary(curve_frame, at)
    totals = [c for c in summary.columns if c not in ("region", "scheme", "status", "hosp_lv", "psn_type", "reason")]
    shown = ["region", "scheme", "psn_type", "hosp_lv", *totals]
    if summary["reason"].astype(str).str.len().any():
        shown.append("reason")
    return table(summary, shown, money=totals, wrap=("reason",))


def gaps(parameter_frame: pd.DataFrame) -> Table:
    """The region × scheme pairs of a ``scenarios.policy_parameter_table`` with years that have no sourced
    value: one line each, with the years and the table's one-line note (its search history is in docs/research)."""
    missing = parameter_frame[parameter_frame["status"] == "missing"]
    rows = [{"region": region, "scheme": scheme,
             "years": tr("、", ", ").join(str(y) for y in sorted(set(g["year"]))),
             # the table's one-line gap note, ending with its pointer to the search history in docs/research
             "note": " / ".join(dict.fromkeys(n for n in g.get("note", []) if isinstance(n, str) and n))}
            for (region, scheme), g in missing.groupby(["region", "scheme"], sort=False)]
    frame = pd.DataFrame(rows, columns=["region", "scheme", "years", "note"])
    out = table(frame, empty=tr("无缺失", "nothing missing"), wrap=("note",))
    out.frame.columns = [header("region"), header("scheme"), tr("无有来源数值的年份", "years without a sourced value"),
                         header("note")]
    return out

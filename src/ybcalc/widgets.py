"""Notebook widgets around ``ybcalc.scenarios`` and ``ybcalc.plotting``.

Each class builds its controls, exposes the container as ``.widget``, recomputes in ``.update()`` and
keeps the latest results as attributes (``.settlement``, ``.table`` …), so it can be driven without a
browser: set a control's ``.value``, call ``.button.click()`` (or ``.update()``) and read the results.
Results are shown in ``HTML`` and ``Image`` widgets (PNG bytes), never through ``Output`` capture, so
what a test sees is what the notebook shows.

    from ybcalc.widgets import BillExplainer
    ui = BillExplainer()
    ui.widget            # display in a notebook
    ui.psn_type.value = "退休"; ui.button.click(); ui.settlement["psn_part_amt"]
"""
from __future__ import annotations

import datetime as dt
import html
import tempfile
from pathlib import Path

import ipywidgets as W
import numpy as np
import pandas as pd
import yaml

from . import codes
from . import plotting as P
from . import scenarios as S

STYLE = {"description_width": "7em"}
LAYOUT = W.Layout(width="20em")
CSS = ("<style>.ybcalc-table{border-collapse:collapse;font-size:12px}.ybcalc-table td,.ybcalc-table th"
       "{padding:2px 6px;border-bottom:1px solid #ddd;text-align:right}.ybcalc-table th{background:#f4f4f4}"
       # region and scheme (the first columns) on one line, however wide the source texts beside them
       ".ybcalc-table th,.ybcalc-table td:nth-child(-n+2){white-space:nowrap}</style>")


def _book(book, assume=None):
    """The tables a widget settles with; ``assume``: values for parameters without a sourced value
    (``["乙类先行自付=0.10"]``, see ``ybcalc.assume``), shown as assumptions on every bill using one."""
    book = S._book(book)
    if assume:
        from .assume import with_assumptions
        book = with_assumptions(book, assume)
    return book


def region_options(book) -> list[tuple[str, str]]:
    """(短名, region id) for every region with at least one table, in the tables' code order."""
    rids = sorted({rid for rid, _ in book.tables}, key=lambda r: book.regions[r].code)
    return [(book.region_label(r), r) for r in rids]


def html_table(df: pd.DataFrame) -> str:
    return CSS + df.to_html(index=False, border=0, classes="ybcalc-table", na_rep="")


def _error_html(text: str) -> str:
    return f"<div style='color:#a33'><b>无法结算</b>：{html.escape(str(text))}</div>"


def _date(value) -> str:
    return str(pd.Timestamp(value).date())


def _image() -> W.Image:
    return W.Image(format="png", layout=W.Layout(max_width="100%"))


# ---------------------------------------------------------------------------------------------
class BillExplainer:
    """One bill: pick the member, the visit and the amounts by catalogue class, press 计算; shows the
    settlement, the step-by-step explanation and a waterfall chart.

    Results: ``.lines`` (input lines), ``.settlement``, ``.explanation``, ``.figure``, ``.error``
    (the reason when the bill cannot be settled, else None).
    """

    def __init__(self, book=None, *, assume=None, region="北京", scheme="职工", psn_type="在职", age=45, hosp_lv=3,
                 visit="住院", ooa="local", mdtrt_area=None, date=S.DEFAULT_DATE, class_a=20000.0,
                 class_b=15000.0, class_b_selfpay=0.10, class_c=3000.0, excluded=500.0, excluded_item="陪护费",
                 account=0.0, lang="zh", update=True):
        self.book = _book(book, assume)
        self.lang = lang
        opts = region_options(self.book)
        rid = self.book.region_id(region) or region
        kw = {"style": STYLE, "layout": LAYOUT}
        self.region = W.Dropdown(options=opts, value=rid, description="参保地", **kw)
        self.scheme = W.ToggleButtons(options=["职工", "居民"], value=scheme, description="险种", style=STYLE)
        self.psn_type = W.Dropdown(options=[psn_type], value=psn_type, description="人员类别", **kw)
        # 缴费档次: offered where the region's table distinguishes tiers (深圳 职工 一档/二档)
        self.tier = W.Dropdown(options=[("（不区分）", "")], value="", description="缴费档次", **kw)
        self.age = W.IntSlider(value=age, min=0, max=100, description="年龄", **kw)
        self.hosp_lv = W.Dropdown(options=[(v, k) for k, v in S.HOSP_LEVELS.items()], value=int(hosp_lv),
                                  description="医院等级", **kw)
        self.visit = W.Dropdown(options=list(S.VISIT_TYPES.items()),
                                value=S.VISIT_TYPES.get(visit, codes.parse_med_type(visit)),
                                description="就诊类型", **kw)
        self.ooa = W.Dropdown(options=list(S.OOA_CHOICES.items()), value=ooa, description="异地就医", **kw)
        self.mdtrt_area = W.Dropdown(options=opts, description="就医地", **kw)
        self.date = W.DatePicker(value=pd.Timestamp(date).date(), description="结算日期", **kw)
        money = {"style": STYLE, "layout": W.Layout(width="16em")}
        self.class_a = W.FloatText(value=class_a, description="甲类 (元)", **money)
        self.class_b = W.FloatText(value=class_b, description="乙类 (元)", **money)
        self.class_b_selfpay = W.BoundedFloatText(value=class_b_selfpay, min=0, max=1, step=0.05,
                                                  description="乙类先行自付", **money)
        self.class_c = W.FloatText(value=class_c, description="丙类 (元)", **money)
        self.excluded_item = W.Text(value=excluded_item, description="不予支付项目", **money)
        self.excluded = W.FloatText(value=excluded, description="其金额 (元)", **money)
        self.account = W.FloatText(value=account, description="账户余额 (元)", **money)
        self.button = W.Button(description="计算", button_style="primary", icon="calculator")
        self.status = W.HTML()
        self.summary = W.HTML()
        self.explain_html = W.HTML()
        self.image = _image()
        self.lines = None
        self.settlement = None
        self.explanation = None
        self.figure = None
        self.error = None

        self.region.observe(self._on_region, names="value")
        self.scheme.observe(self._on_region, names="value")
        self.ooa.observe(self._on_ooa, names="value")
        self.button.on_click(lambda _b: self.update())
        self._refresh_choices(prefer=psn_type)
        if mdtrt_area is not None:
            self.mdtrt_area.value = self.book.region_id(mdtrt_area) or mdtrt_area
        self._on_ooa()

        member = W.VBox([self.region, self.scheme, self.psn_type, self.tier, self.age, self.date])
        visit_box = W.VBox([self.visit, self.hosp_lv, self.ooa, self.mdtrt_area])
        amounts = W.VBox([self.class_a, self.class_b, self.class_b_selfpay, self.class_c, self.excluded_item,
                          self.excluded, self.account])
        self.widget = W.VBox([W.HBox([member, visit_box, amounts]), self.button, self.status, self.summary,
                              self.image, self.explain_html])
        if update:
            self.update()

    # -- choices that depend on other choices ----------------------------------------------------
    def _table(self):
        sch = S.scheme_code(self.scheme.value)
        return self.book.tables.get((self.region.value, sch))

    def _refresh_choices(self, prefer=None):
        t = self._table()      # None: no table for this scheme here; update() shows that as the reason
        groups = list(t.psn_types) if t is not None and t.psn_types else [""]
        labels = [(g or "（默认）", g) for g in groups]
        want = prefer if prefer in groups else self.psn_type.value
        if want not in groups:
            want = (S.resolve_member(self.book, self.region.value, "居民", "resident")["psn_type"]
                    if self.scheme.value == "居民" else groups[0])
            want = want if want in groups else groups[0]
        self.psn_type.options = labels
        self.psn_type.value = want
        tiers = list(t.contrib_tiers) if t is not None else []
        keep = self.tier.value if self.tier.value in tiers else (tiers[0] if tiers else "")
        self.tier.options = [(x, x) for x in tiers] or [("（不区分）", "")]
        self.tier.value = keep
        self.tier.disabled = not tiers
        if self.mdtrt_area.value in (None, self.region.value):
            other = [r for _, r in self.mdtrt_area.options if r != self.region.value]
            if other:
                self.mdtrt_area.value = other[0]

    def _on_region(self, _change=None):
        self._refresh_choices()

    def _on_ooa(self, _change=None):
        self.mdtrt_area.disabled = self.ooa.value == "local"

    # -- compute -----------------------------------------------------------------------------------
    def build_lines(self) -> list[dict]:
        member = {"region": self.region.value, "scheme": self.scheme.value, "psn_type": self.psn_type.value,
                  "age": int(self.age.value), "med_type": self.visit.value, "hosp_lv": int(self.hosp_lv.value),
                  "date": _date(self.date.value or dt.date.today()), "mdtrt_id": "BILL-1", "psn_no": "P1"}
        if self.tier.value:
            member["contrib_tier"] = self.tier.value
        if self.ooa.value != "local":
            member["mdtrt_area"] = self.mdtrt_area.value
            member["fil_type"] = self.ooa.value
        return S.bill_from_amounts(self.class_a.value, self.class_b.value, self.class_c.value, self.excluded.value,
                                   class_b_selfpay=self.class_b_selfpay.value,
                                   excluded_item=self.excluded_item.value or "陪护费", **member)

    def update(self):
        """Settle the bill as set in the controls; returns the Settlement (None if the input is invalid)."""
        from .api import settle
        self.explanation = self.figure = self.error = None
        self.summary.value = self.explain_html.value = ""
        self.image.value = b""
        try:
            self.lines = self.build_lines()
        except ValueError as exc:
            self.settlement = None
            self.error = str(exc)
            self.status.value = _error_html(exc)
            return None
        if self._table() is None:
            self.settlement = None
            self.error = S.resolve_member(self.book, self.region.value, self.psn_type.value or "居民",
                                          self.scheme.value)["reason"]
            self.status.value = _error_html(self.error)
            return None
        st = settle(self.lines, self.book, accounts={"P1": max(0.0, float(self.account.value or 0))},
                    strict=False, source="<widget>")
        self.settlement = st
        if len(st.errors) or len(st.rejects) or not len(st.raw):
            reasons = list(st.errors.astype(str)) + [f"{r.column}: {r.reason}" for r in st.rejects.itertuples()]
            self.error = reasons[0] if reasons else "not settled"
            self.status.value = _error_html(self.error)
            return st
        r = st.raw.iloc[0]
        self.explanation = st.explain(lang=self.lang)
        fig = P.waterfall(st)
        self.figure = fig
        self.image.value = P.png_bytes(fig, dpi=90)
        warn = [w for w in str(r["warnings"]).split("; ") if w]
        self.status.value = (f"<b>{html.escape(self.book.tables[(r['region'], r['scheme'])].title)}</b> · "
                             f"基金支付 <b>{r['fund_pay_sumamt'] / 100:,.2f}</b> 元 · 个人负担 "
                             f"<b>{r['psn_part_amt'] / 100:,.2f}</b> 元（现金 {r['psn_cash_pay'] / 100:,.2f}）"
                             + (f" · <span style='color:#a60'>{len(warn)} 条提示</span>" if warn else ""))
        self.summary.value = html_table(self.key_fields())
        self.explain_html.value = self.explanation._repr_html_()
        return st

    def key_fields(self) -> pd.DataFrame:
        """The settled fields of the bill as a two-column table (name, yuan)."""
        if self.settlement is None or len(self.settlement.raw) != 1:
            return pd.DataFrame(columns=["项目", "金额"])
        return S.key_fields(self.settlement)


# ---------------------------------------------------------------------------------------------
class ScenarioComparer:
    """The same bill in several regions × member groups × hospital levels: a table, fund/patient bars
    and out-of-pocket curves (0–50 万). Changing the selections recomputes (``auto=True``).

    Results: ``.bill`` (lines), ``.table`` (``compare_scenarios``), ``.curves`` (``oop_curve_grid``),
    ``.bars_figure``, ``.curves_figure``.
    """

    def __init__(self, book=None, bill_lines=None, *, assume=None, regions=S.DEFAULT_REGIONS, statuses=("在职", "退休"),
                 hosp_levels=(3,), date=S.DEFAULT_DATE, total=50000.0, class_b_share=0.3, self_pay_share=0.05,
                 excluded=0.0, visit="住院", totals=None, auto=True, update=True):
        self.book = _book(book, assume)
        self.fixed_bill = None if bill_lines is None else S._line_frame(bill_lines)
        self.totals = S.DEFAULT_TOTALS if totals is None else np.asarray(totals, dtype=float)
        opts = region_options(self.book)
        kw = {"style": STYLE}
        self.regions = W.SelectMultiple(options=opts, value=tuple(self.book.region_id(r) or r for r in regions),
                                        rows=8, description="地区", **kw)
        groups = ["在职", "退休", "居民"] + [s for s in statuses if s not in ("在职", "退休", "居民")]
        self.statuses = W.SelectMultiple(options=groups, value=tuple(statuses), rows=4, description="人员", **kw)
        self.hosp_levels = W.SelectMultiple(options=[(v, k) for k, v in S.HOSP_LEVELS.items()],
                                            value=tuple(int(h) for h in hosp_levels), rows=4, description="医院等级",
                                            **kw)
        self.visit = W.Dropdown(options=list(S.VISIT_TYPES.items()),
                                value=S.VISIT_TYPES.get(visit, codes.parse_med_type(visit)), description="就诊类型",
                                **kw)
        self.date = W.DatePicker(value=pd.Timestamp(date).date(), description="结算日期", **kw)
        self.total = W.FloatText(value=total, description="总费用 (元)", **kw)
        self.class_b_share = W.FloatSlider(value=class_b_share, min=0, max=1, step=0.05, description="乙类占比", **kw)
        self.self_pay_share = W.FloatSlider(value=self_pay_share, min=0, max=1, step=0.05, description="丙类占比",
                                            **kw)
        self.excluded = W.FloatSlider(value=excluded, min=0, max=1, step=0.01, description="不予支付占比", **kw)
        self.button = W.Button(description="比较", button_style="primary")
        self.status = W.HTML()
        self.table_html = W.HTML()
        self.bars_image = _image()
        self.curves_image = _image()
        self.bill = self.table = self.curves = self.bars_figure = self.curves_figure = None
        self.button.on_click(lambda _b: self.update())
        if auto:
            for w in (self.regions, self.statuses, self.hosp_levels):
                w.observe(lambda _c: self.update(), names="value")
        amounts = [self.total, self.class_b_share, self.self_pay_share, self.excluded]
        if self.fixed_bill is not None:
            for w in amounts:
                w.disabled = True
        self.widget = W.VBox([W.HBox([self.regions, W.VBox([self.statuses, self.hosp_levels]),
                                      W.VBox([self.visit, self.date, *amounts])]),
                              self.button, self.status, self.table_html, self.bars_image, self.curves_image])
        if update:
            self.update()

    def build_bill(self) -> pd.DataFrame:
        if self.fixed_bill is not None:
            bill = self.fixed_bill.copy()
            bill["med_type"] = self.visit.value
            return bill
        return pd.DataFrame(S.sample_bill(self.total.value, self.class_b_share.value, self.self_pay_share.value,
                                          self.excluded.value, med_type=self.visit.value))

    def update(self) -> pd.DataFrame:
        """Recompute table, bars and curves from the controls; returns the scenario table."""
        day = _date(self.date.value or S.DEFAULT_DATE)
        regions, statuses = list(self.regions.value), list(self.statuses.value)
        levels = sorted(self.hosp_levels.value) or [3]
        try:
            self.bill = self.build_bill()
        except ValueError as exc:
            self.status.value = _error_html(exc)
            return self.table
        self.table = S.compare_scenarios(self.bill, regions, statuses, levels, day, self.book)
        bad = int((~self.table["settled"]).sum()) if len(self.table) else 0
        self.status.value = (f"{len(self.table)} 个情形，{len(self.table) - bad} 个可结算"
                             + (f"，<span style='color:#a33'>{bad} 个无法结算（原因见表）</span>" if bad else ""))
        self.table_html.value = html_table(S.display_table(self.table, reason_width=60))
        if len(self.table):
            self.bars_figure = P.scenario_bars(self.table)
            self.bars_image.value = P.png_bytes(self.bars_figure, dpi=80)
        else:
            self.bars_figure, self.bars_image.value = None, b""
        total = self.bill["det_item_fee_sumamt"].astype(float).sum()
        shares = self._shares(total)
        self.curves = S.oop_curve_grid(regions, statuses, levels[-1], self.totals, day, self.book,
                                       med_type=self.visit.value, **shares)
        if len(self.curves):
            self.curves_figure = P.oop_curves(self.curves)
            self.curves_image.value = P.png_bytes(self.curves_figure, dpi=80)
        else:
            self.curves_figure, self.curves_image.value = None, b""
        return self.table

    def _shares(self, total: float) -> dict:
        """The bill's 乙/丙/excluded mix, used to shape the curves like the bill."""
        if self.fixed_bill is None:
            return {"class_b_share": self.class_b_share.value, "self_pay_share": self.self_pay_share.value,
                    "excluded": self.excluded.value}
        b = self.bill
        amt = b["det_item_fee_sumamt"].astype(float)
        lv = b["chrgitm_lv"].map(codes.parse_chrgitm_lv)
        if not total:
            return {"class_b_share": 0.0, "self_pay_share": 0.0}
        return {"class_b_share": float(amt[lv == 2].sum() / total), "self_pay_share": float(amt[lv == 3].sum() / total)}


# ---------------------------------------------------------------------------------------------
GROUPINGS = {"地区 · 险种 · 就诊类型": ("region", "scheme", "visit"), "地区 · 险种": ("region", "scheme"),
             "地区": ("region",), "险种 · 就诊类型": ("scheme", "visit"), "就诊类型": ("visit",)}


def read_accounts(path):
    """psn_no, acct_balance (and year-to-date columns) from a CSV; Chinese headers accepted."""
    from .batch import read_accounts as _read
    return _read(path)


class BatchReport:
    """Score a file of bills (a path, or an uploaded CSV) and report the patient's share by group.

    Results: ``.result`` (``ScoreResult``), ``.bills`` (``bill_shares``), ``.summary`` (``share_summary``),
    ``.rejects`` (one row per rejected bill), ``.figures`` (distribution, split bars), ``.error``.
    """

    def __init__(self, path=None, book=None, *, assume=None, accounts=None, group_by="地区 · 险种 · 就诊类型", update=None):
        self.book = _book(book, assume)
        kw = {"style": STYLE, "layout": W.Layout(width="36em")}
        self.path = W.Text(value="" if path is None else str(path), description="账单文件", **kw)
        self.accounts_path = W.Text(value="" if accounts is None else str(accounts), description="账户余额",
                                    placeholder="psn_no, acct_balance (可不填)", **kw)
        self.upload = W.FileUpload(accept=".csv,.parquet", multiple=False, description="上传 CSV")
        self.group_by = W.Dropdown(options=list(GROUPINGS), value=group_by, description="分组", style=STYLE)
        self.button = W.Button(description="评分", button_style="primary")
        self.status = W.HTML()
        self.table_html = W.HTML()
        self.rejects_html = W.HTML()
        self.dist_image = _image()
        self.split_image = _image()
        self.result = self.bills = self.summary = self.rejects = self.error = None
        self.figures = {}
        self.button.on_click(lambda _b: self.update())
        self.group_by.observe(lambda _c: self._report() if self.bills is not None else None, names="value")
        self.widget = W.VBox([self.path, self.accounts_path, W.HBox([self.upload, self.group_by, self.button]),
                              self.status, self.table_html, self.dist_image, self.split_image, self.rejects_html])
        if update or (update is None and path):
            self.update()

    def _read(self):
        """(lines, row numbers, label to show). An upload wins over the path; it is read from a
        temporary file, removed once read."""
        from .batch import read_bills
        files = self.upload.value
        if files:
            f = files[0]
            suffix = Path(f["name"]).suffix or ".csv"
            with tempfile.TemporaryDirectory(prefix="ybcalc-upload-") as d:
                tmp = Path(d) / f"upload{suffix}"
                tmp.write_bytes(bytes(f["content"]))
                return (*read_bills(tmp), f["name"])
        if not self.path.value.strip():
            raise ValueError("no file: give a path or upload a CSV")
        p = Path(self.path.value.strip()).expanduser()
        return (*read_bills(p), self.path.value.strip())

    def update(self):
        """Read, settle and summarise; returns the ScoreResult (None if the file cannot be read)."""
        from .batch import score_frame
        self.error = None
        try:
            df, rows, label = self._read()
            acc = read_accounts(self.accounts_path.value.strip()) if self.accounts_path.value.strip() else None
            self.result = score_frame(df, self.book, row_numbers=rows, source=label, state=acc)
        except (OSError, ValueError, KeyError) as exc:
            self.result = None
            self.error = str(exc)
            self.status.value = _error_html(exc)
            self.table_html.value = self.rejects_html.value = ""
            self.dist_image.value = self.split_image.value = b""
            return None
        self.bills = S.bill_shares(self.result.settlement)
        self.rejects = S.reject_summary(self.result.rejects)
        self.status.value = "<pre>" + html.escape(self.result.summary()) + "</pre>"
        self.rejects_html.value = ("" if not len(self.rejects) else
                                   "<b>无法结算的单据</b>" + html_table(self.rejects))
        self._report()
        return self.result

    def _report(self):
        by = GROUPINGS[self.group_by.value]
        self.summary = S.share_summary(self.bills, by)
        self.table_html.value = html_table(S.display_table(
            self.summary, columns=(*by, "bills", "total", "fund", "patient", "patient_share", "median_share")))
        if len(self.bills):
            self.figures = {"distribution": P.share_distribution(self.bills, by),
                            "split": P.group_split_bars(self.summary, by)}
            self.dist_image.value = P.png_bytes(self.figures["distribution"], dpi=80)
            self.split_image.value = P.png_bytes(self.figures["split"], dpi=80)
        else:
            self.figures = {}
            self.dist_image.value = self.split_image.value = b""


# ---------------------------------------------------------------------------------------------
class MemberYearView:
    """One member's year (notebook 05 “一年的就医”): a file of bills, a members file and account
    balances; pick a member, try 断缴 N 年 / 补缴 M 年 / 集中缴费期后缴费, and the whole file is settled again
    (a relative's account may pay, so the family is settled together) and the year redrawn.

    Results: ``.result`` (``ScoreResult``), ``.year`` (``member_year.MemberYear``), ``.figure``, ``.error``.
    """

    def __init__(self, bills, members, book=None, *, accounts=None, assume=None, psn_no=None, update=True):
        from .batch import read_bills
        from .members import read_members
        self.book = _book(book, assume)
        self.lines, self.rows = read_bills(bills)
        self.source = str(bills)
        self.accounts = read_accounts(accounts) if isinstance(accounts, (str, Path)) else accounts
        self.members = read_members(members, self.book)
        sp = self.members.spans
        billed = set(self.lines["psn_no"].astype(str).str.strip()) if "psn_no" in self.lines else set()
        options = []
        for psn in self.members.psn_nos:
            last = sp[sp["psn_no"] == psn].sort_values("begin").iloc[-1]
            where = " ".join(x for x in (self.book.region_label(last["region"]) if last["region"] else "",
                                         codes.SCHEME_LABEL.get(last["scheme"], ("",))[0]) if x)
            options.append((f"{psn}（{where}）" if where else str(psn), str(psn)))
        options.sort(key=lambda o: (o[1] not in billed, o[1]))
        self.member = W.Dropdown(options=options, value=psn_no or options[0][1], description="参保人", style=STYLE,
                                 layout=LAYOUT)
        self.break_years = W.IntSlider(value=0, min=0, max=8, description="断缴年数", style=STYLE, layout=LAYOUT)
        self.repaid_years = W.IntSlider(value=0, min=0, max=8, description="补缴年数", style=STYLE, layout=LAYOUT)
        self.late = W.Checkbox(value=False, description="集中缴费期后才缴费", indent=False)
        self.reset = W.Button(description="恢复文件中的值")
        self.status = W.HTML()
        self.table_html = W.HTML()
        self.image = _image()
        self.result = self.year = self.figure = self.error = None
        self._quiet = False
        self._from_file()
        self.member.observe(lambda _c: (self._from_file(), self.update()), names="value")
        for w in (self.break_years, self.repaid_years, self.late):
            w.observe(lambda _c: None if self._quiet else self.update(), names="value")
        self.reset.on_click(lambda _b: (self._from_file(), self.update()))
        self.widget = W.VBox([W.HBox([self.member, self.reset]), W.HBox([self.break_years, self.repaid_years]),
                              self.late, self.status, self.image, self.table_html])
        if update:
            self.update()

    def _from_file(self):
        """The toggles as the members file says for the member's latest span."""
        sp = self.members.spans
        last = sp[sp["psn_no"] == self.member.value].sort_values("begin").iloc[-1]
        self._quiet = True
        self.break_years.value = int(last["break_years"])
        self.repaid_years.value = int(last["repaid_years"])
        self.late.value = bool(pd.notna(last["paid_on"]) and last["paid_on"] >= last["begin"])
        self._quiet = False

    def members_now(self):
        """The members file with the toggles applied to the chosen member's latest span."""
        from .member_year import with_break
        return with_break(self.members, self.member.value, self.break_years.value, self.repaid_years.value,
                          self.book, late=self.late.value)

    def update(self):
        """Settle the file with the toggles and redraw; returns the MemberYear (None on an error)."""
        from .batch import score_frame
        from .member_year import bills_table, member_year, summary_text
        self.error = None
        try:
            members = self.members_now()
            self.result = score_frame(self.lines, self.book, row_numbers=self.rows, source=self.source,
                                      state=self.accounts, members=members)
            self.year = member_year(self.result.settlement, self.member.value, members, accounts=self.accounts)
        except (OSError, ValueError, KeyError) as exc:
            self.result = self.year = None
            self.error = str(exc)
            self.status.value = _error_html(exc)
            self.table_html.value = ""
            self.image.value = b""
            return None
        self.status.value = "<pre>" + html.escape(summary_text(self.year)) + "</pre>"
        self.table_html.value = html_table(bills_table(self.year))
        self.figure = P.member_year(self.year)
        self.image.value = P.png_bytes(self.figure, dpi=80)
        return self.year


# ---------------------------------------------------------------------------------------------
PARAMS = {"住院起付线": "inpatient.deductible", "住院支付比例": "inpatient.ratio", "住院最高支付限额": "inpatient.cap",
          "门诊起付线": "outpatient.deductible", "门诊支付比例": "outpatient.ratio", "门诊最高支付限额": "outpatient.cap"}


class ParameterBrowser:
    """One policy parameter for every region × year, with its source and grade; missing values shown.

    Results: ``.table`` (``policy_parameter_table``), ``.matrix`` (region × year), ``.figure``.
    """

    def __init__(self, book=None, *, assume=None, param="inpatient.deductible", hosp_lv=3, years=(2023, 2025), scheme="全部",
                 psn_type="在职", update=True):
        self.book = _book(book, assume)
        kw = {"style": STYLE}
        self.param = W.Dropdown(options=list(PARAMS.items()), value=param, description="参数", **kw)
        self.hosp_lv = W.Dropdown(options=[(v, k) for k, v in S.HOSP_LEVELS.items()], value=int(hosp_lv),
                                  description="医院等级", **kw)
        self.scheme = W.Dropdown(options=["全部", "职工", "居民"], value=scheme, description="险种", **kw)
        self.psn_type = W.Dropdown(options=[("在职 / 成年居民", "在职"), ("退休", "退休")], value=psn_type,
                                   description="人员", **kw)
        self.years = W.IntRangeSlider(value=tuple(years), min=2020, max=2026, description="年份", **kw)
        self.matrix_html = W.HTML()
        self.sources_html = W.HTML()
        self.image = _image()
        self.table = self.matrix = self.figure = None
        for w in (self.param, self.hosp_lv, self.scheme, self.psn_type, self.years):
            w.observe(lambda _c: self.update(), names="value")
        self.widget = W.VBox([W.HBox([W.VBox([self.param, self.scheme, self.psn_type]),
                                      W.VBox([self.hosp_lv, self.years])]),
                              self.image, self.matrix_html, self.sources_html])
        if update:
            self.update()

    def update(self) -> pd.DataFrame:
        lo, hi = self.years.value
        scheme = None if self.scheme.value == "全部" else self.scheme.value
        self.table = S.policy_parameter_table(self.book, self.param.value, int(self.hosp_lv.value),
                                              range(lo, hi + 1), scheme=scheme, psn_type=self.psn_type.value)
        self.matrix = S.parameter_matrix(self.table)
        self.matrix_html.value = html_table(self.matrix)
        src = (self.table[self.table["status"] != "missing"]
               .drop_duplicates(["region", "scheme", "source"])[["region", "scheme", "grade", "source", "issuer",
                                                                 "url"]])
        src.columns = ["地区", "险种", "来源等级", "文件", "发布/转载", "网址"]
        self.sources_html.value = "<b>来源</b>" + html_table(src)
        label = next(k for k, v in PARAMS.items() if v == self.param.value)
        self.figure = P.parameter_chart(self.table, title=f"{label}（{S.HOSP_LEVELS[int(self.hosp_lv.value)]}医院）")
        self.image.value = P.png_bytes(self.figure, dpi=80)
        return self.table


# ---------------------------------------------------------------------------------------------
class RegionParamsForm:
    """我的地区参数: the main figures of a 医保局 notice in fields, saved as the user's own table (the file
    ``ybcalc tables new`` starts, in the user's tables folder, laid over the shipped tables), and a bill
    settled with them on screen (a ``BillExplainer`` below the form).

    A figure left empty is not made up: a parameter with every field empty is left out of the file (the
    shipped value, or its ``missing`` entry, applies), one with some fields empty is written with the
    placeholder 待填 and so stays missing until filled. Saving keeps the file's other parameters.

    Results: ``.path`` (the table file written), ``.book`` (the tables with it), ``.explainer``,
    ``.error`` (why the form could not be saved, else None).
    """

    LEVELS = ((3, "三级"), (2, "二级"), (1, "一级及以下"))

    def __init__(self, book=None, *, folder="ybcalc-tables", region="攀枝花", scheme="职工", start="2025-01-01",
                 update=False, **bill):
        from .policy.starter import DEFAULT_FOLDER
        self.base = _book(book)
        self.folder = Path(folder or DEFAULT_FOLDER)
        kw = {"style": STYLE, "layout": LAYOUT}
        num = {"style": STYLE, "layout": W.Layout(width="14em")}
        self.region = W.Text(value=region, description="地区", **kw)
        self.region_code = W.Text(value="", description="区划代码", placeholder="新地区才需要，如 510400", **kw)
        self.scheme = W.ToggleButtons(options=["职工", "居民"], value=scheme, description="险种", style=STYLE)
        self.start = W.Text(value=str(start), description="施行日期", placeholder="YYYY-MM-DD", **kw)
        self.title = W.Text(description="通知标题", **kw)
        self.doc_no = W.Text(description="文号", placeholder="如 某医保发〔2024〕1号", **kw)
        self.issuer = W.Text(description="发文单位", placeholder="如 某市医疗保障局", **kw)
        self.issued = W.Text(description="发文日期", placeholder="YYYY-MM-DD", **kw)
        self.deductible = {lv: W.Text(description=f"起付线 {name}", placeholder="元", **num) for lv, name in self.LEVELS}
        self.rate_active = {lv: W.Text(description=f"比例 {name}", placeholder="0.85 或 85%", **num)
                            for lv, name in self.LEVELS}
        self.rate_retired = {lv: W.Text(description=f"退休 {name}", placeholder="0.9 或 90%", **num)
                             for lv, name in self.LEVELS}
        self.cap = W.Text(description="封顶线", placeholder="元；不设写 不封顶", **num)
        self.selfpay = W.Text(description="乙类先行自付", placeholder="0.1 或 10%", **num)
        self.crit_threshold = W.Text(description="大额/大病起付", placeholder="元", **num)
        self.crit_rate = W.Text(description="大额/大病比例", placeholder="0.9 或 90%", **num)
        self.crit_cap = W.Text(description="大额/大病限额", placeholder="元；不设写 不封顶", **num)
        self.button = W.Button(description="保存并计算", button_style="primary", icon="save")
        self.status = W.HTML()
        self.path = None
        self.book = self.base
        self.error = None
        self.explainer = BillExplainer(self.base, update=False, **bill)
        self.button.on_click(lambda _b: self.save())
        self.scheme.observe(self._on_scheme, names="value")
        self._on_scheme()
        notice = W.VBox([W.HTML("<b>通知</b>"), self.region, self.region_code, self.scheme, self.start, self.title,
                         self.doc_no, self.issuer, self.issued])
        inpatient = W.VBox([W.HTML("<b>住院</b>"), *self.deductible.values(), *self.rate_active.values(),
                            *self.rate_retired.values(), self.cap])
        other = W.VBox([W.HTML("<b>乙类、大额/大病</b>"), self.selfpay, self.crit_threshold, self.crit_rate,
                        self.crit_cap])
        self.widget = W.VBox([W.HTML("<h3>我的地区参数</h3>"), W.HBox([notice, inpatient, other]), self.button,
                              self.status, self.explainer.widget])
        if update:
            self.save()

    def _on_scheme(self, _change=None):
        employee = self.scheme.value == "职工"
        for lv, name in self.LEVELS:
            self.rate_active[lv].description = f"{'在职' if employee else '比例'} {name}"
            self.rate_retired[lv].layout.display = None if employee else "none"

    # -- the table file ----------------------------------------------------------------------------
    def table(self) -> tuple[str, dict]:
        """(file name, the table as a mapping) from the fields; raises ValueError naming a bad field.

        The layout is the starter of ``ybcalc tables new`` (``policy.starter.starter_text``), its 待填
        replaced by the fields: the form and the command write the same file. Parameters the form has no
        field for (普通门诊, 个人账户) and those left wholly empty are dropped, so the shipped value (or its
        ``missing`` entry) applies to them."""
        import yaml

        from .i18n import tr
        from .policy.schema import PLACEHOLDER
        from .policy.starter import starter_text
        name = self.region.value.strip()
        if not name:
            raise ValueError(tr("请填写地区", "give the region"))
        scheme = "employee" if self.scheme.value == "职工" else "resident"
        start = _form_date(self.start, tr("施行日期", "effective date"), required=True)
        file_name, text = starter_text(self.base, name, scheme, str(self.folder))
        starter = yaml.safe_load(text)
        t: dict = {"region": starter["region"], "scheme": starter["scheme"], "title": starter["title"]}
        if isinstance(t["region"], dict):             # a region neither the tables nor the division list know
            code = self.region_code.value.strip()
            if not (code.isdigit() and len(code) == 6):
                raise ValueError(tr(f"ybcalc 不认识地区 {name}：请填 6 位区划代码（如 510400）",
                                    f"ybcalc does not know region {name}: give its 6-digit division code (e.g. 510400)"))
            t["region"] = {**t["region"], "code": code}
        if starter.get("psn_types"):
            t["psn_types"] = starter["psn_types"]
        source = starter["sources"]["notice"]
        source.update(title=self.title.value.strip() or PLACEHOLDER, issuer=self.issuer.value.strip() or PLACEHOLDER,
                      date=_form_date(self.issued, tr("发文日期", "date of issue")) or PLACEHOLDER)
        if self.doc_no.value.strip():
            source["doc_no"] = self.doc_no.value.strip()
        else:
            source.pop("doc_no", None)
        t["sources"] = {"notice": source}

        level = lambda when: max(when["hosp_lv"]) if isinstance(when["hosp_lv"], list) else when["hosp_lv"]  # noqa: E731
        ratio = lambda w: _form_number(w, "ratio")                          # noqa: E731

        def filled(rules, field_of, parse, wrap=lambda v: v):
            """The starter's rules with the fields' values; None when every field is empty. An empty field
            among filled ones stays 待填 (that entry is missing until filled)."""
            vals = [parse(field_of(r["when"])) for r in rules]
            if all(v is None for v in vals):
                return None
            out = [{"when": r["when"], "value": wrap(PLACEHOLDER if v is None else v)} for r, v in zip(rules, vals)]
            return _merge_levels(out)

        def entry(param: dict, **values) -> list:
            return [{**param, "from": start, **values}]

        inpatient = starter["benefits"]["inpatient"]
        own: dict = {"med_types": inpatient["med_types"]}
        d = inpatient["deductible"][0]
        amounts = filled(d["amount"], lambda w: self.deductible[level(w)], lambda w: _form_number(w, "amount"))
        if amounts is not None:
            own["deductible"] = entry(d, amount=amounts)
        r = inpatient["ratio"][0]
        fields = lambda w: (self.rate_retired if w.get("psn_type") == "退休" else self.rate_active)[level(w)]  # noqa: E731
        groups = {}
        for rule in r["rates"]:
            groups.setdefault(rule["when"].get("psn_type"), []).append(rule)
        parts = {g: filled(rules, fields, ratio, lambda v: [v]) for g, rules in groups.items()}
        if any(p is not None for p in parts.values()):
            rates = []
            for g, p in parts.items():                # a group left wholly empty stays 待填
                rates += p if p is not None else _merge_levels([{**x, "value": [PLACEHOLDER]} for x in groups[g]])
            own["ratio"] = entry(r, rates=rates)
        cap = _form_number(self.cap, "cap")
        if cap is not None:
            own["cap"] = entry(inpatient["cap"][0], amount=cap)
        if len(own) > 1:
            t["benefits"] = {"inpatient": own}
        selfpay = _form_number(self.selfpay, "ratio")
        if selfpay is not None:
            t["selfpay_prop"] = entry(starter["selfpay_prop"][0], rate=selfpay)
        crit = [_form_number(self.crit_threshold, "amount"), _form_number(self.crit_rate, "ratio"),
                _form_number(self.crit_cap, "cap")]
        if any(v is not None for v in crit):
            threshold, rate, crit_cap = (PLACEHOLDER if v is None else v for v in crit)
            (payer, terms), = starter["critical_illness"].items()     # hifob (职工) or hifmi (居民)
            t["critical_illness"] = {payer: entry(terms[0], threshold=threshold, rates=[rate], cap=crit_cap)}
        return file_name, t

    def save(self):
        """Write the table file (keeping the file's other parameters), reload the tables with it and settle
        the bill; returns the path written (None when a field is wrong: ``.error`` says which)."""
        import yaml

        from .i18n import tr
        from .policy.loader import load_book
        from .policy.schema import PLACEHOLDER
        self.error = None
        try:
            file_name, t = self.table()
        except ValueError as exc:
            self.error = str(exc)
            self.status.value = _error_html(exc)
            return None
        path = self.folder / file_name
        merged = {}
        if path.exists():
            old = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if isinstance(old, dict):
                merged = old
        for k, v in t.items():
            if k in ("benefits", "critical_illness") and isinstance(merged.get(k), dict):
                for sub, val in v.items():
                    if k == "benefits" and isinstance(merged[k].get(sub), dict):
                        merged[k][sub].update({p: x for p, x in val.items()})
                    else:
                        merged[k][sub] = val
            elif k == "sources" and isinstance(merged.get(k), dict):
                old_notice = merged[k].get("notice")
                if isinstance(old_notice, dict):   # a source field left empty keeps what the file says
                    v = {**v, "notice": {**old_notice, **{f: x for f, x in v["notice"].items() if x != PLACEHOLDER}}}
                merged[k].update(v)
            else:
                merged[k] = v
        head = tr("# 由 notebook「我的地区参数」表单保存；可直接编辑。检查：ybcalc tables validate --tables {f}\n",
                  "# saved by the notebook form 我的地区参数; edit freely. Check: ybcalc tables validate --tables {f}\n")
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".partial")
        shown = self.folder.name if self.folder.is_absolute() else self.folder      # no machine's path in the file
        tmp.write_text(head.format(f=shown) + yaml.dump(merged, Dumper=_PlainDumper, allow_unicode=True,
                                                              sort_keys=False, default_flow_style=None, width=100), encoding="utf-8")
        tmp.replace(path)
        self.path = path
        try:
            self.book = load_book(self.folder)
        except ValueError as exc:             # the table as written does not validate: say where
            self.error = str(exc)
            self.status.value = _error_html(exc)
            return path
        ex = self.explainer
        ex.book = self.book
        opts = region_options(self.book)
        rid = self.book.region_id(self.region.value.strip())
        ex.region.options = opts
        ex.mdtrt_area.options = opts
        if rid is not None:
            ex.region.value = rid
        ex.scheme.value = self.scheme.value
        ex._refresh_choices()
        ex.update()
        self.status.value = tr(f"已保存 <code>{html.escape(str(path))}</code>，下面的账单按它结算。",
                               f"saved <code>{html.escape(str(path))}</code>; the bill below is settled with it.")
        notice = (merged.get("sources") or {}).get("notice") or {}
        unfilled = [label for key, label in (("title", "通知标题"), ("issuer", "发文单位"), ("date", "发文日期"))
                    if str(notice.get(key, PLACEHOLDER)) == PLACEHOLDER]
        if unfilled:                          # the loader treats every figure citing it as missing
            self.status.value += "<br><span style='color:#a60'>" + tr(
                f"通知的{'、'.join(unfilled)}未填：引用它的参数都按“待填”处理，不拿来结算。",
                f"the notice's {', '.join(unfilled)} not filled in: every figure citing it is treated as 待填 "
                "(not filled in) and not used.") + "</span>"
        return path


class _PlainDumper(yaml.SafeDumper):
    """YAML a person edits: the same date repeated, never as &id001 / *id001 anchors."""

    def ignore_aliases(self, data):
        return True


def _merge_levels(rules: list[dict]) -> list[dict]:
    """Rules that differ only by hospital level and give the same value become one rule (a notice that
    does not distinguish levels reads so in the file)."""
    out, seen = [], {}
    for r in rules:
        rest = {k: v for k, v in r["when"].items() if k != "hosp_lv"}
        key = repr(sorted(rest.items()))
        seen.setdefault(key, (rest, []))[1].append(r)
    for rest, group in seen.values():
        if len({repr(r["value"]) for r in group}) == 1:
            out.append({"when": rest, "value": group[0]["value"]} if rest else {"value": group[0]["value"]})
        else:
            out += group
    return out


def _form_number(w, kind: str):
    """A form field as a table value: None when empty; amounts in yuan, ratios 0..1 (85% → 0.85), a cap may
    be 不封顶. A value that cannot be read raises ValueError naming the field."""
    from decimal import Decimal, InvalidOperation

    from .i18n import tr
    s = str(w.value).strip().replace("，", "").replace(",", "").replace("％", "%")
    if not s:
        return None
    if kind == "cap" and s in ("不封顶", "不设", "unlimited"):
        return "unlimited"
    pct = kind == "ratio" and s.endswith("%")
    s = s.rstrip("%").removesuffix("元").strip()
    try:
        d = Decimal(s) / (100 if pct else 1)
    except InvalidOperation:
        raise ValueError(tr(f"{w.description}：{w.value!r} 不是数字", f"{w.description}: {w.value!r} is not a number")) \
            from None
    if d < 0 or (kind == "ratio" and d > 1):
        raise ValueError(tr(f"{w.description}：{w.value!r} 超出范围（比例 0–1 或 0%–100%，金额不为负）",
                            f"{w.description}: {w.value!r} out of range (a ratio 0..1 or 0%..100%, an amount ≥ 0)"))
    d = d.normalize()
    return int(d) if d == d.to_integral_value() else float(d)


def _form_date(w, label: str, required: bool = False):
    from .i18n import tr
    s = str(w.value or "").strip()
    if not s:
        if required:
            raise ValueError(tr(f"请填写{label}（YYYY-MM-DD）", f"give the {label} (YYYY-MM-DD)"))
        return None
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise ValueError(tr(f"{label} {s!r} 不是日期（YYYY-MM-DD）", f"{label} {s!r} is not a date (YYYY-MM-DD)")) \
            from None

"""Charts for the notebooks, widgets and ``ybcalc compare``: each function returns a matplotlib Figure.

The numbers come from ``ybcalc.scenarios`` (or a ``Settlement``); this module only draws. Figures are
made with ``matplotlib.figure.Figure`` rather than pyplot, so they do not pile up in pyplot's global
state (widgets redraw often) and need no display backend.

Chinese labels need a font with CJK glyphs, which a fresh Linux machine usually lacks: ``use_cjk_font()``
registers the Noto Sans CJK SC file that the ``mplfonts`` package ships (no download), or falls back to a
CJK font already installed on the system. Every plot function calls it.
"""
from __future__ import annotations

import importlib.util
import io
import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from . import codes

#: CJK families tried, in order, when the bundled font is not available.
SYSTEM_CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
                       "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "SimHei",
                       "Microsoft YaHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "STHeiti",
                       "Noto Sans CJK JP", "Noto Serif CJK SC", "AR PL UMing CN", "AR PL UKai CN")
MPLFONTS_FILE = "NotoSansCJKsc-Regular.otf"

COLORS = {"total": "#8c8c8c", "fund": "#3b7dd8", "big": "#2a9d8f", "maf": "#6ab04c", "acct": "#8e6bbf",
          "cash": "#d64541", "patient": "#e8833a", "fail": "#d9d9d9"}
LINESTYLES = ("-", "--", ":", "-.")

_font: str | None = None


def bundled_font_file() -> Path | None:
    """Path of mplfonts' Noto Sans CJK SC file, found without importing mplfonts (no side effects)."""
    spec = importlib.util.find_spec("mplfonts")
    if spec is None:
        return None
    for loc in spec.submodule_search_locations or []:
        p = Path(loc) / "fonts" / MPLFONTS_FILE
        if p.is_file():
            return p
    return None


def _system_cjk_family() -> str | None:
    names = {f.name for f in font_manager.fontManager.ttflist}
    for fam in SYSTEM_CJK_FAMILIES:
        if fam in names:
            return fam
    return None


def use_cjk_font() -> str | None:
    """Make Chinese text render in matplotlib; returns the font family used (None if none was found).

    Registers mplfonts' bundled Noto Sans CJK SC with ``fontManager.addfont`` and puts it first in
    ``rcParams['font.sans-serif']`` (Latin glyphs fall back to the next family); otherwise uses an
    installed system CJK font. Never downloads. Safe to call many times.
    """
    global _font
    if _font is None:
        path = bundled_font_file()
        if path is not None:
            try:
                font_manager.fontManager.addfont(str(path))
                _font = font_manager.FontProperties(fname=str(path)).get_name()
            except (OSError, RuntimeError, ValueError):       # unreadable file: try the system
                _font = None
        if _font is None:
            _font = _system_cjk_family()
        if _font is None:
            warnings.warn("no CJK font found: Chinese labels will show as boxes "
                          "(pip install mplfonts, or install fonts-noto-cjk)", stacklevel=2)
            return None
    rc = matplotlib.rcParams
    rc["font.family"] = ["sans-serif"]
    rc["font.sans-serif"] = [_font] + [f for f in rc["font.sans-serif"] if f != _font]
    rc["axes.unicode_minus"] = False
    return _font


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def save_png(fig: Figure, path, dpi: int = 100) -> Path:
    """Write ``fig`` as PNG (no timestamp/software metadata, so the same chart gives the same file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    return path


# ---------------------------------------------------------------------------------------------
# one bill
# ---------------------------------------------------------------------------------------------
def waterfall_data(settlement, mdtrt_id: str | None = None) -> list[tuple[str, float, str]]:
    """(label, yuan, colour key) from 医疗费总额 down to 个人现金, 大额/大病 combined."""
    from .explain import waterfall_steps
    if mdtrt_id is None:
        if len(settlement.raw) != 1:
            raise ValueError("several bills settled: name one with mdtrt_id=")
        mdtrt_id = str(settlement.raw["mdtrt_id"].iat[0])
    steps = dict(waterfall_steps(settlement, str(mdtrt_id)))
    return [("医疗费总额", steps["医疗费总额"], "total"), ("统筹基金", steps["统筹基金"], "fund"),
            ("大额/大病", steps["大额补助"] + steps["大病保险"], "big"), ("医疗救助", steps["医疗救助"], "maf"),
            ("个人账户", steps["个人账户"], "acct"), ("个人现金", steps["个人现金"], "cash")]


def waterfall(settlement, mdtrt_id: str | None = None, *, figsize=(7.5, 4.2)) -> Figure:
    """Where one bill's money went: 总费用, then what 统筹基金, 大额/大病, 医疗救助 and 个人账户 took
    off it, ending with what the patient pays in cash."""
    use_cjk_font()
    data = waterfall_data(settlement, mdtrt_id)
    b = settlement.raw
    row = b.iloc[0] if mdtrt_id is None else b.loc[b["mdtrt_id"].astype(str) == str(mdtrt_id)].iloc[0]
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    total = data[0][1]
    level = total
    xs = np.arange(len(data))
    for i, (label, amount, key) in enumerate(data):
        if i == 0:
            bottom, height = 0.0, amount
        elif i == len(data) - 1:
            bottom, height = 0.0, amount
        else:
            bottom, height = level - amount, amount
            level -= amount
        ax.bar(i, height, bottom=bottom, color=COLORS[key], width=0.62, edgecolor="white")
        share = f"\n{amount / total * 100:.1f}%" if total and i and amount else ""
        ax.text(i, bottom + height + total * 0.015, f"{amount:,.2f}{share}", ha="center", va="bottom", fontsize=8.5)
        if i < len(data) - 1:       # dotted connector at the amount still to be paid
            ax.plot([i + 0.31, i + 0.69], [level, level], color="#888", lw=0.8, ls=":")
    ax.set_xticks(xs, [d[0] for d in data])
    ax.set_ylabel("元")
    ax.set_ylim(0, total * 1.18 if total else 1)
    ax.spines[["top", "right"]].set_visible(False)
    visit = codes.MED_TYPE_LABEL.get(str(row["med_type"]), (row["med_type"],))[0]
    lv = codes.HOSP_LV_LABEL.get(int(row["hosp_lv"]), ("",))[0]
    who = f"{settlement.book.region_label(row['region'])} {codes.SCHEME_LABEL[row['scheme']][0]} " \
          f"{row['psn_type'] or ''}".strip()
    ax.set_title(f"{row['mdtrt_id']}：{who} · {visit} · {lv}", fontsize=11)
    return fig


# ---------------------------------------------------------------------------------------------
# scenarios
# ---------------------------------------------------------------------------------------------
def scenario_bars(table: pd.DataFrame, *, title: str | None = None, figsize=None) -> Figure:
    """Fund vs patient share of the same bill per region × member group × hospital level (a
    ``compare_scenarios`` table). Scenarios that cannot be settled are drawn as hatched grey bars."""
    use_cjk_font()
    from .scenarios import HOSP_LEVELS
    t = table.reset_index(drop=True)
    regions = list(dict.fromkeys(t["region"]))
    n = len(t)
    fig = Figure(figsize=figsize or (min(16.0, max(6.0, 0.5 * n + 0.4 * len(regions) + 2)), 4.6), layout="constrained")
    ax = fig.add_subplot()
    x, pos, ticks, group_mid = 0.0, [], [], []
    for reg in regions:
        idx = t.index[t["region"] == reg]
        start = x
        for i in idx:
            pos.append(x)
            r = t.loc[i]
            lv = HOSP_LEVELS.get(int(r["hosp_lv"]), str(r["hosp_lv"]))
            ticks.append(f"{r['status']}\n{lv}")
            x += 1
        group_mid.append(((start + x - 1) / 2, reg))
        x += 0.8
    pos = np.array(pos)
    settled = t["settled"].to_numpy(bool)
    fund = np.nan_to_num(t["fund_share"].to_numpy(float)) * 100
    pat = np.nan_to_num(t["patient_share"].to_numpy(float)) * 100
    if settled.any():       # an empty series would still enter the legend, in the default blue
        ax.bar(pos[settled], fund[settled], color=COLORS["fund"], width=0.75, label="基金支付")
        ax.bar(pos[settled], pat[settled], bottom=fund[settled], color=COLORS["patient"], width=0.75, label="个人负担")
    if (~settled).any():
        ax.bar(pos[~settled], 100, color=COLORS["fail"], hatch="//", edgecolor="#aaa", width=0.75, label="无法结算")
    # with a members file (compare --members): a scenario whose member is not eligible on the bill's date
    # (waiting period, not enrolled) says why inside its bar
    refused = np.zeros(n, bool)
    if "eligible" in t.columns:
        refused = settled & (t["eligible"].to_numpy(dtype=object) == False)      # noqa: E712 (None: unknown)
    why = (t["eligibility"].fillna("").astype(str).str.split("：", n=1).str[-1].to_numpy(dtype=object)
           if "eligibility" in t.columns else np.full(n, "", dtype=object))
    for p, ok, f, pa, amt, no, w in zip(pos, settled, fund, pat, t["psn_part_amt"].to_numpy(float), refused, why):
        if no:
            ax.text(p, 50, w, ha="center", va="center", color="white", fontsize=8, rotation=90)
        if ok and not no:
            ax.text(p, f / 2, f"{f:.0f}%", ha="center", va="center", color="white", fontsize=8)
        if ok:
            ax.text(p, 101, f"{amt:,.0f}", ha="center", va="bottom", fontsize=7, rotation=90 if n > 12 else 0)
        if not ok:
            ax.text(p, 50, "无法结算", ha="center", va="center", fontsize=8, rotation=90, color="#555")
    ax.set_xticks(pos, ticks, fontsize=8)
    for mid, reg in group_mid:
        ax.annotate(reg, xy=(mid, 0), xycoords=("data", "axes fraction"), xytext=(0, -34),
                    textcoords="offset points", ha="center", va="top", fontsize=11)
    ax.set_ylim(0, 118)
    ax.set_yticks([0, 25, 50, 75, 100], ["0", "25%", "50%", "75%", "100%"])
    ax.set_ylabel("占医疗费总额")
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper right", ncols=3, fontsize=8, frameon=False, bbox_to_anchor=(1, 1.0))
    if title is None and len(t) and t["settled"].any():
        tot = t.loc[t["settled"], "medfee_sumamt"].iat[0]
        visit = t["med_type"].iat[0] if "med_type" in t else ""
        title = f"同一张账单（{visit} {tot:,.0f} 元）在各地的分担；柱顶数字为个人负担（元）"
        if t.attrs.get("psn_no"):
            title += f"\n按人员 {t.attrs['psn_no']} 的参保信息（参保期、待遇等待期、激励）"
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def oop_curves(curves: pd.DataFrame, *, figsize=(10, 4.2), title: str | None = None) -> Figure:
    """Out-of-pocket against total cost (an ``oop_curve_grid`` frame): colour = region, dash = member group.

    Left: 个人负担 in 万元; right: its share of the total. Curves that cannot be settled are listed
    under the chart with their reason.
    """
    use_cjk_font()
    fig = Figure(figsize=figsize, layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    regions = list(dict.fromkeys(curves["region"]))
    statuses = list(dict.fromkeys(curves["status"]))
    cmap = matplotlib.colormaps["tab10"]
    failed = []
    for (reg, sch, st, lv), g in curves.groupby(["region", "scheme", "status", "hosp_lv"], sort=False):
        ok = g["settled"].to_numpy(bool)
        if not ok.any():
            failed.append(f"{reg} {st}：{str(g['reason'].iat[0]).split(' — ')[0][:70]}")
            continue
        color = cmap(regions.index(reg) % 10)
        ls = LINESTYLES[statuses.index(st) % len(LINESTYLES)]
        label = f"{reg} {st}" + (f"（{g['psn_type'].iat[0]}）" if g["psn_type"].iat[0] not in ("", st) else "")
        x = g["total"].to_numpy(float)[ok] / 10000
        ax1.plot(x, g["psn_part_amt"].to_numpy(float)[ok] / 10000, color=color, ls=ls, lw=1.6, label=label)
        ax2.plot(x, g["patient_share"].to_numpy(float)[ok] * 100, color=color, ls=ls, lw=1.6)
    ax1.set_xlabel("医疗费总额（万元）")
    ax1.set_ylabel("个人负担（万元）")
    ax2.set_xlabel("医疗费总额（万元）")
    ax2.set_ylabel("个人负担占比（%）")
    ax2.set_ylim(0, 100)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlim(0, None)
    ax1.set_ylim(0, None)
    if ax1.lines:
        ax1.legend(fontsize=8, frameon=False, ncols=1 if len(ax1.lines) <= 8 else 2)
    if failed:
        note = "\n".join(["无法结算："] + failed[:6] + (["…"] if len(failed) > 6 else []))
        fig.text(0.01, -0.01, note, fontsize=7.5, color="#a33", va="top")
    if title is None and len(curves):
        lv = codes.HOSP_LV_LABEL.get(int(curves["hosp_lv"].iat[0]), ("",))[0]
        title = f"个人负担随医疗费总额变化（住院 · {lv}医院 · 每点为当年首次就诊）"
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# ---------------------------------------------------------------------------------------------
# batch report
# ---------------------------------------------------------------------------------------------
def _group_labels(bills: pd.DataFrame, by) -> pd.Series:
    return bills[list(by)].astype(str).agg(" · ".join, axis=1)


def share_distribution(bills: pd.DataFrame, by=("region", "scheme", "visit"), *, figsize=None) -> Figure:
    """Distribution of the patient's share (个人负担 / 医疗费总额) per group of a ``bill_shares`` frame:
    a box per group with every bill as a dot, and the number of bills."""
    use_cjk_font()
    labels = _group_labels(bills, by)
    groups = list(dict.fromkeys(labels))
    fig = Figure(figsize=figsize or (7.5, 0.42 * len(groups) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    data = [bills.loc[labels == g, "patient_share"].dropna().to_numpy() * 100 for g in groups]
    if groups:
        orient = ({"orientation": "horizontal"} if tuple(int(p) for p in matplotlib.__version__.split(".")[:2])
                  >= (3, 10) else {"vert": False})
        ax.boxplot(data, widths=0.55, showfliers=False, medianprops={"color": COLORS["cash"]},
                   boxprops={"color": "#555"}, **orient)
        rng = np.random.default_rng(0)
        for i, d in enumerate(data, start=1):
            ax.scatter(d, i + rng.uniform(-0.15, 0.15, len(d)), s=14, color=COLORS["patient"], alpha=0.8, zorder=3)
            ax.text(101, i, f"n={len(d)}", va="center", fontsize=8, color="#555")
        ax.set_yticks(range(1, len(groups) + 1), groups, fontsize=9)
    ax.set_xlim(0, 108)
    ax.set_xlabel("个人负担占医疗费总额（%）")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("各地区 · 险种 · 就诊类型的个人负担占比分布", fontsize=11)
    return fig


def group_split_bars(summary: pd.DataFrame, by=("region", "scheme", "visit"), *, figsize=None) -> Figure:
    """Total fund vs patient payment per group of a ``share_summary`` frame (万元, stacked)."""
    use_cjk_font()
    labels = _group_labels(summary, by).to_list()
    fig = Figure(figsize=figsize or (7.5, 0.42 * len(labels) + 1.4), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(labels))
    fund = summary["fund"].to_numpy(float) / 10000
    pat = summary["patient"].to_numpy(float) / 10000
    ax.barh(y, fund, color=COLORS["fund"], label="基金支付")
    ax.barh(y, pat, left=fund, color=COLORS["patient"], label="个人负担")
    for yi, f, p, s in zip(y, fund, pat, summary["patient_share"].to_numpy(float)):
        ax.text(f + p, yi, f" 个人 {s * 100:.1f}%", va="center", fontsize=8)
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()
    ax.set_xlabel("万元")
    ax.set_xlim(0, max(1e-9, float((fund + pat).max(initial=0))) * 1.25)
    ax.legend(fontsize=8, frameon=False, loc="lower right")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title("各组基金支付与个人负担合计", fontsize=11)
    return fig


def parameter_chart(table: pd.DataFrame, *, title: str | None = None, figsize=None) -> Figure:
    """A ``policy_parameter_table`` as a grid: region × scheme rows, one column per year, each cell the
    value in force, coloured by its source (official/institution, secondary only, missing)."""
    use_cjk_font()
    shade = {"sourced": "#cfe8d5", "secondary": "#fbe7b5", "partial": "#f6d0b8", "missing": "#e6e6e6"}
    keys = list(dict.fromkeys(zip(table["region"], table["scheme"])))
    years = sorted(table["year"].unique())
    fig = Figure(figsize=figsize or (2.2 + 2.6 * len(years), 0.3 * len(keys) + 1.3), layout="constrained")
    ax = fig.add_subplot()
    for r, (reg, sch) in enumerate(keys):
        g = table[(table["region"] == reg) & (table["scheme"] == sch)]
        for c, y in enumerate(years):
            cells = g[g["year"] == y]
            if not len(cells):
                continue
            status = "missing" if (cells["status"] == "missing").all() else cells["status"].iat[-1]
            texts = ["缺失" if s == "missing" else str(v) for v, s in zip(cells["value"], cells["status"])]
            text = " → ".join(dict.fromkeys(texts))
            if len(text) > 24:
                text = text[:23] + "…"
            ax.add_patch(matplotlib.patches.Rectangle((c, r), 1, 1, facecolor=shade.get(status, "#fff"),
                                                      edgecolor="white", lw=1.5))
            ax.text(c + 0.5, r + 0.5, text, ha="center", va="center", fontsize=7.5,
                    color="#777" if status == "missing" else "#222")
    ax.set_xlim(0, len(years))
    ax.set_ylim(len(keys), 0)
    ax.set_xticks(np.arange(len(years)) + 0.5, [str(y) for y in years])
    ax.xaxis.tick_top()
    ax.set_yticks(np.arange(len(keys)) + 0.5, [f"{reg} {sch}" for reg, sch in keys], fontsize=8.5)
    ax.tick_params(length=0)
    for sp in ax.spines.values():
        sp.set_visible(False)
    handles = [Patch(color=shade["sourced"], label="官方/机构来源"), Patch(color=shade["secondary"], label="仅二手来源"),
               Patch(color=shade["partial"], label="部分人群/医院无规则"), Patch(color=shade["missing"], label="无已核实数值")]
    ax.legend(handles=handles, fontsize=7.5, frameon=False, loc="upper center", bbox_to_anchor=(0.5, 0.0),
              ncols=4)
    if title:
        ax.set_title(title, fontsize=11)
    return fig


# ---------------------------------------------------------------------------------------------
# a member's year (notebook 05 “一年的就医”)
# ---------------------------------------------------------------------------------------------
SPAN_COLORS = ("#cfe3f7", "#d5ecd4", "#f6e3c8", "#e6dcf2")


def member_year(year, *, figsize=(10, 6.8), title: str | None = None) -> Figure:
    """One member's year (a ``ybcalc.member_year.MemberYear``) on one time axis, three bands:

    参保: enrolment spans (参保地 · 险种) and waiting periods (hatched); 账单: each bill's cost split into
    what the funds paid, the member's own account, a relative's account (共济) and cash, a bill the funds
    refused marked with why; 累计: the deductible paid so far and the personal account's balance after each
    payment from it (payments for relatives' bills marked), with the pooled fund against its cap."""
    import matplotlib.dates as mdates
    use_cjk_font()
    fig = Figure(figsize=figsize, layout="constrained")
    ax_span, ax_bill, ax_sum = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [0.9, 2.2, 1.6]})
    y0, y1 = np.datetime64(f"{year.year}-01-01"), np.datetime64(f"{year.year + 1}-01-01")
    one = np.timedelta64(1, "D")

    # enrolment and waiting periods
    sp = year.spans
    ax_span.set_ylim(0, 1)
    ax_span.set_yticks([])
    if not len(sp):
        ax_span.text(0.5, 0.5, "未提供参保信息（按一直参保结算）", transform=ax_span.transAxes, ha="center",
                     va="center", fontsize=9, color="#555")
    regions = list(dict.fromkeys(sp["region"])) if len(sp) else []
    for r in sp.itertuples():
        b, e = np.datetime64(r.begin, "D"), np.datetime64(r.end, "D") + one
        ax_span.barh(0.62, e - b, left=b, height=0.5, color=SPAN_COLORS[regions.index(r.region) % len(SPAN_COLORS)],
                     edgecolor="#6a8caf")
        ax_span.text(b + (e - b) / 2, 0.62, f"参保 {r.region} {r.scheme}", ha="center", va="center", fontsize=9)
        if r.wait_months >= 0 and not pd.isna(r.wait_from):
            w0 = max(np.datetime64(r.wait_from, "D"), y0)
            w1 = min(np.datetime64(r.benefit_from, "D"), y1)
            if w1 > w0:
                ax_span.barh(0.18, w1 - w0, left=w0, height=0.3, color="#f4c7c3", hatch="//", edgecolor="#c0392b")
                last = np.datetime64(r.benefit_from, "D") - one
                ax_span.text(w0 + (w1 - w0) / 2, 0.18, f"待遇等待期 {r.wait_months} 个月（至 {last}）", ha="center",
                             va="center", fontsize=8, color="#8e1b10")
    ax_span.set_ylabel("参保", rotation=0, ha="right", va="center")

    # bills
    b = year.bills
    if len(b):
        d = b["date"].to_numpy("datetime64[D]")
        width = np.timedelta64(6, "D")
        parts = [("fund", "基金支付", COLORS["fund"]), ("acct", "个人账户", COLORS["acct"]),
                 ("family", "共济账户（家人）", COLORS["maf"]), ("cash", "个人现金", COLORS["cash"])]
        bottom = np.zeros(len(b))
        for col, label, color in parts:
            v = b[col].to_numpy(float)
            if (v > 0).any():
                ax_bill.bar(d, v, width, bottom=bottom, color=color, label=label, align="center")
            bottom += v
        top = b["total"].max()
        for x, tot, ok, why, fam, by in zip(d, b["total"], b["eligible"], b["eligibility"], b["family"],
                                            b["paid_by"]):
            ax_bill.text(x, tot + top * 0.02, f"{tot:,.0f}", ha="center", va="bottom", fontsize=7)
            if not ok:
                reason = str(why).split("：", 1)[-1] if why else "不享受待遇"
                ax_bill.text(x, tot + top * 0.09, "× " + reason, ha="center", va="bottom", fontsize=7.5,
                             color="#c0392b")
            if fam > 0:                      # above the refusal note when the bill has both
                ax_bill.text(x, tot + top * (0.09 if ok else 0.16), f"共济：{by}", ha="center", va="bottom", fontsize=7.5,
                             color="#2e7d32")
        ax_bill.set_ylim(0, top * 1.25)
        ax_bill.legend(loc="upper left", fontsize=8, frameon=False, ncols=4)
    else:
        ax_bill.text(0.5, 0.5, "本年无账单", transform=ax_bill.transAxes, ha="center", va="center", color="#555")
    ax_bill.set_ylabel("每张账单（元）")

    # running totals
    if len(b):
        d = b["date"].to_numpy("datetime64[D]")
        xs = np.r_[y0, d, y1 - one]
        ded = b["deductible_so_far"].to_numpy(float)
        ax_sum.step(xs, np.r_[0, ded, ded[-1]], where="post", color=COLORS["patient"], lw=1.8, label="起付线累计")
        hit = b["cap_reached"].to_numpy(bool)
        if hit.any():
            ax_sum.scatter(d[hit], ded[hit], marker="*", s=120, color="#c0392b", zorder=5, label="达到封顶线")
    a = year.account
    if year.opening_balance is not None and len(a):
        ad = a["date"].to_numpy("datetime64[D]")
        bal = a["balance"].to_numpy(float)
        ax_sum.step(np.r_[y0, ad, y1 - one], np.r_[year.opening_balance, bal, bal[-1]], where="post",
                    color=COLORS["acct"], lw=1.8, label="个人账户余额")
        other = a["psn_no"].to_numpy(dtype=object) != year.psn_no
        if other.any():
            ax_sum.scatter(ad[other], bal[other], color=COLORS["maf"], zorder=5, label="为家人支付")
            for x, v, who, paid in zip(ad[other], bal[other], a["psn_no"][other], a["paid"][other]):
                ax_sum.annotate(f"为 {who} 付 {paid:,.0f}", (x, v), xytext=(4, 6), textcoords="offset points",
                                fontsize=7, color="#2e7d32")
    elif year.opening_balance is not None:
        ax_sum.step([y0, y1 - one], [year.opening_balance] * 2, where="post", color=COLORS["acct"], lw=1.8,
                    label="个人账户余额")
    if len(b):
        capped = b[b["cap"].notna() & (b["cap"] > 0)]
        if len(capped):          # the cap the year came closest to
            last = capped.iloc[int(np.argmax(capped["fund_so_far"].to_numpy(float) / capped["cap"].to_numpy(float)))]
            ax_sum.text(0.99, 0.95, f"统筹基金本年度累计 {last['fund_so_far']:,.0f} 元 / 最高支付限额 {last['cap']:,.0f} 元"
                        f"（{last['visit']}，{last['region']}）", transform=ax_sum.transAxes, ha="right", va="top",
                        fontsize=8, color="#333")
    ax_sum.set_ylim(0, max(1.0, ax_sum.get_ylim()[1]) * 1.3)       # room for the legend and the cap's line
    ax_sum.set_ylabel("累计（元）")
    if ax_sum.lines or ax_sum.collections:
        ax_sum.legend(loc="upper left", fontsize=8, frameon=False, ncols=4)

    for ax in (ax_span, ax_bill, ax_sum):
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", alpha=0.25)
    ax_sum.set_xlim(y0, y1)
    ax_sum.xaxis.set_major_locator(mdates.MonthLocator())
    ax_sum.xaxis.set_major_formatter(mdates.DateFormatter("%-m月"))
    if title is None:
        title = f"{year.psn_no} 的 {year.year} 年：参保、待遇等待期、每张账单与累计"
    if title:
        fig.suptitle(title, fontsize=11)
    return fig

"""Write, execute and clean the notebooks in notebooks/ (nbval checks their stored outputs).

    python tools/build_notebooks.py            # write + execute + strip
    python tools/build_notebooks.py --no-run   # only write the unexecuted notebooks
    python tools/build_notebooks.py --images   # also redraw the example charts in docs/img/

Cells tagged ``nbval-ignore-output`` are run but not compared by ``pytest --nbval``: the set-up cell,
widget cells and chart cells. Widget and chart cells are stored with no output (widget views need live
kernel state; images would make the files large and change with every matplotlib release — example
charts are in docs/img). All other outputs — rounded tables and text — are stored and compared. After
execution the script also removes widget state, execution timing metadata and the kernel's version
details, so the stored notebooks are the same on every run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
IGNORE = "nbval-ignore-output"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

SETUP = """\
%matplotlib inline
import pandas as pd
import ybcalc
from ybcalc import scenarios as S
from ybcalc import plotting
from ybcalc.plotting import use_cjk_font
_ = use_cjk_font()          # Chinese labels in charts (mplfonts' Noto Sans CJK SC, or a system CJK font)
book = ybcalc.load_tables()
pd.set_option("display.max_colwidth", 80)"""


def md(text):
    return ("md", text, ())


def code(text, *tags):
    return ("code", text, tags)


def widget(text):
    return ("widget", text, (IGNORE,))


def chart(text):
    return ("chart", text, (IGNORE,))


NOTEBOOKS = {
    "01_bill_explained.ipynb": [
        md("# 一张账单是怎么结算的\n\n"
           "Pick a member, a visit and the amounts by catalogue class (甲/乙/丙 and an item the national "
           "catalogue never pays), press **计算**: the widget shows the settlement fields, every step of the "
           "explanation with the rule and its source, and where the money went.\n\n"
           "The cells after the widget settle one fixed bill as plain output, so `pytest --nbval` checks the numbers."),
        code(SETUP, IGNORE),
        widget("from ybcalc.widgets import BillExplainer\n\nui = BillExplainer(book)\nui.widget"),
        md("## 同一张账单，固定输入\n\n北京职工，退休，66 岁，三级医院住院，2025-06-01：甲类 20,000、乙类 15,000（先行自付 10%）、"
           "丙类 3,000、陪护费 500（国家目录不予支付），个人账户余额 2,000 元。"),
        code('bill = S.bill_from_amounts(20000, 15000, 3000, 500, class_b_selfpay=0.10,\n'
             '                            region="北京", scheme="职工", psn_type="退休", age=66, med_type="住院",\n'
             '                            hosp_lv=3, date="2025-06-01", mdtrt_id="DEMO-1", psn_no="M1")\n'
             'pd.DataFrame(bill)[["item_name", "chrgitm_lv", "selfpay_prop", "det_item_fee_sumamt"]]'),
        code('settlement = ybcalc.settle(bill, book, accounts={"M1": 2000})\nS.key_fields(settlement)'),
        code("print(S.explanation_text(settlement.explain()))"),
        chart("plotting.waterfall(settlement)"),
        md("## 在职 vs 退休\n\nThe same lines for an employed member (45 岁): 退休 pays less."),
        code('t = S.compare_scenarios(bill, ["北京"], ["在职", "退休"], [3], "2025-06-01", book)\n'
             'S.display_table(t)'),
    ],
    "02_scenarios.ipynb": [
        md("# 同一张账单在各地、各类人员、各级医院\n\n"
           "A 50,000 元 inpatient bill (30% 乙类 with 10% 先行自付, 5% 丙类, 1% 不予支付) settled in each region × "
           "member group × hospital level, and out-of-pocket curves from 0 to 50 万. Scenarios that cannot be "
           "settled stay in the table with the reason (a parameter with no sourced value)."),
        code(SETUP, IGNORE),
        widget("from ybcalc.widgets import ScenarioComparer\n\n"
               'ui = ScenarioComparer(book, regions=["北京", "上海", "杭州", "深圳", "广州"], statuses=["在职", "退休"])\n'
               "ui.widget"),
        md("## 情形表"),
        code('bill = S.sample_bill(50000, class_b_share=0.3, self_pay_share=0.05, excluded=0.01)\n'
             'regions = ["北京", "上海", "杭州", "深圳", "广州", "莆田"]\n'
             'table = S.compare_scenarios(bill, regions, ["在职", "退休", "居民"], [2, 3], "2025-06-01", book)\n'
             "S.display_table(table)"),
        code('for r in table[~table["settled"]].drop_duplicates(["region", "scheme"]).itertuples():\n'
             '    print(f"{r.region} {r.scheme}: {r.reason[:110]}")'),
        chart('plotting.scenario_bars(table[table["hosp_lv"] == 3])'),
        md("## 个人负担曲线（0–50 万）\n\nOne member per point (a first admission of the year), all points settled in one call."),
        code('curves = S.oop_curve_grid(["北京", "上海", "杭州", "深圳", "广州"], ["在职", "退休"], hosp_lv=3,\n'
             '                          date="2025-06-01", book=book)\n'
             "S.curve_summary(curves)"),
        chart("plotting.oop_curves(curves)"),
    ],
    "03_batch_report.ipynb": [
        md("# 批量评分报告\n\n"
           "Score a file of bills (here `examples/bills.csv` with `examples/accounts.csv`): how much of the cost "
           "stays with the patient, by region, scheme and visit type. Bills that cannot be settled are listed "
           "with the reason, never dropped."),
        code(SETUP, IGNORE),
        widget("from ybcalc.widgets import BatchReport\n\n"
               'ui = BatchReport("../examples/bills.csv", book, accounts="../examples/accounts.csv")\nui.widget'),
        md("## 同一文件，表格输出"),
        code("from ybcalc.batch import read_bills, score_frame\nfrom ybcalc.widgets import read_accounts\n\n"
             'df, rows = read_bills("../examples/bills.csv")\n'
             'result = score_frame(df, book, row_numbers=rows, source="examples/bills.csv",\n'
             '                     state=read_accounts("../examples/accounts.csv"))\n'
             "print(result.summary())"),
        code("bills = S.bill_shares(result.settlement)\n"
             'summary = S.share_summary(bills, ("region", "scheme", "visit"))\n'
             'S.display_table(summary, columns=("region", "scheme", "visit", "bills", "total", "fund", "patient",\n'
             '                                  "patient_share", "median_share"))'),
        code("S.reject_summary(result.rejects)"),
        md("## 达到封顶线或获得大病/大额支付的参保人\n\n"
           "Members whose year reached the pooled fund's cap, or drew 大病保险 / 大额补助 payments."),
        code("S.members_at_limits(result.settlement)"),
        chart("plotting.share_distribution(bills)"),
        chart("plotting.group_split_bars(summary)"),
    ],
    "04_policy_tables.ipynb": [
        md("# 政策参数：各地 × 各年\n\n"
           "Each value with the document it rests on and that document's grade (官方 / 机构转载 / 二手); values "
           "with no sourced number are shown as missing, with what was searched."),
        code(SETUP, IGNORE),
        widget("from ybcalc.widgets import ParameterBrowser\n\nui = ParameterBrowser(book)\nui.widget"),
        md("## 住院起付线（三级医院；职工在职，居民取成年组）"),
        code('deductible = S.policy_parameter_table(book, "inpatient.deductible", hosp_lv=3, years=(2023, 2024, 2025))\n'
             "S.parameter_matrix(deductible)"),
        chart('plotting.parameter_chart(deductible, title="住院起付线（三级医院）")'),
        md("## 住院支付比例与最高支付限额"),
        code('S.parameter_matrix(S.policy_parameter_table(book, "inpatient.ratio", hosp_lv=3))'),
        code('S.parameter_matrix(S.policy_parameter_table(book, "inpatient.cap", hosp_lv=3))'),
        md("## 来源与缺失"),
        code('sourced = deductible[deductible["status"] != "missing"]\n'
             'sourced.drop_duplicates(["region", "scheme", "source"])[["region", "scheme", "source", "issuer", "source_date", "grade", "url"]]'),
        code('missing = deductible[deductible["status"] == "missing"].drop_duplicates(["region", "scheme"])\n'
             'for r in missing.itertuples():\n'
             '    print(f"{r.region} {r.scheme} ({r.year}) ✖ {r.note}")'),
    ],
}


def build(name: str, spec) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                   "language_info": {"name": "python"}}
    stem = name.split("_")[0]
    for i, (kind, text, tags) in enumerate(spec):
        cell = new_markdown_cell(text) if kind == "md" else new_code_cell(text)
        cell.id = f"nb{stem}-{i:02d}"
        if tags:
            cell.metadata["tags"] = list(tags)
        if kind in ("widget", "chart"):
            cell.metadata["ybcalc_strip"] = True
        nb.cells.append(cell)
    return nb


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop widget views/state, timing metadata and kernel version details; fail on error outputs."""
    nb.metadata.pop("widgets", None)
    nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        cell.metadata.pop("scrolled", None)
        if cell.cell_type != "code":
            continue
        if cell.metadata.pop("ybcalc_strip", False):
            cell.outputs = []           # widget views / images: not stored (see docs/img for the charts)
            continue
        kept = []
        for out in cell.outputs:
            if out.get("output_type") == "error":
                raise SystemExit(f"error output in cell {cell.id}: {out.get('ename')}: {out.get('evalue')}")
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                raise SystemExit(f"stderr output in cell {cell.id}: {out.get('text')[:300]}")
            data = out.get("data", {})
            if WIDGET_MIME in data:
                continue
            kept.append(out)
        cell.outputs = kept
    return nb


def write_images(out_dir: Path = ROOT / "docs" / "img") -> list[Path]:
    """The example charts shown in the docs, made from the same calls as the notebooks."""
    import ybcalc
    from ybcalc import plotting
    from ybcalc import scenarios as S
    from ybcalc.batch import read_bills, score_frame
    from ybcalc.widgets import read_accounts

    plotting.use_cjk_font()
    book = ybcalc.load_tables()
    bill = S.bill_from_amounts(20000, 15000, 3000, 500, region="北京", scheme="职工", psn_type="退休", age=66,
                               med_type="住院", hosp_lv=3, date="2025-06-01", mdtrt_id="DEMO-1", psn_no="M1")
    st = ybcalc.settle(bill, book, accounts={"M1": 2000})
    sample = S.sample_bill(50000, class_b_share=0.3, self_pay_share=0.05, excluded=0.01)
    table = S.compare_scenarios(sample, ["北京", "上海", "杭州", "深圳", "广州", "莆田"], ["在职", "退休", "居民"], [3],
                                "2025-06-01", book)
    curves = S.oop_curve_grid(["北京", "上海", "杭州", "深圳", "广州"], ["在职", "退休"], 3, date="2025-06-01",
                              book=book)
    df, rows = read_bills(ROOT / "examples" / "bills.csv")
    res = score_frame(df, book, row_numbers=rows, state=read_accounts(ROOT / "examples" / "accounts.csv"))
    bills = S.bill_shares(res.settlement)
    deductible = S.policy_parameter_table(book, "inpatient.deductible", hosp_lv=3)
    figs = {"waterfall.png": plotting.waterfall(st), "scenario_bars.png": plotting.scenario_bars(table),
            "oop_curves.png": plotting.oop_curves(curves), "batch_share_distribution.png":
            plotting.share_distribution(bills), "batch_split.png": plotting.group_split_bars(S.share_summary(bills)),
            "parameter_deductible.png": plotting.parameter_chart(deductible, title="住院起付线（三级医院）")}
    written = []
    for name, fig in figs.items():
        path = plotting.save_png(fig, out_dir / name, dpi=80)
        written.append(path)
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-run", action="store_true", help="write the notebooks without executing them")
    ap.add_argument("--images", action="store_true", help="also write the example charts to docs/img/")
    ap.add_argument("names", nargs="*", help="only these notebooks (file names)")
    args = ap.parse_args(argv)
    if args.images:
        write_images()
    NB_DIR.mkdir(exist_ok=True)
    for name, spec in NOTEBOOKS.items():
        if args.names and name not in args.names:
            continue
        path = NB_DIR / name
        nb = build(name, spec)
        # the widget marker survives execution so that clean() knows which outputs to drop
        nbformat.write(nb, path)
        if args.no_run:
            print(f"wrote {path.relative_to(ROOT)}")
            continue
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                        "--ExecutePreprocessor.timeout=600", str(path)], check=True, cwd=NB_DIR)
        nb = clean(nbformat.read(path, as_version=4))
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(f"built {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
from ybcalc import display as D
from ybcalc import scenarios as S
from ybcalc import plotting
from ybcalc.i18n import set_lang
from ybcalc.plotting import use_cjk_font
set_lang("zh")              # 说明、原因和提示用中文
_ = use_cjk_font()          # 图中的中文（mplfonts 的 Noto Sans CJK SC，或系统自带的中文字体）
book = ybcalc.load_tables()"""


def md(text):
    return ("md", text, ())


def code(text, *tags):
    return ("code", text, tags)


def widget(text):
    return ("widget", text, (IGNORE,))


def chart(text):
    return ("chart", text, (IGNORE,))


# Each notebook: a Chinese title and what it shows, the set-up cell, the form (widget) for one's own
# numbers, then a fixed worked case whose outputs are stored. Cells are grouped by section, so that a
# notebook's sections can be added or moved as whole lists.
BILL_EXPLAINED = [
    md("# 一张账单是怎么结算的\n\n"
       "在下面的表单里选择参保人和就诊情况，按目录类别填写金额（甲类、乙类、丙类，以及国家目录不予支付的项目），"
       "点 **计算**：表单显示结算结果、每一步的计算规则及其来源，以及钱的去向。\n\n"
       "表单之后是一个固定的例子，把一张账单从头算到尾。"),
    code(SETUP, IGNORE),
    widget("from ybcalc.widgets import BillExplainer\n\nui = BillExplainer(book)\nui.widget"),
]
BILL_EXAMPLE = [
    md("## 例子：北京职工，退休，三级医院住院\n\n"
       "66 岁，2025-06-01 出院结算：甲类 20,000 元、乙类 15,000 元（先行自付 10%）、丙类 3,000 元、"
       "陪护费 500 元（国家目录不予支付），个人账户余额 2,000 元。账单明细："),
    code('bill = S.bill_from_amounts(20000, 15000, 3000, 500, class_b_selfpay=0.10,\n'
         '                            region="北京", scheme="职工", psn_type="退休", age=66, med_type="住院",\n'
         '                            hosp_lv=3, date="2025-06-01", mdtrt_id="DEMO-1", psn_no="M1")\n'
         "D.bill_lines(bill)"),
    md("结算结果（元）："),
    code('settlement = ybcalc.settle(bill, book, accounts={"M1": 2000})\nD.table(S.key_fields(settlement))'),
    md("每一步的计算、所用的参数及其来源："),
    code("print(S.explanation_text(settlement.explain()))"),
    chart("plotting.waterfall(settlement)"),
    md("## 在职与退休\n\n同样的明细，换成在职职工（45 岁）：退休人员报销比例更高，个人负担更少。"),
    code('t = S.compare_scenarios(bill, ["北京"], ["在职", "退休"], [3], "2025-06-01", book)\n'
         'D.table(t, ["status", "age", "hosp_lv", "medfee_sumamt", "act_pay_dedc", "fund_pay_sumamt", "psn_part_amt",\n'
         '            "patient_share"])'),
]
MY_REGION = [
    md("## 我的地区参数\n\n"
       "ybcalc 自带的参数表里没有来源的地区（如攀枝花），或者你手上有本地医保局的最新通知：把通知里的主要数字填进"
       "下面的表单（起付线、支付比例、封顶线、乙类先行自付、大额/大病），点 **保存并计算**。表单把它们存成你自己的"
       "参数表文件（`ybcalc-tables/攀枝花-职工.yaml`，与命令行新建的参数表（`tables new` 子命令）是同一种文件，叠加在自带的参数表"
       "之上），再用它结算下面的账单。没填的项不会被编造：整项空着就沿用自带的表，只填了一部分的项记为“待填”，"
       "不拿来结算。命令行同样可用：`ybcalc score 账单.csv --tables ybcalc-tables`。"),
    widget('from ybcalc.widgets import RegionParamsForm\n\n'
           'form = RegionParamsForm(book, folder="ybcalc-tables", region="攀枝花", scheme="职工")\nform.widget'),
    md("### 例子：填入一份示例通知\n\n"
       "下面把 README 里那份示例通知（数字为虚构，仅作演示）填进表单，存到一个临时文件夹，然后结算一张三级医院的"
       "住院账单（在职，甲类 20,000 元）。保存的参数表文件："),
    code('import tempfile\nfrom pathlib import Path\n\n'
         'example = RegionParamsForm(book, folder=Path(tempfile.mkdtemp()) / "ybcalc-tables", region="攀枝花",\n'
         '                           scheme="职工", start="2024-01-01", class_a=20000, class_b=0, class_c=0,\n'
         '                           excluded=0, hosp_lv=3, psn_type="在职", date="2025-06-01")\n'
         'example.title.value = "示例通知：职工医保住院待遇（README 演示用，数字为虚构，非真实政策）"\n'
         'example.doc_no.value = "示例〔2024〕1号"\n'
         'example.issuer.value = "攀枝花市医疗保障局（示例）"\n'
         'example.issued.value = "2024-01-01"\n'
         'for lv, amount, active, retired in ((3, "800", "85%", "88%"), (2, "500", "88%", "91%"), (1, "300", "90%", "93%")):\n'
         '    example.deductible[lv].value = amount\n'
         '    example.rate_active[lv].value = active\n'
         '    example.rate_retired[lv].value = retired\n'
         'example.cap.value = "100000"\n'
         'example.selfpay.value = "10%"\n'
         'example.crit_threshold.value, example.crit_rate.value, example.crit_cap.value = "0", "90%", "300000"\n'
         'path = example.save()\n'
         'print(path.read_text(encoding="utf-8"))'),
    md("结算结果（元）：起付线 800 元，其余 19,200 元的 85% 由统筹基金支付。"),
    code("D.table(S.key_fields(example.explainer.settlement))"),
    md("每一步的参数都注明出自你的通知（来源等级“用户提供”，以及参数表文件名和参数位置）："),
    code("print(S.explanation_text(example.explainer.explanation))"),
]

SCENARIOS = [
    md("# 同一张账单在各地、各类人员、各级医院\n\n"
       "一张 50,000 元的住院账单（乙类占 30%，先行自付 10%；丙类占 5%；不予支付的项目占 1%），分别按各地区 × "
       "人员类别 × 医院等级结算，再画出总费用从 0 到 50 万元的个人负担曲线。无法结算的情形（缺少有来源的参数）"
       "留在表中，并写明原因。"),
    code(SETUP, IGNORE),
    widget("from ybcalc.widgets import ScenarioComparer\n\n"
           'ui = ScenarioComparer(book, regions=["北京", "上海", "杭州", "深圳", "广州"], statuses=["在职", "退休"])\n'
           "ui.widget"),
]
SCENARIO_TABLE = [
    md("## 情形表\n\n金额单位为元；“人员”是所选的人员类别，“人员类别”是该地参数表中对应的人群。"),
    code('bill = S.sample_bill(50000, class_b_share=0.3, self_pay_share=0.05, excluded=0.01)\n'
         'regions = ["北京", "上海", "杭州", "深圳", "广州", "莆田"]\n'
         'table = S.compare_scenarios(bill, regions, ["在职", "退休", "居民"], [2, 3], "2025-06-01", book)\n'
         'D.table(table, ["region", "scheme", "status", "psn_type", "hosp_lv", "medfee_sumamt", "act_pay_dedc",\n'
         '                "fund_pay_sumamt", "psn_part_amt", "patient_share"])'),
    md("无法结算的情形及原因："),
    code('for r in table[~table["settled"]].drop_duplicates(["region", "scheme"]).itertuples():\n'
         '    print(f"{r.region} {r.scheme}：{r.reason[:110]}")'),
    chart('plotting.scenario_bars(table[table["hosp_lv"] == 3])'),
]
SCENARIO_CURVES = [
    md("## 个人负担曲线（0–50 万）\n\n每个点是一位参保人本年度的第一次住院，所有点一次结算。"
       "下表是总费用为 1 万到 50 万元时的个人负担（元）。"),
    code('curves = S.oop_curve_grid(["北京", "上海", "杭州", "深圳", "广州"], ["在职", "退休"], hosp_lv=3,\n'
         '                          date="2025-06-01", book=book)\n'
         "D.curves(curves)"),
    chart("plotting.oop_curves(curves)"),
]

BATCH_REPORT = [
    md("# 批量结算报告\n\n"
       "结算一个账单文件（这里是随附的 `examples/bills.csv`，个人账户余额取自 `examples/accounts.csv`），"
       "按地区、险种和就诊类型统计费用中由个人负担的部分。无法结算的账单连同原因列出，不会被丢掉。"),
    code(SETUP, IGNORE),
    widget("from ybcalc.widgets import BatchReport\n\n"
           'ui = BatchReport("../examples/bills.csv", book, accounts="../examples/accounts.csv")\nui.widget'),
]
BATCH_TABLES = [
    md("## 同一文件，表格输出\n\n结算汇总："),
    code("from ybcalc.batch import read_bills, score_frame\nfrom ybcalc.widgets import read_accounts\n\n"
         'df, rows = read_bills("../examples/bills.csv")\n'
         'result = score_frame(df, book, row_numbers=rows, source="examples/bills.csv",\n'
         '                     state=read_accounts("../examples/accounts.csv"))\n'
         "print(result.summary())"),
    md("按地区、险种和就诊类型（金额单位为元）："),
    code("bills = S.bill_shares(result.settlement)\n"
         'summary = S.share_summary(bills, ("region", "scheme", "visit"))\n'
         'D.table(summary, ["region", "scheme", "visit", "bills", "total", "fund", "patient", "patient_share",\n'
         '                  "median_share"])'),
    md("## 无法结算的账单"),
    code("D.rejects(result.rejects)"),
]
BATCH_LIMITS = [
    md("## 达到封顶线或获得大病/大额支付的参保人\n\n"
       "本医保年度统筹基金支付达到最高支付限额，或获得大病保险、职工大额医疗费用补助支付的参保人。"
       "医保年度按各地规定计算，不一定是自然年：上海职工的医保年度从 7 月 1 日开始，到次年 6 月 30 日结束，"
       "所以 SH004 在 2025 年 5 月、6 月的三张账单都属于 2024 医保年度（2024-07-01 至 2025-06-30），"
       "在这一年度内累计起付线和封顶线。上海职工参数表中的医保年度起始日："),
    code('month, day = book.table("上海", "employee").policy_year_start\n'
         'print(f"每年 {month} 月 {day} 日")'),
    code("D.table(S.members_at_limits(result.settlement))"),
    chart("plotting.share_distribution(bills)"),
    chart("plotting.group_split_bars(summary)"),
]

POLICY_TABLES = [
    md("# 政策参数：各地 × 各年\n\n"
       "每个数值都附上它所依据的文件和该文件的来源等级（官方 / 机构转载 / 二手）；没有找到有来源数值的，标为缺失。"
       "表中 ◐ 表示只有二手来源，△ 表示只有部分人员类别或医院等级有来源，✖ 表示缺失。"),
    code(SETUP, IGNORE),
    widget("from ybcalc.widgets import ParameterBrowser\n\nui = ParameterBrowser(book)\nui.widget"),
]
POLICY_VALUES = [
    md("## 住院起付线（三级医院；职工取在职人员，居民取成年人组）"),
    code('deductible = S.policy_parameter_table(book, "inpatient.deductible", hosp_lv=3, years=(2023, 2024, 2025))\n'
         "D.table(S.parameter_matrix(deductible))"),
    chart('plotting.parameter_chart(deductible, title="住院起付线（三级医院）")'),
    md("## 住院支付比例与最高支付限额"),
    code('D.table(S.parameter_matrix(S.policy_parameter_table(book, "inpatient.ratio", hosp_lv=3)))'),
    code('D.table(S.parameter_matrix(S.policy_parameter_table(book, "inpatient.cap", hosp_lv=3)))'),
]
POLICY_SOURCES = [
    md("## 起付线的来源"),
    code('sourced = deductible[deductible["status"] != "missing"].drop_duplicates(["region", "scheme", "source"])\n'
         'D.table(sourced, ["region", "scheme", "source", "issuer", "source_date", "grade", "url"], wrap=("source",))'),
    md("## 缺失\n\n没有找到有来源数值的地区和年份，每条一句说明；检索记录在 `docs/research/`（说明末尾的链接）："),
    code("D.gaps(deductible)"),
]

MEMBER_YEAR = [
    md("# 一年的就医\n\n"
       "一个家庭一年的账单（随附的 `examples/year_bills.csv`）、参保信息（`examples/year_members.csv`：参保期、"
       "缴费日期、断缴年数、共济账户）和个人账户余额（`examples/year_accounts.csv`）。选一位参保人，看他这一年在"
       "时间轴上的样子：参保期和参保地、待遇等待期、每张账单由谁支付、起付线累计、是否达到封顶线、个人账户余额，"
       "以及家人账户的共济支付。拖动“断缴年数”“补缴年数”，或勾选“集中缴费期后才缴费”，整份账单会按国家规定重新"
       "结算并重画。\n\n"
       "这家人：W01 是北京的在职职工，2025 年 7 月 1 日起转到上海参保（新的一段参保期，个人账户随人转移）；"
       "他的母亲 W02 断缴两年后于 2025-03-15 重新参加北京居民医保；女儿 W03 在集中缴费期内参保。"
       "W01 的个人账户可以为母亲和女儿支付（共济账户 = W01）。"),
    code(SETUP, IGNORE),
    widget("from ybcalc.widgets import MemberYearView\n\n"
           'ui = MemberYearView("../examples/year_bills.csv", "../examples/year_members.csv", book,\n'
           '                    accounts="../examples/year_accounts.csv", psn_no="W02")\n'
           "ui.widget"),
]
MEMBER_YEAR_EXAMPLE = [
    md("## 例子：母亲 W02 的 2025 年\n\n"
       "断缴 2 年后在集中缴费期外参保：待遇等待期 = 固定 3 个月 + 每断缴 1 年 1 个月 = 5 个月"
       "（国办发〔2024〕38号；北京的细则未收录，按国家规定计算，账单上有提示）。等待期内的两张账单基金不支付。"),
    code("from ybcalc.batch import read_bills, read_accounts, score_frame\n"
         "from ybcalc.member_year import account_table, bills_table, member_year, summary_text, with_break\n\n"
         'df, rows = read_bills("../examples/year_bills.csv")\n'
         'accounts = read_accounts("../examples/year_accounts.csv")\n'
         'members = "../examples/year_members.csv"\n'
         "result = score_frame(df, book, row_numbers=rows, state=accounts, members=members)\n"
         'mother = member_year(result.settlement, "W02", members, accounts=accounts)\n'
         "print(summary_text(mother))"),
    code("D.table(bills_table(mother))"),
    chart("plotting.member_year(mother)"),
    md("## 如果断缴 4 年\n\n固定 3 个月 + 4 个月 = 7 个月，等待期到 10 月中旬：9 月的住院也不能报销。"
       "补缴 2 年可以减少 2 个月，但断缴 4 年及以上合计不少于 6 个月。"),
    code('for repaid in (0, 2):\n'
         '    what_if = with_break(members, "W02", break_years=4, repaid_years=repaid, book=book)\n'
         "    again = score_frame(df, book, row_numbers=rows, state=accounts, members=what_if)\n"
         '    year = member_year(again.settlement, "W02", what_if, accounts=accounts)\n'
         '    print(f"补缴 {repaid} 年：" + summary_text(year).splitlines()[1])'),
    md("## W01 的个人账户\n\n"
       "W01 年中从北京转到上海：两段参保期各按当地的参数表结算，个人账户余额随人转移。账户的每一笔支出"
       "（本人的账单，以及家庭共济为家人支付的部分）按日期先后扣减："),
    code('son = member_year(result.settlement, "W01", members, accounts=accounts)\n'
         "print(summary_text(son))\n"
         "D.table(account_table(son))"),
    chart("plotting.member_year(son)"),
    md("转到上海后有两件事要看规定：上海的起付线、已支付金额是否接着北京累计（参数表中没有有来源的规定，"
       "所以不累计、重新计算，并提示“缺失”）；他的账户能否为仍在北京参保的母亲支付（按家庭共济的规定判断）。"
       "这两张账单上的提示："),
    code('raw = result.settlement.raw\n'
         'for r in raw[raw["mdtrt_id"].isin(["W01-20250920", "W02-20250901"])].itertuples():\n'
         '    print(r.mdtrt_id, r.warnings or "（无提示）")'),
]

NOTEBOOKS = {
    "01_bill_explained.ipynb": [*BILL_EXPLAINED, *BILL_EXAMPLE, *MY_REGION],
    "02_scenarios.ipynb": [*SCENARIOS, *SCENARIO_TABLE, *SCENARIO_CURVES],
    "03_batch_report.ipynb": [*BATCH_REPORT, *BATCH_TABLES, *BATCH_LIMITS],
    "04_policy_tables.ipynb": [*POLICY_TABLES, *POLICY_VALUES, *POLICY_SOURCES],
    "05_member_year.ipynb": [*MEMBER_YEAR, *MEMBER_YEAR_EXAMPLE],
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
    figs = {"member_year.png": member_year_figure(book)}
    figs |= {"waterfall.png": plotting.waterfall(st), "scenario_bars.png": plotting.scenario_bars(table),
            "oop_curves.png": plotting.oop_curves(curves), "batch_share_distribution.png":
            plotting.share_distribution(bills), "batch_split.png": plotting.group_split_bars(S.share_summary(bills)),
            "parameter_deductible.png": plotting.parameter_chart(deductible, title="住院起付线（三级医院）")}
    written = []
    for name, fig in figs.items():
        path = plotting.save_png(fig, out_dir / name, dpi=80)
        written.append(path)
        print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KB)")
    return written


def member_year_figure(book):
    """The chart of notebook 05: the mother's year in the example family (examples/year_*.csv)."""
    from ybcalc import plotting
    from ybcalc.batch import read_accounts, score_file
    from ybcalc.i18n import language
    from ybcalc.member_year import member_year

    accounts = read_accounts(ROOT / "examples" / "year_accounts.csv")
    members = ROOT / "examples" / "year_members.csv"
    res = score_file(ROOT / "examples" / "year_bills.csv", book, state=accounts, members=members,
                     keep_intermediate=True)
    with language("zh"):
        return plotting.member_year(member_year(res.settlement, "W02", members, accounts=accounts))


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

"""``ybcalc compare BILL --regions 北京,上海 [--statuses 在职,退休] [--hosp-lv 3] [--date D] [--out compare.png]``.

``BILL`` is a CSV of one bill's lines, or a file of many bills with ``--mdtrt-id`` naming one.
``--members FILE`` applies the bill's member's enrolment (spans, waiting period, rewards) in every scenario.

Settles one bill (a CSV of its lines) as if incurred in each region × member group × hospital level,
prints the table (scenarios that cannot be settled with their reason) and writes the chart.

Registered by ``cli.main()`` with ``add_compare_command(sub)``; the handler reads the global
``--tables`` option when the main parser has one.
"""
from __future__ import annotations

import argparse
import sys

from .i18n import tr


def _split(text: str) -> list[str]:
    return [p.strip() for p in str(text).replace("，", ",").replace("、", ",").split(",") if p.strip()]


def add_compare_command(subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` sub-command to an ``argparse`` subparsers object; returns its parser."""
    from .scenarios import DEFAULT_REGIONS
    c = subparsers.add_parser(
        "compare", help=tr("把一张账单放在几个地区/人员类别/医院等级下分别结算并作图",
                           "settle one bill in several regions / member groups / hospital levels and chart it"),
        description=tr("把一张账单（其费用明细）当作在每个 地区 × 人员类别 × 医院等级 发生分别结算；"
                       "打印对比表，并画出基金支付与个人负担的柱状图。",
                       "Settle one bill (a CSV of its lines) as if incurred in each region × member group × "
                       "hospital level; print the table and write a bar chart of fund vs patient share."))
    file_mv = tr("文件", "FILE")
    c.add_argument("bill", metavar=tr("账单", "BILL"),
                   help=tr("一张账单的费用明细 CSV（或 Parquet），国家字段名或中文表头；多张账单的文件用 --mdtrt-id 选一张",
                           "CSV (or Parquet) of one bill's lines (national or Chinese headers); a file of many "
                           "bills with --mdtrt-id"))
    c.add_argument("--mdtrt-id", metavar=tr("就诊ID", "ID"),
                   help=tr("从多张账单的文件中选这张账单", "pick this bill from a file of many bills"))
    c.add_argument("--regions", default=",".join(DEFAULT_REGIONS), metavar=tr("地区", "REGIONS"),
                   help=tr("逗号分隔的地区（名称、id 或代码）；默认 %(default)s",
                           "comma-separated regions (names, ids or codes); default %(default)s"))
    c.add_argument("--statuses", default="在职,退休", metavar=tr("人员类别", "GROUPS"),
                   help=tr("逗号分隔的人员类别：在职、退休、居民或参数表中的类别；默认 %(default)s",
                           "comma-separated member groups: 在职, 退休, 居民 or a table's group; default %(default)s"))
    c.add_argument("--hosp-lv", default="3", metavar=tr("等级", "LEVELS"),
                   help=tr("医院等级 0-3，可逗号分隔多个；默认 %(default)s",
                           "hospital level(s) 0-3, comma-separated; default %(default)s"))
    c.add_argument("--date", metavar=tr("日期", "DATE"),
                   help=tr("结算日期（默认：账单的结算时间，否则 2025-06-01）",
                           "settlement date (default: the bill's setl_time, else 2025-06-01)"))
    c.add_argument("--scheme", metavar=tr("险种", "SCHEME"),
                   help=tr("所有人员类别一律按 职工 或 居民", "force 职工 or 居民 for every status"))
    c.add_argument("--members", metavar=file_mv,
                   help=tr("参保信息文件：账单所属人员的参保期、待遇等待期、断缴/补缴和大病保险激励在每种情形下按该情形的"
                           "险种和规定计入（表中加“待遇资格”列）",
                           "members file: the bill's member's enrolment (spans, waiting period, breaks, critical-illness "
                           "rewards) applied in each scenario under its scheme's rules (adds an eligibility column)"))
    c.add_argument("--psn-no", metavar=tr("人员编号", "ID"),
                   help=tr("参保信息文件中的哪一人（默认：账单的人员编号）",
                           "which member of the members file (default: the bill's psn_no)"))
    c.add_argument("--out", metavar=file_mv, help=tr("把图写入此 PNG 文件", "write the chart to this PNG"))
    c.add_argument("--csv", metavar=file_mv, help=tr("另把完整的情景表写入此 CSV", "also write the full scenario table to this CSV"))
    c.add_argument("--encoding", metavar=tr("编码", "ENCODING"),
                   help=tr("输入文件编码（默认：自动识别 UTF-8/UTF-8-BOM/GB18030）",
                           "input encoding (default: detect UTF-8/UTF-8-BOM/GB18030)"))
    from .cli import add_assume_options
    add_assume_options(c)
    c.set_defaults(func=cmd_compare)
    return c


def _charts_installed() -> bool:
    """matplotlib (the chart) is an optional dependency: ``pip install "ybcalc[chart]"``."""
    import importlib.util
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except (ImportError, ValueError):
        return False


def cmd_compare(args) -> int:
    import pandas as pd

    from . import codes
    from .batch import read_bills
    from .policy.loader import load_book
    from .scenarios import DEFAULT_DATE, compare_scenarios, display_table, member_word

    if args.out and not _charts_installed():
        print(tr(f"ybcalc compare：画图（--out）需要 matplotlib，请安装：pip install \"ybcalc[chart]\"；"
                 f"或去掉 --out 只打印对比表",
                 f"ybcalc compare: the chart (--out) needs matplotlib: pip install \"ybcalc[chart]\", "
                 f"or leave out --out to print the table only"), file=sys.stderr)
        return 2
    from .outputs import TABLES, check_outputs
    check_outputs({"--out": (args.out, (".png",)), "--csv": (args.csv, TABLES)},
                  {tr("账单文件", "the bill file"): args.bill, tr("参保信息文件", "the members file"): args.members})
    from .cli import _catalogue, assumed
    book = assumed(load_book(getattr(args, "tables", None)), args)
    catalogue = _catalogue(args)
    df, _rows = read_bills(args.bill, getattr(args, "encoding", None))
    if catalogue is not None:                 # lines lacking 收费项目等级 / 自付比例 / 限价 take the catalogue's
        from .inputs import rename_columns
        df = catalogue.fill(rename_columns(df))[0]
    if df.empty:
        print(tr(f"ybcalc compare：{args.bill} 没有明细行", f"ybcalc compare: {args.bill} has no lines"), file=sys.stderr)
        return 2
    ids = {c: codes.canonical_header(c) for c in df.columns}
    mid_col = next((c for c, canon in ids.items() if canon == "mdtrt_id"), None)
    if getattr(args, "mdtrt_id", None):
        if mid_col is None:
            print(tr(f"ybcalc compare：{args.bill} 没有就诊ID（mdtrt_id）列",
                     f"ybcalc compare: {args.bill} has no mdtrt_id column"), file=sys.stderr)
            return 2
        df = df[df[mid_col].astype(str).str.strip() == str(args.mdtrt_id)]
        if df.empty:
            print(tr(f"ybcalc compare：{args.bill} 中没有账单 {args.mdtrt_id!r}",
                     f"ybcalc compare: no bill {args.mdtrt_id!r} in {args.bill}"), file=sys.stderr)
            return 2
    elif mid_col is not None and df[mid_col].astype(str).str.strip().nunique() > 1:
        # several bills: comparing their lines as one bill would mix visit types and dates
        ids = list(dict.fromkeys(df[mid_col].astype(str).str.strip()))
        shown = ", ".join(ids[:20]) + (tr(f" …（共 {len(ids)} 张）", f" … ({len(ids)} in all)") if len(ids) > 20 else "")
        print(tr(f"ybcalc compare：{args.bill} 有 {len(ids)} 张账单，请用 --mdtrt-id 选一张：{shown}",
                 f"ybcalc compare: {args.bill} holds {len(ids)} bills: pick one with --mdtrt-id: {shown}"),
              file=sys.stderr)
        return 2
    date = args.date
    if date is None:
        # the bill's settlement date as the batch reads it (any usual form; else its last fee day)
        import numpy as np
        from .inputs import parse_date_texts
        tcol = next((c for want in ("setl_time", "fee_ocur_time") for c, canon in ids.items() if canon == want), None)
        vals = pd.unique(df[tcol].astype(str).str.strip()) if tcol else np.array([], dtype=object)
        days = parse_date_texts(np.asarray([v for v in vals if v], dtype=object))
        days = days[~np.isnat(days)]
        date = str(days.max()) if len(days) else DEFAULT_DATE
    try:
        levels = [int(x) for x in _split(args.hosp_lv)]
    except ValueError:
        print(tr(f"ybcalc compare：--hosp-lv 须为 0-3 的数字（收到 {args.hosp_lv!r}）",
                 f"ybcalc compare: --hosp-lv must be numbers 0-3 (got {args.hosp_lv!r})"), file=sys.stderr)
        return 2
    members = None
    if args.members:
        from .members import read_members
        members = read_members(args.members, book)
    table = compare_scenarios(df, _split(args.regions), _split(args.statuses), levels, date, book,
                              scheme=args.scheme, members=members, psn_no=args.psn_no)
    shown = display_table(table, reason_width=36, lang=getattr(args, "lang", None))
    from .i18n import terminal_table
    day = pd.Timestamp(date).date()
    print(tr(f"账单 {args.bill}：{table['medfee_sumamt'].dropna().iat[0]:,.2f} 元，{day}",
             f"bill {args.bill}: {table['medfee_sumamt'].dropna().iat[0]:,.2f} yuan on {day}")
          if table["settled"].any() else tr(f"账单 {args.bill}，{day}", f"bill {args.bill} on {day}"))
    if members is not None:
        psn = table.attrs.get("psn_no", args.psn_no)
        listed = psn is not None and str(psn) in set(map(str, members.psn_nos))
        print(tr(f"参保信息：人员 {psn}（{args.members}），其参保期、待遇等待期和激励按每种情形的险种计入"
                 if listed else f"参保信息：{args.members} 未列出人员 {psn}：按一直参保结算",
                 f"enrolment: member {psn} ({args.members}), spans, waiting period and rewards applied under each "
                 f"scenario's scheme" if listed else
                 f"enrolment: {args.members} does not list member {psn}: settled as always enrolled"))
    print(terminal_table(shown, index=False))
    failed = table[~table["settled"]]
    if len(failed):
        print(tr("\n无法结算：", "\ncannot be settled:"))
        for reason, g in failed.groupby("reason", sort=False):
            who = ", ".join(dict.fromkeys(f"{r.region} {member_word(r.scheme)} {member_word(r.status)}"
                                          for r in g.itertuples()))
            print(f"  {who}: {reason}")
    if args.csv:
        from .batch import write_table
        write_table(table, args.csv)
        print(tr(f"已写入 {args.csv}", f"wrote {args.csv}"), file=sys.stderr)
    if args.out and not table["settled"].any():
        print(tr(f"没有一种情形能结算：不画图（{args.out} 未写入）",
                 f"no scenario could be settled: no chart ({args.out} not written)"), file=sys.stderr)
    elif args.out:
        from .plotting import save_png, scenario_bars, use_cjk_font
        use_cjk_font()
        save_png(scenario_bars(table), args.out, dpi=100)
        print(tr(f"已写入 {args.out}", f"wrote {args.out}"), file=sys.stderr)
    return 0 if table["settled"].any() else 1

"""``ybcalc compare BILL --regions 北京,上海 [--statuses 在职,退休] [--hosp-lv 3] [--date D] [--out compare.png]``.

``BILL`` is a CSV of one bill's lines, or a file of many bills with ``--mdtrt-id`` naming one.

Settles one bill (a CSV of its lines) as if incurred in each region × member group × hospital level,
prints the table (scenarios that cannot be settled with their reason) and writes the chart.

Registered by ``cli.main()`` with ``add_compare_command(sub)``; the handler reads the global
``--tables`` option when the main parser has one.
"""
from __future__ import annotations

import argparse
import sys


def _split(text: str) -> list[str]:
    return [p.strip() for p in str(text).replace("，", ",").replace("、", ",").split(",") if p.strip()]


def add_compare_command(subparsers) -> argparse.ArgumentParser:
    """Add the ``compare`` sub-command to an ``argparse`` subparsers object; returns its parser."""
    from .scenarios import DEFAULT_REGIONS
    c = subparsers.add_parser(
        "compare", help="settle one bill in several regions / member groups / hospital levels and chart it",
        description="Settle one bill (a CSV of its lines) as if incurred in each region × member group × "
                    "hospital level; print the table and write a bar chart of fund vs patient share.")
    c.add_argument("bill", metavar="BILL", help="CSV (or Parquet) of one bill's lines (national or Chinese headers)")
    c.add_argument("--mdtrt-id", help="pick this bill from a file of many bills")
    c.add_argument("--regions", default=",".join(DEFAULT_REGIONS),
                   help="comma-separated regions (names, ids or codes); default %(default)s")
    c.add_argument("--statuses", default="在职,退休",
                   help="comma-separated member groups: 在职, 退休, 居民 or a table's group; default %(default)s")
    c.add_argument("--hosp-lv", default="3", help="hospital level(s) 0-3, comma-separated; default %(default)s")
    c.add_argument("--date", help="settlement date (default: the bill's setl_time, else 2025-06-01)")
    c.add_argument("--scheme", help="force 职工 or 居民 for every status")
    c.add_argument("--out", help="write the chart to this PNG")
    c.add_argument("--csv", help="also write the full scenario table to this CSV")
    c.add_argument("--encoding", help="input encoding (default: detect UTF-8/UTF-8-BOM/GB18030)")
    from .cli import add_assume_options
    add_assume_options(c)
    c.set_defaults(func=cmd_compare)
    return c


def cmd_compare(args) -> int:
    import pandas as pd

    from . import codes
    from .batch import read_bills
    from .policy.loader import load_book
    from .scenarios import DEFAULT_DATE, compare_scenarios, display_table

    from .cli import _catalogue, assumed
    book = assumed(load_book(getattr(args, "tables", None)), args)
    catalogue = _catalogue(args)
    df, _rows = read_bills(args.bill, getattr(args, "encoding", None))
    if catalogue is not None:                 # lines lacking 收费项目等级 / 自付比例 / 限价 take the catalogue's
        from .inputs import rename_columns
        df = catalogue.fill(rename_columns(df))[0]
    if df.empty:
        print(f"ybcalc compare: {args.bill} has no lines", file=sys.stderr)
        return 2
    ids = {c: codes.canonical_header(c) for c in df.columns}
    mid_col = next((c for c, canon in ids.items() if canon == "mdtrt_id"), None)
    if getattr(args, "mdtrt_id", None):
        if mid_col is None:
            print(f"ybcalc compare: {args.bill} has no mdtrt_id column", file=sys.stderr)
            return 2
        df = df[df[mid_col].astype(str).str.strip() == str(args.mdtrt_id)]
        if df.empty:
            print(f"ybcalc compare: no bill {args.mdtrt_id!r} in {args.bill}", file=sys.stderr)
            return 2
    elif mid_col is not None and df[mid_col].nunique() > 1:
        print(f"ybcalc compare: {args.bill} holds {df[mid_col].nunique()} bills (mdtrt_id); "
              "all lines are compared as one bill", file=sys.stderr)
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
        print(f"ybcalc compare: --hosp-lv must be numbers 0-3 (got {args.hosp_lv!r})", file=sys.stderr)
        return 2
    table = compare_scenarios(df, _split(args.regions), _split(args.statuses), levels, date, book,
                              scheme=args.scheme)
    shown = display_table(table, reason_width=36)
    with pd.option_context("display.width", 250, "display.max_columns", 50, "display.max_colwidth", 60,
                           "display.unicode.east_asian_width", True):
        print(f"bill {args.bill}: {table['medfee_sumamt'].dropna().iat[0]:,.2f} yuan on {pd.Timestamp(date).date()}"
              if table["settled"].any() else f"bill {args.bill} on {pd.Timestamp(date).date()}")
        print(shown.to_string(index=False))
    failed = table[~table["settled"]]
    if len(failed):
        print("\ncannot be settled:")
        for reason, g in failed.groupby("reason", sort=False):
            who = ", ".join(dict.fromkeys(f"{r.region} {r.scheme} {r.status}" for r in g.itertuples()))
            print(f"  {who}: {reason}")
    if args.csv:
        from .batch import write_table
        write_table(table, args.csv)
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.out:
        from .plotting import save_png, scenario_bars, use_cjk_font
        use_cjk_font()
        save_png(scenario_bars(table), args.out, dpi=100)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0 if table["settled"].any() else 1

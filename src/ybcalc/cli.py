"""Command line: ``ybcalc score | explain | tables``."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys

import pandas as pd

from . import codes
from .i18n import lang_in_argv, language, tr, use_argparse_lang
from .policy.schema import GRADE_LABEL


def _book(args):
    """The shipped tables, with the user's folder (``--tables``) and drafts (``--draft``) laid over them."""
    from .policy.loader import load_book
    return assumed(load_book(args.tables, overlay=getattr(args, "draft", None) or ()), args)


def assumed(book, args):
    """The book with the command's ``--assume`` statements applied; what they could not fill (a
    sourced value is never overridden) is said on standard error."""
    if not getattr(args, "assume", None):
        return book
    from .assume import apply_assumptions
    applied = apply_assumptions(book, args.assume)
    for note in applied.notes:
        print(f"ybcalc: {note}", file=sys.stderr)
    return applied.book


def _catalogue(args):
    """The ``--catalogue`` file, read and checked before any bill (None without one)."""
    if not getattr(args, "catalogue", None):
        return None
    from .catalogue import load_catalogue
    return load_catalogue(args.catalogue, encoding=getattr(args, "encoding", None))


def add_assume_options(p) -> None:
    """``--assume`` and ``--catalogue``, shared by score, explain, diff and compare."""
    p.add_argument("--assume", action="append", metavar=tr("[地区:]参数=值", "[REGION:]NAME=VALUE"),
                   help=tr("给没有来源数值的参数一个假设值，如 乙类先行自付=0.10 或 上海:住院起付线=1200（可重复）；"
                           "用到它的每张账单都会注明；不会覆盖有来源的数值",
                           "a value for a parameter with no sourced value, e.g. 乙类先行自付=0.10 or "
                           "上海:住院起付线=1200 (repeatable); every bill that uses it says so; a sourced value is "
                           "never overridden"))
    p.add_argument("--catalogue", metavar=tr("文件", "FILE"),
                   help=tr("项目目录（CSV/Parquet）：医疗目录编码/项目名称 → 收费项目等级、自付比例、限价，"
                           "补给缺少这些值的明细",
                           "item catalogue (CSV/Parquet): item_code/item_name → 收费项目等级, 自付比例, 限价, for "
                           "lines that lack them"))


def _check_outputs(args) -> None:
    """Refuse, before any work, outputs that would destroy an input or could not be written: a run
    over a year of bills should not fail at its end, nor overwrite the bills it read."""
    from .outputs import TABLES, check_outputs
    check_outputs({"-o": (args.output, TABLES), "--rejects": (args.rejects, TABLES)},
                  {tr("输入文件", "the input file"): list(args.files),
                   tr("个人账户文件", "the accounts file"): args.accounts,
                   tr("参保信息文件", "the members file"): getattr(args, "members", None),
                   tr("草稿参数表", "a draft table"): getattr(args, "draft", None),
                   tr("项目目录文件", "the catalogue file"): getattr(args, "catalogue", None)})


def cmd_score(args) -> int:
    from .batch import BillWriter, score_file
    _check_outputs(args)
    book = _book(args)
    catalogue = _catalogue(args)
    accounts = _read_accounts(args.accounts) if args.accounts else None
    members = _read_members(args.members, book) if args.members else None
    if args.engine == "dask":
        return _score_dask(args, accounts, catalogue, members)
    progress = None if args.quiet or not sys.stderr.isatty() else _progress
    if progress:            # a large file takes a while to read and sort by member before the first bill
        size = sum(os.path.getsize(f) for f in args.files)
        what = args.files[0] if len(args.files) == 1 else tr(f"{len(args.files)} 个文件", f"{len(args.files)} files")
        print(tr(f"  正在读取 {what}（{size / 2**20:,.0f} MB）…", f"  reading {what} ({size / 2**20:,.0f} MB) …"),
              file=sys.stderr, flush=True)
    writer = BillWriter(args.output, args.lang)           # each partition is written as soon as settled
    with _replaced_together(args, writer) as staged:
        res = score_file(args.files, book, encoding=args.encoding, on=args.on, state=accounts, progress=progress,
                         sink=writer, jobs=args.jobs, catalogue=catalogue, members=members)
        staged.append(writer.finish(empty_settlement=_empty_settlement(book)))
        _stage_rejects(res, args, staged)
    if progress:
        print(file=sys.stderr)
    return _report(res, args)


@contextlib.contextmanager
def _replaced_together(args, writer=None):
    """The outputs of a run (settlements, rejects) written under temporary names and renamed over
    the outputs together, only when all are complete: a failed write (disk full) leaves the earlier
    settlements and rejects as they were, never new settlements beside the last run's rejects."""
    from .batch import OutputError, replace_together
    from .outputs import cannot_write
    staged: list = []
    try:
        yield staged
        replace_together(staged)
    except BaseException as exc:
        if writer is not None:
            writer.discard()
        for partial, _ in staged:
            partial.unlink(missing_ok=True)
        if isinstance(exc, OutputError):
            raise cannot_write(exc, {"-o": args.output, "--rejects": args.rejects}) from None
        raise


def _stage_rejects(res, args, staged: list) -> None:
    from .batch import stage_table
    if args.rejects:
        staged.append(stage_table(_labelled_rejects(res.rejects, args.lang), args.rejects))


def _report(res, args) -> int:
    """Summary (rows read = scored + rejected, totals), the first rejects when no file takes them, and
    the exit status: the same for the local and the Dask engine."""
    if not args.quiet:
        print(res.summary(), file=sys.stderr)
        print(tr(f"已写入 {args.output}" + (f"，拒绝的行写入 {args.rejects}" if args.rejects else ""),
                 f"wrote {args.output}" + (f", rejects to {args.rejects}" if args.rejects else "")), file=sys.stderr)
    if len(res.rejects):
        if not args.rejects and not args.quiet:
            for r in res.rejects.head(10).itertuples():
                where = getattr(r, "file", args.files[0])
                print(tr(f"  拒绝：{where}，第 {r.row} 行，列 {r.column}：{r.reason}",
                         f"  rejected: {where}, row {r.row}, column {r.column}: {r.reason}"), file=sys.stderr)
            if len(res.rejects) > 10:
                print(tr(f"  … 另有 {len(res.rejects) - 10} 行（用 --rejects 文件 写出全部）",
                         f"  … {len(res.rejects) - 10} more (write them with --rejects FILE)"), file=sys.stderr)
        return 0 if args.allow_rejects else 3
    return 0


def _labelled_rejects(rejects: pd.DataFrame, lang: str) -> pd.DataFrame:
    zh = {"file": "文件", "row": "行号", "mdtrt_id": "就诊ID", "column": "列", "value": "值", "reason": "原因"}
    return rejects.rename(columns=zh) if lang == "zh" else rejects


def _empty_settlement(book):
    """A settlement of no bills: an input with no settled bill still gets a file with the headers."""
    from .api import settle
    return settle(pd.DataFrame({"mdtrt_id": [], "det_item_fee_sumamt": [], "chrgitm_lv": [], "med_type": [],
                                "setl_time": [], "insuplc": [], "insutype": []}), book, strict=False)


def _score_dask(args, accounts, catalogue=None, members=None) -> int:
    from .batch import ScoreResult, exact_sum, stage_table
    from .dask import money_fen, score_path
    from .labels import SETTLEMENT_FIELDS, relabel_columns
    if args.draft:
        print(tr("--engine dask 暂不支持 --draft", "--draft is not supported with --engine dask yet"), file=sys.stderr)
        return 2
    # accounts stay in yuan here: each partition converts them once, as the local path does
    bills, rejects = score_path(args.files, scheduler=args.scheduler, workers=args.workers, tables=args.tables,
                                on=args.on, accounts=accounts, encoding=args.encoding,
                                progress=not args.quiet and sys.stderr.isatty(), assume=args.assume,
                                catalogue=catalogue, members=members)
    # the summary the local engine prints: rows read = scored + rejected, and the totals (fen)
    rows_read = rejects.attrs["rows_read"]
    rejected = len(rejects[["file", "row"]].drop_duplicates()) if "file" in rejects.columns else rejects["row"].nunique()
    from .batch import warning_counts
    warned = warning_counts(bills["warnings"].fillna("").astype(str), bills["notes"].fillna("").astype(str)
                            if "notes" in bills else None)
    assumed_bills = int(bills["policy_version"].fillna("").astype(str).str.contains("+assume:", regex=False).sum())
    res = ScoreResult(None, rejects, rows_read, rows_read - rejected,
                      {"totals": {c: exact_sum(money_fen(bills[c])) for c in SETTLEMENT_FIELDS}, "bills": len(bills),
                       "warned": warned, "assumed": assumed_bills},
                      members_absent=rejects.attrs.get("members_absent") if members is not None else None)
    if not str(args.output).lower().endswith((".parquet", ".pq")):   # CSV: yuan text; Parquet: exact decimals
        from .money import fen_text
        for c in SETTLEMENT_FIELDS:
            bills[c] = fen_text(money_fen(bills[c]))
    if args.lang == "zh":
        for col, words in (("med_type", codes.MED_TYPE_LABEL), ("benefit", codes.BENEFIT_LABEL)):
            if col in bills:       # codes as words, as the local engine writes them
                bills[col] = bills[col].map(lambda v, w=words: w.get(v, (v,))[0])
        bills.columns = relabel_columns(bills.columns, "zh")
    with _replaced_together(args) as staged:
        staged.append(stage_table(bills, args.output))
        _stage_rejects(res, args, staged)
    return _report(res, args)


def _progress(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    print(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} {tr('行', 'lines')}", end="", file=sys.stderr,
          flush=True)


def _read_accounts(path) -> pd.DataFrame:
    from .batch import read_accounts
    return read_accounts(path)


def _read_members(path, book):
    from .members import read_members
    return read_members(path, book)


def cmd_explain(args) -> int:
    from .api import Settlement
    from .batch import read_bills, score_frame
    book = _book(args)
    df, rows = read_bills(args.file, args.encoding)
    accounts = _read_accounts(args.accounts) if args.accounts else None
    members = _read_members(args.members, book) if args.members else None
    res = score_frame(df, book, row_numbers=rows, source=str(args.file), on=args.on, state=accounts,
                      catalogue=_catalogue(args), members=members)
    settlement: Settlement = res.settlement
    if args.mdtrt_id is None:
        # a file of one bill needs no id; with several, name them rather than guess
        ids = list(dict.fromkeys([*settlement.raw["mdtrt_id"].astype(str), *settlement.errors.index.astype(str),
                                  *res.rejects["mdtrt_id"].dropna().astype(str)]))
        if len(ids) != 1:
            shown = ", ".join(ids[:20]) + (tr(f" …（共 {len(ids)} 张）", f" … ({len(ids)} in all)") if len(ids) > 20 else "")
            print(tr(f"ybcalc explain：{args.file} 有 {len(ids)} 张账单，请用 --mdtrt-id 选一张：{shown}",
                     f"ybcalc explain: {args.file} holds {len(ids)} bills: pick one with --mdtrt-id: {shown}"),
                  file=sys.stderr)
            return 2
        args.mdtrt_id = ids[0]
    mid = str(args.mdtrt_id)
    if mid in settlement.errors.index:
        print(tr(f"账单 {mid} 无法结算：{settlement.errors[mid]}", f"bill {mid} cannot be settled: {settlement.errors[mid]}"),
              file=sys.stderr)
        return 2
    bad = res.rejects[res.rejects["mdtrt_id"].astype(str) == mid]
    if len(bad):
        for r in bad.itertuples():
            print(tr(f"账单 {mid} 被拒绝：{args.file}，第 {r.row} 行，列 {r.column}：{r.reason}",
                     f"bill {mid} rejected: {args.file}, row {r.row}, column {r.column}: {r.reason}"), file=sys.stderr)
        return 2
    try:
        ex = settlement.explain(mid, lang=args.lang)
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    if args.format == "csv":
        from .batch import csv_header, csv_rows        # spreadsheet-safe, as every CSV ybcalc writes
        sys.stdout.write(csv_header(ex.frame.columns) + csv_rows(ex.frame))
    else:
        print(ex)
    return 0


def cmd_tables(args) -> int:
    from .policy.loader import UNFILLED_FROM, load_book
    from .policy.schema import PLACEHOLDER
    drafts = args.draft or ()
    if args.action == "new":
        return _tables_new(args)
    if args.action == "validate":
        book = load_book(args.tables, strict=False, overlay=drafts)
        n_files = len(book.tables)
        where = ", ".join([str(args.tables)] * bool(book.overlay_paths and args.tables) + list(drafts)) or book.root
        if book.problems:
            for p in book.problems:
                print(p)
            print(tr(f"{where} 中有 {len(book.problems)} 个问题", f"{len(book.problems)} problem(s) in {where}"),
                  file=sys.stderr)
            return 1
        print(tr(f"通过：{where} 中 {n_files} 个地区×险种参数表、{len(book.entries)} 条带日期的参数、"
                 f"{len(book.exclusions)} 条不予支付规则",
                 f"ok: {n_files} region×scheme tables, {len(book.entries)} dated entries, "
                 f"{len(book.exclusions)} exclusion rules in {where}")
              + (tr(f"（叠加在随包参数表之上：{'、'.join(book.user_files)}）",
                    f" (over the shipped tables: {', '.join(book.user_files)})") if book.user_files else ""))
        unfilled = [e.key for e in book.entries if e.user and e.missing and e.missing.startswith("用户表未填写")]
        if unfilled:     # allowed (they are `missing`), but the user should know what is left to type in
            print(tr(f"{len(unfilled)} 项仍待填（按缺失处理，不参与结算）：",
                     f"{len(unfilled)} entries still 待填 (missing, not used to settle, until filled):"))
            for key in unfilled:
                print(f"  {key}")
        return 0
    book = load_book(args.tables, overlay=drafts)
    if args.action == "coverage":
        from .policy.coverage import coverage_markdown, coverage_matrix
        if args.format == "md":
            print(coverage_markdown(book))
        else:
            from .i18n import terminal_table
            from .policy.coverage import LEGEND, LEGEND_ZH
            m = coverage_matrix(book)
            if args.lang != "zh":
                m = m.rename(columns={"地区": "region", "险种": "scheme", "就诊": "visit"})
                m["scheme"] = m["scheme"].map({"职工": "employee", "居民": "resident"}).fillna(m["scheme"])
            print(terminal_table(m, index=False))
            print("\n" + tr(LEGEND_ZH, LEGEND))
        return 0
    if args.action == "list":
        rows = []
        for (rid, scheme), t in sorted(book.tables.items()):
            n_missing = sum(1 for p in t.all_params() for e in p.entries if e.missing)
            n_values = sum(1 for p in t.all_params() for e in p.entries if not e.missing)
            grades = sorted({s.grade for s in t.sources.values()})
            rows.append((book.regions[rid].short, rid, tr(*codes.SCHEME_LABEL[scheme]), n_values, n_missing,
                         tr("、", ",").join(tr(*GRADE_LABEL.get(g, (g, g))) for g in grades),
                         tr(f"基于 {t.extends}", f"extends {t.extends}") if t.extends else ""))
        from .i18n import terminal_table
        columns = (["地区", "id", "险种", "已核实条目", "缺失条目", "来源等级", "基线"] if args.lang == "zh" else
                   ["region", "id", "scheme", "sourced entries", "missing entries", "source grades", "baseline"])
        print(terminal_table(pd.DataFrame(rows, columns=columns), index=False))
        return 0
    if args.action == "show":
        if not args.region:
            print(tr("用法：ybcalc tables show 地区 [--scheme 职工|居民]", "usage: ybcalc tables show REGION [--scheme 职工|居民]"),
                  file=sys.stderr)
            return 2
        if args.region.strip().lower() in ("national", "全国", "国家"):      # national rules of a member's year
            from .members import national_rules_text
            print(national_rules_text(book))
            return 0
        rid = book.region_id(args.region)
        if rid is None:            # what the name is: a region without a table yet, or the nearest names
            from .divisions import REGION, region_lookup
            found = region_lookup(book, args.region, REGION)
            if found.region is None:
                print(found.reject, file=sys.stderr)
                return 2
            rid = found.region
        from .words import param_words, word, FIELDS
        schemes = [codes.parse_insutype(args.scheme)] if args.scheme else ["employee", "resident"]
        zh = args.lang == "zh"
        for scheme in schemes:
            t = book.tables.get((rid, scheme))
            if t is None:
                continue
            print(f"== {t.title} ({t.key})" + (tr(f"，基于 {t.extends}", f", extends {t.extends}") if t.extends else ""))
            groups = [f"{tr('人员类别', 'member groups')} {'/'.join(t.psn_types)}" if t.psn_types else "",
                      f"{tr('缴费档次', 'contribution tiers')} {'/'.join(t.contrib_tiers)}" if t.contrib_tiers else ""]
            if any(groups):
                print("  " + "; ".join(g for g in groups if g))
            labels = {name: (b.label if zh else name) for name, b in t.benefits.items()}
            for p in t.all_params():
                what = param_words(p.path, benefit_labels=labels)
                for e in p.entries:
                    start = PLACEHOLDER if e.start == UNFILLED_FROM else e.start     # a starter's unfilled date
                    if e.missing:
                        print(f"  {what} {tr(f'自 {start} 起', f'from {start}')}: ✖ {e.missing}")
                        continue
                    print(tr(f"  {what} 自 {start} 起：", f"  {what} from {start}:"))
                    for k, v in e.raw.items():
                        if k not in ("from", "source", "note"):
                            print(_fmt_field(k, v, p.kind, labels))
                    print(f"      {tr('来源', 'source')}: {e.source.cite(args.lang)}")
                    if p.path in ("waiting_period", "critical_illness_rewards"):      # a deviation (ybcalc.members)
                        print(tr("      其余按国家规定（ybcalc tables show 全国）",
                                 "      the rest as the national rule (ybcalc tables show national)"))
            print()
        return 0
    return 2


def _tables_new(args) -> int:
    """``tables new REGION --scheme 职工``: a starter table to fill from a notice, in the user's folder."""
    from pathlib import Path

    from .policy.loader import is_complete_tables, load_book
    from .policy.starter import DEFAULT_FOLDER, write_starter
    scheme = codes.parse_insutype(args.scheme) if args.scheme else None
    if not args.region or scheme is None:
        print(tr("用法：ybcalc tables new 地区 --scheme 职工|居民 [--tables 目录]（例：ybcalc tables new 攀枝花 --scheme 职工）",
                 "usage: ybcalc tables new REGION --scheme 职工|居民 [--tables DIR] (e.g. ybcalc tables new 攀枝花 "
                 "--scheme 职工)"), file=sys.stderr)
        return 2
    folder = Path(args.tables or DEFAULT_FOLDER)
    if is_complete_tables(folder):
        print(tr(f"{folder} 是一套完整的参数表（tables/ 的副本）：请用您自己的目录（默认 {DEFAULT_FOLDER}）",
                 f"{folder} is a complete copy of tables/: give your own folder (default {DEFAULT_FOLDER})"),
              file=sys.stderr)
        return 2
    book = load_book(folder if folder.is_dir() else None, strict=False)
    path = write_starter(book, args.region, scheme, folder, force=args.force)
    print(tr(f"已生成 {path}\n"
             f"  1. 按通知把文件里的每个“待填”换成数字\n"
             f"  2. 检查：ybcalc tables validate --tables {folder}\n"
             f"  3. 结算：ybcalc score 账单.csv -o 结算.csv --tables {folder}",
             f"wrote {path}\n"
             f"  1. replace every 待填 in it with the notice's figure\n"
             f"  2. check: ybcalc tables validate --tables {folder}\n"
             f"  3. settle: ybcalc score bills.csv -o settlements.csv --tables {folder}"))
    return 0


def cmd_diff(args) -> int:
    from .batch import read_bills
    from .diff import book_with_drafts, compare_policies
    from .policy.loader import load_book
    if not (args.a or args.b or args.draft_a or args.draft_b or args.tables_b):
        print(tr("diff 需要 --a/--b 日期，和/或 --draft-a/--draft-b 文件 / --tables-b 目录",
                 "diff needs --a/--b dates and/or --draft-a/--draft-b FILE / --tables-b DIR"), file=sys.stderr)
        return 2
    from .outputs import TABLES, check_outputs
    check_outputs({"-o": (args.output, TABLES)},
                  {tr("输入文件", "the input file"): args.file,
                   tr("草稿参数表", "a draft table"): [*(args.draft_a or ()), *(args.draft_b or ())],
                   tr("项目目录文件", "the catalogue file"): args.catalogue,
                   tr("账户文件", "the accounts file"): args.accounts,
                   tr("参保信息文件", "the members file"): args.members})
    book_a = assumed(book_with_drafts(args.draft_a or (), args.tables), args)   # --assume: both sides alike
    if args.draft_b:
        book_b = assumed(book_with_drafts(args.draft_b, args.tables), args)
    elif args.tables_b:
        book_b = assumed(load_book(args.tables_b), args)
    else:
        book_b = book_a
    df, rows = read_bills(args.file, args.encoding)
    shipped = tr("随附参数表", "shipped tables")
    label_a = (tr(f"{'、'.join(args.draft_a)}（草稿）", f"{', '.join(args.draft_a)} (draft)") if args.draft_a
               else f"{args.tables or shipped}") + \
        (tr(f"，{args.a}", f" on {args.a}") if args.a else tr("（账单日期）", " (bill dates)"))
    label_b = (tr(f"{'、'.join(args.draft_b)}（草稿）", f"{', '.join(args.draft_b)} (draft)") if args.draft_b
               else args.tables_b or shipped) + \
        (tr(f"，{args.b}", f" on {args.b}") if args.b else tr("（账单日期）", " (bill dates)"))
    accounts = _read_accounts(args.accounts) if args.accounts else None
    d = compare_policies(df, book_a=book_a, book_b=book_b, on_a=args.a, on_b=args.b, label_a=label_a,
                         label_b=label_b, row_numbers=rows, state=accounts, catalogue=_catalogue(args),
                         members=args.members)
    print(d.report())
    if args.output:
        from .batch import write_table
        from .diff import column_words
        table = d.table()
        write_table(table.rename(columns=column_words) if args.lang == "zh" else table, args.output)
        print(tr(f"\n逐张账单的比较已写入 {args.output}", f"\nwrote per-bill comparison to {args.output}"), file=sys.stderr)
    return 0


def _fmt_field(name: str, value, kind: str = "", benefit_labels: dict | None = None) -> str:
    """One table field for people: plain values inline in words (ratios as percentages, benefits by their
    label), decision tables as `condition → value` lines."""
    from .words import FIELD_VALUES, FIELDS, adjustment_words, condition_words, value_words, word

    def value_words(v, _plain=value_words):
        if name in ("rates", "rate", "ratio_add", "total_max_share_of_cap") and not isinstance(v, str):
            return _pct(v)
        if name == "applies_to" and benefit_labels:
            return _plain([benefit_labels.get(x, x) for x in (v if isinstance(v, list) else [v])])
        return _plain(v)
    label = word(FIELDS, name)
    if isinstance(value, list) and value and isinstance(value[0], dict):
        if name == "adjust":
            rows = [f"        {adjustment_words(a)}" for a in value]
        else:
            rows = [f"        {condition_words(r.get('when'))} → {value_words(r.get('value'))}"
                    + (tr(f"（来源 {r['source']}）", f"   (source {r['source']})") if r.get("source") else "")
                    for r in value]
        return f"    {label}:\n" + "\n".join(rows)
    whole = FIELD_VALUES.get((kind, name, value)) if isinstance(value, str) else None
    if whole:                                   # basis: per_admission → 起付线按每次住院计
        return f"    {label}: {tr(*whole)}"
    return f"    {label}: {value_words(value)}"


def _pct(v) -> str:
    """0.9 → 90%, lists joined (a ratio of a table as a notice writes it)."""
    from decimal import Decimal
    if isinstance(v, list):
        return tr("、", ", ").join(_pct(x) for x in v)
    try:
        return f"{(Decimal(str(v)) * 100).normalize():f}%"
    except ArithmeticError:
        return str(v)


def _add_lang(parser) -> None:
    """``--lang`` on the main parser and on each command: ``ybcalc --lang zh score …`` and
    ``ybcalc score … --lang zh`` mean the same (a command's SUPPRESS default leaves the global one)."""
    from .i18n import help_formatter
    parser.formatter_class = help_formatter()          # Chinese help lines up and wraps
    parser.add_argument("--lang", choices=["zh", "en"], default=argparse.SUPPRESS,
                        help=tr("界面语言：zh 中文，en 英文（默认：YBCALC_LANG，否则系统区域设置 LANG=zh_* 为中文，"
                                "其余为英文）",
                                "language of everything printed and written: zh Chinese, en English (default: "
                                "YBCALC_LANG, else zh for a Chinese locale LANG=zh_*, else en)"))


def build_parser() -> argparse.ArgumentParser:
    """The command line, its help in the current language (:mod:`ybcalc.i18n`)."""
    from .i18n import help_formatter
    ap = argparse.ArgumentParser(prog="ybcalc", formatter_class=help_formatter(), description=tr("按费用明细清单计算基本医疗保险结算",
                                                               "Settle itemized Chinese medical bills (基本医疗保险结算)"))
    tables_help = tr("您自己的参数表目录，叠加在随包附带的参数表之上（含 exclusions.yaml 的完整副本则单独使用）",
                     "your own tables folder, laid over the bundled tables (a complete copy of tables/, with its "
                     "own exclusions.yaml, is used alone)")
    ap.add_argument("--tables", metavar=tr("目录", "DIR"), help=tables_help)
    _add_lang(ap)
    sub = ap.add_subparsers(dest="command", required=True, metavar=tr("命令", "COMMAND"))
    encoding_help = tr("输入文件编码（默认：自动识别 UTF-8/UTF-8-BOM/GB18030）",
                       "input encoding (default: detect UTF-8/UTF-8-BOM/GB18030)")
    on_help = tr("按该日期有效的政策结算，而不是每张账单自己的日期（YYYY-MM-DD）",
                 "settle under the rules in force on this date instead of each bill's date (YYYY-MM-DD)")
    accounts_help = tr("个人账户文件（CSV：psn_no、acct_balance 个人账户余额及年内累计）",
                       "CSV of psn_no, acct_balance (个人账户余额) and year-to-date state")
    date_mv, file_mv = tr("日期", "DATE"), tr("文件", "FILE")
    members_help = tr("参保信息文件（CSV：人员编号、参保开始日期、参保结束日期、参保地、险种、缴费日期、断缴年数、补缴年数 …）："
                      "参保期的参保地、险种决定账单用哪张参数表；未参保或待遇等待期内的账单基金不支付；"
                      "连续参保年数、上年零报销提高大病保险封顶线；共济账户列写明谁（人员编号）的个人账户可支付该人员的个人负担；"
                      "文件未列出的人员按一直参保结算",
                      "members file (CSV: psn_no, begin, end, insuplc, insutype, paid_on, break_years, repaid_years …): "
                      "a span's region and scheme decide the bill's table; bills outside enrolment or in a waiting "
                      "period get no fund payment; continuous_years and prev_year_no_claim raise the critical-illness "
                      "cap; acct_payer names whose personal account may pay the member's share (family account); "
                      "members not listed are settled as always enrolled")

    s = sub.add_parser("score", help=tr("结算 CSV/Parquet 文件中的每张账单：每张账单一行",
                                        "settle every bill of CSV/Parquet files: one row per bill"),
                       description=tr("结算 CSV/Parquet 文件中的每张账单：每张账单一行",
                                      "settle every bill of CSV/Parquet files: one row per bill"))
    s.add_argument("files", nargs="+", metavar=file_mv,
                   help=tr("费用明细文件（.csv 或 .parquet）；多个文件（如按月导出的一年）一起结算，每位参保人的账单跨文件按日期排序",
                           "bill lines (.csv or .parquet); several files (a year as monthly extracts) are settled "
                           "together, each member's bills in date order across them"))
    s.add_argument("-o", "--output", required=True, metavar=file_mv,
                   help=tr("结算结果文件 .csv 或 .parquet", "output .csv or .parquet"))
    s.add_argument("--rejects", metavar=file_mv,
                   help=tr("把拒绝的行（[文件,] 行号、列、值、原因）写入此文件",
                           "write rejected rows ([file,] row, column, value, reason) to this file"))
    _add_lang(s)
    s.add_argument("--on", metavar=date_mv, help=on_help)
    s.add_argument("--accounts", metavar=file_mv, help=accounts_help)
    s.add_argument("--members", metavar=file_mv, help=members_help)
    s.add_argument("--encoding", metavar=tr("编码", "ENCODING"), help=encoding_help)
    draft_help = tr("草稿参数表文件，叠加在参数表之上（其参数自其日期起取代原参数）",
                    "a draft table file laid over the tables (its parameters replace theirs from its dates on)")
    s.add_argument("--draft", action="append", metavar=file_mv, help=draft_help)
    s.add_argument("--allow-rejects", action="store_true",
                   help=tr("有行被拒绝时也以状态 0 退出", "exit 0 even when rows were rejected"))
    s.add_argument("--engine", choices=["local", "dask"], default="local",
                   help=tr("dask：按参保人分区在 Dask 集群上计算（结果相同）",
                           "dask: partition by member over a Dask cluster (same results)"))
    s.add_argument("--scheduler", metavar=tr("地址", "ADDRESS"),
                   help=tr("Dask 调度器地址（默认：本机集群）", "Dask scheduler address (default: a local cluster)"))
    s.add_argument("--workers", type=int, default=2, metavar=tr("个数", "N"),
                   help=tr("本机 Dask 集群的工作进程数", "local Dask cluster workers"))
    s.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar=tr("个数", "N"),
                   help=tr("大文件的工作进程数（每个进程至少 4 个约 25 万行的参保人分区；默认：处理器核数）",
                           "worker processes for large files (at least 4 member partitions of ~250,000 lines "
                           "per worker; default: CPU count)"))
    s.add_argument("-q", "--quiet", action="store_true", help=tr("不打印进度和汇总", "print no progress or summary"))
    add_assume_options(s)
    s.set_defaults(func=cmd_score)

    e = sub.add_parser("explain", help=tr("逐步解释一张账单的结算", "explain one bill step by step"),
                       description=tr("逐步解释一张账单的结算：每一步的金额、规则、参数和来源",
                                      "explain one bill step by step: each step's amount, rule, value and source"))
    e.add_argument("file", metavar=file_mv, help=tr("费用明细文件（.csv 或 .parquet）", "bill lines (.csv or .parquet)"))
    e.add_argument("--mdtrt-id", metavar=tr("就诊ID", "ID"),
                   help=tr("要解释的账单的就诊ID（mdtrt_id）；文件只有一张账单时可省略",
                           "the bill to explain (its mdtrt_id); may be left out when the file holds one bill"))
    _add_lang(e)
    e.add_argument("--on", metavar=date_mv, help=on_help)
    e.add_argument("--accounts", metavar=file_mv, help=accounts_help)
    e.add_argument("--members", metavar=file_mv, help=members_help)
    e.add_argument("--encoding", metavar=tr("编码", "ENCODING"), help=encoding_help)
    e.add_argument("--format", choices=["text", "csv"], default="text",
                   help=tr("text：供阅读的文字；csv：每步一行的表格", "text: for reading; csv: one row per step"))
    e.add_argument("--draft", action="append", metavar=file_mv, help=draft_help)
    add_assume_options(e)
    e.set_defaults(func=cmd_explain)

    t = sub.add_parser("tables", help=tr("列出、显示、校验政策参数表，或显示覆盖矩阵",
                                         "list, show, validate the policy tables, or their coverage matrix"),
                       description=tr("list 列出参数表；show 显示一个地区的参数及来源；validate 校验；coverage 覆盖矩阵；"
                                      "new 生成一个按通知填写的参数表（默认写到 ./ybcalc-tables/）",
                                      "list the tables; show a region's values and sources; validate them; "
                                      "coverage: the coverage matrix; new: write a starter table to fill from a "
                                      "notice (into --tables DIR, default ./ybcalc-tables/)"))
    t.add_argument("action", choices=["list", "show", "validate", "coverage", "new"], metavar=tr("操作", "ACTION"),
                   help="list | show | validate | coverage | new")
    t.add_argument("region", nargs="?", metavar=tr("地区", "REGION"),
                   help=tr("show 的地区（名称、id 或行政区划代码）", "the region to show (name, id or code)"))
    t.add_argument("--scheme", metavar=tr("险种", "SCHEME"), help=tr("只显示 职工 或 居民", "only 职工 or 居民"))
    t.add_argument("--format", choices=["text", "md"], default="text",
                   help=tr("coverage 的格式：text 终端表格，md Markdown", "coverage as text (terminal) or md (Markdown)"))
    t.add_argument("--draft", action="append", metavar=file_mv, help=draft_help)
    t.add_argument("--force", action="store_true",
                   help=tr("new：覆盖已有的参数表", "new: overwrite an existing starter table"))
    _add_lang(t)
    t.set_defaults(func=cmd_tables)

    d = sub.add_parser("diff", help=tr("在同一批账单上比较两种政策（两个日期或草稿参数表）",
                                       "compare two policies (dates or a draft table) on the same bills"),
                       description=tr("在同一批账单上比较两种政策（两个日期或草稿参数表）",
                                      "compare two policies (dates or a draft table) on the same bills"))
    d.add_argument("file", metavar=file_mv, help=tr("费用明细文件（.csv 或 .parquet）", "bill lines (.csv or .parquet)"))
    d.add_argument("--a", metavar=date_mv, help=tr("政策 A 的日期（默认：每张账单自己的日期）",
                                                   "policy date A (default: each bill's date)"))
    d.add_argument("--b", metavar=date_mv, help=tr("政策 B 的日期（默认：每张账单自己的日期）",
                                                   "policy date B (default: each bill's date)"))
    d.add_argument("--draft-a", action="append", metavar=file_mv,
                   help=tr("政策 A 叠加的草稿参数表", "draft table file(s) laid over the tables for A"))
    d.add_argument("--draft-b", action="append", metavar=file_mv,
                   help=tr("政策 B 叠加的草稿参数表", "draft table file(s) laid over the tables for B"))
    d.add_argument("--tables-b", metavar=tr("目录", "DIR"), help=tr("政策 B 的整个参数表目录", "a whole tables folder for B"))
    d.add_argument("-o", "--output", metavar=file_mv,
                   help=tr("逐张账单的比较结果 CSV/Parquet", "per-bill comparison CSV/Parquet"))
    d.add_argument("--encoding", metavar=tr("编码", "ENCODING"), help=encoding_help)
    d.add_argument("--accounts", metavar=file_mv, help=accounts_help)
    d.add_argument("--members", metavar=file_mv, help=members_help)
    _add_lang(d)
    add_assume_options(d)
    d.set_defaults(func=cmd_diff)

    from .compare_cli import add_compare_command
    _add_lang(add_compare_command(sub))
    for command in sub.choices.values():     # `ybcalc score … --tables DIR` as well as `ybcalc --tables DIR score …`
        command.add_argument("--tables", default=argparse.SUPPRESS, metavar=tr("目录", "DIR"), help=tables_help)
    return ap


def _reader_left() -> int:
    """The reader of our output went away (``ybcalc … | head``): stop quietly, as ``cat`` does, without
    a traceback; the rest of the output goes nowhere (Python would otherwise complain when it flushes
    stdout at exit). Exit status 141 = killed by SIGPIPE, what a shell expects of such a command."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):          # stdout without a file descriptor (a test's capture)
        pass
    return 141


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    with language(lang_in_argv(argv)) as lang:
        use_argparse_lang(lang)
        try:
            args = build_parser().parse_args(argv)
            args.lang = lang
            with _stopped_by_sigterm():
                return args.func(args)
        except (ValueError, KeyError, FileNotFoundError, FileExistsError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            print(f"ybcalc: {msg}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            return _reader_left()
        except KeyboardInterrupt as exc:   # Ctrl-C or SIGTERM: workers and temporary files are gone by now
            name = "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"
            print("ybcalc: " + tr(f"已中止（{name}），未完成的输出已删除",
                                  f"stopped ({name}); unfinished outputs removed"), file=sys.stderr)
            return 143 if isinstance(exc, Terminated) else 130
        finally:
            use_argparse_lang("en")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler, `kill`, `timeout`), raised as Ctrl-C is: the run stops through the
    same cleanup (workers stopped, partition files and unfinished outputs removed)."""


@contextlib.contextmanager
def _stopped_by_sigterm():
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)      # a second SIGTERM ends the process at once
        raise Terminated()
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())

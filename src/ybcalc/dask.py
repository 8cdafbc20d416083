"""Scoring past one machine with Dask.

Lines are shuffled by member (``psn_no``) so that each member's bills — and so their year state —
are settled inside one task by the same engine as the single-machine path; results are therefore
identical. Use it when a year of a province's bills does not fit one machine's memory, or to spread
the work over a cluster: ``ybcalc score bills.csv -o out.parquet --engine dask --scheduler tcp://…``.

    import dask, ybcalc.dask
    ddf = ybcalc.dask.read_csv("bills.csv")          # rows with the wrong number of fields become rejects
    bills, rejects = ybcalc.dask.score(ddf)          # lazy Dask DataFrames
    bills, rejects = dask.compute(bills, rejects)    # compute both in one pass

(Any Dask DataFrame of text works, e.g. ``dd.read_csv(..., dtype=str, keep_default_na=False)``, but
Dask's CSV reader stops the run at a row with the wrong number of fields.)
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .i18n import tr
from .labels import SETTLEMENT_FIELDS

BILL_COLUMNS = (["mdtrt_id", "psn_no", "setl_time", "insuplc", "insutype", "med_type", "benefit"]
                + list(SETTLEMENT_FIELDS) + ["policy_version", "warnings", "notes"])
REJECT_COLUMNS = ["row", "mdtrt_id", "column", "value", "reason"]


def money_dtype():
    """Money in Dask's bills: exact yuan as Arrow decimal128(18, 2), whose values are the Decimals
    ``ybcalc.score`` returns (the unscaled integers are the engine's fen)."""
    import pyarrow as pa
    return pd.ArrowDtype(pa.decimal128(18, 2))


def money_fen(col: pd.Series) -> np.ndarray:
    """The int64 fen of a money column of Dask's bills (exact: a decimal128(18, 2) stores its fen)."""
    import pyarrow as pa
    arr = pa.array(col.array) if isinstance(col.dtype, pd.ArrowDtype) else pa.array(col, pa.decimal128(18, 2))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not len(arr):
        return np.zeros(0, np.int64)
    words = np.frombuffer(arr.buffers()[1], np.int64, count=2 * (arr.offset + len(arr)))
    return words[2 * arr.offset::2].copy()


def _has_claims(columns) -> bool:
    """The lines say how bills were settled (结算方式 / 申报日期): the bills then carry ``claim_in_time``."""
    return "settle_mode" in columns or "claim_date" in columns


def _meta(catalogue: bool = False, members: bool = False, claims: bool = False):
    from .members import MEMBER_BILL_COLUMNS
    columns = (BILL_COLUMNS + (["catalogue_lines"] if catalogue else [])     # --catalogue: lines it classed
               + (list(MEMBER_BILL_COLUMNS) if members else [])             # --members: eligibility …
               + (["claim_in_time"] if claims else []))                     # manual claims: filed in time?
    bills = pd.DataFrame({c: pd.Series(dtype=money_dtype() if c in SETTLEMENT_FIELDS else
                                     "int64" if c == "catalogue_lines" else "str")
                          for c in columns})
    rejects = pd.DataFrame({"row": pd.Series(dtype="int64"), **{c: pd.Series(dtype="str")
                                                               for c in REJECT_COLUMNS[1:]}})
    return bills, rejects


def _conform(df: pd.DataFrame, meta: pd.DataFrame) -> pd.DataFrame:
    """Partition output with exactly the metadata's columns and dtypes."""
    return df[list(meta.columns)].astype(meta.dtypes.to_dict())


def _assumed_book(tables: str | None, assume: tuple):
    """The tables with the assumptions applied, once per worker process and set of assumptions."""
    from .api import load_tables
    if not assume:
        return load_tables(tables)
    key = (tables, assume)
    if key not in _ASSUMED:
        from .assume import apply_assumptions
        _ASSUMED[key] = apply_assumptions(load_tables(tables), list(assume)).book
    return _ASSUMED[key]


_ASSUMED: dict = {}


def _score_partition(part: pd.DataFrame, tables: str | None, on, accounts: pd.DataFrame | None,
                     prior: dict | None = None, assume: tuple = (), catalogue=None, members=None):
    """(bills, rejects, members absent from the members file) of one partition of whole members (and
    families: see ybcalc.routing)."""
    from .batch import score_frame
    bills_meta, rejects_meta = _meta(catalogue is not None, members is not None, _has_claims(part.columns))
    if len(part) == 0:
        return bills_meta, rejects_meta, 0
    rows = part["_row"].to_numpy(np.int64)
    part = part.drop(columns=["_row", "_route"])
    order = np.argsort(rows, kind="stable")
    part = part.iloc[order].reset_index(drop=True)
    rows = rows[order]
    res = score_frame(part, _assumed_book(tables, tuple(assume)), row_numbers=rows, on=on, state=accounts,
                      prior_rejects=prior, catalogue=catalogue, members=members)
    from .money import fen_to_arrow_decimal
    bills = res.settlement.bills(money="fen")
    for c in SETTLEMENT_FIELDS:             # exact yuan, as ybcalc.score returns them (not fen)
        bills[c] = pd.Series(pd.arrays.ArrowExtensionArray(fen_to_arrow_decimal(bills[c].to_numpy())),
                             index=bills.index)
    bills = _conform(bills, bills_meta)
    rejects = _conform(res.rejects, rejects_meta)
    return bills, rejects, res.members_absent or 0


def _count_frame(n) -> pd.DataFrame:
    return pd.DataFrame({"n": pd.Series([n], dtype="int64")})


def score(ddf, *, tables: str | None = None, on=None, accounts: pd.DataFrame | None = None,
          first_row: int | list = 2, npartitions: int | None = None, files: list | None = None,
          assume=None, catalogue=None, members=None):
    """Lazily score a Dask DataFrame of lines. Returns (bills, rejects) as Dask DataFrames.

    ``first_row``: the row number of the first data line as users see it (2 for a CSV with a header),
    so that rejects name the same rows as the single-machine path. Money columns are exact yuan,
    Arrow decimal128(18, 2): each value is the Decimal ``ybcalc.score`` returns for it.

    ``ddf`` may be a list of Dask DataFrames, one per input file (a year as monthly extracts, their
    headers in either language): they are settled together, and each reject names its file (from
    ``files``, else the file's position) and its row in that file; ``first_row`` is then one number
    for all or one per file.

    ``members``: enrolment spans (a members file, a DataFrame or ``ybcalc.members.read_members``), read
    here once and sent to the workers once; the bills gain ``eligibility`` as on one machine. Members
    whose accounts are linked (``acct_payer``, 家庭共济) are settled in one partition, as one family.
    """
    bills, rejects, _, _ = _score(ddf, tables=tables, on=on, accounts=accounts, first_row=first_row,
                                  npartitions=npartitions, files=files, assume=assume, catalogue=catalogue,
                                  members=members)
    return bills, rejects


def _compute(*collections, progress: str | None = None):
    """dask.compute; with ``progress`` (what is being done), a text progress bar on standard error
    while a distributed client computes (used on a terminal only, as the local engine's bar)."""
    import dask
    if not progress:
        return dask.compute(*collections)
    import contextlib
    import sys

    from distributed import default_client
    from distributed import progress as progress_bar
    client = default_client()
    print(f"  {progress} …", file=sys.stderr, flush=True)
    futures = client.compute(list(collections))
    with contextlib.redirect_stdout(sys.stderr):        # the bar writes to standard output
        progress_bar(futures, multi=False)
    return tuple(client.gather(futures))


def _score(ddf, *, tables: str | None = None, on=None, accounts: pd.DataFrame | None = None,
           first_row: int | list = 2, npartitions: int | None = None, files: list | None = None,
           progress: bool = False, assume=None, catalogue=None, members=None):
    """``score``, the number of rows read (broken rows included), known after its first pass, and (with
    ``members``) the lazy count of members the members file does not list (None without one).
    ``assume`` (``ybcalc.assume`` statements) reach the workers as text, each applies them to its
    tables once; ``catalogue`` (a file or ``load_catalogue``'s result) is read here, once."""
    import dask
    import dask.dataframe as dd

    from .batch import FILE_SHIFT
    from .inputs import check_headers, rename_columns
    from .routing import member_pairs, route_keys
    several_files = isinstance(ddf, (list, tuple))
    parts_in = list(ddf) if several_files else [ddf]
    firsts = first_row if isinstance(first_row, (list, tuple)) else [first_row] * len(parts_in)
    for i, d in enumerate(parts_in):              # refused before any task runs
        check_headers([c for c in d.columns if c not in MARKS], files[i] if files else f"input {i + 1}")
    parts_in = [d.map_partitions(rename_columns) for d in parts_in]
    ddf = parts_in[0] if len(parts_in) == 1 else dd.concat(parts_in)
    if "mdtrt_id" not in ddf.columns or "psn_no" not in ddf.columns:
        raise ValueError(tr("Dask 按参保人分区计算：明细需要 mdtrt_id（就诊ID）和 psn_no（人员编号）列",
                            "Dask scoring partitions by member: the lines need mdtrt_id (就诊ID) and psn_no (人员编号) columns"))
    # One pass over the input (the files are read once for all three, then again to be settled):
    # - rows per partition: row numbers per file, before the shuffle moves rows between partitions (a
    #   file's index sits above its rows, as in the single-machine path: see batch.FILE_SHIFT);
    # - rows a reader marked as broken (see read_csv: a row with the wrong number of fields): they count
    #   in the row numbers, are rejects of their own and take the rest of their bill with them;
    # - a member's bills and a bill's lines must meet in one task (see ybcalc.routing): the bills whose
    #   lines name several members; their lines travel together, by the bill.
    pairs = ddf.map_partitions(lambda p: member_pairs(_good(p)["mdtrt_id"], _good(p)["psn_no"]),
                               meta=pd.DataFrame({"bill": pd.Series(dtype=object), "member": pd.Series(dtype=object)}))
    k = len(parts_in)
    found = _compute(*[d.map_partitions(len) for d in parts_in],
                     *[d.map_partitions(_marked_rows, meta=_MARKED_META) for d in parts_in],
                     pairs.drop_duplicates().groupby("bill").size(),
                     progress=tr("读取：行、损坏的行、参保人", "reading: rows, broken rows, members") if progress else None)
    lengths, marks, per_bill = found[:k], found[k:2 * k], found[-1]
    several = set(per_bill.index[per_bill.to_numpy() > 1])
    names = [str(f) for f in (files or range(k))]
    offsets, broken, prior, blank = [], [], {}, 0
    for i, marked in enumerate(marks):
        starts = np.concatenate([[0], np.cumsum(lengths[i])[:-1]]).astype(np.int64) + firsts[i]
        offsets += list(starts + (i << FILE_SHIFT))
        blank_line = marked["_broken"].to_numpy() == BLANK      # a row on screen, but no record: not read
        blank += int(blank_line.sum())
        marked = marked[~blank_line]
        if len(marked):
            rows = starts[marked["partition"].to_numpy()] + marked["at"].to_numpy()
            broken.append(pd.DataFrame({
                "row": rows + (i << FILE_SHIFT), "mdtrt_id": marked["mdtrt_id"].to_numpy(), "column": "(row)",
                "value": marked["_text"].map(_shortened).to_numpy(), "reason": marked["_broken"].to_numpy()},
                columns=REJECT_COLUMNS))
            from .batch import broken_prior
            where = tr(f"{names[i]} 第", f"{names[i]} row") if several_files else tr("第", "row")
            for bill, reason in broken_prior(marked["mdtrt_id"], rows, where).items():
                prior.setdefault(bill, reason)
    broken = pd.concat(broken, ignore_index=True) if broken else None

    family = None
    if members is not None:
        # read once here (a bad members file fails before any task), sent to the workers once; a
        # family whose accounts are linked (家庭共济) is routed as one member, by its root
        from .api import load_tables
        from .members import read_members
        from .routing import family_roots
        members = read_members(members, load_tables(tables))
        family = family_roots(members)
        members = dask.delayed(members)
    family_d = dask.delayed(family) if family else None

    def add_rows(part, offset, family=None):
        part = part.copy()
        part["_row"] = np.arange(len(part), dtype=np.int64) + offset
        part = _good(part)             # numbered first: a broken row keeps its place in the file's rows
        part["_route"] = route_keys(part["mdtrt_id"], part["psn_no"], several, family).astype(object)
        return part

    parts = ddf.to_delayed()
    numbered = dd.from_delayed([dask.delayed(add_rows)(p, int(o), family_d) for p, o in zip(parts, offsets)],
                               meta=add_rows(ddf._meta, 0))
    shuffled = numbered.shuffle(on="_route", npartitions=npartitions or ddf.npartitions)
    assume = tuple(str(a.spec if hasattr(a, "spec") else a) for a in _statements(assume))
    if assume:                          # a statement that cannot be read fails here, before any task
        from .api import load_tables
        from .assume import apply_assumptions
        apply_assumptions(load_tables(tables), list(assume))
    if catalogue is not None:
        from .catalogue import load_catalogue
        catalogue = dask.delayed(load_catalogue(catalogue))       # sent to the workers once
    bills_meta, rejects_meta = _meta(catalogue is not None, members is not None, _has_claims(ddf.columns))
    outs = [dask.delayed(_score_partition, nout=3)(p, tables, on, accounts, prior or None, assume, catalogue,
                                                   members)
            for p in shuffled.to_delayed()]
    bills = dd.from_delayed([o[0] for o in outs], meta=bills_meta)
    rejects = dd.from_delayed([o[1] for o in outs], meta=rejects_meta)
    absent = None
    if members is not None:        # a Dask collection like the others (computed with them in one pass)
        counts = dd.from_delayed([dask.delayed(_count_frame)(o[2]) for o in outs], meta=_count_frame(0))
        absent = counts["n"].sum()
    if broken is not None:
        rejects = dd.concat([rejects, dd.from_pandas(_conform(broken, rejects_meta), npartitions=1)])
    if several_files:
        from pathlib import Path

        from .batch import with_files
        paths = [Path(nm) for nm in names]
        rejects = rejects.map_partitions(with_files, paths, meta=with_files(rejects_meta, paths))
    return bills, rejects, int(sum(int(np.sum(n)) for n in lengths)) - blank, absent


def _statements(assume) -> list:
    if not assume:
        return []
    return [assume] if isinstance(assume, str) else list(assume)


MARKS = ["_broken", "_text"]          # a row the reader could not split into the header's fields: why, and its text
_MARKED_META = pd.DataFrame({"partition": pd.Series(dtype="int64"), "at": pd.Series(dtype="int64"),
                             "mdtrt_id": pd.Series(dtype=object), "_broken": pd.Series(dtype=object),
                             "_text": pd.Series(dtype=object)})


def _good(part: pd.DataFrame) -> pd.DataFrame:
    """The rows of a partition that a reader did not mark as broken, without the marks."""
    if "_broken" not in part.columns:
        return part
    return part[part["_broken"].to_numpy() == ""].drop(columns=MARKS)


def _marked_rows(part: pd.DataFrame, partition_info=None) -> pd.DataFrame:
    """The broken rows of a partition: their place in it, visit id, reason and text."""
    if "_broken" not in part.columns or not len(part):
        return _MARKED_META
    at = np.flatnonzero(part["_broken"].to_numpy() != "")
    out = part.iloc[at][["mdtrt_id"] + MARKS] if "mdtrt_id" in part.columns else \
        part.iloc[at][MARKS].assign(mdtrt_id="")
    return pd.DataFrame({"partition": (partition_info or {}).get("number", 0), "at": at,
                         "mdtrt_id": out["mdtrt_id"].to_numpy(), "_broken": out["_broken"].to_numpy(),
                         "_text": out["_text"].to_numpy()}, columns=list(_MARKED_META.columns))


def _shortened(text: str) -> str:
    return text if len(text) <= 200 else text[:199] + "…"


BLANK = "(blank line)"                # the mark of a blank line's slot (a row on screen, not a record)


def _read_range(path: str, lo: int, hi: int, names: list, encoding: str, sep: str, header: bool) -> pd.DataFrame:
    """The block of ``path`` from byte ``lo`` to ``hi`` (whole records, see batch._block_bounds)."""
    with open(path, "rb") as f:
        f.seek(lo)
        data = f.read(hi - lo)
    return _read_block(data, names, encoding, sep, header)


def _read_block(data: bytes, names: list, encoding: str, sep: str, header: bool) -> pd.DataFrame:
    """One block of a CSV file (whole rows, the file's header in the first) as the single-machine
    reader reads it: every cell text, a missing cell empty. A row with the wrong number of fields
    stays in its place, empty but for its visit id, marked with the reason and its text (MARKS).

    The frame has one row per row a spreadsheet shows (see batch.blank_rows), the header's excepted:
    a blank line is a row marked BLANK, so that a row's place in the file is its place in the frame."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    from .batch import as_broken_rows, blank_rows, codes_header, read_csv_block, record_rows
    table, found = read_csv_block(data, names, encoding, sep,
                                  pacsv.ConvertOptions(column_types={nm: pa.string() for nm in names},
                                                       strings_can_be_null=False), header, collect=True)
    good = table.to_pandas()
    for mark in MARKS:
        good[mark] = ""
    records = int(header) + len(good) + len(found)
    blanks = blank_rows(data, encoding, sep, records)
    if not found and not len(blanks):
        return good.astype(object)     # object, as the metadata says (pandas 3 infers its str dtype)
    # each record's row on screen, then its slot in the frame: the header's row is no slot (a blank
    # line before the header takes the slot that the header's row would have had)
    on_screen = record_rows(records, blanks)
    first = int(on_screen[0]) if header else 0

    def slot(row):
        row = np.asarray(row, np.int64)
        return row - 1 - (header & (row > first))
    data_rows = on_screen[int(header):]
    broken = np.zeros(len(data_rows), bool)
    # the reader numbers records from the block's first line (the header counts)
    at_record = np.array([int(r.number) - 1 - int(header) for r in found], dtype=np.int64)
    broken[at_record] = True
    n = len(data_rows) + len(blanks)
    out = pd.DataFrame({c: np.full(n, "", dtype=object) for c in good.columns}).astype(object)
    out.iloc[slot(data_rows[~broken])] = good.to_numpy(dtype=object)
    if len(blanks):
        out.loc[slot(blanks), MARKS[0]] = BLANK
    if found:
        at = slot(data_rows[at_record])
        rows = as_broken_rows(list(zip(at, found)), names, sep)
        visit = [c for c in names if codes_header(c) == "mdtrt_id"]
        if visit:
            out.loc[at, visit[0]] = [b.mdtrt_id for b in rows]
        out.loc[at, MARKS[0]] = [b.reason for b in rows]
        out.loc[at, MARKS[1]] = [b.text for b in rows]
    return out.astype(object)


def read_csv(path: str, *, encoding: str | None = None, blocksize: str | int | None = "64MB"):
    """A CSV file as a Dask DataFrame of text, read in blocks of whole rows, as the single-machine
    reader reads it: encoding detected (or given), separator from the header line, blocks cut at
    record boundaries (a quoted value may hold a line break: batch._block_bounds), and a row with the
    wrong number of fields kept in its place as a marked row (``score`` lists it as a reject with its
    file row and rejects the rest of its bill; a Dask CSV reader would stop the run there). Rows are
    numbered as a spreadsheet shows them: blank lines are marked rows (see _read_block)."""
    import dask
    import dask.dataframe as dd
    import pyarrow.csv as pacsv
    from dask.utils import parse_bytes

    from pathlib import Path

    from .batch import _arrow_enc, _block_bounds, sniff_delimiter
    from .inputs import check_headers
    encoding = encoding or detect_encoding(path)
    sep = sniff_delimiter(path, encoding)
    names = [str(nm).lstrip("\ufeff") for nm in pacsv.open_csv(
        path, read_options=pacsv.ReadOptions(encoding=_arrow_enc(encoding)),
        parse_options=pacsv.ParseOptions(delimiter=sep, invalid_row_handler=lambda row: "skip")).schema.names]
    check_headers(names, path)              # before the frame's metadata would keep one of two equal names
    # a UTF-16 file has no byte a block could be cut at without decoding: one block
    size = Path(path).stat().st_size
    if encoding.startswith("utf-16") or blocksize is None:
        bounds = [(0, size)]
    else:
        bounds = _block_bounds(Path(path), parse_bytes(blocksize) if isinstance(blocksize, str) else int(blocksize))
    meta = pd.DataFrame({c: pd.Series(dtype=object) for c in names + MARKS})
    parts = [dask.delayed(_read_range)(str(path), lo, hi, names, encoding, sep, i == 0)
             for i, (lo, hi) in enumerate(bounds)]
    return dd.from_delayed(parts, meta=meta)


def _parquet_text(df: pd.DataFrame) -> pd.DataFrame:
    """A partition of a typed Parquet file as the text the single-machine reader makes of it (zoned
    timestamps on their own clock, missing cells missing, not the text "nan")."""
    import pyarrow as pa
    from .batch import _as_text
    t = pa.Table.from_pandas(df, preserve_index=False)
    return pa.table([_as_text(c) for c in t.columns], names=t.column_names).to_pandas()


def _expand(path) -> list[str]:
    """Files named by a path, a glob, or a list of either (in the order given, a glob's sorted)."""
    import glob
    out = []
    for p in ([path] if isinstance(path, (str, bytes)) or not hasattr(path, "__iter__") else path):
        out += sorted(glob.glob(str(p))) if glob.has_magic(str(p)) else [str(p)]
    if not out:
        raise ValueError(tr(f"没有输入文件与 {path} 相符", f"no input file matches {path}"))
    return out


def detect_encoding(path: str) -> str:
    """The encoding the single-machine reader would settle on for a CSV file: UTF-16 by its byte-order
    mark, UTF-8 (with or without BOM) when every byte decodes, else GB18030 (which covers GBK). The
    whole file is checked, in 16 MB steps, as a GBK file may hold only ASCII in its first rows."""
    from .batch import _utf8_bom, mixed_encoding, rest_is_utf8
    with open(path, "rb") as f:
        if f.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            return "utf-16"
        f.seek(0)
        if rest_is_utf8(f):
            return "utf-8-sig"
    if _utf8_bom(path):                        # a UTF-8 BOM before text that is not UTF-8
        raise ValueError(mixed_encoding(path))
    return "gb18030"


def score_path(path, *, scheduler: str | None = None, workers: int = 2, tables=None, on=None,
               accounts=None, encoding: str | None = None, blocksize: str = "64MB", progress: bool = False,
               assume=None, catalogue=None, members=None):
    """Score CSV/Parquet files (a file, a glob, or a list) on a Dask cluster; returns pandas (bills,
    rejects) sorted like the single-machine output (member, region, scheme, date). With several
    files the rejects name their file, and rows are counted in each file, as locally.
    ``rejects.attrs["rows_read"]``: the rows read from all files (each either scored or rejected);
    with ``members`` (see ``score``), ``rejects.attrs["members_absent"]``: the members of the bills
    that the members file does not list.
    ``progress``: a progress bar for each of the two passes on standard error."""
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from pathlib import Path

    from .batch import _refuse_workbook
    paths = _expand(path)
    encodings = {}                  # of the CSV files
    for f in paths:                 # checked before a cluster is started
        if not f.lower().endswith((".parquet", ".pq")):
            _refuse_workbook(Path(f))
            encodings[f] = encoding or detect_encoding(f)
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        # silence_logs: the cluster's own chatter (each shuffle's start and end is a WARNING) is not news
        # to the user of a local cluster; errors still show
        import logging
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = Client(cluster)
    try:
        ddfs, firsts = [], []
        for f in paths:
            if f in encodings:
                ddfs.append(read_csv(f, encoding=encodings[f], blocksize=blocksize))
                firsts.append(2)
            else:
                ddfs.append(dd.read_parquet(f).map_partitions(_parquet_text))
                firsts.append(1)
        several = len(ddfs) > 1
        bills, rejects, rows_read, absent = _score(ddfs if several else ddfs[0], tables=tables, on=on,
                                                   accounts=accounts, first_row=firsts if several else firsts[0],
                                                   files=paths if several else None, progress=progress,
                                                   assume=assume, catalogue=catalogue, members=members)
        bills, rejects, *absent = _compute(bills, rejects, *([absent] if absent is not None else []),
                                           progress=tr("结算", "settling") if progress else None)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    bills = bills.sort_values(["psn_no", "insuplc", "insutype", "setl_time", "mdtrt_id"], kind="stable")
    order = ["file", "row"] if "file" in rejects.columns else ["row"]
    if "file" in rejects.columns:        # files in the order given, not by name
        rejects["file"] = pd.Categorical(rejects["file"], categories=list(dict.fromkeys(paths)), ordered=True)
        rejects = rejects.sort_values(order, kind="stable")
        rejects["file"] = rejects["file"].astype(str).astype(object)
    else:
        rejects = rejects.sort_values(order, kind="stable")
    rejects = rejects.reset_index(drop=True)
    rejects.attrs["rows_read"] = rows_read          # for the summary: rows read = scored + rejected
    if absent:
        rejects.attrs["members_absent"] = int(absent[0])
    return bills.reset_index(drop=True), rejects

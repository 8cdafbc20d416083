"""Scoring files of bills: read, settle, and account for every input row.

``score`` never stops at a bad row: rows that cannot be read, and bills that cannot be settled,
are returned as rejects with their source row, column and reason, and the summary checks
rows read = rows scored + rows rejected.
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .api import Policy, Settlement, _state_frame, load_tables, policy_inputs
from .i18n import tr
from .labels import SETTLEMENT_FIELDS
from .engine.settle import settle_prepared
from .inputs import REJECT_COLUMNS, check_headers, prepare
from .money import fen_to_arrow_decimal
from .policy.loader import PolicyBook

ENCODINGS = ("utf-8-sig", "gb18030")


# Code columns repeat a few values over millions of lines: read as dictionaries (one small table of
# texts per block and an integer per line), they are moved between partitions and parsed at the cost
# of integers. Ids and amounts, mostly distinct, stay plain text.
REPEATED_CODES = ("setl_time", "fee_ocur_time", "insuplc", "insutype", "psn_type", "contrib_tier", "psn_idet_type",
                  "age", "med_type", "hosp_lv", "hosp_type", "mdtrt_area", "fil_type", "chrgitm_lv",
                  "med_chrgitm_type", "selfpay_prop", "chld_medc_flag", "settle_mode", "claim_date")


def read_arrow(path: str | Path, encoding: str | None = None, dictionary: bool = False, known_only: bool = False,
               broken: list | None = None, blank: list | None = None):
    """Read a CSV (UTF-8, UTF-8 with BOM, GBK/GB18030, UTF-16 with BOM) or Parquet file into an Arrow
    table of text.

    Every column is read as text so that amounts stay exact and codes keep leading zeros. The CSV
    encoding is detected (a UTF-16 byte-order mark, else UTF-8 first, then GB18030, which covers GBK)
    unless given. ``dictionary``:
    code columns (``REPEATED_CODES``) come as dictionary-encoded text. ``known_only``: columns whose
    header names no field the settlement reads (科室, 医生, 备注 … of hospital exports) are not parsed
    at all (all are read when none is known, so that the missing ones can be named). ``broken``: a
    list that collects, instead of failing the read, the CSV rows whose number of fields is not the
    header's (an unquoted comma in a value, a cut-off line): ``BrokenRow``s with their file row.
    ``blank``: a list that collects the file rows of blank lines (no row of the table, but a row of
    the file as a spreadsheet shows it: ``row_numbers`` skips them). Rows are numbered as a
    spreadsheet shows them (see ``blank_rows``).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    path = Path(path)

    def wanted(names):
        known = list(dict.fromkeys(nm for nm in names if codes_header(str(nm).lstrip("\ufeff"))))
        return known if known_only and known else list(names)

    if path.suffix.lower() in (".parquet", ".pq"):
        check_headers(pq.read_schema(path).names, path)
        return _read_parquet(path, wanted(pq.read_schema(path).names), dictionary), 1
    _refuse_workbook(path)
    encodings = (encoding,) if encoding else _utf16(path) or ENCODINGS
    last = None
    # Blocks of up to 8 MB (pyarrow's default is 1 MB): a large file reads ~30% faster, and has fewer,
    # larger blocks to move to member partitions later; a small one is still split for every core.
    block = int(min(8 << 20, max(1 << 20, path.stat().st_size // 16)))
    for enc in encodings:
        delimiter = sniff_delimiter(path, enc)
        try:
            with _quiet_undecodable_rows():
                names = pacsv.open_csv(
                    path, read_options=pacsv.ReadOptions(encoding=_arrow_enc(enc)),
                    parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=lambda row: "skip"),
                ).schema.names
                check_headers(names, path)
                coded = pa.dictionary(pa.int32(), pa.string())
                convert = pacsv.ConvertOptions(
                    column_types={nm: coded if dictionary and codes_header(nm.lstrip("\ufeff")) in REPEATED_CODES
                                  else pa.string() for nm in names}, strings_can_be_null=False,
                    include_columns=wanted(names))
                t, invalid, blanks = _read_blocks(path, enc, block, delimiter, names, convert, broken is not None)
            if invalid:
                broken.extend(as_broken_rows(invalid, names, delimiter))
            if blank is not None:
                blank.extend(blanks)
            return t, 2
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            last = exc
            # a row with the wrong number of fields that is not text in this encoding either fails to
            # reach the handler that would skip it: a sign of the wrong encoding, like a decoding error
            wrong_encoding = any(w in str(exc) for w in ("UTF8", "UTF-8", "decode", "codec")) or (
                broken is not None and "CSV parse error" in str(exc) and enc != encodings[-1])
            if not wrong_encoding:
                raise ValueError(f"{path}: {exc}") from exc
            if not encoding and enc == "utf-8-sig" and _utf8_bom(path):
                raise ValueError(mixed_encoding(path)) from exc
    raise ValueError(tr(f"{path}：无法按 {' 或 '.join(encodings)} 解码（{last}）；请用 --encoding 指定编码",
                        f"{path}: cannot decode as {' or '.join(encodings)} ({last}); use --encoding"))


def rest_is_utf8(f) -> bool:
    """Whether the rest of the open binary file ``f`` decodes as UTF-8, read in 16 MB steps (a GBK file
    may hold only ASCII in its first rows, so the whole file is checked)."""
    import codecs
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while chunk := f.read(16 << 20):
            decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _utf8_bom(path) -> bool:
    """The file starts with UTF-8's byte-order mark, and its text after it is not UTF-8."""
    with open(path, "rb") as f:
        return f.read(3) == b"\xef\xbb\xbf" and not rest_is_utf8(f)


def mixed_encoding(path) -> str:
    """A file that starts with UTF-8's byte-order mark but whose text is not UTF-8 (a GBK export that
    an editor saved a BOM in front of): read as either encoding, part of it would be garbled."""
    from .i18n import tr
    return tr(f"{path}：编码混杂：文件以 UTF-8 的 BOM 开头，正文却不是 UTF-8（可能是 GBK）。"
               f"请将文件整体另存为 UTF-8 或 GBK 后再计算",
               f"{path}: mixed encoding: the file starts with a UTF-8 byte-order mark (BOM), but its text is "
               f"not UTF-8 (GBK?); save the whole file again as UTF-8 or as GBK and score that")


def _read_parquet(path: Path, names: list, dictionary: bool):
    """Parquet columns as the text a CSV would hold (see ``_as_text``). With ``dictionary``, code
    columns come as dictionaries, as from the CSV reader (see REPEATED_CODES): text from Parquet's own
    dictionary pages, which the reader hands over without hashing again, integer codes (hosp_lv 3,
    age 45) numbered by value with their few distinct values as text."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    schema = pq.read_schema(path)

    def code(nm):
        return dictionary and codes_header(nm) in REPEATED_CODES
    t = pq.read_table(path, columns=names,
                      read_dictionary=[nm for nm in names if code(nm) and pa.types.is_string(schema.field(nm).type)])
    cols = []
    for nm, c in zip(t.column_names, t.columns):
        if pa.types.is_dictionary(c.type) and pa.types.is_string(c.type.value_type):
            cols.append(c)
        elif code(nm) and pa.types.is_integer(c.type):
            cols.append(pc.dictionary_encode(c).cast(pa.dictionary(pa.int32(), pa.string())))
        else:
            cols.append(_as_text(c))
    return pa.table(cols, names=t.column_names)


@dataclass
class BrokenRow:
    """A CSV row whose number of fields is not the header's (skipped by the reader, reported)."""
    row: int                  # the file row, as a person counts it (the header is row 1)
    fields: int
    expected: int
    text: str
    mdtrt_id: str             # the visit id as far as the row can be read ("" if not)

    @property
    def reason(self) -> str:
        return tr(f"该行有 {self.fields} 个字段，表头有 {self.expected} 个（某个值里有未加引号的"
                  f"{'逗号' if self.fields > self.expected else '换行，或该行被截断'}？）",
                  f"row has {self.fields} fields, the header {self.expected} (a value with an unquoted "
                  f"{'comma' if self.fields > self.expected else 'line break, or a cut-off line'}?)")


def read_csv_block(data, names: list, encoding: str, delimiter: str, convert, header: bool, collect: bool,
                   chunk: int | None = None):
    """One block of whole CSV rows (the file's header first, in its first block), read on the calling
    thread into chunks of ``chunk`` bytes (default: the block is one chunk; pyarrow's own default, 1
    MB, made 8x as many chunks, and each later step over the chunks that much slower). Returns
    (table, the rows with the wrong number of fields, as pyarrow's InvalidRows, their ``number``
    counted from the block's first row, the header included), or raises at the first such row unless
    ``collect``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    found: list = []

    def skip(row):               # pyarrow's InvalidRow: kept to be reported, the read goes on
        found.append(row)
        return "skip"
    table = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(encoding=_arrow_enc(encoding), column_names=names, skip_rows=int(header),
                                       use_threads=False, block_size=max(1 << 20, chunk or len(data) + 1)),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=skip if collect else None),
        convert_options=convert)
    return table, found


def _block_bounds(path: Path, block: int) -> list[tuple[int, int]]:
    """(start, end) byte offsets of blocks of about ``block`` bytes, each made of whole CSV records:
    it ends after a line break that is not inside a quoted value ("挂号费\n备注" is one value).

    A block starts at a record's start, so a line break ends a record when an even number of quote
    characters precede it in the block (RFC 4180 quoting: a value's quotes are its enclosing pair
    and doubled ones; as Excel, WPS, pandas and Python's csv write them). A block without a quote
    character — most exports — is cut at its first line break, found without counting. (A quote
    character inside an unquoted value, 5"软盘, only makes the block longer, unless the same block
    also holds a quoted line break.) Quote and line-break bytes are never part of a multi-byte
    character in UTF-8 or GB18030; a UTF-16 file is read as one block."""
    import mmap
    size = path.stat().st_size
    if size == 0:
        return [(0, 0)]
    starts = [0]
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        while starts[-1] + block < size:
            nl = _record_end(mm, starts[-1], mm.find(b"\n", starts[-1] + block))
            if nl < 0 or nl + 1 >= size:
                break
            starts.append(nl + 1)
    return list(zip(starts, starts[1:] + [size]))


def _record_end(mm, start: int, nl: int) -> int:
    """The first line break at or after ``nl`` that ends a record, in a block starting at the record
    start ``start`` (see ``_block_bounds``); -1 when none does."""
    if nl < 0 or mm.find(b'"', start, nl) < 0:
        return nl
    quotes = mm[start:nl].count(b'"')
    while quotes % 2:                       # inside a quoted value: the record goes on
        nxt = mm.find(b"\n", nl + 1)
        if nxt < 0:
            return -1
        quotes += mm[nl:nxt].count(b'"')
        nl = nxt
    return nl


def blank_rows(data: bytes, encoding: str, delimiter: str, records: int) -> np.ndarray:
    """The rows a spreadsheet shows for the blank lines of a block of whole CSV records (1: the
    block's first row), given the number of records the CSV reader found in it (a header included).

    A spreadsheet (Excel, WPS) shows a blank line as an empty row, and a record whose quoted value
    holds a line break as one row: rejects are numbered by these rows, so that row 15 of a reject is
    row 15 on screen. The CSV reader skips blank lines and does not number lines, so its rows are
    renumbered here. Counting the block's line breaks tells the usual block, in which every line is
    one record: none. Otherwise the line breaks that end records (an even number of quote characters
    before them, as in ``_block_bounds``) give the rows, all vectorized; Python's csv reader reads
    the block only when that does not find the reader's records (lines ended by a bare CR)."""
    if encoding.startswith("utf-16"):
        text = data.decode(encoding, errors="replace")
        if text.count("\n") + (1 if text and not text.endswith("\n") else 0) == records:
            return np.empty(0, np.int64)
        return _blank_rows_by_csv(text, delimiter, records)
    arr = np.frombuffer(data, np.uint8)
    breaks = np.flatnonzero(arr == 10)
    tail = 1 if data and not data.endswith(b"\n") else 0
    if len(breaks) + tail == records:
        return np.empty(0, np.int64)
    if data.find(b'"') >= 0:
        quotes = np.flatnonzero(arr == 34)
        breaks = breaks[np.searchsorted(quotes, breaks) % 2 == 0]    # line breaks that end a record
    ends = np.append(breaks, len(data)) if tail else breaks
    begins = np.concatenate([[0], breaks + 1])[:len(ends)]
    width = ends - begins
    cr = np.zeros(len(ends), bool)
    cr[width == 1] = arr[ends[width == 1] - 1] == 13
    blank = (width == 0) | cr
    if data.startswith(b"\xef\xbb\xbf") and len(blank):      # a BOM alone on the first line
        blank[0] = width[0] == 3
    if len(ends) - int(blank.sum()) == records:
        return np.flatnonzero(blank).astype(np.int64) + 1
    return _blank_rows_by_csv(data.decode("utf-8-sig" if _arrow_enc(encoding) == "utf8" else encoding,
                                          errors="replace"), delimiter, records)


def _blank_rows_by_csv(text: str, delimiter: str, records: int) -> np.ndarray:
    """``blank_rows`` by Python's csv reader (a C loop, but ~20 MB/s); no blank rows when it does not
    find the CSV reader's records either (rows are then numbered as the reader does)."""
    import csv
    import io
    blanks, seen = [], 0
    try:
        for i, record in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 1):
            if record:
                seen += 1
            else:
                blanks.append(i)
    except csv.Error:
        return np.empty(0, np.int64)
    return np.array(blanks, np.int64) if seen == records else np.empty(0, np.int64)


def record_rows(records: int, blanks: np.ndarray) -> np.ndarray:
    """The spreadsheet row (from 1) of each of a block's ``records``, given its ``blank_rows``."""
    return row_numbers(records, 1, blanks)


def _read_blocks(path: Path, enc: str, block: int, delimiter: str, names: list, convert, collect: bool):
    """The CSV file read in blocks of whole rows, one block per thread at a time, as pyarrow's own
    threaded reader does, but each block on its own reader, so that a row with the wrong number of
    fields is known by its file row at once (pyarrow's threaded reader does not number rows: the
    whole file had to be read again on one thread, +3.5-6 s at 10M lines for one broken row).
    A UTF-16 file, whose line breaks are not single bytes, is one block. Returns (table, [(file row,
    InvalidRow)], the file rows of blank lines), rows as a spreadsheet shows them (see blank_rows)."""
    import pyarrow as pa
    from concurrent.futures import ThreadPoolExecutor
    utf16 = enc.startswith("utf-16")
    bounds = [(0, path.stat().st_size)] if utf16 else _block_bounds(path, block)

    def one(j):
        lo, hi = bounds[j]
        with open(path, "rb") as f:
            f.seek(lo)
            data = f.read(hi - lo)
        table, found = read_csv_block(data, names, enc, delimiter, convert, j == 0, collect,
                                      chunk=block if utf16 else None)
        return table, found, blank_rows(data, enc, delimiter, int(j == 0) + table.num_rows + len(found))
    with ThreadPoolExecutor(min(len(bounds), os.cpu_count() or 1)) as threads:   # pyarrow parses without the GIL
        parts = list(threads.map(one, range(len(bounds))))
    invalid, blank, before = [], [], 0     # the file rows before a block: the header, then earlier blocks'
    for j, (table, found, blanks) in enumerate(parts):
        records = (1 if j == 0 else 0) + table.num_rows + len(found)
        # the reader numbers a block's records from its first (the header in the first block)
        at = record_rows(records, blanks) if len(blanks) else None
        invalid += [(before + (int(at[r.number - 1]) if at is not None else int(r.number)), r) for r in found]
        blank += (blanks + before).tolist()
        before += records + len(blanks)
    return pa.concat_tables([t for t, _, _ in parts]), invalid, blank


def as_broken_rows(invalid: list, names, delimiter: str) -> list[BrokenRow]:
    """(row, pyarrow's InvalidRow) pairs as BrokenRows (with the visit id as far as the row's text can
    be read, so that the rest of its bill is rejected with it)."""
    import csv
    header = [codes_header(str(nm).lstrip("\ufeff")) for nm in names]
    at = header.index("mdtrt_id") if "mdtrt_id" in header else None
    out = []
    for row, r in invalid:
        fields = next(csv.reader([r.text], delimiter=delimiter), [])
        mid = fields[at].strip() if at is not None and at < len(fields) else ""
        out.append(BrokenRow(row, r.actual_columns, r.expected_columns, r.text, mid))
    return out


def row_numbers(n: int, first: int, skipped) -> np.ndarray:
    """The file row of each of ``n`` rows read, the first at row ``first``, when the reader skipped
    the file rows ``skipped`` (every later row moves one down per skipped row before it)."""
    base = np.arange(n, dtype=np.int64)
    if not len(skipped):
        return base + first
    s = np.sort(np.asarray(skipped, dtype=np.int64))
    before = s - np.arange(len(s)) - first           # rows read before each skipped row
    return base + first + np.searchsorted(before, base, side="right")


def broken_rejects(broken: list[BrokenRow]) -> pd.DataFrame:
    """The broken rows as reject records (the ``value`` is the row's text, shortened)."""
    return pd.DataFrame({"row": [b.row for b in broken], "mdtrt_id": [b.mdtrt_id for b in broken],
                         "column": "(row)", "value": [b.text if len(b.text) <= 200 else b.text[:199] + "…"
                                                     for b in broken],
                         "reason": [b.reason for b in broken]}, columns=REJECT_COLUMNS)


def broken_prior(mdtrt_ids, rows, where: str = "row") -> dict:
    """{mdtrt_id: reason} for the other lines of the bills of broken rows (rejected with them), the
    first broken row of a bill named; ``where`` is "row", or "FILE row" with several files."""
    prior: dict = {}
    for mid, row in zip(mdtrt_ids, rows):
        if mid:
            prior.setdefault(mid, tr(f"本账单另有一行被拒绝（{where} {row}）", f"another line of this bill was rejected ({where} {row})"))
    return prior


DELIMITERS = (",", "\t", ";", "|")


def sniff_delimiter(path: str | Path, encoding: str = "utf-8") -> str:
    """The field separator of a delimited text file, from its header line: a comma unless the header
    holds more tabs, semicolons or bars (hospital systems export 费用明细 as tab-separated text too)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    line = head.decode(encoding if encoding != "utf-8-sig" else "utf-8", errors="ignore").lstrip("\ufeff")
    line = line.splitlines()[0] if line else ""
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])        # ties: the earlier, i.e. the comma
    return best if counts[best] > 0 else ","


def _refuse_workbook(path: Path) -> None:
    """An Excel workbook is not text: say so, instead of a parser error about a CSV."""
    with open(path, "rb") as f:
        magic = f.read(8)
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls") or magic.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise ValueError(tr(f"{path}：这是 Excel 工作簿，不是 CSV 文本：请把工作表另存为 CSV（UTF-8 或 GBK）或 Parquet 再结算",
                            f"{path}: an Excel workbook, not CSV text: save the sheet as CSV (UTF-8 or GBK) or "
                            f"Parquet and score that file"))


def _decode_large_dictionaries(table, share: float = 1 / 16, floor: int = 4096):
    """Code columns whose values turn out nearly distinct (settlement times with the time of day: one
    per bill) as plain text. Each block of the file has its own dictionary, and a member partition
    takes rows of every block: its column would carry every block's dictionary (the whole file's
    times, ~1.6M values for 10M lines) into the spill file, and pandas would unify them all into the
    categories of each partition. A dictionary is kept while it is small against its block."""
    import pyarrow as pa
    cols = []
    for name, col in zip(table.column_names, table.columns):
        if pa.types.is_dictionary(col.type) and any(len(c.dictionary) > max(floor, share * len(c)) for c in col.chunks):
            col = col.cast(col.type.value_type)
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _as_text(col):
    """A typed Parquet column as the text a CSV would hold. Timestamps become their date on the clock
    of their time zone: cast to text as they are, a zoned time would be written in UTC, a day early
    for a settlement before 08:00 in China. Floats become plain decimals."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if pa.types.is_timestamp(col.type):
        if col.type.tz is not None:
            col = pc.local_timestamp(col)
        col = col.cast(pa.date32())
    elif pa.types.is_floating(col.type):
        # Arrow writes large floats in exponent form (an id 123456789012.0 as 1.23456789012e+11, an
        # amount as 1.5e+06, which no reader of amounts takes): as decimals instead, to 6 places (the
        # float's nearest), without trailing zeros (12.34, not 12.340000; 123456789012)
        try:
            text = pc.cast(col, pa.decimal128(38, 6)).cast(pa.string())
            return pc.replace_substring_regex(text, pattern=r"(\.\d*?[1-9])0+$|\.0+$", replacement=r"\1")
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):      # NaN, infinities, beyond 10^32
            pass
    return col.cast(pa.string())


@contextlib.contextmanager
def _quiet_undecodable_rows():
    """pyarrow hands a row with the wrong number of fields to the skip handler as text; in the wrong
    encoding that text cannot be decoded, and pyarrow prints the error as "Exception ignored" before
    the read fails (and is tried in the next encoding). Those messages are not the user's concern."""
    import sys
    previous = sys.unraisablehook

    def hook(info):
        if not isinstance(info.exc_value, UnicodeDecodeError):
            previous(info)
    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _utf16(path: Path) -> tuple[str, ...] | None:
    """("utf-16",) for a file that starts with a UTF-16 byte-order mark (Excel's "Unicode text")."""
    with open(path, "rb") as f:
        return ("utf-16",) if f.read(2) in (b"\xff\xfe", b"\xfe\xff") else None


def _arrow_enc(enc: str) -> str:
    return "utf8" if enc in ("utf-8-sig", "utf-8", "utf8") else enc


def read_bills(path: str | Path, encoding: str | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """A file of lines as a DataFrame of text, and the row numbers a person sees (CSV: line number)."""
    broken: list[BrokenRow] = []
    blank: list[int] = []
    t, first = read_arrow(path, encoding, broken=broken, blank=blank)
    if broken:
        raise ValueError(f"{path}: " + "; ".join(tr(f"第 {b.row} 行：{b.reason}", f"row {b.row}: {b.reason}")
                                                for b in broken[:5])
                         + (tr(f"；… 另有 {len(broken) - 5} 行", f"; … {len(broken) - 5} more") if len(broken) > 5 else ""))
    df = t.to_pandas()
    df.columns = [str(c).lstrip("\ufeff") for c in df.columns]
    return df, row_numbers(len(df), first, blank)


def read_accounts(path: str | Path) -> pd.DataFrame:
    """Member state from a CSV/Parquet: ``psn_no``, ``acct_balance`` (个人账户余额) and year-to-date
    columns (see README), amounts in yuan. A bad cell raises an error naming file, row and column."""
    df, rows = read_bills(path)
    df = df.rename(columns={"个人账户余额": "acct_balance", "账户余额": "acct_balance", "人员编号": "psn_no"})
    if "psn_no" not in df.columns:
        raise ValueError(tr(f"{path}：需要 psn_no（人员编号）列；现有 {'、'.join(df.columns)}",
                            f"{path}: needs a psn_no (人员编号) column; has {', '.join(df.columns)}"))
    df["psn_no"] = df["psn_no"].astype(str).str.strip()          # as bills' member ids are read
    dup = df["psn_no"].duplicated(keep=False).to_numpy()
    if dup.any():
        member = df["psn_no"].to_numpy()[np.flatnonzero(dup)[0]]
        where = ", ".join(map(str, rows[np.flatnonzero(df["psn_no"].to_numpy() == member)]))
        raise ValueError(tr(f"{path}，第 {where} 行，列 psn_no：参保人 {member!r} 出现了不止一次（每人一行）",
                            f"{path}, rows {where}, column psn_no: member {member!r} appears more than once "
                            f"(give one row per member)"))
    from decimal import Decimal
    from .inputs import amount_ambiguous, amount_too_large, parse_amount_problems
    for c in df.columns:
        if c == "psn_no":
            continue
        if c == "year" or c.endswith("admissions"):        # counts
            num = pd.to_numeric(df[c].astype(str).str.strip(), errors="coerce")
            problem = (num.isna() | (num != num.round())).to_numpy().astype(np.int8)
        else:                # money, read as the bills' amounts are: exact, thousands commas only
            fen, problem = parse_amount_problems(df[c].astype("string"))
            num = pd.Series([Decimal(int(f)) / 100 for f in fen], index=df.index, dtype=object)
        if problem.any():
            i = int(np.flatnonzero(problem)[0])
            why = {2: amount_ambiguous(), 3: amount_too_large()}.get(int(problem[i]), tr("不是数字", "not a number"))
            raise ValueError(tr(f"{path}，第 {rows[i]} 行，列 {c}：{why}：{df[c].iat[i]!r}",
                                f"{path}, row {rows[i]}, column {c}: {why}: {df[c].iat[i]!r}"))
        df[c] = num
    return df


def exact_sum(fen: np.ndarray) -> int:
    """The sum of int64 fen as a Python int: numpy's int64 sum when no partial sum can wrap (the
    usual case, told by the sum of magnitudes), else Python's. Each member's amounts are bounded
    (inputs.MAX_MEMBER_FEN), a file's total is not."""
    fen = np.asarray(fen, dtype=np.int64)
    if np.abs(fen).astype(float).sum() < 2.0**62:
        return int(fen.sum())
    return sum(int(v) for v in fen)


@dataclass
class ScoreResult:
    settlement: Settlement | None   # None when the bills were streamed to a file (see score_file's sink)
    rejects: pd.DataFrame           # row, mdtrt_id, column, value, reason
    rows_read: int
    rows_scored: int
    streamed: dict | None = None    # totals (fen), bills and bills_with_warnings of streamed bills
    members_absent: int | None = None   # with a members file: members of the bills it does not list

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.rows_scored

    def _aggregates(self):
        """(totals in fen, bills, bills with warnings, bills settled with an assumed value)."""
        if self.streamed is not None:
            return (self.streamed["totals"], self.streamed["bills"], self.streamed["warned"],
                    self.streamed.get("assumed", 0))
        raw = self.settlement.raw
        totals = {c: exact_sum(raw[c].to_numpy()) for c in SETTLEMENT_FIELDS}
        assumed = (int((raw["assumptions"].to_numpy(dtype=object) != "").sum())
                   if len(raw) and "assumptions" in raw.columns else 0)
        return totals, len(raw), warning_counts(raw["warnings"], raw.get("notes")), assumed

    def summary(self) -> str:
        from .i18n import WARNING_KINDS, kind_label, tr
        from .money import fen_to_yuan
        totals, bills, warn, assumed = self._aggregates()
        t = {k: fen_to_yuan(v) for k, v in totals.items()}
        rej_bills = self.rejects["mdtrt_id"].nunique() if len(self.rejects) else 0
        sep = tr("，", ", ")
        kinds = sep.join(f"{kind_label(k)} {warn[k]:,}" for k in WARNING_KINDS if k != "note" and warn.get(k))
        warned = (tr(f"有提示的账单 {warn.get('any', 0):,}", f"bills with warnings {warn.get('any', 0):,}")
                  + (f"（{kinds}）" if kinds and tr("zh", "en") == "zh" else f" ({kinds})" if kinds else "")
                  + tr(f"；附说明（如二手来源）的账单 {warn.get('note', 0):,}",
                       f"; bills with notes (e.g. secondary sources) {warn.get('note', 0):,}"))
        # bills settled with a value the user assumed (--assume): counted, never silent
        warned += tr(f"；使用假设值的账单 {assumed:,}", f"; bills with assumed values {assumed:,}") if assumed else ""
        # 家庭共济: shown when a family account paid (the summary reads as before otherwise)
        fam_zh = f"，共济 {t['acct_mulaid_pay']:,}" if totals.get("acct_mulaid_pay") else ""
        fam_en = f", family account {t['acct_mulaid_pay']:,}" if totals.get("acct_mulaid_pay") else ""
        absent = ""
        if self.members_absent:
            absent = "\n" + tr(f"参保信息文件未列出 {self.members_absent:,} 名人员：按一直参保结算",
                               f"{self.members_absent:,} member(s) not in the members file: settled as always enrolled")
        return tr(f"读入 {self.rows_read:,} 行 = 结算 {self.rows_scored:,} 行 + 拒绝 {self.rows_rejected:,} 行；"
                  f"结算账单 {bills:,} 张，拒绝 {rej_bills:,} 张；{warned}\n"
                  f"医疗费总额 {t['medfee_sumamt']:,}  基金支付 {t['fund_pay_sumamt']:,}（统筹 {t['hifp_pay']:,}，"
                  f"大病 {t['hifmi_pay']:,}，大额 {t['hifob_pay']:,}，救助 {t['maf_pay']:,}）  "
                  f"个人负担 {t['psn_part_amt']:,}（账户 {t['acct_pay']:,}{fam_zh}，现金 {t['psn_cash_pay']:,}）（元）",
                  f"rows read {self.rows_read:,} = scored {self.rows_scored:,} + rejected {self.rows_rejected:,}; "
                  f"bills settled {bills:,}, rejected {rej_bills:,}; {warned}\n"
                  f"total cost {t['medfee_sumamt']:,}  fund {t['fund_pay_sumamt']:,} (pooled {t['hifp_pay']:,}, "
                  f"critical illness {t['hifmi_pay']:,}, large-expense {t['hifob_pay']:,}, assistance "
                  f"{t['maf_pay']:,})  patient {t['psn_part_amt']:,} (account {t['acct_pay']:,}{fam_en}, cash "
                  f"{t['psn_cash_pay']:,}) (yuan)") + absent


def warning_counts(warnings, notes=None) -> dict:
    """Bills per warning kind (a bill counts once per kind it has), ``any``: bills with a warning,
    ``note``: bills with a note. Read off the few distinct texts of the columns, not per bill."""
    from collections import Counter

    from .i18n import WARNING_KINDS, kind_label
    counts: Counter = Counter()
    prefixes = {f"{kind_label(k)}: ": k for k in WARNING_KINDS if k not in ("other", "note")}
    for text, n in pd.Series(warnings, dtype="category").value_counts(sort=False).items():
        if not text or not n:
            continue
        counts["any"] += int(n)
        kinds = {next((k for p, k in prefixes.items() if w.startswith(p)), "other") for w in str(text).split("; ")}
        for k in kinds:
            counts[k] += int(n)
    if notes is not None:
        for text, n in pd.Series(notes, dtype="category").value_counts(sort=False).items():
            if text:
                counts["note"] += int(n)
    return dict(counts)


def add_counts(total: dict, more: dict) -> None:
    for k, v in more.items():
        total[k] = total.get(k, 0) + v


def score_frame(df: pd.DataFrame, policy: Policy | PolicyBook | None = None, *, row_numbers=None,
                source: str = "<frame>", on=None, accounts=None, state=None, prior_rejects=None,
                assume=None, catalogue=None, members=None) -> ScoreResult:
    """Settle every bill in ``df``; bad rows and unsettleable bills become rejects, never errors.
    ``prior_rejects``: {mdtrt_id: reason} of bills with a line rejected before (a broken CSV row).
    ``assume``: values for parameters without a sourced value (``ybcalc.assume``); ``catalogue``: an
    item catalogue (``ybcalc.catalogue``) for lines lacking 收费项目等级 / 自付比例 / 限价.
    ``members``: enrolment spans (path, DataFrame or ``ybcalc.members.Members``), see ``ybcalc.members``."""
    policy, catalogue = policy_inputs(policy, assume, catalogue)
    book = policy.book if isinstance(policy, Policy) else policy
    if members is not None:
        from .members import read_members
        members = read_members(members, book)
    prepared = prepare(df, source=source, row_numbers=row_numbers, book=book,
                       default_region=policy.region if isinstance(policy, Policy) else None,
                       default_scheme=policy.scheme if isinstance(policy, Policy) else None,
                       require_date=on is None, prior_rejects=prior_rejects, catalogue=catalogue, members=members)
    st = _state_frame(accounts, state, prepared.lines)
    absent = None
    if members is not None:
        absent = int((~pd.Index(pd.unique(prepared.lines["psn_no"].astype(str))).isin(members.psn_nos)).sum())
    bills, lines, errors = settle_prepared(prepared.lines, book, on=on, state=st, members=members)
    rejects = prepared.rejects
    if len(errors):
        # every line of a bill that could not be settled is listed with the reason
        bad = prepared.lines[prepared.lines["mdtrt_id"].isin(errors.index)]
        extra = pd.DataFrame({"row": bad["_row"].to_numpy(), "mdtrt_id": bad["mdtrt_id"].to_numpy(),
                              "column": "(policy)", "value": "",
                              "reason": errors.reindex(bad["mdtrt_id"]).to_numpy()})
        rejects = pd.concat([rejects, extra], ignore_index=True).sort_values("row", kind="stable")
    rejects = rejects[REJECT_COLUMNS].astype({"row": np.int64}).reset_index(drop=True)
    result = ScoreResult(Settlement(bills, lines, book, rejects, errors), rejects, prepared.n_read, len(lines),
                         members_absent=absent)
    assert result.rows_scored + rejects["row"].nunique() == result.rows_read, "row accounting broken"
    return result


OUTPUT_KEEP = ["mdtrt_id", "psn_no", "setl_date", "region", "scheme", "med_type", "benefit", "table", "warnings", "notes",
               "psn_type", "policy_year", "assumptions", "catalogue_lines",
               "member_listed", "member_eligible", "member_reason", "member_benefit_from", "member_wait_months",
               "acct_payer", "hifmi_cap",
               "settle_mode", "claim_date", "claim_status", "claim_deadline", "claim_entry"]


def slim(result: ScoreResult) -> ScoreResult:
    """Drop lines and intermediate columns (explanations need them; file output does not)."""
    raw = result.settlement.raw
    keep = [c for c in raw.columns if c in OUTPUT_KEEP or c in SETTLEMENT_FIELDS or c.endswith("_entry")]
    slim_raw = raw[keep].copy()
    for c in ("warnings", "notes", "table", "region", "scheme", "benefit", "med_type", "psn_type", "assumptions"):
        if c in slim_raw.columns:          # few distinct values over many bills: store each once
            slim_raw[c] = slim_raw[c].astype("category")
    result.settlement.raw = slim_raw
    result.settlement.lines_raw = result.settlement.lines_raw.iloc[0:0]
    return result


def score_file(path, policy=None, *, encoding=None, partition_lines: int = 250_000, progress=None,
               keep_intermediate: bool = False, sink=None, jobs: int = 1, **kw) -> ScoreResult:
    """Score a CSV/Parquet file (or a list of them: settled together, as one file of their rows in
    that order) in member partitions, so memory stays a small multiple of the file.

    Rows are split by member (``psn_no``) into partitions of about ``partition_lines`` lines; each
    member's bills are in one partition, so the result equals scoring the whole file at once.
    ``progress``: a callable(done_lines, total_lines) or None, called once the file is read (0 done) and
    after each partition. ``sink``: a callable given each
    partition's Settlement (or a ``BillWriter``); the bills are then not kept (memory stays at one
    partition), and the result carries only totals, counts and rejects. ``jobs`` > 1 settles
    partitions in that many worker processes (results are still written in partition order, so the
    output is the same file as with one job). With several files, rejects start with a ``file``
    column and ``row`` is the row in that file.
    """
    if kw.get("assume"):          # applied once here: the workers receive the book with the assumptions
        from .assume import with_assumptions
        policy = with_assumptions(policy, kw.pop("assume"))
    if kw.get("catalogue") is not None:       # read once; each partition joins its lines to it
        from .catalogue import load_catalogue
        kw["catalogue"] = load_catalogue(kw["catalogue"])
    sweep_stale_files()
    if kw.get("members") is not None:          # read once, not once per partition
        from .members import read_members
        book = policy.book if isinstance(policy, Policy) else policy if policy is not None else load_tables()
        kw["members"] = read_members(kw["members"], book)
    with arrow_allocator(), _stopping_workers():
        return _score_file(path, policy, encoding=encoding, partition_lines=partition_lines, progress=progress,
                           keep_intermediate=keep_intermediate, sink=sink, jobs=jobs, **kw)


# With several input files a line's row number carries its file: file index · 2^40 + its row in the
# file. Rows then sort by file, then row (the input order that breaks ties between same-day bills),
# and the first file's rows are its plain row numbers.
FILE_SHIFT = 40
_ROW_MASK = (1 << FILE_SHIFT) - 1


def input_paths(path) -> list[Path]:
    """One input file or several (a year delivered as monthly extracts), as a list of paths."""
    paths = [Path(path)] if isinstance(path, (str, os.PathLike)) else [Path(p) for p in path]
    if not paths:
        raise ValueError(tr("没有给出输入文件", "no input file given"))
    return paths


def with_files(rejects: pd.DataFrame, paths: list[Path]) -> pd.DataFrame:
    """Rejects of several files: a leading ``file`` column, and each ``row`` its row in that file
    (rows as integers either way)."""
    rows = rejects["row"].to_numpy(np.int64)
    if len(paths) < 2:
        return rejects.assign(row=rows)
    out = rejects.assign(row=rows & _ROW_MASK)
    out.insert(0, "file", np.array([str(p) for p in paths], dtype=object)[rows >> FILE_SHIFT])
    return out


def _canonical_columns(table):
    """A file's columns under their national field names (headers differ between files: 就诊ID in one,
    mdtrt_id in another); a second column naming the same field is dropped (prepare reads the first)."""
    keep, names = [], []
    for i, c in enumerate(table.column_names):
        name = codes_header(c) or c
        if name not in names:
            keep.append(i)
            names.append(name)
    return table.select(keep).rename_columns(names)


def _concat_files(tables: list):
    """One table from several files' tables: columns in order of first appearance, a column a file
    lacks is missing (empty) there, and a column read as a dictionary in one file and as plain text
    in another is plain text throughout."""
    import pyarrow as pa
    names = list(dict.fromkeys(c for t in tables for c in t.column_names))
    types = {}
    for t in tables:
        for c, ty in zip(t.column_names, t.schema.types):
            types.setdefault(c, set()).add(ty)
    out = []
    for t in tables:
        cols = []
        for c in names:
            if c not in t.column_names:
                cols.append(pa.nulls(t.num_rows, pa.string()))
                continue
            col = t.column(c)
            if len(types[c]) > 1 and pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            cols.append(col)
        out.append(pa.table(cols, names=names))
    return pa.concat_tables(out)


def _read_inputs(paths: list[Path], encoding):
    """The input files as one table of the columns the settlement reads, and what the reading found.

    Returns (table, row of each table row or None when it is ``index + first``, first, broken rows as
    reject records or None, prior_rejects for the bills of broken rows)."""
    tables, row_parts, broken_frames, prior = [], [], [], {}
    first_of = 2
    for i, path in enumerate(paths):
        broken: list[BrokenRow] = []
        blank: list[int] = []
        table, first = read_arrow(path, encoding, dictionary=True, known_only=True, broken=broken, blank=blank)
        if i == 0:
            first_of = first
        table = table.rename_columns([str(c).lstrip("\ufeff") for c in table.column_names])
        # Exports from hospital systems carry many columns the settlement never reads (科室, 医生, 备注 …):
        # drop them before the rows are moved around.
        used = [c for c in table.column_names if codes_header(c)]
        if used and len(used) < table.num_columns:
            table = table.select(used)
        table = _decode_large_dictionaries(table)
        if len(paths) > 1:
            table = _canonical_columns(table)
        base = i << FILE_SHIFT
        where = tr(f"{path} 第", f"{path} row") if len(paths) > 1 else tr("第", "row")
        if broken or blank or len(paths) > 1:
            row_parts.append(row_numbers(table.num_rows, first, [b.row for b in broken] + blank) + base)
        if broken:
            rej = broken_rejects(broken)
            rej["row"] = rej["row"].to_numpy(np.int64) + base
            broken_frames.append(rej)
            for mid, reason in broken_prior([b.mdtrt_id for b in broken], [b.row for b in broken], where).items():
                prior.setdefault(mid, reason)
        tables.append(table)
    table = tables[0] if len(tables) == 1 else _concat_files(tables)
    row_of = None
    if row_parts:
        row_of = row_parts[0] if len(row_parts) == 1 else np.concatenate(row_parts)
    broken_rej = pd.concat(broken_frames, ignore_index=True) if broken_frames else None
    return table, row_of, first_of, broken_rej, prior


@contextlib.contextmanager
def arrow_allocator():
    """Arrow's jemalloc pool while a file is read and moved: with the default mimalloc pool, the CSV
    reader's freed block buffers went back to the system and were faulted in again for the next block
    (10M lines: 4-5 s of system time, ~1.5 s of the read's wall time). The previous pool is restored."""
    import pyarrow as pa
    try:
        pool = pa.jemalloc_memory_pool()
    except (NotImplementedError, pa.ArrowNotImplementedError):   # a pyarrow built without it
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _score_file(path, policy=None, *, encoding=None, partition_lines: int = 250_000, progress=None,
                keep_intermediate: bool = False, sink=None, jobs: int = 1, **kw) -> ScoreResult:
    import pyarrow as pa
    if policy is None or isinstance(policy, (str, Path)):
        policy = load_tables(policy)       # None: the shipped tables; a path: the user's folder over them
    # A file large enough to use workers starts them before it is read, so that their start-up (a
    # fresh interpreter importing pandas and pyarrow) overlaps the read.
    paths = input_paths(path)
    size = sum(p.stat().st_size for p in paths)
    likely = jobs > 1 and size >= 4 * jobs * partition_lines * 100   # ~100 bytes a line
    pool = _worker_pool(jobs, policy) if likely else None      # stopped by score_file if the run fails
    table, row_of, first, broken, prior = _read_inputs(paths, encoding)
    n = table.num_rows
    n_broken = len(broken) if broken is not None else 0
    # rows the reader skipped (wrong number of fields) are rejects; the rest keep their file rows, and
    # the other lines of a broken row's bill are rejected with it, as for any rejected line
    if prior:
        kw = dict(kw, prior_rejects=prior)
    if progress:
        progress(0, n)          # read: the total is known (sorting rows to member partitions comes next)
    k = max(1, -(-n // partition_lines))
    if k == 1:
        part = np.zeros(n, np.int64)
    else:
        from .routing import partition_rows
        header = {codes_header(c): c for c in reversed(table.column_names)}    # first column of a name wins
        if "mdtrt_id" in header:
            # a members file's family links (家庭共济): a family's bills settle in one partition
            from .routing import family_roots
            family = family_roots(kw["members"]) if kw.get("members") is not None else None
            part = partition_rows(table, k, header["mdtrt_id"], header.get("psn_no"), family)
        else:                     # prepare rejects the file (required column missing): one partition
            k, part = 1, np.zeros(n, np.int64)
    render = (sink.lang, sink.money, sink.parquet) if isinstance(sink, BillWriter) else None
    results, done = [], 0
    agg = {"totals": {c: 0 for c in SETTLEMENT_FIELDS}, "bills": 0, "warned": {}, "assumed": 0, "workers": 0}

    def partitions(table, part):
        if k == 1:
            yield table, row_of if row_of is not None else np.arange(n) + first
            return
        # One pass over the input blocks moves each block's rows to their member partitions (one take
        # per block, then zero-copy slices); each block is released once moved, so memory stays at about
        # one copy of the file. (A filter per partition would scan the whole file k times.)
        from concurrent.futures import ThreadPoolExecutor
        batches = table.to_batches()
        del table
        starts = np.concatenate([[0], np.cumsum([b.num_rows for b in batches])])
        pieces = [[] for _ in range(k)]
        rows_of = [[] for _ in range(k)]

        def move(j):
            p = part[starts[j]:starts[j + 1]]
            order = np.argsort(p, kind="stable")
            bounds = np.searchsorted(p[order], np.arange(k + 1))
            return batches[j].take(pa.array(order)), order, bounds

        # numpy's sort and Arrow's take release the GIL: blocks are moved on every core at once
        with ThreadPoolExecutor(os.cpu_count() or 1) as threads:
            for j, (moved, order, bounds) in enumerate(threads.map(move, range(len(batches)))):
                batches[j] = None
                for i in np.flatnonzero(np.diff(bounds)):
                    lo, hi = bounds[i], bounds[i + 1]
                    pieces[i].append(moved.slice(lo, hi - lo))
                    rows_of[i].append(starts[j] + order[lo:hi])
        for i in range(k):
            if pieces[i]:
                # the slices as one table, not copied: settled here, it is converted to pandas once;
                # for a worker, only its own rows are written to the spill file
                chunk = pa.Table.from_batches(pieces[i])
                rows = np.concatenate(rows_of[i])
                rows = row_of[rows] if row_of is not None else rows + first
                pieces[i] = rows_of[i] = None
                yield chunk, rows

    def collect(out: PartitionResult):
        nonlocal done
        if out.encoded is not None:               # rendered and encoded in a worker: only written here
            sink.write_encoded(out.encoded)
        elif sink is not None:
            sink(out.result.settlement)
        r = out.result
        if sink is not None:
            totals, nb, nw, na = out.aggregates or r._aggregates()
            agg["bills"] += nb
            add_counts(agg["warned"], nw)
            agg["assumed"] += na
            for c, v in totals.items():
                agg["totals"][c] += v
            r = ScoreResult(None, r.rejects, r.rows_read, r.rows_scored, members_absent=r.members_absent)
        results.append(r if keep_intermediate or sink is not None else slim(r))
        done += r.rows_read
        if progress:
            progress(done, n)

    args = dict(source=", ".join(map(str, paths)), render=render, kw=kw)
    chunks = partitions(table, part)
    del table, part                         # the blocks are released as they are moved to partitions
    use_workers = jobs > 1 and k >= 4 * jobs    # fewer partitions: starting workers costs what they save
    if use_workers and pool is None:
        pool = _worker_pool(jobs, policy)
    elif not use_workers and pool is not None:
        pool.shutdown(cancel_futures=True)
    if use_workers:
        from collections import deque
        agg["workers"] = jobs
        import shutil
        import tempfile
        # named with this process's id: if it is killed, the next run removes the folder (see sweep_stale_files)
        spill = tempfile.mkdtemp(prefix=f"ybcalc-partitions-{_owner()}-", dir=_spill_root())
        try:
            pending = deque()
            for i, (chunk, rows) in enumerate(chunks):
                # a partition goes to its worker as an Arrow stream file, which the worker maps
                # (pickled through the pool's pipe it cost both sides a copy and many system calls)
                file = os.path.join(spill, f"{i}.arrows")
                with pa.OSFile(file, "wb") as f, pa.ipc.new_stream(f, chunk.schema) as w:
                    w.write_table(chunk)
                del chunk
                pending.append(pool.submit(score_partition, file, rows, **args))   # policy: set per worker
                if len(pending) > jobs:          # bounded: at most jobs + 1 partitions in flight
                    collect(pending.popleft().result())
            while pending:
                collect(pending.popleft().result())
            pool.shutdown()
        except BaseException:
            pool.stop()                      # an error or a stop (Ctrl-C, SIGTERM): workers are not waited for
            raise
        finally:
            shutil.rmtree(spill, ignore_errors=True)
    else:
        args["policy"] = policy
        for chunk, rows in chunks:
            collect(score_partition(chunk, rows, **args))
    pa.default_memory_pool().release_unused()
    extra = [broken] if broken is not None else []
    if sink is not None:
        rejects = (pd.concat([r.rejects for r in results] + extra, ignore_index=True).sort_values("row", kind="stable")
                   .reset_index(drop=True) if results or extra else pd.DataFrame(columns=REJECT_COLUMNS))
        absent = [r.members_absent for r in results if r.members_absent is not None]
        return ScoreResult(None, with_files(rejects, paths), n + n_broken, sum(r.rows_scored for r in results), agg,
                           members_absent=sum(absent) if absent else None)
    res = combine(results, n)
    rejects = res.rejects
    if extra:
        rejects = pd.concat([rejects] + extra, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)
    return ScoreResult(res.settlement, with_files(rejects, paths), n + n_broken, res.rows_scored,
                       members_absent=res.members_absent)


@dataclass
class PartitionResult:
    result: ScoreResult
    encoded: object = None                   # the bills encoded for the writer (see BillWriter.encode)
    aggregates: tuple | None = None


_WORKER_POLICY = None


def _init_worker(policy_file: str, parent: int) -> None:
    """Worker start: die with the parent, keep the policy tables once (instead of unpickling them with
    every partition)."""
    import pickle
    import signal
    global _WORKER_POLICY
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # Ctrl-C reaches the whole group: the parent stops us
    _die_with_parent(parent)
    with open(policy_file, "rb") as f:
        _WORKER_POLICY = pickle.load(f)
    import pyarrow as pa
    try:                                     # as in the scoring process (see arrow_allocator)
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except (NotImplementedError, pa.ArrowNotImplementedError):
        pass


def _die_with_parent(parent: int) -> None:
    """A worker must not outlive the process it works for: killed (SIGKILL) or stopped in a way that
    let it clean up nothing, the parent would leave its workers waiting on their queue forever, each
    holding its memory (and, through them, multiprocessing's resource tracker). On Linux the kernel
    kills the worker when its parent dies (PR_SET_PDEATHSIG; the pool's processes are all started by
    the thread that runs score_file, which outlives them); elsewhere a thread watches the parent."""
    import signal
    import sys
    watched = False
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            watched = libc.prctl(1, int(signal.SIGKILL), 0, 0, 0) == 0        # 1: PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if not watched:
        import threading
        import time

        def watch():
            while os.getppid() == parent:
                time.sleep(1)
            os._exit(1)
        threading.Thread(target=watch, daemon=True, name="ybcalc-parent-watch").start()
    if os.getppid() != parent:          # the parent died before the signal was asked for
        os._exit(1)


def _started() -> bool:
    return True


_LIVE = threading.local()           # the worker pools this thread has started and not yet shut down


@contextlib.contextmanager
def _stopping_workers():
    """Whatever ends score_file early (an error, Ctrl-C, SIGTERM turned into an exception by the
    command line), the worker pools it started are stopped at once and their files removed."""
    before = set(getattr(_LIVE, "pools", ()))
    try:
        yield
    except BaseException:
        for pool in [p for p in getattr(_LIVE, "pools", ()) if p not in before]:
            pool.stop()
        raise


def _alive(pid: int) -> bool:
    if os.name == "nt":                 # os.kill would end it: never swept there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:                     # another user's process
        return True
    return True


_STALE = re.compile(r"ybcalc-(?:partitions|tables)-(\d+)-(?:ns(\d+)-)?")


def _owner() -> str:
    """This process as named in its temporary files: its id, and on Linux its pid namespace (a
    container sharing /dev/shm or /tmp with this one numbers its processes apart: its live runs'
    files must not look like those of a dead process here)."""
    try:
        return f"{os.getpid()}-ns{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return str(os.getpid())


def sweep_stale_files() -> None:
    """Remove the temporary files of runs that were killed (SIGKILL gives a process no chance to clean
    up; its workers die with it): partition folders and table pickles are named with the id of the
    process that made them, and removed once that process no longer exists."""
    import shutil
    import tempfile
    roots = {tempfile.gettempdir()} | ({"/dev/shm"} if os.path.isdir("/dev/shm") else set())
    here = _owner().partition("-ns")[2]           # files of another pid namespace are not judged here
    for root in roots:
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            m = _STALE.match(name)
            if not m or (m.group(2) or "") != here or _alive(int(m.group(1))):
                continue
            path = os.path.join(root, name)
            try:
                if os.lstat(path).st_uid != os.getuid():
                    continue
                if os.path.isdir(path) and not os.path.islink(path):
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except OSError:
                pass


def sweep_stale_partials(target: Path) -> None:
    """Remove the temporary files beside an output (see partial_path) left by killed runs."""
    prefix, suffix = f".{target.name}.", ".partial"
    try:
        names = os.listdir(target.parent)
    except OSError:
        return
    for name in names:
        pid = name[len(prefix):-len(suffix)] if name.startswith(prefix) and name.endswith(suffix) else ""
        if pid.isdigit() and not _alive(int(pid)):
            try:
                os.unlink(target.parent / name)
            except OSError:
                pass


def _worker_pool(jobs: int, policy):
    import multiprocessing
    import pickle
    import tempfile
    from concurrent.futures import ProcessPoolExecutor

    class Workers(ProcessPoolExecutor):
        def shutdown(self, wait=True, *, cancel_futures=False):
            super().shutdown(wait=wait, cancel_futures=cancel_futures)
            if wait:
                if self in getattr(_LIVE, "pools", ()):
                    _LIVE.pools.remove(self)
                if os.path.exists(policy_file):
                    os.unlink(policy_file)

        def stop(self):
            """Shut down now (a failed or stopped run): the workers are killed, not waited for."""
            for p in list((self._processes or {}).values()):
                if p.is_alive():
                    p.kill()
            self.shutdown(wait=True, cancel_futures=True)

    # The tables reach the workers through a file: a process being spawned reads its arguments only
    # after importing the parent's main module, and the parent blocks writing anything larger than a
    # pipe holds (the pickled tables: 0.4 s per worker).
    fd, policy_file = tempfile.mkstemp(prefix=f"ybcalc-tables-{_owner()}-", suffix=".pickle")
    with os.fdopen(fd, "wb") as f:
        pickle.dump(policy, f)
    # spawn, not fork: the parent already runs Arrow's thread pools, which a fork would not carry
    pool = Workers(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                   initargs=(policy_file, os.getpid()))
    _LIVE.pools = getattr(_LIVE, "pools", []) + [pool]
    # Workers keep the memory they free for their next partition (glibc would hand large blocks back
    # to the system and fault them in again, page by page, for every new array: ~2x the cost of a
    # simple numpy operation on this kind of machine). Read by glibc at process start only.
    saved = {k: os.environ.get(k) for k in _WORKER_MALLOC}
    os.environ.update({k: v for k, v in _WORKER_MALLOC.items() if saved[k] is None})
    # Ctrl-C reaches every process of the terminal's group: workers start with it ignored (kept across
    # exec), so that they neither print a KeyboardInterrupt each nor die mid-way; the parent stops them.
    import signal
    import threading
    ignore = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignore else None
    try:
        for _ in range(jobs):
            pool.submit(_started)        # start the processes now (the pool would start them on demand)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
    return pool


_WORKER_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}


def score_partition(chunk, rows, *, source, render, kw, policy=None) -> PartitionResult:
    """Settle one member partition (an Arrow table). With ``render`` = (lang, money, parquet), the bills
    are also rendered and encoded here (CSV text or an Arrow table), so that a worker process sends back
    only what is written and the writing process only appends it."""
    policy = policy if policy is not None else _WORKER_POLICY
    if isinstance(chunk, str):                   # a spill file written by score_file for this worker
        import pyarrow as pa
        with pa.memory_map(chunk) as src:
            df = pa.ipc.open_stream(src).read_all().to_pandas()
        os.unlink(chunk)
    else:
        df = chunk.to_pandas()
    r = score_frame(df, policy, row_numbers=rows, source=source, **kw)
    if render is None:
        return PartitionResult(r)
    lang, money, parquet = render
    encoded = BillWriter.encode(r.settlement.bills(lang=lang, money=money, text="category"), parquet)
    return PartitionResult(ScoreResult(None, r.rejects, r.rows_read, r.rows_scored, members_absent=r.members_absent),
                           encoded, r._aggregates())


def _spill_root() -> str | None:
    """Where partitions are written for the workers: memory-backed /dev/shm when it has room, else the
    temporary directory."""
    import shutil
    try:
        if (os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK)
                and shutil.disk_usage("/dev/shm").free > 2 << 30):
            return "/dev/shm"
    except OSError:
        pass
    return None


def codes_header(name: str):
    from .codes import canonical_header
    return canonical_header(name)


def combine(results: list[ScoreResult], rows_read: int) -> ScoreResult:
    """One ScoreResult from partition results (members never span partitions)."""
    if len(results) == 1:
        return results[0]
    bills = pd.concat([r.settlement.raw for r in results], ignore_index=True)
    # a program (大病/大额/救助) seen in some partitions only: its entry column means "none" elsewhere
    for c in bills.columns:
        if c.endswith("_entry"):
            bills[c] = bills[c].fillna(-1).astype(np.int64)
    if "assumptions" in bills.columns:        # a partition none of whose bills assumed a value
        bills["assumptions"] = bills["assumptions"].astype(object).fillna("").astype("category")
    lines = pd.concat([r.settlement.lines_raw for r in results], ignore_index=True)
    rejects = pd.concat([r.rejects for r in results], ignore_index=True).sort_values("row", kind="stable")
    errors = pd.concat([r.settlement.errors for r in results])
    book = results[0].settlement.book
    rejects = rejects.reset_index(drop=True)
    absent = [r.members_absent for r in results if r.members_absent is not None]
    return ScoreResult(Settlement(bills, lines, book, rejects, errors), rejects, rows_read,
                       sum(r.rows_scored for r in results), members_absent=sum(absent) if absent else None)


class RejectedRowsWarning(UserWarning):
    """Some input rows were not settled (``ybcalc.score``): the result's ``attrs["rejects"]`` lists them."""


def score(df: pd.DataFrame, policy=None, *, rejects: str = "warn", **kw) -> pd.DataFrame:
    """``ybcalc.score(df)``: one row per settled bill, with the policy version used.

    Nothing is dropped unsaid: rows that could not be settled (and the other lines of their bills)
    are listed in ``result.attrs["rejects"]`` (row, mdtrt_id, column, value, reason), and
    ``rejects`` says what else happens when there are any: "warn" (a ``RejectedRowsWarning`` naming
    the count and the first reason), "raise" (``BillError`` with the list) or "ignore".
    """
    if rejects not in ("warn", "raise", "ignore"):
        raise ValueError(f"rejects={rejects!r}: use 'warn', 'raise' or 'ignore'")
    res = score_frame(df, policy, **kw)
    if len(res.rejects) and rejects == "raise":
        from .inputs import BillError
        raise BillError(res.rejects, kw.get("source", "<lines>"))
    if len(res.rejects) and rejects == "warn":
        import warnings
        first = res.rejects.iloc[0]
        warnings.warn(tr(f"{res.rows_read} 行输入中有 {len(res.rejects)} 行未结算（{res.rejects['mdtrt_id'].nunique()} 张账单），"
                         f"例如第 {first['row']} 行，列 {first['column']}：{first['reason']}；完整列表见 result.attrs['rejects']",
                         f"{len(res.rejects)} of {res.rows_read} input rows not settled "
                         f"({res.rejects['mdtrt_id'].nunique()} bills), e.g. row {first['row']}, column "
                         f"{first['column']}: {first['reason']}; the list is in result.attrs['rejects']"),
                      RejectedRowsWarning, stacklevel=2)
    out = res.settlement.bills()
    out.attrs["rejects"] = res.rejects
    return out


# What a spreadsheet would run as a formula (OWASP's list): a cell starting with = + - @, TAB, CR or
# LF, the full-width ＝ ＋ － ＠ (Excel and WPS read them as their ASCII forms), or any of = + - @ after
# spaces, tabs or line breaks (which spreadsheets skip). One pattern for Python's re and Arrow's RE2.
_FORMULA_START = "^(?:[\t\r\n]|[ \t\r\n\u3000]*[=+\\-@\uff1d\uff0b\uff0d\uff20])"
_NUMBER = r"^[-+]?[0-9]+(?:\.[0-9]+)?$"             # ... unless the cell is a plain number (-12.30)
_NEUTRALISED = "'"                                   # the prefix that makes such a cell plain text


def neutralise_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells a spreadsheet would run as a formula (see ``_FORMULA_START``) with a quote.
    (The CSV writers do this themselves, see ``csv_rows``; this is the same rule on a DataFrame.)"""
    out = df.copy()
    for c in out.columns:
        if (out[c].dtype == object or pd.api.types.is_string_dtype(out[c])      # pandas 3: "str" dtype
                or isinstance(out[c].dtype, pd.CategoricalDtype)):
            s = out[c].astype(str)
            risky = s.str.contains(_FORMULA_START, regex=True) & ~s.str.contains(_NUMBER, regex=True)
            out[c] = s.where(~risky, _NEUTRALISED + s)
    return out


def csv_rows(df: pd.DataFrame) -> str:
    """The rows of ``df`` as CSV text: what ``neutralise_formulas(df).to_csv(index=False, header=False)``
    writes (Python csv's minimal quoting), built column-wise in Arrow (5–10× faster on a partition of
    bills), with two differences on purpose: a cell holding a carriage return is quoted too (Python
    3.11's csv leaves it bare, and readers then split the row there: a formula after it would start a
    row of its own), and a missing text cell is empty (pandas writes "None"). Money columns may be
    int64 fen (written as yuan, '12.30'); numbers, booleans and times are written as pandas writes
    them (a missing one: empty). Every CSV file ybcalc writes goes through here."""
    import pyarrow as pa
    import pyarrow.compute as pc
    money = _money_columns()
    lone = len(df.columns) == 1
    cols = []
    for c in df.columns:
        col = df[c]
        if c in money and pd.api.types.is_integer_dtype(col) and isinstance(col.dtype, np.dtype):
            arr = pc.cast(fen_to_arrow_decimal(col.to_numpy()), pa.string())
        elif isinstance(col.dtype, pd.CategoricalDtype):
            # each distinct text made safe and quoted once, then spread to the rows (a missing cell: "")
            cats = _csv_cells(pa.concat_arrays([_category_texts(col), pa.array([""])]), lone)
            codes_ = col.cat.codes.to_numpy()
            arr = cats.take(pa.array(np.where(codes_ < 0, len(cats) - 1, codes_)))
        elif col.dtype == object or pd.api.types.is_string_dtype(col):
            vals = col.to_numpy(dtype=object)
            try:
                arr = pa.array(vals, type=pa.string(), from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError):       # not all text (Decimal yuan, numbers …)
                arr = pa.array([_cell_text(v) for v in vals], type=pa.string())
            arr = _csv_cells(pc.fill_null(arr, ""), lone)
        else:                                # numbers, booleans, times: no formula, nothing to quote
            text = col.astype(str).to_numpy(dtype=object)
            text[col.isna().to_numpy()] = '""' if lone else ""
            arr = pa.array(text, type=pa.string())
        cols.append(arr)
    if not len(df):
        return ""
    rows = pc.binary_join_element_wise(*cols, ",") if len(cols) > 1 else cols[0]
    return "".join(pc.binary_join_element_wise(rows, "", "\n").to_pylist())


def csv_header(names) -> str:
    """The header line of a CSV file, its cells quoted and neutralised as ``csv_rows`` does."""
    import pyarrow as pa
    names = [str(n) for n in names]
    return ",".join(_csv_cells(pa.array(names, type=pa.string()), len(names) == 1).to_pylist()) + "\n"


def _cell_text(v) -> str:
    """One value of a column of mixed objects as its text (a missing one: empty)."""
    if v is None or (not isinstance(v, str) and pd.api.types.is_scalar(v) and pd.isna(v)):
        return ""
    return str(v)


def _csv_cells(arr, lone: bool):
    """Text cells as Python's csv writes them (minimal quoting, and any cell holding a line break or a
    carriage return quoted), formulas neutralised first."""
    import pyarrow.compute as pc
    risky = pc.and_(pc.match_substring_regex(arr, _FORMULA_START), pc.invert(pc.match_substring_regex(arr, _NUMBER)))
    arr = pc.if_else(risky, pc.binary_join_element_wise(_NEUTRALISED, arr, ""), arr)
    needs = pc.match_substring_regex(arr, '[,"\r\n]')
    if lone:                                             # csv quotes a lone empty field
        needs = pc.or_(needs, pc.equal(arr, ""))
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(arr, '"', '""'), '"', "")
    return pc.if_else(needs, quoted, arr)


def _category_texts(col: pd.Series):
    """The distinct texts of a column of categories, as an Arrow string array."""
    import pyarrow as pa
    return pa.array([str(c) for c in col.cat.categories], type=pa.string())


def _money_columns() -> set:
    from .labels import SETTLEMENT_FIELDS, label
    return set(SETTLEMENT_FIELDS) | {label(f, "zh") for f in SETTLEMENT_FIELDS}


def partial_path(path: Path) -> Path:
    """Where an output is written before it is complete: a hidden name beside it, renamed over it at
    the end, so that a failed or stopped run leaves no truncated file (nor destroys an earlier one)."""
    return path.with_name(f".{path.name}.{os.getpid()}.partial")


class OutputError(ValueError):
    """An output could not be written (disk full, a folder gone …): names the output, not the
    temporary file the write failed on; an earlier output stays as it was."""

    def __init__(self, path: Path, why: str):
        self.path, self.why = Path(path), why
        from .i18n import tr
        super().__init__(tr(f"{path}：写入失败（{why}），原有文件保持不变",
                            f"{path}: cannot be written ({why}); an earlier file stays as it was"))


@contextlib.contextmanager
def _writing(target: Path):
    try:
        yield
    except OSError as exc:
        raise OutputError(target, exc.strerror or str(exc)) from exc


def replace_together(staged: list[tuple[Path, Path]]) -> None:
    """Rename each complete temporary file over its output: called once all of a run's outputs are
    written, so that settlements and rejects are replaced together or not at all."""
    for partial, target in staged:
        with _writing(target):
            os.replace(partial, target)


class BillWriter:
    """Writes bills partition by partition to CSV or Parquet, as ``write_table`` would write them whole."""

    def __init__(self, path: str | Path, lang: str = "en"):
        self.target = Path(path)
        sweep_stale_partials(self.target)
        self.path = partial_path(self.target)      # renamed over the target by close()
        self.lang = lang
        self.parquet = self.target.suffix.lower() in (".parquet", ".pq")
        self._writer = None
        self._first = True

    @property
    def money(self) -> str:
        return "fen"              # exact integers; encode() writes them as yuan

    def __call__(self, settlement: Settlement) -> None:
        self.write(settlement.bills(lang=self.lang, money=self.money, text="category"))

    def write(self, df: pd.DataFrame) -> None:
        """Append one partition's bills, as ``Settlement.bills(lang, money=self.money)`` gives them."""
        self.write_encoded(self.encode(df, self.parquet))

    @staticmethod
    def encode(df: pd.DataFrame, parquet: bool):
        """The bills as written: an Arrow table (Parquet), or (header, CSV text without header). Costly
        (formula neutralising, formatting), so worker processes do it, not the writer."""
        if parquet:
            return _arrow_table(df)
        return list(map(str, df.columns)), csv_rows(df)

    def write_encoded(self, encoded) -> None:
        if self.parquet:
            import pyarrow.parquet as pq
            with _writing(self.target):
                if self._writer is None:
                    self._writer = pq.ParquetWriter(self.path, encoded.schema, **parquet_options(encoded))
                self._writer.write_table(encoded.cast(self._writer.schema))
        else:
            header, body = encoded
            with _writing(self.target), open(self.path, "w" if self._first else "a", encoding="utf-8",
                                              newline="") as f:
                if self._first:
                    cjk = any("\u4e00" <= ch <= "\u9fff" for ch in "".join(header))
                    f.write(("\ufeff" if cjk else "") + csv_header(header))
                f.write(body)
        self._first = False

    def close(self, empty_settlement: Settlement | None = None) -> None:
        """Complete the file and rename it over the output."""
        replace_together([self.finish(empty_settlement)])

    def finish(self, empty_settlement: Settlement | None = None) -> tuple[Path, Path]:
        """Complete the file under its temporary name; returns (temporary name, output) for
        ``replace_together`` (the rejects file is replaced with it). ``empty_settlement``: written
        when no bill was, so that the output has its headers."""
        if self._writer is not None:
            with _writing(self.target):
                self._writer.close()
            self._writer = None
        elif self._first and empty_settlement is not None:
            write_table(empty_settlement.bills(lang=self.lang, money="fen" if self.parquet else "text"), self.path)
        return self.path, self.target

    def discard(self) -> None:
        """Drop what was written (a failed or interrupted run)."""
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None
        self.path.unlink(missing_ok=True)


def _arrow_table(df: pd.DataFrame):
    import pyarrow as pa
    money = _money_columns()
    arrays, names = [], []
    for c in df.columns:
        col = df[c]
        if c in money and pd.api.types.is_integer_dtype(col):
            arrays.append(fen_to_arrow_decimal(col.to_numpy()))
        elif isinstance(col.dtype, pd.CategoricalDtype):
            # Arrow dictionary: the distinct texts once (Parquet writes it as its own dictionary page;
            # readers get plain text, see parquet_options)
            codes_ = col.cat.codes.to_numpy().astype(np.int32)
            arrays.append(pa.DictionaryArray.from_arrays(pa.array(codes_, mask=codes_ < 0), _category_texts(col)))
        elif len(col) and col.dtype == object and hasattr(col.iat[0], "as_tuple"):
            arrays.append(pa.array(col.astype(str)))
        elif col.dtype != object and pd.api.types.is_string_dtype(col):
            arrays.append(pa.array(col.array).cast(pa.string()))     # pandas' Arrow-backed text: no copy
        elif col.dtype == object:
            vals = col.to_numpy(dtype=object)
            try:                                  # Python strings (the engine's text columns)
                arrays.append(pa.array(vals, type=pa.string()))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                arrays.append(pa.array(col.astype(str).to_numpy(dtype=object), type=pa.string()))
        else:
            arrays.append(pa.array(col))
        names.append(str(c))
    return pa.table(arrays, names=names)


def parquet_options(table) -> dict:
    """Parquet dictionary encoding for the text columns that repeat (region, visit type, dates,
    warnings …), not for ids, which are nearly all distinct: a dictionary of them is built and thrown
    away per column chunk (half of the writer's time) and makes the file larger, not smaller."""
    import pyarrow as pa
    import pyarrow.compute as pc
    repeated = [c for c, col in zip(table.column_names, table.columns)
                if pa.types.is_dictionary(col.type)
                or (pa.types.is_string(col.type) and pc.count_distinct(col).as_py() <= max(1, len(col) // 2))]
    # store_schema=False: without the Arrow schema in the file, readers get the dictionary columns as
    # the plain text they are (pandas would otherwise read them as categories)
    return {"use_dictionary": repeated, "store_schema": False}


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """CSV (formula-neutralised and quoted by ``csv_rows``, UTF-8 with BOM when headers are Chinese) or
    Parquet.

    Money columns given as int64 fen are written to Parquet as exact decimal128(18, 2). Written under
    a temporary name beside ``path`` and renamed when complete (as BillWriter does): a failed or
    stopped write leaves no truncated file, and an earlier file as it was.
    """
    replace_together([stage_table(df, path)])


def stage_table(df: pd.DataFrame, path: str | Path) -> tuple[Path, Path]:
    """``write_table`` up to the rename: the complete file under its temporary name. Returns
    (temporary name, output) for ``replace_together``; raises ``OutputError`` (nothing left behind)
    when the file cannot be written."""
    path = Path(path)
    sweep_stale_partials(path)
    partial = partial_path(path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq
            table = _arrow_table(df)
            pq.write_table(table, partial, **parquet_options(table))
        else:
            with open(partial, "w", encoding="utf-8-sig" if _has_cjk(df) else "utf-8", newline="") as f:
                f.write(csv_header(df.columns))
                for lo in range(0, len(df), 1 << 17):        # in slices: one text of a slice at a time
                    f.write(csv_rows(df.iloc[lo:lo + (1 << 17)]))
    except BaseException as exc:
        partial.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(path, exc.strerror or str(exc)) from exc
        raise
    return partial, path


def _has_cjk(df: pd.DataFrame) -> bool:
    text = "".join(map(str, df.columns))
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)

"""Hostile or unusual input (issue 14): amounts, CSV records, row numbers, headers, encodings, dtypes,
money types and far-out dates. Each test reproduces a defect that was found by trying to break ybcalc."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ybcalc
from ybcalc.batch import score_file, score_frame

from conftest import frame, make_bill


# §4 -------------------------------------------------------------------------------------------

def test_amounts_beyond_the_bound_are_rejected_never_wrapped(fbook, tmp_path):
    """`ip * 100` wrapped in int64: 184467440737095516.17 settled as 0.01, 92233720368547758.08 was
    "a negative amount that is not a refund", 999999999999999999999 stopped the run (OverflowError),
    and a float column holding 1e20 scored with a total of −92,233,720,367,051,456.00 yuan."""
    from ybcalc.inputs import MAX_LINE_FEN, parse_amount_problems
    huge = ["184467440737095516.17", "92233720368547758.08", "999999999999999999999", "-1000000000.01",
            "1,000,000,000,000.00"]
    ok = ["1000000000.00", "-12.50", "0.01"]
    for values in (huge + ok, huge[:2] + ok):              # general and fast (Arrow decimal) path
        fen, problem = parse_amount_problems(pd.Series(values, dtype=object))
        n = len(values) - len(ok)
        assert problem[:n].tolist() == [3] * n and fen[:n].tolist() == [0] * n
        assert problem[n:].tolist() == [0] * 3 and fen[n:].tolist() == [MAX_LINE_FEN, -1250, 1]
    fen, problem = parse_amount_problems(pd.Series([1e20, -1e12, 5.0, np.nan]))
    assert problem.tolist() == [3, 3, 0, 1] and fen.tolist() == [0, 0, 500, 0]
    fen, problem = parse_amount_problems(pd.Series([10**17, 5], dtype="int64"))
    assert problem.tolist() == [3, 0] and fen.tolist() == [0, 500]

    bills = frame(make_bill("A", [(1, 1e20), (1, 100.0)]), make_bill("B", [(1, 200.0)], psn_no="m2"))
    res = score_frame(pd.DataFrame(bills), fbook)
    assert res.settlement.raw["mdtrt_id"].tolist() == ["B"]
    assert set(res.rejects["mdtrt_id"]) == {"A"} and "1,000,000,000" in res.rejects["reason"].iat[0]

    path = tmp_path / "b.csv"
    lines = pd.DataFrame(frame(make_bill("A", [(1, "100.00")]), make_bill("B", [(1, "100.00")], psn_no="m2"),
                               make_bill("C", [(1, "5.00")], psn_no="m3")))
    lines["det_item_fee_sumamt"] = ["184467440737095516.17", "999999999999999999999", "5.00"]
    lines.to_csv(path, index=False)
    res = score_file(path, fbook)
    assert res.rows_read == 3 and res.rows_scored == 1
    assert res.rejects["row"].tolist() == [2, 3] and res.rejects["reason"].str.contains("1,000,000,000").all()


def test_a_member_s_amounts_that_could_overflow_the_engine_are_rejected(fbook):
    """Each line within the bound, but a member's year adds up beyond what the engine's fen × ppm
    products hold in int64: that member's lines are rejected with the reason, the others settle."""
    big = [(1, "1000000000.00")] * 11                     # 11 × 10 亿元 > 100 亿元
    bills = frame(make_bill("A", big), make_bill("B", [(1, "300.00")], psn_no="m2"))
    res = score_frame(pd.DataFrame(bills), fbook)
    assert res.settlement.raw["mdtrt_id"].tolist() == ["B"]
    assert len(res.rejects) == 11 and res.rejects["reason"].str.contains("10,000,000,000").all()
    ten = frame(make_bill("A", [(1, "1000000000.00")] * 10))     # exactly 100 亿元: settles, balanced
    raw = score_frame(pd.DataFrame(ten), fbook).settlement.raw
    assert raw["medfee_sumamt"].tolist() == [10**12]
    assert (raw["fund_pay_sumamt"] + raw["psn_part_amt"] == raw["medfee_sumamt"]).all()


# §13 ------------------------------------------------------------------------------------------

def _example_lines(**kw) -> pd.DataFrame:
    from pathlib import Path
    return pd.read_csv(Path(__file__).resolve().parents[1] / "examples" / "bills.csv", **kw)


def test_library_frames_of_nullable_integers_and_categories_score(recwarn):
    """`ybcalc.score(df)` crashed on an Int64 amount column holding pd.NA (it is a missing amount, a
    reject) and on a frame of categories ("Cannot setitem on a Categorical with a new category")."""
    want = ybcalc.score(_example_lines(), rejects="ignore")
    typed = _example_lines().convert_dtypes()                       # Int64, Float64, string
    assert str(typed["hosp_lv"].dtype) == "Int64"
    typed["det_item_fee_sumamt"] = pd.array([int(v) if v == int(v) else None
                                              for v in _example_lines()["det_item_fee_sumamt"]], dtype="Int64")
    typed.loc[3, "det_item_fee_sumamt"] = pd.NA
    got = ybcalc.score(typed, rejects="ignore")
    rej = got.attrs["rejects"]
    missing = rej[rej["column"] == "det_item_fee_sumamt"]
    assert 4 in set(missing["row"]) and "missing" in missing.set_index("row").loc[4, "reason"]
    assert set(rej["mdtrt_id"]) >= {typed["mdtrt_id"].iat[3]}
    for categories in (_example_lines().astype("category"),
                       _example_lines(dtype=str, keep_default_na=False).astype("category")):
        pd.testing.assert_frame_equal(ybcalc.score(categories, rejects="ignore"), want)


# §11 ------------------------------------------------------------------------------------------

def _example_text() -> list[str]:
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "examples" / "bills.csv"
    return path.read_text(encoding="utf-8-sig").splitlines()


def test_headers_naming_one_field_twice_are_refused_up_front(tmp_path, capsys):
    """`就诊ID,mdtrt_id,…` crashed with "factorize requires a Series"; a repeated
    det_item_fee_sumamt silently took the first column. Both are refused before any row is read,
    naming both headers, in the command, the library and the Dask reader."""
    from ybcalc.cli import main
    text = _example_text()
    two_languages = ["就诊ID," + text[0]] + [ln.split(",")[0] + "," + ln for ln in text[1:]]
    repeated = [text[0] + ",det_item_fee_sumamt"] + [ln + ",1.00" for ln in text[1:]]
    for name, lines, both in (("bi.csv", two_languages, ("就诊ID", "mdtrt_id")),
                              ("dup.csv", repeated, ("det_item_fee_sumamt",))):
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        assert main(["score", str(path), "-o", str(tmp_path / "out.csv"), "-q"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"ybcalc: {path}: ") and all(h in err for h in both) and "Traceback" not in err
        assert not (tmp_path / "out.csv").exists()
        df = pd.read_csv(path, dtype=str, keep_default_na=False)       # pandas: det_item_fee_sumamt.1
        with pytest.raises(ValueError, match="mdtrt_id" if name == "bi.csv" else r"det_item_fee_sumamt\.1"):
            ybcalc.score(df)
        pytest.importorskip("dask")
        import ybcalc.dask as ydask
        with pytest.raises(ValueError, match=both[0]):
            ydask.read_csv(str(path))
    from ybcalc.inputs import header_conflicts
    assert header_conflicts(["金额（元）", "psn_no", "金额"]) and not header_conflicts(["金额", "备注", "备注"])


# §12 ------------------------------------------------------------------------------------------

def test_a_bom_before_gbk_text_is_called_a_mixed_encoding(tmp_path, capsys):
    """A UTF-8 byte-order mark in front of a GBK body was refused with "mdtrt_id is missing" (read
    as GBK, the BOM garbled the first header). Locally and on Dask, the error says what is wrong."""
    from ybcalc.cli import main
    path = tmp_path / "mixed.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(_example_text()) + "\n").encode("gbk"))
    for engine in ([], ["--engine", "dask", "--workers", "1"]):
        if engine:
            pytest.importorskip("distributed")
        assert main(["score", str(path), "-o", str(tmp_path / "o.csv"), "-q", *engine]) == 2
        err = capsys.readouterr().err
        assert f"{path}: " in err and ("mixed encoding" in err or "编码混杂" in err) and "mdtrt_id" not in err
    good = tmp_path / "bom.csv"                       # a BOM before UTF-8 text, with Chinese: read as ever
    good.write_bytes(b"\xef\xbb\xbf" + ("\n".join(_example_text()) + "\n").encode("utf-8"))
    assert main(["score", str(good), "-o", str(tmp_path / "o.csv"), "-q"]) == 0


# §5, §6 ---------------------------------------------------------------------------------------

def _lines_with(tmp_path, *, blank_after=(), multiline=(), bad_amount=(), broken=(), seed=13, members=30):
    """random_lines written as CSV with blank lines after some records, item names holding a line
    break in some, bad amounts in some, a stray field in some (``broken``). Returns (path, lines frame, {record index: spreadsheet row})."""
    import csv
    import io
    from test_batch import random_lines
    lines = random_lines(seed, members=members)
    lines["item_name"] = lines["item_name"].astype(object)
    for i in multiline:
        lines.loc[i, "item_name"] = "挂号费\n备注"
    for i in bad_amount:
        lines.loc[i, "det_item_fee_sumamt"] = "abc"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(lines.columns)
    row, rows = 2, {}
    for i, rec in enumerate(lines.itertuples(index=False)):
        w.writerow(rec)
        if i in broken:
            buf.seek(buf.tell() - 1)
            buf.write(",stray\n")
        rows[i] = row
        row += 1
        if i in blank_after:
            buf.write("\n")
            row += 1
    path = tmp_path / "lines.csv"
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path, lines, rows


@pytest.mark.parametrize("block", [150, 700, 1 << 20])
@pytest.mark.parametrize("jobs", [1, 2])
def test_rows_are_numbered_as_a_spreadsheet_shows_them(fbook, tmp_path, monkeypatch, block, jobs):
    """A bad amount on file line 15 after one blank line was reported as row 14, every later reject
    one off. Blank lines count as the rows they are on screen, and a record holding a quoted line
    break is one row (as Excel and WPS show it), whatever the blocks the file is read in."""
    import ybcalc.batch as batch
    path, lines, rows = _lines_with(tmp_path, blank_after={11, 40, 41}, multiline={20, 50},
                                    bad_amount={12, 30, 60})
    assert rows[12] == 15                           # file line 15, after one blank line
    real = batch._block_bounds
    monkeypatch.setattr(batch, "_block_bounds", lambda p, b: real(p, block))
    res = score_file(path, fbook, partition_lines=40, jobs=jobs)
    assert res.rows_read == len(lines) == res.rows_scored + res.rejects["row"].nunique()
    amounts = res.rejects[res.rejects["column"] == "det_item_fee_sumamt"]
    assert amounts["row"].tolist() == [rows[12], rows[30], rows[60]] == [15, 33, 65]
    bad_bills = set(lines["mdtrt_id"].iloc[[12, 30, 60]])
    want = {rows[i] for i in np.flatnonzero(lines["mdtrt_id"].isin(bad_bills))}
    assert set(res.rejects["row"]) == want
    from ybcalc.batch import read_bills
    df, numbers = read_bills(path)
    assert len(df) == len(lines) and numbers.tolist() == [rows[i] for i in range(len(lines))]


@pytest.mark.parametrize("block", [150, 1000, 1 << 20])
def test_quoted_line_breaks_never_cut_a_record(fbook, tmp_path, monkeypatch, block):
    """Valid RFC 4180 rows whose item_name is "挂号费\\n备注" were cut where a block ended on that line
    break: one row more read than the file holds, a valid bill rejected as "row has 11 fields", a
    reject whose visit id was `备注"`. Blocks now end on record boundaries."""
    import ybcalc.batch as batch
    many = set(range(0, 400, 3))
    path, lines, rows = _lines_with(tmp_path, multiline=many, members=100)
    real = batch._block_bounds
    monkeypatch.setattr(batch, "_block_bounds", lambda p, b: real(p, block))
    bounds = real(path, block)
    assert len(bounds) > 1 or block == 1 << 20
    data = path.read_bytes()
    assert all(data[lo:hi].count(b'"') % 2 == 0 for lo, hi in bounds)
    res = score_file(path, fbook)
    assert res.rows_read == len(lines) and len(res.rejects) == 0
    want = score_frame(lines, fbook).settlement.bills()
    pd.testing.assert_frame_equal(res.settlement.bills().sort_values("mdtrt_id").reset_index(drop=True),
                                  want.sort_values("mdtrt_id").reset_index(drop=True))


def test_dask_numbers_rows_and_keeps_quoted_line_breaks_as_the_single_machine_path(fbook, tmp_path):
    """The Dask reader cut blocks at any line break (read_bytes(delimiter=b"\\n")) and numbered rows
    without blank lines: it now reads blocks of whole records and numbers rows as the local path."""
    pytest.importorskip("distributed")
    from ybcalc.dask import BILL_COLUMNS, read_csv, score_path
    path, lines, rows = _lines_with(tmp_path, blank_after={0, 11, 40, 41, 90}, multiline=set(range(5, 200, 7)),
                                    bad_amount={12, 30, 60, 150}, broken={70}, members=60)
    local = score_file(path, fbook)
    assert local.rows_read == len(lines) and (local.rejects["column"] == "(row)").sum() == 1
    assert local.rejects.loc[local.rejects["column"] == "(row)", "row"].tolist() == [rows[70]]
    assert read_csv(str(path), blocksize=1500).npartitions > 3
    bills, rejects = score_path(str(path), workers=2, tables=str(fbook.root), blocksize=1500)
    assert rejects.attrs["rows_read"] == len(lines)
    want = local.settlement.bills()[BILL_COLUMNS].sort_values("mdtrt_id").reset_index(drop=True)
    got = bills.sort_values("mdtrt_id").reset_index(drop=True)
    assert got["mdtrt_id"].tolist() == want["mdtrt_id"].tolist()
    pd.testing.assert_frame_equal(rejects, local.rejects, check_dtype=False)


# §14 ------------------------------------------------------------------------------------------

def test_dask_returns_money_as_exact_yuan_like_the_library(fbook, tmp_path):
    """`ybcalc.dask.score` returned integer fen (182715) where `ybcalc.score` returns yuan (1827.15):
    both now give exact decimal yuan, so their results compare equal without a conversion."""
    pytest.importorskip("dask")
    import dask
    from decimal import Decimal

    import ybcalc.dask as ydask
    from test_batch import random_lines
    path = tmp_path / "b.csv"
    random_lines(3, members=20).to_csv(path, index=False)
    with dask.config.set(scheduler="sync"):
        bills, _ = dask.compute(*ydask.score(ydask.read_csv(str(path), blocksize=2000), tables=str(fbook.root)))
    local = ybcalc.score(pd.read_csv(path, dtype=str, keep_default_na=False), fbook)
    bills = bills.set_index("mdtrt_id").loc[local["mdtrt_id"]]
    for c in ("medfee_sumamt", "hifp_pay", "psn_cash_pay"):
        assert str(bills[c].dtype) == "decimal128(18, 2)[pyarrow]"
        assert bills[c].tolist() == local[c].tolist() and isinstance(bills[c].iat[0], Decimal)
    assert (bills["medfee_sumamt"] > 100).any()               # yuan, not fen: a comparison means the same


# §15 ------------------------------------------------------------------------------------------

def test_bills_dated_beyond_the_tables_horizon_or_before_them_say_so(fbook):
    """A bill dated 9999-12-31 settled under the latest tables without a word. The tables speak for
    dates up to 31 December of the year after their newest entry (the fixtures: 2024-01-01, so up to
    2025-12-31); a later bill is settled with a warning, an earlier one than any entry never silently."""
    from ybcalc.engine.settle import date_horizon
    newest, last = date_horizon(fbook)
    assert (str(newest), str(last)) == ("2024-01-01", "2025-12-31")
    df = pd.DataFrame(frame(make_bill("far", [(1, 100)], date="9999-12-31"),
                            make_bill("last", [(1, 100)], date="2025-12-31", psn_no="m2"),
                            make_bill("next", [(1, 100)], date="2026-01-01", psn_no="m3"),
                            make_bill("early", [(1, 100)], date="1990-01-01", psn_no="m4")))
    got = ybcalc.score(df, fbook, rejects="ignore").set_index("mdtrt_id")["warnings"]
    horizon = got.str.contains("horizon|适用期")
    assert horizon.to_dict() == {"far": True, "last": False, "next": True}
    assert "2025-12-31" in got["far"]
    rejects = ybcalc.score(df, fbook, rejects="ignore").attrs["rejects"]
    assert rejects["mdtrt_id"].tolist() == ["early"] and "2020-01-01" in rejects["reason"].iat[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["", "x", "a b", '"q""uote"', '"挂号费\n备注"', '"\r\n"', '"a,b"']),
                          st.sampled_from(["1", '"2\n3"', ""]), st.booleans()), max_size=12),
       st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_blank_rows_are_those_python_s_csv_reader_finds(records, newline, trailing):
    """The vectorized renumbering (line breaks outside quotes) agrees with Python's csv reader,
    which reads records as pyarrow does, on blocks with blank lines, quoted line breaks and CRLF."""
    import csv
    import io

    from ybcalc.batch import _blank_rows_by_csv, blank_rows
    text = newline.join(f"{a},{b}" if not blank else f"{a},{b}{newline}" for a, b, blank in records)
    text += newline if trailing and text else ""
    data = text.encode("utf-8")
    n = sum(1 for r in csv.reader(io.StringIO(text, newline="")) if r)
    assert blank_rows(data, "utf-8", ",", n).tolist() == _blank_rows_by_csv(text, ",", n).tolist()

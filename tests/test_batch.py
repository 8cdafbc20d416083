"""Batch scoring: the batch equals settling bill by bill, nothing is lost, messy files are read."""
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ybcalc
from ybcalc.batch import neutralise_formulas, score_file, score_frame, write_table
from ybcalc.cli import main


@pytest.fixture(autouse=True)
def _library_in_english():
    """These tests read the library's messages in English (the library's default is Chinese)."""
    from ybcalc.i18n import language
    with language("en"):
        yield

FIELDS = ["medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
          "act_pay_dedc", "hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt", "psn_part_amt",
          "acct_pay", "psn_cash_pay"]


def random_lines(seed: int, members: int = 12) -> pd.DataFrame:
    """Random bills for many members of the fixture regions (all mechanisms), rows shuffled."""
    rng = np.random.default_rng(seed)
    rows = []
    for m in range(members):
        scheme = rng.choice(["职工", "居民"])
        group = rng.choice(["在职", "退休"]) if scheme == "职工" else rng.choice(["成年", "学生儿童"])
        idet = rng.choice(["", "", "低保", "特困"])
        for b in range(rng.integers(1, 6)):
            day = pd.Timestamp("2023-01-01") + pd.Timedelta(days=int(rng.integers(0, 700)))
            mt = rng.choice(["11", "13", "21", "21", "14"])
            away = rng.random() < 0.2
            hosp_lv = int(rng.integers(0, 4))
            fil = rng.choice(["temporary", "unfiled"])
            for _ in range(rng.integers(1, 5)):
                lv = rng.choice([1, 1, 2, 3])
                rows.append({"mdtrt_id": f"m{m}b{b}", "psn_no": f"m{m}", "setl_time": day.strftime("%Y-%m-%d"),
                             "insuplc": "testland", "insutype": scheme, "psn_type": group, "psn_idet_type": idet,
                             "age": 50, "med_type": mt, "hosp_lv": hosp_lv,
                             "mdtrt_area": "testcity" if away else "", "fil_type": fil,
                             "chrgitm_lv": int(lv), "item_name": rng.choice(["", "", "救护车费", "白蛋白"]),
                             "det_item_fee_sumamt": f"{rng.lognormal(8, 1.5):.2f}"})
    df = pd.DataFrame(rows)
    return df.sample(frac=1, random_state=seed).reset_index(drop=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_equals_settling_bill_by_bill(fbook, seed):
    """Bill k of a member, settled in a batch, equals settling the member's bills up to k (date order)."""
    df = random_lines(seed)
    accounts = {f"m{i}": 3000 for i in range(12)}
    batch = ybcalc.settle(df, fbook, accounts=accounts).raw.set_index("mdtrt_id")
    for member, g in df.groupby("psn_no"):
        order = batch.loc[batch["psn_no"] == member].sort_values(["setl_date", "first_row"]).index
        for k in range(1, len(order) + 1):
            prefix = g[g["mdtrt_id"].isin(order[:k])]
            alone = ybcalc.settle(prefix, fbook, accounts={member: 3000}).raw.set_index("mdtrt_id")
            assert alone.loc[order[k - 1], FIELDS].tolist() == batch.loc[order[k - 1], FIELDS].tolist()


def test_partitions_give_the_same_result_as_one_batch(fbook, tmp_path):
    df = random_lines(5, members=40)
    path = tmp_path / "b.csv"
    df.to_csv(path, index=False)
    whole = score_frame(pd.read_csv(path, dtype=str, keep_default_na=False), fbook).settlement.bills(money="fen")
    parts = score_file(path, fbook, partition_lines=25).settlement.bills(money="fen")
    key = ["mdtrt_id"]
    assert whole.sort_values(key).reset_index(drop=True).equals(parts.sort_values(key).reset_index(drop=True))


def test_rows_are_conserved_and_rejects_name_row_column_reason(fbook, tmp_path):
    df = random_lines(7)
    df.loc[3, "det_item_fee_sumamt"] = "n/a"
    df.loc[10, "setl_time"] = "2024-02-30"
    df.loc[20, "insuplc"] = "不存在市"
    bad_bill = df.loc[30, "mdtrt_id"]
    other = df.index[(df["mdtrt_id"] == bad_bill)]
    if len(other) > 1:
        df.loc[other[-1], "psn_no"] = "someone-else"
    path = tmp_path / "b.csv"
    df.to_csv(path, index=False)
    res = score_file(path, fbook)
    assert res.rows_read == len(df) == res.rows_scored + res.rejects["row"].nunique()
    rej = res.rejects.set_index("row")
    assert rej.loc[5, "column"] == "det_item_fee_sumamt"      # CSV line = index + 2
    assert rej.loc[12, "column"] == "setl_time" and "date" in rej.loc[12, "reason"]
    assert rej.loc[22, "column"] == "insuplc"
    # a bill with a rejected line is rejected whole, each line listed
    for bill in res.rejects["mdtrt_id"].unique():
        n_lines = (df["mdtrt_id"] == bill).sum()
        assert res.rejects.loc[res.rejects["mdtrt_id"] == bill, "row"].nunique() == n_lines
    assert set(res.settlement.raw["mdtrt_id"]).isdisjoint(set(res.rejects["mdtrt_id"]))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_encodings_and_chinese_headers(fbook, tmp_path, encoding):
    df = pd.DataFrame([{"就诊ID": "A", "人员编号": "m", "结算日期": "2023/5/1", "参保地": "测试市", "险种": "职工",
                        "人员类别": "在职", "医疗类别": "住院", "医院等级": "三级", "项目名称": "床位费",
                        "收费项目等级": "甲类", "金额": "50,000.00"}])
    path = tmp_path / f"{encoding}.csv"
    df.to_csv(path, index=False, encoding=encoding)
    res = score_file(path, fbook)
    assert res.rows_scored == 1
    assert res.settlement.bills(money="text")["hifp_pay"].iat[0] == "40650.00"


def test_headers_with_units_and_full_width_characters(fbook, tmp_path):
    """Excel exports put the unit in the header (金额（元）, 年龄(岁)) and may type it full-width; a
    percentage column (自付比例(%)) is not taken for a share (0.5 there means 0.5%, not 50%)."""
    from ybcalc.codes import canonical_header
    assert canonical_header("金额（元）") == canonical_header("总金额") == "det_item_fee_sumamt"
    assert canonical_header("年龄 (岁)") == "age" and canonical_header("ＭＤＴＲＴ＿ＩＤ") == "mdtrt_id"
    assert canonical_header("自付比例(%)") is None and canonical_header("金额(美元)") is None
    df = pd.DataFrame([{"就诊ID": "A", "人员编号": "m", "结算日期": "2023/5/1", "参保地": "测试市", "险种": "职工",
                        "人员类别": "在职", "医疗类别": "住院", "医院等级": "三级", "项目名称": "床位费",
                        "收费项目等级": "甲类", "金额（元）": "50,000.00", "年龄(岁)": "40"}])
    path = tmp_path / "units.csv"
    df.to_csv(path, index=False, encoding="gbk")
    res = score_file(path, fbook)
    assert res.rows_scored == 1 and res.settlement.bills(money="text")["hifp_pay"].iat[0] == "40650.00"


def test_fee_dates_date_a_bill_by_its_last_day(fbook):
    """A detail file without 结算时间 dates lines by their fee (费用发生时间, what the national detail
    upload carries): an inpatient stay's lines span days, and the bill settles on its last one,
    as its settlement record would. With a settlement time, lines that disagree are still refused."""
    base = {"psn_no": "m", "参保地": "测试市", "险种": "职工", "人员类别": "在职", "医疗类别": "住院",
            "医院等级": "三级", "收费项目等级": "甲类", "金额": "10,000.00"}
    stay = [dict(base, 就诊ID="A", 费用日期=d) for d in ("2023-05-01 08:10", "2023-05-03", "2023/5/2 16:00")]
    res = score_frame(pd.DataFrame(stay), fbook)
    assert len(res.rejects) == 0
    bills = res.settlement.bills(money="text")
    assert bills["setl_time"].tolist() == ["2023-05-03"] and bills["medfee_sumamt"].tolist() == ["30000.00"]
    alone = score_frame(pd.DataFrame([dict(base, 就诊ID="A", 结算时间="2023-05-03", 金额="30,000.00")]), fbook)
    assert bills["hifp_pay"].tolist() == alone.settlement.bills(money="text")["hifp_pay"].tolist()
    unreadable = score_frame(pd.DataFrame(stay[:2] + [dict(stay[2], 费用日期="soon")]), fbook)
    assert unreadable.rows_scored == 0 and "fee_ocur_time" in set(unreadable.rejects["column"])
    settled = pd.DataFrame([dict(base, 就诊ID="A", 结算时间=d) for d in ("2023-05-01", "2023-05-03")])
    refused = score_frame(settled, fbook)
    assert refused.rows_scored == 0 and "disagree on setl_date" in refused.rejects["reason"].iat[0]


def test_dates_and_amounts_as_people_write_them(fbook):
    rows = [{"mdtrt_id": f"A{i}", "psn_no": f"m{i}", "setl_time": d, "insuplc": "999901", "insutype": "310",
             "psn_type": "在职", "med_type": "21", "hosp_lv": "3", "chrgitm_lv": "01", "det_item_fee_sumamt": a}
            for i, (d, a) in enumerate([("2023-05-01", "50000"), ("2023/5/1", "¥50,000.00"), ("20230501", "50000.0"),
                                        ("2023-05-01 10:31:00", " 50,000 "), ("2023/5/1 9:05", "50000"),
                                        ("2023-05-01T10:31:00+08:00", "50000"), ("2023-05-01 00:00:00.000000", "50000"),
                                        ("2023.05.01", "50000"), ("2023年5月1日 10:05", "50000"),
                                        ("20230501.0", "50000")])]
    res = score_frame(pd.DataFrame(rows), fbook)
    assert len(res.rejects) == 0
    bills = res.settlement.bills(money="text")
    assert set(bills["hifp_pay"]) == {"40650.00"} and set(bills["setl_time"]) == {"2023-05-01"}
    # a time of day that is no time is not a date either
    bad = score_frame(pd.DataFrame([dict(rows[0], setl_time="2023-05-01 25:99")]), fbook)
    assert bad.rows_scored == 0 and "unreadable date" in bad.rejects["reason"].iat[0]


def test_typed_parquet_reads_as_its_text(fbook, tmp_path):
    """A Parquet export keeps its types: amounts as numbers, codes as integers, settlement times as
    zoned timestamps. Each is read as the CSV text would be, and a time before 08:00 in China keeps
    its own date (written in UTC it would be the day before)."""
    lines = random_lines(7, members=15)
    lines["age"] = lines["age"].astype(str)
    lines.loc[lines.index[:3], "age"] = ""                  # a missing integer cell reads as missing
    typed = lines.assign(
        det_item_fee_sumamt=pd.to_numeric(lines["det_item_fee_sumamt"]),
        hosp_lv=pd.to_numeric(lines["hosp_lv"]),
        age=pd.to_numeric(lines["age"]).astype("Int64"),
        setl_time=pd.to_datetime(lines["setl_time"]).dt.tz_localize("Asia/Shanghai") + pd.Timedelta(hours=7))
    assert str(typed["setl_time"].dt.tz_convert("UTC").dt.date.iat[0]) < str(lines["setl_time"].iat[0])
    path = tmp_path / "typed.parquet"
    typed.to_parquet(path)
    got = score_file(path, fbook)
    want = score_frame(lines, fbook)
    assert len(got.rejects) == len(want.rejects) and got.rows_scored == want.rows_scored > 0
    pd.testing.assert_frame_equal(got.settlement.bills(), want.settlement.bills())


def test_csv_injection_is_neutralised(fbook, tmp_path):
    df = pd.DataFrame({"mdtrt_id": ["=HYPERLINK(\"http://x\")", "+1+1", "-2", "@SUM(A1)", "ok", "-12.50"]})
    out = neutralise_formulas(df)
    assert out["mdtrt_id"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+1+1", "-2", "'@SUM(A1)", "ok", "-12.50"]
    rows = [{"mdtrt_id": "=cmd|' /C calc'!A0", "psn_no": "@x", "setl_time": "2023-05-01", "insuplc": "测试市",
             "insutype": "职工", "psn_type": "在职", "med_type": "21", "hosp_lv": 3, "chrgitm_lv": 1,
             "det_item_fee_sumamt": "100"}]
    path = tmp_path / "in.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    res = score_file(path, fbook)
    write_table(res.settlement.bills(money="text"), tmp_path / "out.csv")
    text = (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert "\n'=cmd" in text and ",'@x," in text


def test_parquet_in_and_out_with_exact_decimals(fbook, tmp_path):
    import pyarrow.parquet as pq
    df = random_lines(9)
    src = tmp_path / "in.parquet"
    df.astype(str).to_parquet(src)
    out = tmp_path / "out.parquet"
    assert main(["--tables", str(fbook.root), "score", str(src), "-o", str(out), "-q", "--allow-rejects"]) in (0, 3)
    t = pq.read_table(out)
    assert str(t.schema.field("hifp_pay").type) == "decimal128(18, 2)"
    direct = score_frame(df.astype(str), fbook).settlement.bills()
    got = t.to_pandas().set_index("mdtrt_id")["psn_cash_pay"]
    assert (direct.set_index("mdtrt_id")["psn_cash_pay"] == got.reindex(direct["mdtrt_id"])).all()


def test_parquet_dictionaries_only_for_repeated_text(fbook, tmp_path):
    """Ids are written plain (a dictionary of distinct values only costs time and space); the
    columns that repeat (region, visit type, warnings …) are dictionary-encoded."""
    import pyarrow.parquet as pq
    src = tmp_path / "in.csv"
    random_lines(4, members=40).to_csv(src, index=False)
    out = tmp_path / "out.parquet"
    main(["--tables", str(fbook.root), "score", str(src), "-o", str(out), "-q", "--allow-rejects"])
    meta = pq.ParquetFile(out).metadata.row_group(0)
    enc = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert meta.num_rows > 20
    assert not any("DICTIONARY" in e for e in enc["mdtrt_id"])
    assert any("DICTIONARY" in e for e in enc["insuplc"]) and any("DICTIONARY" in e for e in enc["warnings"])
    # written from Arrow dictionaries, read back as the plain text they are (not pandas categories)
    back = pd.read_parquet(out)
    assert back["warnings"].dtype == object or pd.api.types.is_string_dtype(back["warnings"])
    assert not isinstance(back["insuplc"].dtype, pd.CategoricalDtype)
    from ybcalc.i18n import language
    with language("en"):                         # the command line's language in the tests' C locale
        direct = score_frame(pd.read_csv(src, dtype=str), fbook).settlement.bills()
    assert back["warnings"].fillna("").tolist() == direct["warnings"].tolist()
    assert back["notes"].fillna("").tolist() == direct["notes"].tolist()
    assert back["setl_time"].tolist() == direct["setl_time"].tolist()


def test_year_to_date_state_from_accounts_file(fbook, tmp_path):
    """A file covering part of a year: the deductible already used and the account balance carry in."""
    bill = pd.DataFrame([{"mdtrt_id": "A", "psn_no": "m1", "setl_time": "2023-06-01", "insuplc": "测试市",
                          "insutype": "职工", "psn_type": "在职", "med_type": "11", "hosp_lv": 2, "chrgitm_lv": 1,
                          "det_item_fee_sumamt": "800"}])
    fresh = ybcalc.settle(bill, fbook)
    assert str(fresh["act_pay_dedc"]) == "800.00"
    state = pd.DataFrame({"psn_no": ["m1"], "outpatient_deductible_used": [700], "acct_balance": [50]})
    carried = ybcalc.settle(bill, fbook, state=state)
    # yearly deductible 1000, 700 used before: 300 more, then 500 × 60% = 300
    assert str(carried["act_pay_dedc"]) == "300.00" and str(carried["hifp_pay"]) == "300.00"
    assert str(carried["acct_pay"]) == "50.00"
    path = tmp_path / "accounts.csv"
    state.to_csv(path, index=False)
    bills = tmp_path / "b.csv"
    bill.to_csv(bills, index=False)
    out = tmp_path / "o.csv"
    assert main(["--tables", str(fbook.root), "score", str(bills), "-o", str(out), "--accounts", str(path), "-q"]) == 0
    assert pd.read_csv(out)["act_pay_dedc"].iat[0] == 300.0
    # member ids are read as in the bills (stripped); a member given twice is an error naming the rows
    state.assign(psn_no=" m1 ").to_csv(path, index=False)
    assert main(["--tables", str(fbook.root), "score", str(bills), "-o", str(out), "--accounts", str(path), "-q"]) == 0
    assert pd.read_csv(out)["act_pay_dedc"].iat[0] == 300.0
    pd.concat([state, state.assign(psn_no="m1 ")]).to_csv(path, index=False)
    from ybcalc.batch import read_accounts
    with pytest.raises(ValueError, match=r"accounts.csv, rows 2, 3, column psn_no: member 'm1' appears more than once"):
        read_accounts(path)
    with pytest.raises(ValueError, match="appears more than once"):
        ybcalc.settle(bill, fbook, state=pd.concat([state, state]))


def test_dask_on_a_local_cluster_equals_the_single_machine_path(fbook, tmp_path):
    distributed = pytest.importorskip("distributed")
    import dask
    import dask.dataframe as dd

    import ybcalc.dask as ydask
    df, mixed = messy_members(12)              # routing must keep members and bills whole (see ybcalc.routing)
    df.loc[4, "det_item_fee_sumamt"] = "bad"
    path = tmp_path / "b.csv"
    df.to_csv(path, index=False)
    local = score_file(path, fbook)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl, \
            distributed.Client(cl):
        ddf = dd.read_csv(str(path), dtype=str, keep_default_na=False, blocksize=2000)
        assert ddf.npartitions > 1
        bills, rejects = dask.compute(*ydask.score(ddf, tables=str(fbook.root)))
    assert "lines of this bill disagree on psn_no" in set(local.rejects["reason"])
    want = local.settlement.bills()[ydask.BILL_COLUMNS].sort_values("mdtrt_id").reset_index(drop=True)
    got = bills.sort_values("mdtrt_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    pd.testing.assert_frame_equal(rejects.sort_values(["row", "column"]).reset_index(drop=True),
                                  local.rejects.sort_values(["row", "column"]).reset_index(drop=True),
                                  check_dtype=False)


def test_cli_dask_engine_writes_the_same_file(tmp_path):
    pytest.importorskip("distributed")
    from pathlib import Path
    example = Path(__file__).resolve().parents[1] / "examples" / "bills.csv"
    accounts = example.parent / "accounts.csv"
    a, b = tmp_path / "local.csv", tmp_path / "dask.csv"
    assert main(["score", str(example), "-o", str(a), "-q", "--accounts", str(accounts)]) == 0
    assert main(["score", str(example), "-o", str(b), "-q", "--engine", "dask", "--workers", "2",
                 "--accounts", str(accounts)]) == 0
    x = pd.read_csv(a, dtype=str).sort_values("mdtrt_id").reset_index(drop=True)
    y = pd.read_csv(b, dtype=str).sort_values("mdtrt_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(x, y)
    assert (x["acct_pay"].astype(float) > 0).any()


def test_cli_dask_engine_prints_the_local_summary_and_rejects(tmp_path, capsys):
    """`--engine dask` accounts for every row as the local engine does (rows read = scored +
    rejected, the totals, the first rejects) and exits 3 on rejects; it used to print only counts of
    bills and reject records."""
    pytest.importorskip("distributed")
    from pathlib import Path
    example = Path(__file__).resolve().parents[1] / "examples" / "bills.csv"
    text = example.read_text(encoding="utf-8-sig").splitlines()
    text[5] += ",stray"                                    # file row 6: an unquoted comma
    path = tmp_path / "bills.csv"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")

    def run(*engine):
        capsys.readouterr()
        code = main(["score", str(path), "-o", str(tmp_path / "out.csv"), *engine])
        err = capsys.readouterr().err.splitlines()
        return code, [ln for ln in err if ln.startswith(("rows read", "total cost", "  rejected:", "  …"))]
    local, dask_ = run(), run("--engine", "dask", "--workers", "2")
    assert local == dask_ and local[0] == 3
    assert local[1][0].startswith(f"rows read {len(text) - 1} = scored ")
    assert "row 6, column (row): row has" in local[1][2]


def test_float_columns_of_parquet_read_as_plain_decimals():
    """pandas writes ids with a gap and amounts as floats; Arrow's own text for them is an exponent
    form for large values (1.5e+06), which no amount reader takes, and mangles ids."""
    import pyarrow as pa
    from ybcalc.batch import _as_text
    col = pa.chunked_array([[12.34, 1500000.0, 123456789012.0, 2.675, 0.0, -3.5, None]])
    assert _as_text(col).to_pylist() == ["12.34", "1500000", "123456789012", "2.675", "0", "-3.5", None]
    assert _as_text(pa.chunked_array([[1.0, float("nan")]])).to_pylist() == ["1", "nan"]   # no decimal: as Arrow


def test_dask_reads_typed_parquet_as_the_single_machine_reader_does():
    """The Dask path converts a typed Parquet partition to text as the local reader does: a zoned
    time keeps its own date, an integer code its digits, and a missing cell stays missing (pandas'
    astype(str) made it the text "nan", which was then rejected as unreadable, not as missing)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ybcalc.batch import read_arrow
    from ybcalc.dask import _parquet_text
    df = pd.DataFrame({"setl_time": pd.to_datetime(["2025-03-15 07:00", "2025-03-16 12:00"]).tz_localize("Asia/Shanghai"),
                       "hosp_lv": [3, 2], "det_item_fee_sumamt": [12.5, np.nan]})
    got = _parquet_text(df)
    assert got["setl_time"].tolist() == ["2025-03-15", "2025-03-16"]
    assert got["hosp_lv"].tolist() == ["3", "2"] and got["det_item_fee_sumamt"].iat[0] == "12.5"
    assert pd.isna(got["det_item_fee_sumamt"].iat[1])
    table = pa.Table.from_pandas(df, preserve_index=False)
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        pq.write_table(table, f"{d}/t.parquet")
        local, _ = read_arrow(f"{d}/t.parquet")
    assert local.to_pandas().astype(object).where(local.to_pandas().notna(), None).equals(
        got.astype(object).where(got.notna(), None))


def test_year_to_date_admissions_lower_the_deductible(fbook):
    """One earlier admission this year (from the state file): this one is the 2nd, deductible halved."""
    bill = pd.DataFrame([{"mdtrt_id": "A", "psn_no": "m1", "setl_time": "2023-06-01", "insuplc": "测试市",
                          "insutype": "职工", "psn_type": "在职", "med_type": "21", "hosp_lv": 3, "chrgitm_lv": 1,
                          "det_item_fee_sumamt": "10000"}])
    state = pd.DataFrame({"psn_no": ["m1"], "inpatient_admissions": [1]})
    assert str(ybcalc.settle(bill, fbook, state=state)["act_pay_dedc"]) == "500.00"


def test_rules_keyed_on_admission_count_year_to_date_admissions(tmp_path):
    """A rule keyed on `admission` (北京居民 学生儿童: the first admission's deductible halved by an
    adjustment, later ones by nth_factor) sees the admissions before the batch (`--accounts`), as a
    second admission within one batch does: 1300 × 0.5 = 650.00, not the first admission's 325.00."""
    header = "mdtrt_id,psn_no,setl_time,insuplc,insutype,psn_type,age,med_type,hosp_lv,item_name,chrgitm_lv,"\
             "det_item_fee_sumamt\n"
    line = "{},S1,{},110000,390,学生儿童,10,21,3,项目1,1,10000.00\n"
    (tmp_path / "one.csv").write_text(header + line.format("B1", "2024-03-01"), encoding="utf-8")
    (tmp_path / "two.csv").write_text(header + line.format("B0", "2024-02-01") + line.format("B1", "2024-03-01"),
                                      encoding="utf-8")
    (tmp_path / "acc.csv").write_text("psn_no,admissions\nS1,1\n", encoding="utf-8")
    for args in (["one.csv", "--accounts", "acc.csv"], ["two.csv"]):
        out = tmp_path / "out.csv"
        assert main(["score", *[str(tmp_path / a) if a.endswith(".csv") else a for a in args], "-o", str(out)]) == 0
        got = pd.read_csv(out, dtype=str).set_index("mdtrt_id").loc["B1"]
        assert (got["act_pay_dedc"], got["hifp_pay"]) == ("650.00", "7012.50"), args
    # the library: the state's per-benefit count too, and the parameters a bill is settled with
    bill = pd.read_csv(tmp_path / "one.csv", dtype=str)
    for col in ("admissions", "inpatient_admissions"):
        state = pd.DataFrame({"psn_no": ["S1"], col: [1]})
        assert str(ybcalc.settle(bill, state=state)["act_pay_dedc"]) == "650.00", col


def test_progress_bar_only_on_a_terminal(tmp_path, capsys, monkeypatch):
    from pathlib import Path
    example = Path(__file__).resolve().parents[1] / "examples" / "bills.csv"
    out = tmp_path / "o.csv"
    monkeypatch.setattr("sys.stderr.isatty", lambda: False, raising=False)
    assert main(["score", str(example), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "rows read" in err and "\r  [" not in err        # a summary, but no bar in a log file
    import sys

    class Tty:                      # a terminal-like stderr: the bar is drawn with carriage returns
        def __init__(self):
            self.text = ""

        def write(self, s):
            self.text += s

        def flush(self):
            pass

        def isatty(self):
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main(["score", str(example), "-o", str(out)]) == 0
    assert "\r  [" in tty.text and "lines" in tty.text
    # before any bill is settled: what is being read, then an empty bar with the total
    assert tty.text.index("reading") < tty.text.index("0/257 lines") < tty.text.index("257/257 lines")
    tty2 = Tty()
    monkeypatch.setattr(sys, "stderr", tty2)
    assert main(["score", str(example), "-o", str(out), "--quiet"]) == 0
    assert "\r  [" not in tty2.text


def test_all_rows_rejected_still_writes_headers(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("mdtrt_id,psn_no,setl_time,insuplc,insutype,med_type,chrgitm_lv,det_item_fee_sumamt\n"
                   "A,p,2025-01-01,火星,310,21,1,100\n", encoding="utf-8")
    for out in (tmp_path / "o.csv", tmp_path / "o.parquet"):
        assert main(["score", str(bad), "-o", str(out), "-q"]) == 3
        df = pd.read_parquet(out) if out.suffix == ".parquet" else pd.read_csv(out)
        assert len(df) == 0 and "hifp_pay" in df.columns


def test_streamed_output_equals_in_memory_output(fbook, tmp_path):
    df = random_lines(21, members=60)
    src = tmp_path / "b.csv"
    df.to_csv(src, index=False)
    from ybcalc.batch import BillWriter
    out = tmp_path / "streamed.csv"
    w = BillWriter(out)
    res = score_file(src, fbook, partition_lines=40, sink=w)
    w.close()
    assert res.settlement is None and res.streamed["bills"] == df["mdtrt_id"].nunique() - res.rejects["mdtrt_id"].nunique()
    whole = score_frame(pd.read_csv(src, dtype=str, keep_default_na=False), fbook)
    write_table(whole.settlement.bills(money="text"), tmp_path / "whole.csv")
    a = pd.read_csv(out, dtype=str).sort_values("mdtrt_id").reset_index(drop=True)
    b = pd.read_csv(tmp_path / "whole.csv", dtype=str).sort_values("mdtrt_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert res.summary().splitlines()[1] == whole.summary().splitlines()[1]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_worker_processes_write_the_same_file_as_one_process(fbook, tmp_path, suffix):
    """``jobs=2`` settles member partitions in two spawned processes; the file, the rejects and the
    totals are those of the single-process run (partitions are written in the same order)."""
    from ybcalc.batch import BillWriter
    df = random_lines(8, members=40)
    df.loc[3, "det_item_fee_sumamt"] = "abc"                 # one reject travels back from a worker
    path = tmp_path / "b.csv"
    df.to_csv(path, index=False)
    import glob
    import tempfile
    from ybcalc.batch import _spill_root
    # this process's partition folders (named with its id: other runs on the machine come and go)
    spilled = os.path.join(_spill_root() or tempfile.gettempdir(), f"ybcalc-partitions-{os.getpid()}-*")
    before = set(glob.glob(spilled))
    outs = []
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}{suffix}"
        w = BillWriter(out, "zh")
        res = score_file(path, fbook, partition_lines=25, sink=w, jobs=jobs)
        assert res.streamed["workers"] == (0 if jobs == 1 else 2)      # 2 workers really ran
        w.close()
        outs.append((out, res))
    assert set(glob.glob(spilled)) == before           # the partitions spilled for the workers are gone
    (a, ra), (b, rb) = outs
    read = pd.read_parquet if suffix == ".parquet" else (lambda p: pd.read_csv(p, dtype=str))
    assert len(read(a)) > 40
    pd.testing.assert_frame_equal(read(a), read(b))
    pd.testing.assert_frame_equal(ra.rejects, rb.rejects)
    assert ra.summary() == rb.summary()
    assert ra.rows_read == rb.rows_read == len(df) and len(ra.rejects) >= 1


def test_columns_the_settlement_does_not_read_are_ignored(fbook, tmp_path):
    """Extra export columns (科室, 备注 …) neither change the result nor stop the run."""
    df = random_lines(9, members=20)
    path, wide = tmp_path / "b.csv", tmp_path / "wide.csv"
    df.to_csv(path, index=False)
    df.assign(科室="心内科", 备注="=cmd|' /C calc'!A0", extra_1=range(len(df))).to_csv(wide, index=False)
    a = score_file(path, fbook, partition_lines=40).settlement.bills(money="fen")
    b = score_file(wide, fbook, partition_lines=40).settlement.bills(money="fen")
    pd.testing.assert_frame_equal(a.sort_values("mdtrt_id").reset_index(drop=True),
                                  b.sort_values("mdtrt_id").reset_index(drop=True))


def messy_members(seed: int) -> tuple[pd.DataFrame, str]:
    """Random lines with a member id written with stray spaces on some lines, and a bill (returned) one
    of whose lines names another member."""
    df = random_lines(seed, members=60)
    ids = df["psn_no"].unique()
    a, b = ids[0], ids[1]
    rows_a = df.index[df["psn_no"] == a]
    df.loc[rows_a[::2], "psn_no"] = " " + a + " "             # same member, written with spaces
    mixed = df.loc[df["psn_no"] == b, "mdtrt_id"].value_counts().index[0]
    two = df.index[df["mdtrt_id"] == mixed]
    if len(two) < 2:                                            # make sure the bill has two lines
        df = pd.concat([df, df.loc[two]], ignore_index=True)
        two = df.index[df["mdtrt_id"] == mixed]
    df.loc[two[-1], "psn_no"] = ids[2]                          # one line names another member
    return df, mixed


def test_partitions_keep_bills_and_members_whole_as_prepare_reads_them(fbook, tmp_path):
    """Routing rows to partitions must not split what prepare treats as one member or one bill: a member
    id written with stray spaces, a line with an empty psn_no (the visit id stands in), and a bill whose
    lines name two members (rejected whole in one batch, so it must be rejected whole here too)."""
    df, mixed = messy_members(11)
    path = tmp_path / "b.csv"
    df.to_csv(path, index=False)
    whole = score_frame(pd.read_csv(path, dtype=str, keep_default_na=False), fbook,
                        row_numbers=np.arange(len(df)) + 2)           # CSV line numbers, as score_file
    assert set(whole.rejects.loc[whole.rejects["mdtrt_id"] == mixed, "reason"]) == {"lines of this bill disagree on psn_no"}
    for size in (7, 25):                                        # many partitions: splits would show
        parts = score_file(path, fbook, partition_lines=size)
        key = ["mdtrt_id"]
        pd.testing.assert_frame_equal(
            whole.settlement.bills(money="fen").sort_values(key).reset_index(drop=True),
            parts.settlement.bills(money="fen").sort_values(key).reset_index(drop=True))
        pd.testing.assert_frame_equal(whole.rejects.sort_values(["row", "column"]).reset_index(drop=True),
                                      parts.rejects.sort_values(["row", "column"]).reset_index(drop=True))


def test_text_hash_reads_equal_strings_equal():
    import pyarrow as pa
    from ybcalc.routing import text_hash
    arr = pa.array(["P1", "", "P1", "P10000000000000000001", "P10000000000000000002", None, "甲乙"])
    h, length = text_hash(arr)
    assert h[0] == h[2] and h[1] == h[5] and h[3] != h[4] and list(length) == [2, 0, 2, 21, 21, 0, 6]
    sliced, _ = text_hash(arr.slice(2, 2))                       # offsets of a slice
    assert list(sliced) == [h[2], h[3]]


def test_split_bill_rows_are_found_exactly_whatever_the_bucket_size():
    """Buckets of bill hashes only narrow the search: with 2 buckets or 4M, the rows returned are exactly
    those of bill hashes whose rows lie in several partitions."""
    from ybcalc.routing import _split_bills
    rng = np.random.default_rng(3)
    hb = rng.integers(0, 2**63, 300).astype(np.uint64)[rng.integers(0, 300, 5000)]
    part = (hb % np.uint64(7)).astype(np.int64)
    moved = rng.choice(5000, 40, replace=False)
    part[moved] = (part[moved] + 1) % 7                       # some rows' members live elsewhere
    want = np.flatnonzero(pd.Series(part).groupby(hb).transform("nunique").to_numpy() > 1)
    for bits in (1, 8, 22):
        assert np.array_equal(np.sort(_split_bills(hb, part, bits)), want)


def test_fast_csv_rows_are_byte_for_byte_what_pandas_writes():
    """BillWriter writes CSV through Arrow (csv_rows); it must equal formula-neutralised pandas output,
    quoting, escaping and fen-as-yuan included."""
    from ybcalc.batch import csv_rows
    tricky = ["a,b", 'say "hi"', "x\ny", " lead", "", "北京", "=SUM(A1)", "+1", "-12.30", "-x", "@a",
              "\tx", "'=1", "1e5", "+12", "１２", None]
    df = pd.DataFrame({"mdtrt_id": pd.Series(tricky, dtype=object),
                       "warnings": pd.Series(tricky[::-1], dtype=object),
                       "hifp_pay": np.arange(len(tricky), dtype=np.int64) * 37 - 200})
    want = neutralise_formulas(df.assign(hifp_pay=ybcalc.money.fen_text(df["hifp_pay"]),
                                         mdtrt_id=df["mdtrt_id"].fillna(""), warnings=df["warnings"].fillna("")))
    assert csv_rows(df) == want.to_csv(index=False, header=False)
    # the writers' repeated columns come as categories: each distinct text is handled once, same bytes
    cat = df.assign(warnings=df["warnings"].astype("category"))
    assert isinstance(cat["warnings"].dtype, pd.CategoricalDtype) and cat["warnings"].isna().any()
    assert csv_rows(cat) == want.to_csv(index=False, header=False)
    assert neutralise_formulas(cat)["warnings"].tolist()[-7] == "'=SUM(A1)"
    one = pd.DataFrame({"x": pd.Series(["", "a", '"'], dtype=object)})
    assert csv_rows(one) == neutralise_formulas(one).to_csv(index=False, header=False)
    assert csv_rows(pd.DataFrame({"x": [1.5]})) == "1.5\n"       # numbers as pandas writes them
    # a carriage return inside a cell is quoted (Python 3.11's csv leaves it bare; readers then split the row)
    assert csv_rows(pd.DataFrame({"a": ["cr\rx"], "b": ["y"]})) == '"cr\rx",y\n'



def test_an_error_describing_the_bill_gives_each_bill_its_own_age():
    """Table values are resolved once per profile (bills alike in all a table can tell apart, ages
    within one band of the tables' age bounds); an error that describes the bill still names each
    bill's own age, and bills of one profile with different ages each get it."""
    book = ybcalc.load_tables()
    df = pd.DataFrame([{"mdtrt_id": f"B{a}", "psn_no": f"P{a}", "setl_time": "2016-05-01", "insuplc": "莆田",
                        "insutype": "职工", "psn_type": "退休", "age": a, "med_type": "14", "hosp_lv": 3,
                        "chrgitm_lv": 1, "det_item_fee_sumamt": "3000.00"} for a in (66, 67, 67)])
    df.loc[2, ["mdtrt_id", "med_type"]] = ["B67b", "21"]       # settles: the profile path is mixed
    r = score_frame(df, book)
    reasons = r.rejects.set_index("mdtrt_id")["reason"]
    assert "no rule of putian/employee" in reasons["B66"]
    assert "age=66" in reasons["B66"] and "age=67" in reasons["B67"]
    assert r.rows_scored == 1


def test_values_looked_up_per_profile_are_those_of_each_bill_alone():
    """The engine looks table values up once per profile of alike bills (date class, age band …) and
    spreads them: on the shipped tables, random bills of every region, scheme, person group, age
    (bands of 北京 70, 深圳 60, 莆田/重庆 18 …) and date across entry changes get, in one batch,
    exactly the values, errors and warnings each gets alone."""
    from ybcalc.engine.settle import resolve_parameters
    from ybcalc.inputs import prepare
    book = ybcalc.load_tables()
    rng = np.random.default_rng(11)
    keys = sorted(book.tables)
    regions = sorted({r for r, _ in keys})
    sourced = [k for k in keys if k[0] in ("beijing", "shanghai", "hangzhou", "shenzhen", "shijiazhuang")]
    rows = []
    for i in range(240):
        # few kinds of bill, so that many share a profile but for their age and date
        pool = sourced if rng.random() < 0.8 else keys        # mostly tables with values, some with gaps
        region, scheme = pool[rng.integers(len(pool))]
        t = book.tables[(region, scheme)]
        day = pd.Timestamp("2022-07-01") + pd.Timedelta(days=int(rng.integers(0, 3.5 * 365)))
        away = rng.random() < 0.1
        rows.append({"mdtrt_id": f"B{i}", "psn_no": f"P{i}", "setl_time": day.strftime("%Y-%m-%d"),
                     "insuplc": book.region_label(region), "insutype": "职工" if scheme == "employee" else "居民",
                     "psn_type": t.psn_types[-1] if t.psn_types and rng.random() < 0.6 else "",
                     "age": int(rng.integers(0, 96)), "med_type": rng.choice(["11", "21", "21"]),
                     "hosp_lv": 3, "psn_idet_type": "低保" if rng.random() < 0.1 else "",
                     "mdtrt_area": book.region_label(regions[rng.integers(len(regions))]) if away else "",
                     "fil_type": rng.choice(["temporary", "unfiled"]),
                     "chrgitm_lv": int(rng.choice([1, 1, 2])), "det_item_fee_sumamt": "12345.60",
                     "selfpay_prop": "0.1" if rng.random() < 0.8 else ""})
    lines = prepare(pd.DataFrame(rows), book=book).lines
    bills, P, errors = resolve_parameters(lines, book)
    batch_warnings = errors.warnings.strings()

    def rows_of(P, i, prefix=""):
        out = {prefix + k: v[i].tolist() if v.ndim == 2 else v[i] for k, v in P.items() if isinstance(v, np.ndarray)}
        for payer, arrs in P.get("programs", []):
            out.update(rows_of(arrs, i, f"{payer}."))
        return out

    resolved = (errors.error == None).sum()  # noqa: E711
    assert len(bills) == 240 and 60 < resolved < 220             # both resolved and failing bills
    for i, bill in enumerate(bills["mdtrt_id"]):
        b1, P1, e1 = resolve_parameters(lines[lines["mdtrt_id"] == bill], book)
        together, alone = rows_of(P, i), rows_of(P1, 0)
        # a payer (大病/大额/救助) whose tables none of the bills alone has is absent alone, inactive together
        for payer in {k.split(".")[0] for k in together if "." in k} - {k.split(".")[0] for k in alone if "." in k}:
            assert not together[f"{payer}.active"], bill
            together = {k: v for k, v in together.items() if not k.startswith(payer + ".")}
        assert together == alone, bill
        assert errors.error[i] == e1.error[0], bill
        assert batch_warnings[i] == e1.warnings.strings()[0], bill
        assert P["_warn"].strings()[i] == P1["_warn"].strings()[0], bill


def test_columns_not_read_are_not_parsed(tmp_path):
    """Export columns the settlement does not read are skipped by the CSV reader: a corrupt 备注 cell
    (bytes that are not UTF-8) neither stops the run nor makes the reader fall back to GB18030 and
    garble the Chinese of the columns it does read. (A header given twice was read once, the first:
    it is refused now, see test_robust_input.)"""
    head = "mdtrt_id,psn_no,备注,setl_time,insuplc,insutype,psn_type,hosp_lv,med_type,chrgitm_lv,det_item_fee_sumamt\n"
    body = "V1,P1,\xff\xfe,2025-03-01,北京,310,在职,3,21,1,100.00\n"
    path = tmp_path / "b.csv"
    path.write_bytes(head.encode() + body.encode("utf-8").replace("\xff\xfe".encode(), b"\xff\xfe"))
    assert b"\xff\xfe" in path.read_bytes()
    r = score_file(path)
    assert r.rows_scored == 1 and len(r.rejects) == 0
    assert r.settlement.bills()["insuplc"].tolist() == ["北京"]


def test_output_categories_keep_missing_cells_and_merge_equal_labels():
    """The writers' categories (Settlement.bills(text="category")): a missing cell stays missing, and
    two values that show as one label become one category."""
    from ybcalc.api import _categories
    got = _categories(pd.Series(["a", "b", None, "a"], dtype=object), {"a": "X", "b": "X"}.get)
    assert list(got.categories) == ["X"] and got.isna().tolist() == [False, False, True, False]
    plain = _categories(pd.Series(["b", None, "a"], dtype=object))
    assert [None if pd.isna(v) else v for v in plain] == ["b", None, "a"]


def test_a_visit_id_with_stray_spaces_is_the_same_bill(fbook):
    """" V1 " and "V1" are one bill (ids are stripped before lines are grouped), and an id that is only
    spaces is a missing id."""
    line = {"psn_no": "m1", "setl_time": "2023-05-01", "insuplc": "测试市", "insutype": "职工", "psn_type": "在职",
            "med_type": "11", "hosp_lv": 2, "chrgitm_lv": 1, "det_item_fee_sumamt": "100"}
    df = pd.DataFrame([{**line, "mdtrt_id": "V1"}, {**line, "mdtrt_id": " V1 "}, {**line, "mdtrt_id": "  "}])
    r = score_frame(df, fbook)
    bills = r.settlement.bills()
    assert bills["mdtrt_id"].tolist() == ["V1"] and str(bills["medfee_sumamt"].iat[0]) == "200.00"
    assert r.rejects["reason"].tolist() == ["missing visit id (mdtrt_id)"]


def test_amounts_are_exact_fen_on_the_fast_and_the_general_path():
    """Plain amounts go through Arrow's decimal cast (the fen read off the decimal's integer), others
    through the text path; both give the exact fen, from the largest amounts to the smallest, and on a
    slice of a column (an Arrow array with an offset). (Amounts beyond the bound of 10 亿元 a line,
    which Arrow's decimal still holds, are refused: see test_robust_input.)"""
    from ybcalc.inputs import parse_amount
    plain = pd.Series(["0.01", "-12.30", "1000000000.00", "-999999999.99", "7", "0.5"], dtype="str")
    want = [1, -1230, 100000000000, -99999999999, 700, 50]
    fen, bad = parse_amount(plain)
    assert fen.tolist() == want and not bad.any()
    fen, _ = parse_amount(plain.iloc[1:4])
    assert fen.tolist() == want[1:4]
    fen, bad = parse_amount(pd.Series(["999999999999999.99", "1.00"], dtype="str"))
    assert bad.tolist() == [True, False] and fen.tolist() == [0, 100]
    messy = pd.Series(["¥1,234.5", "12.345", "x", "-0.01"], dtype="str")     # not plain: the text path
    fen, bad = parse_amount(messy)
    assert fen[[0, 1, 3]].tolist() == [123450, 1235, -1] and bad.tolist() == [False, False, True, False]


def test_amounts_with_commas_that_group_nothing_are_refused_not_multiplied(fbook, tmp_path):
    """'1,23' (a decimal comma, as a semicolon-separated European export writes it) read as thousands
    would be 123.00 yuan instead of 1.23: such amounts are rejected with their own reason, in bills
    and in the accounts file. Full-width digits and signs (what a Chinese keyboard can type) are read."""
    from ybcalc.batch import read_accounts
    from ybcalc.inputs import amount_ambiguous, parse_amount_problems
    cells = ["1,23", "12,3456.00", "1234,567", "1,234,567.89", "１２３．４５", "￥１，２３４．５", "(1,234.50)", "12,345元"]
    fen, problem = parse_amount_problems(pd.Series(cells, dtype="str"))
    assert problem.tolist() == [2, 2, 2, 0, 0, 0, 1, 0]
    assert fen[[3, 4, 5, 7]].tolist() == [123456789, 12345, 123450, 1234500]
    lines = random_lines(5, members=4)
    lines.loc[lines.index[0], "det_item_fee_sumamt"] = "12,50"
    res = score_frame(lines, fbook)
    own = res.rejects[res.rejects["row"] == 1]
    assert own["reason"].tolist() == [amount_ambiguous()] and own["value"].tolist() == ["12,50"]
    path = tmp_path / "accounts.csv"
    path.write_text("psn_no,acct_balance\nm1,\"1,234.56\"\nm2,\"12,50\"\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"accounts.csv, row 3, column acct_balance: ambiguous amount"):
        read_accounts(path)
    path.write_text("psn_no,acct_balance\nm1,\"1,234.56\"\n", encoding="utf-8")
    assert str(read_accounts(path)["acct_balance"].iat[0]) == "1234.56"


@pytest.mark.parametrize("sep,encoding", [("\t", "utf-8"), (";", "gb18030"), ("|", "utf-8-sig")])
def test_tab_semicolon_and_bar_separated_exports(fbook, tmp_path, sep, encoding):
    """Hospital systems export 费用明细 as tab-separated text too (and European-style tools with ';'):
    the separator is read off the header line, and amounts with thousands commas stay one field."""
    lines = random_lines(3, members=6)
    lines.loc[lines.index[0], "det_item_fee_sumamt"] = "1,234.50"
    path = tmp_path / "bills.txt"
    lines.to_csv(path, sep=sep, index=False, encoding=encoding)
    got = score_file(path, fbook)
    want = score_frame(lines, fbook)
    assert got.rows_read == len(lines) and got.rows_scored == want.rows_scored > 0
    pd.testing.assert_frame_equal(got.settlement.bills(), want.settlement.bills())


def test_excel_workbook_is_refused_with_what_to_do(fbook, tmp_path):
    path = tmp_path / "费用明细.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)        # a workbook is a zip archive
    with pytest.raises(ValueError, match="Excel workbook.*save the sheet as CSV"):
        score_file(path, fbook)
    renamed = tmp_path / "export.csv"                    # the same bytes under a CSV name
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="Excel workbook"):
        score_file(renamed, fbook)


def test_outputs_that_would_destroy_an_input_or_cannot_be_written_are_refused_first(fbook, tmp_path, capsys):
    """Checked before any bill is read: -o naming the input (it was silently overwritten with the
    settlements), a suffix that chooses no format, a missing folder, --rejects equal to -o."""
    src = tmp_path / "bills.csv"
    random_lines(2, members=3).to_csv(src, index=False)
    before = src.read_bytes()
    base = ["--tables", str(fbook.root), "score", str(src), "-q"]
    for extra, message in ((["-o", str(src)], "is the input file"),
                           (["-o", str(tmp_path / "out.json")], "give a .csv or .parquet"),
                           (["-o", str(tmp_path / "no" / "out.csv")], "does not exist"),
                           (["-o", str(tmp_path / "o.csv"), "--rejects", str(tmp_path / "o.csv")], "two file names"),
                           (["-o", str(tmp_path / "o.csv"), "--rejects", str(src)], "is the input file")):
        assert main(base + extra) == 2
        assert message in capsys.readouterr().err
    assert src.read_bytes() == before and not (tmp_path / "o.csv").exists()


def test_a_failed_run_leaves_no_half_written_output(fbook, tmp_path, monkeypatch):
    """Partitions are written under a temporary name and renamed at the end: a run that fails midway
    leaves the earlier complete file as it was, and no partial file beside it."""
    import ybcalc.batch as batch
    src = tmp_path / "bills.csv"
    random_lines(9, members=40).to_csv(src, index=False)
    out = tmp_path / "settlements.csv"
    out.write_text("an earlier complete run\n")
    real, calls = batch.score_partition, []

    def failing(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("stopped halfway")
        return real(*a, **kw)
    monkeypatch.setattr(batch, "score_partition", failing)
    monkeypatch.setattr(batch, "score_file", lambda *a, **kw: real_score_file(*a, **dict(kw, partition_lines=20)))
    real_score_file = score_file
    with pytest.raises(MemoryError):
        main(["--tables", str(fbook.root), "score", str(src), "-o", str(out), "-q", "-j", "1"])
    assert len(calls) == 3
    assert out.read_text() == "an earlier complete run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bills.csv", "settlements.csv"]
    monkeypatch.undo()
    assert main(["--tables", str(fbook.root), "score", str(src), "-o", str(out), "-q", "--allow-rejects"]) == 0
    assert "hifp_pay" in out.read_text().splitlines()[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bills.csv", "settlements.csv"]


def test_write_table_replaces_a_file_only_when_complete(tmp_path, monkeypatch):
    """write_table (the rejects file, the Dask engine's output, diff and compare tables) writes under
    a temporary name and renames: a write that fails midway leaves the earlier file as it was."""
    import ybcalc.batch as batch
    out = tmp_path / "rejects.csv"
    out.write_text("an earlier complete file\n")
    df = pd.DataFrame({"row": [2, 3], "reason": ["a", "b"]})

    def disk_full(frame):             # after the header was written
        raise OSError("disk full")
    monkeypatch.setattr(batch, "csv_rows", disk_full)
    with pytest.raises(batch.OutputError, match="rejects.csv: cannot be written .disk full"):
        batch.write_table(df, out)
    assert out.read_text() == "an earlier complete file\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rejects.csv"]
    monkeypatch.undo()
    batch.write_table(df, out)
    assert pd.read_csv(out)["reason"].tolist() == ["a", "b"] and len(list(tmp_path.iterdir())) == 1
    batch.write_table(df, tmp_path / "rejects.parquet")
    assert pd.read_parquet(tmp_path / "rejects.parquet")["row"].tolist() == [2, 3]


def test_the_library_call_returns_bills_and_says_what_it_did_not_settle(fbook):
    """``ybcalc.score(df)``, the issue's library call: one row per bill with the policy version, the
    same bills as the batch path; rows it could not settle are never dropped unsaid (a warning and
    ``attrs["rejects"]``, or BillError on request)."""
    import warnings
    from ybcalc.batch import RejectedRowsWarning
    df = random_lines(12, members=20)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # clean input: no warning at all
        clean = ybcalc.score(df, fbook)
    pd.testing.assert_frame_equal(clean, score_frame(df, fbook).settlement.bills())
    assert clean["policy_version"].str.contains("@").all() and len(clean.attrs["rejects"]) == 0
    bad = df.copy()
    bad.loc[bad.index[5], "det_item_fee_sumamt"] = "x"
    bill = bad.loc[bad.index[5], "mdtrt_id"]
    with pytest.warns(RejectedRowsWarning, match=r"not settled \(1 bills\).*missing or unreadable amount"):
        out = ybcalc.score(bad, fbook)
    assert bill not in set(out["mdtrt_id"]) and len(out) == len(clean) - 1
    assert set(out.attrs["rejects"]["mdtrt_id"]) == {bill}
    assert len(out.attrs["rejects"]) == (bad["mdtrt_id"] == bill).sum()
    with pytest.raises(ybcalc.BillError, match="missing or unreadable amount"):
        ybcalc.score(bad, fbook, rejects="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(ybcalc.score(bad, fbook, rejects="ignore")) == len(out)


def test_settlement_times_read_fast_and_the_same(fbook, tmp_path):
    """Settlement times make the date column nearly distinct (one value per bill): read as a
    dictionary per block, each member partition would carry every block's dictionary. Such columns
    go on as plain text, and the result is the same as settling the whole frame at once."""
    import pyarrow as pa
    from ybcalc.batch import _decode_large_dictionaries, read_arrow
    lines = random_lines(11, members=50)
    rng = np.random.default_rng(1)
    seconds = pd.Series(rng.integers(7 * 3600, 22 * 3600, lines["mdtrt_id"].nunique()),
                        index=lines["mdtrt_id"].unique())
    lines["setl_time"] = (pd.to_datetime(lines["setl_time"]) + pd.to_timedelta(seconds[lines["mdtrt_id"]].to_numpy(), "s")
                          ).dt.strftime("%Y-%m-%d %H:%M:%S")
    path = tmp_path / "timed.csv"
    lines.to_csv(path, index=False)
    table, _ = read_arrow(path, dictionary=True, known_only=True)
    assert pa.types.is_dictionary(table["setl_time"].type) and pa.types.is_dictionary(table["insuplc"].type)
    decoded = _decode_large_dictionaries(table, floor=0)
    assert decoded["setl_time"].type == pa.string() and pa.types.is_dictionary(decoded["insuplc"].type)
    assert decoded["setl_time"].to_pylist() == table["setl_time"].cast(pa.string()).to_pylist()
    got = score_file(path, fbook, partition_lines=30)
    want = score_frame(lines, fbook)
    assert got.rows_scored == want.rows_scored > 0 and len(got.rejects) == len(want.rejects)
    a = got.settlement.bills().sort_values("mdtrt_id").reset_index(drop=True)
    b = want.settlement.bills().sort_values("mdtrt_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert (a["setl_time"].str.len() == 10).all()


@pytest.mark.parametrize("dtype", ["str", "object", "category"])
def test_date_column_reads_as_the_per_value_parser(dtype):
    """The Arrow path for date columns (hash the cells, cut the time off the distinct texts) gives
    what parsing every distinct cell does, missing and unreadable cells included."""
    from ybcalc.inputs import Distinct, date_column, parse_date_texts
    cells = ["2025-03-15 10:00:00", " 2025/3/16 ", "", None, "x", "2025-03-15 11:00", "2025年3月1日 9:05",
             "2024-02-30", "20250301", "2025-03-15T10:00:00+08:00"] * 3
    col = pd.Series(cells, dtype=dtype)
    got, empty = date_column(col)
    d = Distinct(col)
    want = d.spread(parse_date_texts(d.texts))
    assert (np.isnat(got) == np.isnat(want)).all() and (got[~np.isnat(got)] == want[~np.isnat(want)]).all()
    assert empty.tolist() == d.empty().tolist()


def test_arrow_allocator_is_restored():
    import pyarrow as pa
    from ybcalc.batch import arrow_allocator
    before = pa.default_memory_pool().backend_name
    with arrow_allocator():
        inside = pa.default_memory_pool().backend_name
    assert pa.default_memory_pool().backend_name == before
    assert inside in ("jemalloc", before)


def test_rows_with_the_wrong_number_of_fields_are_rejects_not_a_failed_run(fbook, tmp_path):
    """An unquoted comma in a value, or a cut-off line, used to stop the whole run with a parser
    error. Such rows are now rejects with their file row; the rest of their bill is rejected with
    them; every later row keeps its own file row; rows read = scored + rejected, also with workers."""
    lines = random_lines(13, members=40)
    path = tmp_path / "broken.csv"
    lines.to_csv(path, index=False)
    text = path.read_text(encoding="utf-8").splitlines()
    extra_at, short_at = 5, 40                      # file rows (the header is row 1)
    text[extra_at - 1] += ",stray"
    text[short_at - 1] = ",".join(text[short_at - 1].split(",")[:4])
    later = 60                                      # a later row with a bad amount: its own row number
    cells = text[later - 1].split(",")
    cells[-1] = "abc"
    text[later - 1] = ",".join(cells)
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    broken_bills = {lines["mdtrt_id"].iat[extra_at - 2], lines["mdtrt_id"].iat[short_at - 2]}
    bad_amount_bill = lines["mdtrt_id"].iat[later - 2]
    keep = lines[~lines["mdtrt_id"].isin(broken_bills | {bad_amount_bill})]
    want = score_frame(keep, fbook).settlement.bills()
    for jobs in (1, 2):
        from ybcalc.batch import BillWriter
        out = tmp_path / f"o{jobs}.csv"
        w = BillWriter(out)
        res = score_file(path, fbook, partition_lines=30, sink=w, jobs=jobs)
        w.close()
        rej = res.rejects
        assert res.rows_read == len(lines) and res.rows_read == res.rows_scored + rej["row"].nunique()
        own = rej[rej["column"] == "(row)"].set_index("row")
        assert list(own.index) == [extra_at, short_at]
        assert "fields" in own.loc[extra_at, "reason"] and own.loc[extra_at, "value"].endswith(",stray")
        assert set(own["mdtrt_id"]) == broken_bills
        whole = lines.index[lines["mdtrt_id"].isin(broken_bills)] + 2
        assert set(rej.loc[rej["mdtrt_id"].isin(broken_bills), "row"]) == set(whole)
        amount = rej[rej["column"] == "det_item_fee_sumamt"]
        assert amount["row"].tolist() == [later] and amount["mdtrt_id"].tolist() == [bad_amount_bill]
        got = pd.read_csv(out, dtype=str).sort_values("mdtrt_id").reset_index(drop=True)
        assert sorted(got["mdtrt_id"]) == sorted(want["mdtrt_id"])
    from ybcalc.batch import read_bills
    with pytest.raises(ValueError, match=rf"row {extra_at}: row has \d+ fields"):
        read_bills(path)


@pytest.mark.parametrize("block", [40, 150, 700, 1 << 20])
def test_the_block_reader_numbers_broken_rows_as_one_reader_of_the_whole_file(tmp_path, monkeypatch, block):
    """The CSV is read in blocks of whole rows on several threads; a broken row's file row comes from
    its block's place in the file (the whole file used to be read again on one thread for that). The
    rows are those of one reader over the whole file, and their numbers the file's lines, blank lines
    and broken rows at block edges included, with blocks as small as a row."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import ybcalc.batch as batch
    lines = ["mdtrt_id,psn_no,det_item_fee_sumamt"]
    for i in range(60):
        lines.append(f"V{i % 7},P{i % 3},{i}.50" + (",stray" if i % 11 == 3 else ""))
        if i % 13 == 5:
            lines.append("")                              # a blank line: not a row
        if i % 17 == 8:
            lines.append(f"V{i},cut")                     # too few fields
    path = tmp_path / "b.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = []

    def note(row):
        found.append((row.number, row.text))
        return "skip"
    text = {nm: pa.string() for nm in lines[0].split(",")}
    whole = pacsv.read_csv(path, read_options=pacsv.ReadOptions(use_threads=False),
                           parse_options=pacsv.ParseOptions(invalid_row_handler=note),
                           convert_options=pacsv.ConvertOptions(column_types=text, strings_can_be_null=False))
    real = batch._block_bounds
    monkeypatch.setattr(batch, "_block_bounds", lambda p, b: real(p, block))
    broken: list = []
    table, first = batch.read_arrow(path, broken=broken)
    assert len(batch._block_bounds(path, 0)) > 1 or block == 1 << 20
    assert table.to_pydict() == whole.to_pydict()
    # numbered as a spreadsheet shows the file: its lines here (pyarrow's numbers skip blank lines)
    assert [(b.row, b.text) for b in broken] == [(lines.index(t) + 1, t) for _, t in found] and len(found) == 10
    assert {b.mdtrt_id for b in broken} <= {f"V{i}" for i in range(60)}


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 30), st.sets(st.integers(2, 45), max_size=8))
def test_file_rows_skip_the_rows_the_reader_skipped(n, skipped):
    """Row i read is the i-th file row (from row 2) that was not skipped."""
    from ybcalc.batch import row_numbers
    physical = [r for r in range(2, 2 + n + len(skipped) + 1) if r not in skipped][:n]
    skipped = {s for s in skipped if s < (physical[-1] if physical else 2)}
    assert row_numbers(n, 2, sorted(skipped)).tolist() == physical


@pytest.mark.parametrize("encoding", ["gb18030", "utf-16"])
def test_broken_rows_in_gbk_and_utf16_exports(fbook, tmp_path, encoding, capsys):
    """A GBK file with a broken row used to fail outright (the row could not reach the skip handler
    as UTF-8, so GB18030 was never tried); Excel's "Unicode text" (UTF-16 with a byte-order mark,
    tab-separated) is detected without --encoding. No decoding noise reaches the user."""
    lines = random_lines(17, members=8)
    lines.loc[lines.index[1], "item_name"] = "阿莫西林胶囊"
    path = tmp_path / "export.txt"
    lines.to_csv(path, index=False, sep="\t" if encoding == "utf-16" else ",", encoding=encoding)
    text = path.read_text(encoding=encoding).splitlines()
    sep = "\t" if encoding == "utf-16" else ","
    text[2] += sep + "stray"                        # file row 3
    path.write_text("\n".join(text) + "\n", encoding=encoding)
    res = score_file(path, fbook)
    assert res.rows_read == len(lines) == res.rows_scored + res.rejects["row"].nunique()
    own = res.rejects[res.rejects["column"] == "(row)"]
    assert own["row"].tolist() == [3] and own["mdtrt_id"].tolist() == [lines["mdtrt_id"].iat[1]]
    assert "阿莫西林胶囊" in own["value"].iat[0]          # the broken row's text, decoded as the file's
    assert "Exception ignored" not in capsys.readouterr().err


def _two_files(tmp_path, seed: int = 5, broken: bool = True, encoding: str = "gbk"):
    """A year of lines as two extracts, and as one file holding the same rows in the same order.

    The first extract is UTF-8 with national field names; the second GBK (``encoding``) with Chinese headers in
    another column order, a bad amount and (``broken``) a row with the wrong number of fields. Rows
    are cut at random, so some bills have lines in both files. Returns (first, second, whole, cut):
    the second file's row r is the whole file's row r + cut."""
    df, _ = messy_members(seed)
    cut = len(df) // 2
    df.loc[cut + 2, "det_item_fee_sumamt"] = "abc"
    first, second, whole = tmp_path / "jan.csv", tmp_path / "feb.csv", tmp_path / "all.csv"
    df.iloc[:cut].to_csv(first, index=False)
    zh = {"mdtrt_id": "就诊ID", "psn_no": "人员编号", "setl_time": "结算时间", "det_item_fee_sumamt": "明细项目费用总额",
          "chrgitm_lv": "收费项目等级"}
    b = df.iloc[cut:].rename(columns=zh)
    b[list(b.columns[::-1])].to_csv(second, index=False, encoding=encoding)
    df.to_csv(whole, index=False)
    if broken:
        for path in (second, whole):
            with open(path, "ab") as f:
                f.write(",2,三\n".encode(encoding if path == second else "utf-8"))
    return first, second, whole, cut


def _as_files(rejects: pd.DataFrame, first, second, cut: int) -> pd.DataFrame:
    """Rejects of the whole file as the two extracts name them."""
    rows = rejects["row"].to_numpy()
    out = rejects.assign(row=np.where(rows >= cut + 2, rows - cut, rows))
    out.insert(0, "file", np.where(rows >= cut + 2, str(second), str(first)).astype(object))
    return out


@pytest.mark.parametrize("partition_lines", [9, 250_000])
def test_several_files_settle_as_one_file_of_their_rows(fbook, tmp_path, partition_lines):
    """A year delivered as monthly extracts (each with its own encoding, header language and column
    order) settles exactly as one file of the same rows: a member's bills carry the year's state
    across files, a bill with lines in two files is one bill, and every reject names its file and
    its row in that file."""
    first, second, whole, cut = _two_files(tmp_path)
    want = score_file(whole, fbook, partition_lines=partition_lines)
    got = score_file([first, second], fbook, partition_lines=partition_lines)
    assert got.rows_read == want.rows_read and got.rows_scored == want.rows_scored
    key = ["mdtrt_id"]
    pd.testing.assert_frame_equal(got.settlement.bills(money="fen").sort_values(key).reset_index(drop=True),
                                  want.settlement.bills(money="fen").sort_values(key).reset_index(drop=True))
    expected = _as_files(want.rejects, first, second, cut)
    pd.testing.assert_frame_equal(got.rejects, expected)
    bad = got.rejects[got.rejects["reason"] == "missing or unreadable amount"]
    assert bad[["file", "row", "column", "value"]].values.tolist() == [[str(second), 4, "det_item_fee_sumamt", "abc"]]
    broken = got.rejects[got.rejects["column"] == "(row)"]
    assert broken[["file", "row"]].values.tolist() == [[str(second), len(whole.read_text().splitlines()) - cut]]
    assert set(got.rejects["file"]) == {str(first), str(second)}    # other lines of rejected bills, in both
    # a bill with a line in each file: settled as one
    both = set(pd.read_csv(first, dtype=str)["mdtrt_id"]) & set(pd.read_csv(second, dtype=str, encoding="gbk")["就诊ID"])
    assert both & set(got.settlement.bills()["mdtrt_id"])


def test_cli_scores_several_files_and_names_each_reject_s_file(tmp_path, capsys):
    first, second, whole, cut = _two_files(tmp_path, broken=False)
    fixtures = os.path.join(os.path.dirname(__file__), "fixtures", "tables")
    out, rej = tmp_path / "out.csv", tmp_path / "rej.csv"
    assert main(["--tables", fixtures, "score", str(first), str(second), "-o", str(out), "--rejects", str(rej),
                 "--lang", "zh"]) == 3
    r = pd.read_csv(rej, dtype=str, encoding="utf-8-sig")
    assert list(r.columns) == ["文件", "行号", "就诊ID", "列", "值", "原因"]
    amount = r[r["列"] == "det_item_fee_sumamt"]
    assert amount[["文件", "行号", "值"]].values.tolist() == [[str(second), "4", "abc"]]    # row 4 of feb.csv
    one = tmp_path / "one.csv"
    assert main(["--tables", fixtures, "score", str(whole), "-o", str(one), "-q", "--lang", "zh"]) == 3
    assert pd.read_csv(out, dtype=str).equals(pd.read_csv(one, dtype=str))
    # without --rejects the first ones are printed with their file
    capsys.readouterr()
    main(["--tables", fixtures, "score", str(first), str(second), "-o", str(out)])
    assert f"rejected: {second}, row 4, column det_item_fee_sumamt" in capsys.readouterr().err


def test_dask_scores_several_files_as_the_single_machine_path(fbook, tmp_path, capsys):
    """Several files on Dask: the same bills, and rejects naming each file and its own rows (a glob of
    files used to number rows across files, naming rows no file has). With ``progress``, each pass
    shows a bar on standard error."""
    pytest.importorskip("distributed")
    from ybcalc.dask import BILL_COLUMNS, score_path
    first, second, _, _ = _two_files(tmp_path)          # the second in GBK, detected, with a broken row
    local = score_file([first, second], fbook)
    capsys.readouterr()
    bills, rejects = score_path([first, second], workers=2, tables=str(fbook.root), progress=True)
    out = capsys.readouterr()
    assert "reading: rows" in out.err and "settling" in out.err and "% Completed" in out.err and not out.out
    assert rejects.attrs["rows_read"] == local.rows_read
    want = local.settlement.bills()[BILL_COLUMNS].sort_values("mdtrt_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(bills.sort_values("mdtrt_id").reset_index(drop=True), want, check_dtype=False)
    pd.testing.assert_frame_equal(rejects, local.rejects, check_dtype=False)
    assert set(rejects["file"]) == {str(first), str(second)}
    assert (rejects["column"] == "(row)").sum() == 1


def test_dask_lists_rows_with_the_wrong_number_of_fields_as_the_single_machine_path(fbook, tmp_path):
    """A row with an unquoted comma, or cut off, used to stop a Dask run with a parser error (and a
    short row would have been read with empty cells). Like the local path, Dask now lists each such
    row with its file row, rejects the rest of its bill, and numbers every later row as the file
    does, with the file cut into several blocks (the first data row is one of the broken ones)."""
    pytest.importorskip("distributed")
    from ybcalc.dask import BILL_COLUMNS, read_csv, score_path
    lines = random_lines(13, members=40)
    path = tmp_path / "broken.csv"
    lines.to_csv(path, index=False)
    text = path.read_text(encoding="utf-8").splitlines()
    for at in (2, 5, 41):                            # file rows: the first data row, and two more
        text[at - 1] += ",stray"
    text[40 - 1] = ",".join(text[40 - 1].split(",")[:4])
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    local = score_file(path, fbook)
    assert (local.rejects["column"] == "(row)").sum() == 4
    blocks = read_csv(str(path), blocksize=1500)
    assert blocks.npartitions > 3
    bills, rejects = score_path(str(path), workers=2, tables=str(fbook.root), blocksize=1500)
    want = local.settlement.bills()[BILL_COLUMNS].sort_values("mdtrt_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(bills.sort_values("mdtrt_id").reset_index(drop=True), want, check_dtype=False)
    pd.testing.assert_frame_equal(rejects, local.rejects, check_dtype=False)


def test_dask_reads_the_input_twice_not_three_times(fbook, tmp_path, monkeypatch):
    """Row counts, broken rows and the bills that name several members come from one pass over the
    input; settling is the second. (They were two passes before it: a year of a province's bills read
    three times.)"""
    pytest.importorskip("dask")
    import dask
    import ybcalc.dask as ydask
    path = tmp_path / "b.csv"
    random_lines(3, members=30).to_csv(path, index=False)
    calls = []
    read_block = ydask._read_block
    monkeypatch.setattr(ydask, "_read_block", lambda *a: calls.append(1) or read_block(*a))
    ddf = ydask.read_csv(str(path), blocksize=2000)
    assert ddf.npartitions > 2
    with dask.config.set(scheduler="sync"):
        bills, rejects = dask.compute(*ydask.score(ddf, tables=str(fbook.root)))
    assert len(calls) == 2 * ddf.npartitions
    assert len(bills) == score_file(path, fbook).settlement.bills()["mdtrt_id"].nunique()


def test_dask_path_detects_each_file_s_encoding(tmp_path):
    """As the local reader does: UTF-8 with or without BOM, GBK even when its first rows are ASCII
    only, UTF-16 by its byte-order mark."""
    from ybcalc.dask import detect_encoding
    text = "mdtrt_id,item_name\n" + "V1,x\n" * 1000 + "V2,白蛋白\n"
    cases = {"utf-8": "utf-8-sig", "utf-8-sig": "utf-8-sig", "gbk": "gb18030", "utf-16": "utf-16"}
    for enc, want in cases.items():
        path = tmp_path / f"{enc}.csv"
        path.write_bytes(text.encode(enc))
        assert detect_encoding(str(path)) == want, enc

"""Differential tests: the vectorized engine against a plain bill-by-bill reference (tests/reference.py).

Random multi-member, multi-bill batches on the fixture tables (testland 职工/居民, testcity 职工 which
extends testprov) must settle to the fen the same way in both, on every settlement column, and a
batch must settle each member exactly as that member's bills alone.
"""
from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ybcalc
from ybcalc.policy.loader import load_book

sys.path.insert(0, str(Path(__file__).parent))
from reference import OUT_COLUMNS, reference_settle  # noqa: E402

BOOK = load_book(Path(__file__).parent / "fixtures" / "tables")

LINE_COLUMNS = ["mdtrt_id", "psn_no", "setl_time", "insuplc", "insutype", "psn_type", "psn_idet_type", "age",
                "med_type", "hosp_lv", "mdtrt_area", "fil_type", "med_chrgitm_type", "item_name", "chrgitm_lv",
                "selfpay_prop", "pric_uplmt_amt", "cnt", "det_item_fee_sumamt"]
MEMBER_KINDS = [("testland", "310"), ("testland", "390"), ("testcity", "310")]
PSN_TYPES = {"310": ["在职", "退休"], "390": ["成年", "学生儿童", "老年"]}
IDET_TYPES = ["", "", "低保", "特困", "返贫致贫"]
ITEMS = [("西药", "09"), ("检查费", "05"), ("治疗费", "06"), ("材料费", "08"), ("中成药", "10"),
         ("交通费", "01"), ("救护车费", "06"), ("人血白蛋白", "09"), ("洗牙", "06")]
FIL_TYPES = ["", "long_term", "referral", "emergency", "temporary", "unfiled"]
SELFPAY = [0.05, 0.1, 0.15, 0.2, 0.3]
SPAN = (dt.date(2023, 1, 1), dt.date(2025, 12, 31))

# line amounts in fen: small, medium, large (caps and 大病 bind)
amounts = st.one_of(st.integers(0, 50_000), st.integers(0, 3_000_000), st.integers(1_000_000, 40_000_000))


@st.composite
def line(draw, testcity: bool):
    lv = draw(st.sampled_from([1, 1, 2, 2, 3]))
    name, mct = draw(st.sampled_from(ITEMS))
    fen = draw(amounts)
    sp = np.nan
    if lv == 2 and (testcity or draw(st.booleans())):
        sp = draw(st.sampled_from(SELFPAY))
    cnt, limit = 1.0, np.nan
    if draw(st.integers(0, 3)) == 0:
        cnt = float(draw(st.integers(1, 5)))
        limit = draw(st.integers(0, max(1, fen))) / 100
    return {"med_chrgitm_type": mct, "item_name": name, "chrgitm_lv": lv, "selfpay_prop": sp,
            "pric_uplmt_amt": limit, "cnt": cnt, "det_item_fee_sumamt": fen / 100}


@st.composite
def member(draw, i: int):
    region, insutype = draw(st.sampled_from(MEMBER_KINDS))
    testcity = region == "testcity"
    psn = {"psn_no": f"m{i}", "insuplc": region, "insutype": insutype,
           "psn_type": draw(st.sampled_from(PSN_TYPES[insutype])),
           "psn_idet_type": draw(st.sampled_from(IDET_TYPES)), "age": draw(st.integers(0, 95))}
    dates = draw(st.lists(st.dates(*SPAN), min_size=1, max_size=4))
    rows = []
    for j in range(draw(st.integers(1, 6))):
        if testcity:
            med_type, area, fil = "21", draw(st.sampled_from(["", "testcity"])), ""
        else:
            med_type = draw(st.sampled_from(["11", "13", "14", "21", "41"]))
            area = draw(st.sampled_from(["", "testland", "testland", "testcity", "testprov"]))
            fil = draw(st.sampled_from(FIL_TYPES))
        bill = dict(psn, mdtrt_id=f"m{i}b{j}", setl_time=draw(st.sampled_from(dates)).isoformat(),
                    med_type=med_type, hosp_lv=draw(st.integers(0, 3)), mdtrt_area=area, fil_type=fil)
        for ln in draw(st.lists(line(testcity), min_size=1, max_size=4)):
            rows.append({**bill, **ln})
    balance = draw(st.one_of(st.none(), st.integers(0, 100_000), st.integers(0, 5_000_000)))
    return rows, balance


@st.composite
def batches(draw):
    n = draw(st.integers(1, 4))
    rows, accounts = [], {}
    for i in range(n):
        r, bal = draw(member(i))
        rows += r
        if bal is not None:
            accounts[f"m{i}"] = bal
    # members' rows interleaved in any order: input order must not matter across members
    order = draw(st.permutations(range(len(rows))))
    df = pd.DataFrame([rows[k] for k in order], columns=LINE_COLUMNS)
    return df, accounts


def engine(df: pd.DataFrame, accounts: dict) -> pd.DataFrame:
    yuan = {k: Decimal(v) / 100 for k, v in accounts.items() if k in set(df["psn_no"])}
    raw = ybcalc.settle(df, BOOK, accounts=yuan or None).raw
    return raw.set_index("mdtrt_id")[OUT_COLUMNS].astype("int64")


def compare(got: pd.DataFrame, want: pd.DataFrame, what: str) -> None:
    assert sorted(got.index) == sorted(want.index), what
    got = got.loc[want.index, OUT_COLUMNS]
    want = want[OUT_COLUMNS]
    diff = got.ne(want)
    if diff.to_numpy().any():
        rows = diff.any(axis=1)
        msg = [f"{what}: {int(rows.sum())} bill(s) differ"]
        for mid in want.index[rows]:
            cols = [c for c in OUT_COLUMNS if diff.at[mid, c]]
            msg.append(f"  {mid}: " + ", ".join(f"{c} got {got.at[mid, c]} want {want.at[mid, c]}" for c in cols))
        raise AssertionError("\n".join(msg))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches())
def test_engine_matches_reference(batch):
    df, accounts = batch
    compare(engine(df, accounts), reference_settle(df, BOOK, accounts), "engine vs reference")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(batches())
def test_members_are_independent(batch):
    df, accounts = batch
    whole = engine(df, accounts)
    for m in pd.unique(df["psn_no"]):
        alone = engine(df[df["psn_no"] == m].reset_index(drop=True), accounts)
        compare(whole.loc[alone.index], alone, f"member {m} in batch vs alone")

"""Properties every settlement keeps, on random bills for the regions whose tables settle them."""
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ybcalc

BOOK = ybcalc.load_tables()
# region, scheme, visit types the sourced tables settle, member groups, earliest date with values
SETTLEABLE = [
    ("beijing", "employee", ["11", "14", "21"], ["在职", "退休"], "2023-01-01"),
    ("beijing", "resident", ["11", "21"], ["学生儿童", "老年人", "劳动年龄内居民"], "2023-01-01"),
    ("shanghai", "employee", ["11", "21"], ["在职", "退休", "退休2000前"], "2023-07-01"),
    ("shanghai", "resident", ["11", "21"], ["老年", "成年", "学生儿童", "重残"], "2023-01-01"),
    ("hangzhou", "employee", ["11", "21"], ["在职", "退休"], "2023-01-01"),
    ("hangzhou", "resident", ["11", "21"], ["少儿", "大学生", "城乡一档", "城乡二档"], "2023-01-01"),
    ("shenzhen", "employee", ["21"], ["在职", "退休"], "2024-01-01"),
    ("shenzhen", "resident", ["21"], ["居民"], "2024-01-01"),
]
FIELDS = ["medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt",
          "hifp_pay", "hifmi_pay", "hifob_pay", "maf_pay", "fund_pay_sumamt", "psn_part_amt", "acct_pay",
          "psn_cash_pay"]

line_st = st.tuples(st.sampled_from([1, 1, 2, 3]), st.integers(1, 30_000_000),
                    st.sampled_from(["0.05", "0.10", "0.20"]))


@st.composite
def member_year(draw):
    region, scheme, mts, groups, start = draw(st.sampled_from(SETTLEABLE))
    psn_type = draw(st.sampled_from(groups))
    age = draw(st.integers(1, 95))
    n_bills = draw(st.integers(1, 4))
    days = sorted(draw(st.lists(st.integers(0, 300), min_size=n_bills, max_size=n_bills, unique=True)))
    base = pd.Timestamp(start) + pd.Timedelta(days=draw(st.integers(0, 300)))
    rows = []
    for b, d in enumerate(days):
        mt = draw(st.sampled_from(mts))
        lv = draw(st.sampled_from([0, 1, 2, 3]))
        for lv_c, fen, prop in draw(st.lists(line_st, min_size=1, max_size=4)):
            rows.append({"mdtrt_id": f"b{b}", "psn_no": "m", "setl_time": (base + pd.Timedelta(days=d)).date(),
                         "insuplc": region, "insutype": scheme, "psn_type": psn_type, "age": age,
                         "med_type": mt, "hosp_lv": lv, "chrgitm_lv": lv_c, "selfpay_prop": prop if lv_c == 2 else "",
                         "det_item_fee_sumamt": f"{fen / 100:.2f}"})
    return pd.DataFrame(rows)


def settle(df, **kw):
    return ybcalc.settle(df, BOOK, **kw).raw.set_index("mdtrt_id")


PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPS
@given(member_year(), st.integers(0, 2_000_000))
def test_every_settlement_balances_to_the_fen(df, balance_fen):
    b = settle(df, accounts={"m": balance_fen / 100})
    assert (b.medfee_sumamt == b.fulamt_ownpay_amt + b.overlmt_selfpay + b.preselfpay_amt + b.inscp_scp_amt).all()
    assert (b.medfee_sumamt == b.fund_pay_sumamt + b.psn_part_amt).all()
    assert (b.fund_pay_sumamt == b.hifp_pay + b.hifmi_pay + b.hifob_pay + b.maf_pay).all()
    assert (b.psn_part_amt == b.acct_pay + b.psn_cash_pay).all()
    assert (b[FIELDS] >= 0).all().all()
    assert b.acct_pay.sum() <= balance_fen


@PROPS
@given(member_year(), st.data())
def test_more_cost_never_lowers_fund_or_patient_payment(df, data):
    """A yuan more on any line: the patient never pays less, and the fund as a whole never pays less
    but for the rounding of its payers (each payer's amount is rounded at the fen on its own, so a
    share that moves from 统筹 to 大额 can lose a fen in the sum). 统筹 alone may pay less: see the
    next test."""
    i = data.draw(st.integers(0, len(df) - 1))
    extra = data.draw(st.integers(100, 5_000_000))            # at least 1 yuan more
    more = df.copy()
    more.loc[i, "det_item_fee_sumamt"] = f"{float(df.loc[i, 'det_item_fee_sumamt']) + extra / 100:.2f}"
    a, b = settle(df).sum(numeric_only=True), settle(more).sum(numeric_only=True)
    assert b.medfee_sumamt - a.medfee_sumamt == extra
    assert b.psn_part_amt >= a.psn_part_amt
    assert b.fund_pay_sumamt >= a.fund_pay_sumamt - 3          # at most a fen for each of 统筹/大额/大病


def test_an_earlier_bill_can_move_a_later_one_from_the_pooled_fund_to_the_large_expense_fund():
    """Found by the property above: 北京 职工 门诊慢特病 (settled as 住院) takes a deductible per
    admission, but its payment ranges and its 统筹 cap (100,000 of cost) count the year's costs so
    far, deductibles included. A yuan more on an earlier bill moves the top of a large later bill
    past the cap, where 大额医疗补助 pays 85% of it: 统筹 pays 0.48 less, 大额 0.48 more, and the
    patient the same for that bill (the explanation of b3 shows the steps)."""
    rows = [{"mdtrt_id": b, "psn_no": "m", "setl_time": f"2023-01-0{d}", "insuplc": "beijing",
             "insutype": "employee", "psn_type": "在职", "age": 30, "med_type": "14", "hosp_lv": 0,
             "chrgitm_lv": 1, "selfpay_prop": "", "det_item_fee_sumamt": amount}
            for b, d, amount in (("b0", 1, "0.01"), ("b1", 2, "0.01"), ("b2", 3, "0.01"), ("b3", 4, "99999.53"))]
    df = pd.DataFrame(rows)
    more = df.assign(det_item_fee_sumamt=["1.01", "0.01", "0.01", "99999.53"])
    a, b = settle(df).loc["b3"], settle(more).loc["b3"]
    assert a.act_pay_dedc == b.act_pay_dedc == 65000                          # its own deductible
    assert (a.hifp_pay - b.hifp_pay, b.hifob_pay - a.hifob_pay) == (48, 48)
    assert a.fund_pay_sumamt == b.fund_pay_sumamt and a.psn_part_amt == b.psn_part_amt


@PROPS
@given(member_year())
def test_fund_never_pays_past_its_cap(df):
    b = settle(df)
    for (group, year), g in b.groupby(["cap_group", "policy_year"]):
        cap = g["cap_amount"].max()
        fund = g.loc[g["cap_basis"] == "fund", "hifp_pay"].sum()
        assert fund <= cap
        # a cost-basis cap: the fund pays nothing on eligible cost beyond it
        cost = g.loc[g["cap_basis"] == "cost"]
        if len(cost):
            assert (cost["hifp_pay"] <= cost["segment_hi"] - cost["segment_lo"]).all()
    for payer in ("hifob", "hifmi"):
        if f"{payer}_cap" in b.columns:
            assert (b.groupby("policy_year")[f"{payer}_pay"].sum() <= b.groupby("policy_year")[f"{payer}_cap"].max()).all()


RETIREE_TABLES = [("beijing", "在职", "退休"), ("shanghai", "在职", "退休"), ("hangzhou", "在职", "退休"),
                  ("shenzhen", "在职", "退休")]


@PROPS
@given(member_year(), st.sampled_from(RETIREE_TABLES))
def test_retiree_never_pays_more_than_an_employee(df, table):
    """In these regions every retiree term is at least as good as the employee's (checked below)."""
    region, employed, retired = table
    df = df.assign(insuplc=region, insutype="employee", age=66)
    start = {"shanghai": "2023-07-01", "shenzhen": "2024-01-01"}.get(region)
    if start:
        df["setl_time"] = [max(pd.Timestamp(d), pd.Timestamp(start)).date() for d in df["setl_time"]]
    if region == "shenzhen":
        df["med_type"] = "21"
    if region in ("hangzhou", "shanghai"):
        df["med_type"] = df["med_type"].replace("14", "21")
    a = settle(df.assign(psn_type=employed)).sum(numeric_only=True)
    b = settle(df.assign(psn_type=retired)).sum(numeric_only=True)
    assert b.psn_part_amt <= a.psn_part_amt


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_grouped_running_sums_maxima_and_shifts_equal_pandas(data):
    """The engine's grouped helpers (one sort, then plain numpy) give what a pandas groupby gives:
    on ints of any size (a running sum that wraps past int64 stays exact within a group, as pandas'
    does), on "no limit" caps at int64's maximum (running max/min fall back to pandas), and on floats."""
    import numpy as np
    from ybcalc.engine.settle import gcummax, gcummin, gcumsum, gshift
    n = data.draw(st.integers(0, 60))
    gid = np.array(data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n)), dtype=np.int64)
    big = np.iinfo(np.int64).max
    kind = data.draw(st.sampled_from(["small", "huge", "capped", "float"]))
    if kind == "float":
        v = np.array(data.draw(st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n)), dtype=float)
    else:
        lo, hi = {"small": (-10**6, 10**6), "huge": (-2**62, 2**62), "capped": (0, big)}[kind]
        v = np.array(data.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n)), dtype=np.int64)
    g = pd.Series(v).groupby(gid, sort=False)
    with np.errstate(over="ignore"):
        assert np.array_equal(gcumsum(v, gid), g.cumsum().to_numpy())
    assert np.array_equal(gcummax(v, gid), g.cummax().to_numpy())
    assert np.array_equal(gcummin(v, gid), g.cummin().to_numpy())
    fill = np.arange(n) - 3
    prev = pd.Series(np.arange(n)).groupby(gid, sort=False).shift(1).to_numpy(dtype=float, na_value=np.nan)
    for f in (-1, fill):
        want = np.where(np.isnan(prev), f, v[np.nan_to_num(prev).astype(np.int64)]).astype(v.dtype)
        assert np.array_equal(gshift(v, gid, f), want)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)), max_size=30), st.booleans())
def test_sort_skipped_only_when_rows_are_already_in_order(rows, presorted):
    """The account step skips its sort when the bills already are in (member, date, row) order; the
    order it uses is always np.lexsort's."""
    import numpy as np
    from ybcalc.engine.settle import _lexsort_unless_sorted
    keys = tuple(np.array([r[i] for r in rows], dtype=np.int64) for i in range(3))
    if presorted and rows:
        o = np.lexsort(keys)
        keys = tuple(k[o] for k in keys)
    assert np.array_equal(_lexsort_unless_sorted(keys), np.lexsort(keys) if rows else np.arange(0))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**40), max_size=40), st.sampled_from(["any", "small", "dense"]))
def test_dense_renumbering_equals_the_sorted_unique_inverse(values, kind):
    """The engine renumbers bill and member codes 0..k-1 in their order (rejected rows leave gaps):
    by a table of present values for small codes, unchanged when dense, by a sort otherwise."""
    import numpy as np
    from ybcalc.inputs import dense_codes
    v = np.array(values, dtype=np.int64)
    if kind == "small":
        v = v % 7
    elif kind == "dense" and len(v):
        v = np.unique(v % 7, return_inverse=True)[1].reshape(-1)
    want = np.unique(v, return_inverse=True)[1].reshape(-1) if len(v) else np.zeros(0, np.int64)
    assert np.array_equal(dense_codes(v), want)

"""A 乙类 share sourced for some item kinds only (杭州: drugs 3%, 浙医保发〔2021〕56号): the sourced rule
keeps its value, and an assumption (--assume) covers only the other kinds, flagging only the bills that
used it."""
import pandas as pd
import pytest

import ybcalc
from ybcalc.assume import apply_assumptions


def _bill(mdtrt_id, kinds):
    return [{"mdtrt_id": mdtrt_id, "psn_no": mdtrt_id, "setl_time": "2024-05-01", "insuplc": "杭州", "insutype": "职工",
             "psn_type": "在职", "age": 45, "med_type": "21", "hosp_lv": "3", "chrgitm_lv": "2", "med_chrgitm_type": k,
             "det_item_fee_sumamt": "10000"} for k in kinds]


def test_an_assumption_fills_only_the_item_kinds_without_a_sourced_share():
    book = ybcalc.load_tables()
    lines = pd.DataFrame(_bill("drugs", ["09"]) + _bill("mixed", ["09", "05"]))
    with pytest.raises(ybcalc.SettlementError, match="--assume"):       # 05 治疗费 has no sourced share
        ybcalc.settle(lines[lines["mdtrt_id"] == "mixed"], book)
    assumed = apply_assumptions(book, ["乙类先行自付=0.10"]).book
    res = ybcalc.batch.score_frame(lines, assumed)
    raw = res.settlement.raw.set_index("mdtrt_id")
    # drugs: 3% sourced (300 yuan); the 治疗费 line: 10% assumed (1,000 yuan); amounts in fen
    assert raw.loc["drugs", "preselfpay_amt"] == 30000 and raw.loc["mixed", "preselfpay_amt"] == 130000
    assert raw.loc["drugs", "assumptions"] in ("", None) or pd.isna(raw.loc["drugs", "assumptions"])
    assert raw.loc["mixed", "assumptions"] == "selfpay_prop=0.1"
    assert "assumed value" in raw.loc["mixed", "warnings"] and "assumed value" not in raw.loc["drugs", "warnings"]

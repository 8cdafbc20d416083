"""Field names of the national medical-insurance platform (国家医保信息平台) and their labels."""
from __future__ import annotations

# Settlement (结算) fields, in the order a settlement record lists them.
SETTLEMENT_FIELDS = {
    "medfee_sumamt": ("医疗费总额", "total medical cost"),
    "fulamt_ownpay_amt": ("全自费金额", "fully self-paid (excluded) amount"),
    "overlmt_selfpay": ("超限价自费", "self-paid above price limit"),
    "preselfpay_amt": ("先行自付金额", "class-B co-payment (先行自付)"),
    "inscp_scp_amt": ("符合政策范围金额", "policy-eligible amount"),
    "act_pay_dedc": ("实际支付起付线", "deductible applied"),
    "hifp_pay": ("统筹基金支出", "pooled fund payment"),
    "hifmi_pay": ("居民大病保险资金支出", "resident critical-illness insurance"),
    "hifob_pay": ("职工大额医疗费用补助", "employee large-expense supplement"),
    "maf_pay": ("医疗救助基金支出", "medical assistance"),
    "fund_pay_sumamt": ("基金支付总额", "total fund payment"),
    "psn_part_amt": ("个人负担总金额", "patient's total share"),
    "acct_pay": ("个人账户支出", "personal account payment"),
    "acct_mulaid_pay": ("个人账户共济支付金额", "paid from a family member's account (共济)"),
    "psn_cash_pay": ("个人现金支出", "patient's cash payment"),
}

# Input line (费用明细) fields.
LINE_FIELDS = {
    "mdtrt_id": ("就诊ID", "visit id"),
    "psn_no": ("人员编号", "member id"),
    "setl_time": ("结算时间", "settlement date"),
    "insuplc": ("参保地", "insured region"),
    "insutype": ("险种类型", "scheme"),
    "psn_type": ("人员类别", "member group"),
    "psn_idet_type": ("人员身份类别", "member status (低保/特困 …)"),
    "contrib_tier": ("缴费档次", "contribution tier (一档/二档)"),
    "age": ("年龄", "age"),
    "med_type": ("医疗类别", "visit type"),
    "hosp_lv": ("医院等级", "hospital level"),
    "hosp_type": ("医院类别", "hospital category"),
    "mdtrt_area": ("就医地", "place of care"),
    "fil_type": ("异地备案类型", "out-of-area filing"),
    "settle_mode": ("结算方式", "settlement mode (直接结算/手工报销)"),
    "claim_date": ("申报日期", "claim filing date"),
    "med_chrgitm_type": ("医疗收费项目类别", "fee category"),
    "item_code": ("医疗目录编码", "catalogue code"),
    "item_name": ("项目名称", "item name"),
    "chrgitm_lv": ("收费项目等级", "catalogue class (甲/乙/丙)"),
    "selfpay_prop": ("自付比例", "class-B co-payment share"),
    "pric_uplmt_amt": ("最高限价", "price limit"),
    "cnt": ("数量", "quantity"),
    "pric": ("单价", "unit price"),
    "det_item_fee_sumamt": ("明细项目费用总额", "line amount"),
}

OTHER_FIELDS = {
    "policy_version": ("政策版本", "policy version"),
    "warnings": ("提示", "warnings"),
    "notes": ("说明", "notes"),
    "benefit": ("待遇类别", "benefit"),
    "policy_date": ("政策日期", "policy date"),
    "eligibility": ("待遇资格", "eligible"),
    "acct_paid_by": ("账户支付", "account paid by"),
    "hifmi_cap": ("大病保险最高支付限额（含激励）", "critical-illness cap (rewards included)"),
    "claim_in_time": ("申报时限", "claim filed in time"),
    "catalogue_lines": ("目录分类明细数", "lines classed by the catalogue"),
}


def label(field: str, lang: str = "zh") -> str:
    for table in (SETTLEMENT_FIELDS, LINE_FIELDS, OTHER_FIELDS):
        if field in table:
            zh, en = table[field]
            return zh if lang == "zh" else en
    return field


def relabel_columns(columns, lang: str):
    """Header names for output: national field names (en) or Chinese labels (zh)."""
    if lang != "zh":
        return list(columns)
    return [label(c, "zh") for c in columns]

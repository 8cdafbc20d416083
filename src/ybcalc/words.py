"""Words for the policy tables' keys and values, so that what ``tables show`` and ``explain`` print
reads like a notice in the user's language (``basis: per_admission`` → 起付线按每次住院计).

Every entry is (Chinese, English); :func:`word` picks one through :func:`ybcalc.i18n.tr`. A key or
value without an entry is printed as written in the table.
"""
from __future__ import annotations

from .i18n import tr

# parameters (the last part of a parameter's path: benefits.inpatient.deductible → deductible)
PARAMS = {
    "deductible": ("起付线", "deductible"),
    "ratio": ("支付比例", "payment ratio"),
    "cap": ("最高支付限额", "yearly cap"),
    "selfpay_prop": ("乙类先行自付比例", "class-B co-payment share"),
    "out_of_area": ("异地就医", "out-of-area care"),
    "critical_illness": ("大病保险/大额补助", "critical illness"),
    "hifmi": ("居民大病保险", "resident critical-illness insurance"),
    "hifob": ("职工大额医疗费用补助", "employee large-expense supplement"),
    "medical_assistance": ("医疗救助", "medical assistance"),
    "personal_account": ("个人账户", "personal account"),
    "benefits": ("待遇", "benefits"),
    "psn_type_by_age": ("按年龄划分人员类别", "member group by age"),
    "transfer_carryover": ("年度内转入（变更参保地/险种）", "moving in within the year (change of region/scheme)"),
    "manual_claim_deadline": ("手工报销申报时限", "manual claim deadline"),
    "waiting_period": ("待遇等待期（与国家规定不同之处）", "waiting period (where it deviates from the national rule)"),
    "critical_illness_rewards": ("大病保险连续参保激励和零报销激励（与国家规定不同之处）",
                                 "critical-illness cap rewards (where they deviate from the national rule)"),
    "employee_gap": ("职工医保中断缴费后的待遇", "employee benefits after a contribution gap"),
}

# fields of an entry
FIELDS = {
    "basis": ("计算方式", "basis"),
    "amount": ("金额（元）", "amount (yuan)"),
    "nth_factor": ("第 N 次住院的系数", "factor for the n-th admission"),
    "nth_decrement": ("每多住院一次递减（元）", "decrease per further admission (yuan)"),
    "min": ("最低（元）", "minimum (yuan)"),
    "adjust": ("调整", "adjustments"),
    "accumulate": ("累计方式", "accumulation"),
    "segments": ("分段起点（元）", "segment starts (yuan)"),
    "rates": ("各段支付比例", "rates by segment"),
    "group": ("限额组", "cap group"),
    "rate": ("比例", "rate"),
    "ratio_add": ("支付比例增减", "ratio change"),
    "ratio_factor": ("支付比例系数", "ratio factor"),
    "deductible_factor": ("起付线系数", "deductible factor"),
    "hosp_lv_as": ("按医院等级", "as hospital level"),
    "deductible": ("起付线（元）", "deductible (yuan)"),
    "applies_to": ("适用待遇", "applies to"),
    "base": ("计入基数", "base"),
    "out_of_area_reduction_excluded": ("异地降低的比例不计入", "out-of-area reduction excluded"),
    "threshold": ("起付标准（元）", "threshold (yuan)"),
    "cap": ("年度限额（元）", "yearly cap (yuan)"),
    "pays": ("可支付", "pays"),
    "groups": ("人员类别", "groups"),
    "med_types": ("医疗类别", "visit types"),
    "carried_over": ("转出地年度内已发生费用累计计算（起付线、已支付金额、大病保险累计）",
                     "the year so far in the previous region counts (deductible, amounts paid, critical illness)"),
    "months": ("期限（月）", "months"),
    "days": ("期限（天）", "days"),
    "counts_from": ("起算日", "counted from"),
    "fixed_months": ("固定待遇等待期（月）", "fixed wait (months)"),
    "months_per_break_year": ("每断缴 1 年增加（月）", "added per year of break (months)"),
    "months_per_repaid_year": ("每补缴 1 年减少变动等待期（月）", "variable wait cut per year repaid (months)"),
    "long_break_years": ("长期断缴（年及以上）", "long break (years or more)"),
    "long_break_min_months": ("长期断缴修复后等待期不少于（月）", "long break: wait at least (months)"),
    "exempt": ("不设等待期的人员", "exempt"),
    "fund_pays_during_wait": ("等待期内基金支付", "the funds pay during the wait"),
    "extended_payment_months": ("年初延长缴费期（月，期内缴费不设等待期）", "extended payment period at the start of the year (months, no wait)"),
    "benefits_from_payment": ("延长缴费期内缴费的，从缴费之日起享受待遇", "paid in the extended period: benefits from the payment day"),
    "continuous_after_years": ("连续参保满（年）后起算", "counted after continuous years"),
    "continuous_step": ("每多连续参保 1 年提高（元）", "raise per further continuous year (yuan)"),
    "zero_claim_step": ("上年零报销提高（元）", "raise after a zero-claim year (yuan)"),
    "total_max": ("累计提高不超过（元）", "total raise at most (yuan)"),
    "total_max_share_of_cap": ("累计提高不超过原封顶线的比例", "total raise at most, share of the original cap"),
    "reset_on_break": ("断保后连续参保年数重新计算", "a break resets the count"),
    "max_gap_months": ("中断缴费超过（月）暂停待遇", "benefits stop after a gap of more than (months)"),
    "wait_months": ("再缴费后等待（月）", "wait after paying again (months)"),
}

# (field, value) → words; a value alone (any field) below
FIELD_VALUES = {
    ("deductible", "basis", "per_admission"): ("起付线按每次住院计", "a deductible for each admission"),
    ("deductible", "basis", "per_year"): ("起付线按年度累计", "one deductible per year"),
    ("ratio", "basis", "cumulative_cost"): ("分段按累计费用（含起付线）", "segments by cumulative cost (deductible included)"),
    ("ratio", "basis", "above_deductible"): ("分段按起付线以上费用", "segments by cost above the deductible"),
    ("ratio", "basis", "fund_paid"): ("分段按统筹基金已支付额", "segments by what the fund has paid"),
    ("cap", "basis", "fund"): ("按基金支付额封顶", "caps what the fund pays"),
    ("cap", "basis", "cost"): ("按费用封顶", "caps the eligible cost"),
    ("manual_claim_deadline", "counts_from", "care"): ("费用发生之日", "the day of care"),
    ("manual_claim_deadline", "counts_from", "discharge"): ("出院之日", "discharge"),
    ("manual_claim_deadline", "counts_from", "settlement"): ("结算之日", "settlement"),
}
VALUES = {
    "per_admission": ("每次住院", "per admission"),
    "per_year": ("年度累计", "per year"),
    "per_bill": ("每次单独计算", "per bill"),
    "cumulative_cost": ("累计费用", "cumulative cost"),
    "above_deductible": ("起付线以上费用", "cost above the deductible"),
    "fund_paid": ("统筹基金已支付额", "fund paid"),
    "fund": ("基金支付额", "fund payment"),
    "cost": ("费用", "cost"),
    "unlimited": ("不设", "unlimited"),
    "local": ("同本地", "as local"),
    "selfpay": ("乙类先行自付部分", "class-B co-payment"),
    "ownpay": ("全自费部分", "fully self-paid part"),
    "preselfpay": ("先行自付", "class-B co-payment"),
    "deductible": ("起付线", "deductible"),
    "coinsurance": ("按比例自付", "coinsurance"),
    "above_cap": ("超封顶线部分", "above the cap"),
    True: ("是", "yes"),
    False: ("否", "no"),
}

# conditions (`when:` keys) and their values
CONDITIONS = {
    "psn_type": ("人员类别", "member group"),
    "contrib_tier": ("缴费档次", "contribution tier"),
    "hosp_lv": ("医院等级", "hospital"),             # en: "hospital level 2" (the level's own label)
    "hosp_type": ("医院类别", "hospital category"),
    "age": ("年龄", "age"),
    "psn_idet_type": ("人员身份", "member status"),
    "med_type": ("医疗类别", "visit type"),
    "fil_type": ("异地备案类型", "out-of-area filing"),
    "admission": ("本年住院次数", "admission of the year"),
    "mdtrt_province": ("就医省份", "province of care"),
    "mdtrt_scope": ("就医地范围", "place of care"),
    "med_chrgitm_type": ("收费类别", "fee category"),
    "chrgitm_lv": ("收费项目等级", "catalogue class"),
}

# adjustment operations (ratio / amount targets)
ADJUST_OPS = {
    "add": ("比例增加", "ratio +"),
    "max": ("不高于", "at most"),
    "min": ("不低于", "at least"),
    "share_factor": ("个人负担部分乘以", "patient's share ×"),
    "subtract": ("减去（元）", "minus (yuan)"),
    "factor": ("乘以", "×"),
}


def word(table: dict, key, lang: str | None = None) -> str:
    """The words for ``key`` in ``table``, or ``key`` as written."""
    pair = table.get(key)
    return tr(*pair, lang=lang) if pair else str(key)


def value_words(value, lang: str | None = None) -> str:
    """A plain table value for people: words for the known codes, lists joined."""
    if isinstance(value, list):
        return "、".join(value_words(v, lang) for v in value) if tr("zh", "en", lang) == "zh" else \
            ", ".join(value_words(v, lang) for v in value)
    if isinstance(value, (bool, str)) and value in VALUES:
        return tr(*VALUES[value], lang=lang)
    return str(value)

SCOPES = {"local": ("本地", "local"), "in_province": ("省内异地", "in the province"),
          "out_of_province": ("省外", "out of the province"), "unknown": ("就医地未知", "unknown place")}


def _condition_value(key: str, v, lang: str | None) -> str:
    from . import codes
    try:
        if key == "hosp_lv":
            return tr(*codes.HOSP_LV_LABEL[int(v)], lang=lang)
        if key == "med_type":
            return tr(*codes.MED_TYPE_LABEL[str(v)], lang=lang)
        if key == "chrgitm_lv":
            return tr(*codes.CHRGITM_LV_LABEL[int(v)], lang=lang)
        if key == "fil_type":
            return tr(*codes.FIL_TYPE_LABEL[str(v)], lang=lang)
        if key == "mdtrt_scope":
            return tr(*SCOPES[str(v)], lang=lang)
        if key == "admission":
            return tr(f"第 {v} 次", f"no. {v}", lang=lang)
    except (KeyError, ValueError, TypeError):
        pass
    return str(v)


def condition_words(when: dict | None, lang: str | None = None) -> str:
    """A decision-table condition for people: ``{psn_type: 退休, hosp_lv: [0, 1]}`` → 人员类别 退休，医院等级
    基层/社区或一级. Empty: 其余情形 / otherwise."""
    if not when:
        return tr("其余情形", "otherwise", lang=lang)
    parts = []
    for k, v in when.items():
        if k == "age":
            lo, hi = (list(v) + [None, None])[:2] if isinstance(v, (list, tuple)) else (v, None)
            span = " ".join(p for p in ((f"≥{lo}" if lo is not None else ""), (f"<{hi}" if hi is not None else "")) if p)
            parts.append(f"{word(CONDITIONS, k, lang)} {span}")
        else:
            vals = v if isinstance(v, list) else [v]
            parts.append(f"{word(CONDITIONS, k, lang)} "
                         + tr("或", " or ", lang=lang).join(_condition_value(k, x, lang) for x in vals))
    return tr("，", ", ", lang=lang).join(parts)


def adjustment_words(raw: dict, lang: str | None = None) -> str:
    """An adjustment for people: ``{when: {psn_type: 退休}, share_factor: 0.3}`` → 人员类别 退休：个人负担部分乘以 0.3."""
    ops = tr("，", ", ", lang=lang).join(f"{word(ADJUST_OPS, k, lang)} {v}" for k, v in raw.items()
                                        if k not in ("when", "source", "note"))
    return f"{condition_words(raw.get('when'), lang)}{tr('：', ': ', lang=lang)}{ops}"


def param_words(path: str, lang: str | None = None, benefit_labels: dict | None = None) -> str:
    """A parameter's path for people: ``benefits.inpatient.deductible`` → 住院 · 起付线 (the benefit's
    own label from the table when given), ``critical_illness.hifob`` → 职工大额医疗费用补助."""
    parts = path.split(".")
    if parts[0] == "benefits" and len(parts) == 3:
        b = (benefit_labels or {}).get(parts[1]) or parts[1]
        return f"{b} · {word(PARAMS, parts[2], lang)}"
    if parts[0] == "critical_illness" and len(parts) == 2:
        return word(PARAMS, parts[1], lang)
    return " · ".join(word(PARAMS, p, lang) for p in parts)

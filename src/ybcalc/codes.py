"""Normalising input columns and codes to the national platform's vocabulary.

Bills arrive with national field names (``det_item_fee_sumamt``) or the Chinese headers hospitals
and Excel exports use (``金额``); codes arrive as national codes (``21``) or words (``普通住院``).
Everything here maps both onto one canonical form and says what it could not map.
"""
from __future__ import annotations

import re

# Chinese (and common English) headers -> national field names.
HEADER_ALIASES = {
    "mdtrt_id": ["就诊ID", "就诊id", "就诊编号", "就诊流水号", "住院号", "门诊号", "单据号", "visit_id", "bill_id"],
    "psn_no": ["人员编号", "个人编号", "参保人编号", "member_id"],
    "setl_time": ["结算时间", "结算日期", "date"],
    # the day a line's fee arose (national 费用明细 upload); a bill settles on its last one
    "fee_ocur_time": ["费用发生时间", "费用发生日期", "费用日期", "收费日期", "收费时间"],
    "insuplc": ["参保地", "参保地区", "参保地区划", "insuplc_admdvs", "region"],
    "insutype": ["险种", "险种类型", "参保类型", "scheme"],
    "psn_type": ["人员类别", "人员类型", "在职退休", "在职/退休", "人群"],
    "psn_idet_type": ["人员身份类别", "人员身份", "身份类别", "特殊身份"],
    "contrib_tier": ["缴费档次", "参保档次", "档次", "缴费档位"],
    "age": ["年龄"],
    "med_type": ["医疗类别", "就诊类型", "就医类型"],
    "hosp_lv": ["医院等级", "医疗机构等级", "机构等级"],
    "hosp_type": ["医院类别", "医疗机构类别", "机构类别"],
    "mdtrt_area": ["就医地", "就医地区", "就医地区划", "mdtrt_admdvs"],
    "fil_type": ["异地备案类型", "备案类型", "异地就医备案"],
    # 直接结算 (settled at the hospital) or 手工报销 (paid in full, claimed afterwards), and the claim's filing date
    "settle_mode": ["结算方式", "报销方式"],
    "claim_date": ["申报日期", "报销申请日期", "申请报销日期", "报销申报日期"],
    "med_chrgitm_type": ["收费类别", "医疗收费项目类别", "费用类别"],
    "item_code": ["项目编码", "医疗目录编码", "医保目录编码", "hilist_code", "med_list_codg"],
    "item_name": ["项目名称", "医疗目录名称", "医保目录名称", "明细项目名称", "hilist_name", "med_list_name"],
    "chrgitm_lv": ["收费项目等级", "项目等级", "甲乙类", "医保等级", "目录类别"],
    "selfpay_prop": ["自付比例", "先行自付比例", "个人自付比例"],
    "pric_uplmt_amt": ["最高限价", "限价", "定价上限金额"],
    "cnt": ["数量"],
    "pric": ["单价"],
    "det_item_fee_sumamt": ["金额", "费用金额", "明细项目费用总额", "费用", "总金额", "费用总额", "明细费用总额",
                            "amount"],
}

_ALIAS_TO_FIELD = {}
for _field, _aliases in HEADER_ALIASES.items():
    _ALIAS_TO_FIELD[_field.lower()] = _field
    for _a in _aliases:
        _ALIAS_TO_FIELD[_a.strip().lower()] = _field


# (%) is not among them: 自付比例(%) holds 10 for 10%, which read as a share would be refused or,
# worse, 0.5 (%) read as 50%
_UNIT = re.compile(r"\s*\(\s*(?:元|人民币|rmb|cny|yuan|岁)\s*\)$")


def canonical_header(name: str) -> str | None:
    """The national field a header names: the field itself or an alias, in any case, full-width
    characters read as half-width, and a unit of money or age in brackets at the end ignored
    (金额（元）, 年龄(岁))."""
    import unicodedata
    key = unicodedata.normalize("NFKC", str(name)).strip().lstrip("\ufeff").lower()
    field = _ALIAS_TO_FIELD.get(key)
    if field is None:
        field = _ALIAS_TO_FIELD.get(_UNIT.sub("", key))
    return field


INSUTYPE = {
    "310": "employee", "职工": "employee", "职工基本医疗保险": "employee", "职工医保": "employee",
    "城镇职工": "employee", "employee": "employee",
    "390": "resident", "居民": "resident", "城乡居民基本医疗保险": "resident", "城乡居民": "resident",
    "居民医保": "resident", "城乡居民医保": "resident", "resident": "resident",
}
SCHEME_LABEL = {"employee": ("职工", "employee"), "resident": ("居民", "resident")}

MED_TYPE = {
    "11": "11", "普通门诊": "11", "门诊": "11", "outpatient": "11",
    "12": "12", "门诊挂号": "12",
    "13": "13", "急诊": "13", "emergency": "13",
    "14": "14", "门诊慢特病": "14", "门诊慢特": "14", "门特": "14", "门诊特殊病": "14", "慢特病": "14",
    "门诊慢性病": "14", "门慢": "14", "chronic": "14",
    "21": "21", "普通住院": "21", "住院": "21", "inpatient": "21",
    "41": "41", "定点药店购药": "41", "药店购药": "41", "药店": "41", "pharmacy": "41",
}
MED_TYPE_LABEL = {
    "11": ("普通门诊", "general outpatient"), "12": ("门诊挂号", "outpatient registration"),
    "13": ("急诊", "emergency"), "14": ("门诊慢特病", "chronic/special outpatient"),
    "21": ("普通住院", "inpatient"), "41": ("定点药店购药", "pharmacy purchase"),
}

# 待遇类别: the tables' benefit names (each table gives its own label too, e.g. 普通门诊（门诊统筹）)
BENEFIT_LABEL = {"inpatient": ("住院", "inpatient"), "outpatient": ("普通门诊", "outpatient"),
                 "chronic": ("门诊慢特病", "chronic/special outpatient")}

CHRGITM_LV = {"1": 1, "01": 1, "甲": 1, "甲类": 1, "2": 2, "02": 2, "乙": 2, "乙类": 2,
              "3": 3, "03": 3, "丙": 3, "丙类": 3, "自费": 3, "全自费": 3}
CHRGITM_LV_LABEL = {1: ("甲类", "class A"), 2: ("乙类", "class B"), 3: ("自费/丙类", "self-pay")}

HOSP_LV_WORDS = {
    "社区": 0, "基层": 0, "社区卫生服务中心": 0, "卫生院": 0, "乡镇卫生院": 0, "卫生室": 0, "村卫生室": 0,
    "一级及以下": 1, "未定级": 1, "无等级": 1,
    "community": 0, "primary": 0,
}
HOSP_LV_LABEL = {0: ("基层/社区", "community"), 1: ("一级", "level 1"), 2: ("二级", "level 2"), 3: ("三级", "level 3")}

FIL_TYPE = {
    "": "none", "none": "none", "无": "none", "本地": "none", "local": "none",
    "未备案": "unfiled", "unfiled": "unfiled",
    "long_term": "long_term", "长期居住": "long_term", "异地长期居住": "long_term", "异地安置": "long_term",
    "长期": "long_term", "常驻异地": "long_term",
    "temporary": "temporary", "临时外出": "temporary", "临时外出就医": "temporary", "临时": "temporary",
    "referral": "referral", "转诊": "referral", "转诊转院": "referral", "异地转诊": "referral",
    "emergency": "emergency", "急诊抢救": "emergency", "异地急诊": "emergency",
}
FIL_TYPE_LABEL = {
    "none": ("本地/未申报", "local"), "unfiled": ("未备案", "not filed"), "long_term": ("长期居住", "long-term residence"),
    "temporary": ("临时外出", "temporary (filed)"), "referral": ("转诊", "referral"), "emergency": ("急诊抢救", "emergency"),
}

# 结算方式. The national platform's 结算类别 (setl_type) codes were not found in a readable source: words only.
SETTLE_MODE = {
    "direct": "direct", "直接结算": "direct", "联网结算": "direct", "刷卡结算": "direct", "即时结算": "direct",
    "manual": "manual", "手工报销": "manual", "零星报销": "manual", "手工结算": "manual", "手工": "manual",
    "manual claim": "manual",
}
SETTLE_MODE_LABEL = {"direct": ("直接结算", "direct settlement"), "manual": ("手工报销", "manual claim")}

PSN_TYPE = {"在职": "在职", "在职职工": "在职", "employed": "在职", "11": "在职",
            "退休": "退休", "退休人员": "退休", "retired": "退休", "12": "退休"}


def norm_text(value) -> str:
    if value is None:
        return ""
    s = str(value).strip()
    return "" if s.lower() in ("nan", "none", "<na>") else s


def parse_med_type(value) -> str | None:
    s = norm_text(value)
    if s.endswith(".0"):
        s = s[:-2]
    return MED_TYPE.get(s) or MED_TYPE.get(s.lower())


def parse_insutype(value) -> str | None:
    s = norm_text(value)
    if s.endswith(".0"):
        s = s[:-2]
    return INSUTYPE.get(s) or INSUTYPE.get(s.lower())


def parse_chrgitm_lv(value) -> int | None:
    s = norm_text(value)
    if s.endswith(".0"):
        s = s[:-2]
    return CHRGITM_LV.get(s)


_LV_RE = re.compile(r"^([一二三123])\s*级?")


def parse_hosp_lv(value) -> int | None:
    s = norm_text(value)
    if s.endswith(".0"):
        s = s[:-2]
    if s in ("0", "1", "2", "3"):
        return int(s)
    if s in HOSP_LV_WORDS or s.lower() in HOSP_LV_WORDS:
        return HOSP_LV_WORDS.get(s, HOSP_LV_WORDS.get(s.lower()))
    if s.startswith("三") or s.startswith("3"):
        return 3
    if s.startswith("二") or s.startswith("2"):
        return 2
    if s.startswith("一") or s.startswith("1"):
        return 1
    if "社区" in s or "卫生" in s:
        return 0
    return None


def parse_fil_type(value) -> str | None:
    s = norm_text(value)
    return FIL_TYPE.get(s, FIL_TYPE.get(s.lower()))


def parse_settle_mode(value) -> str | None:
    """结算方式: 直接结算/手工报销 (or 零星报销 …) or direct/manual; empty is a direct settlement."""
    s = norm_text(value)
    if s == "":
        return "direct"
    return SETTLE_MODE.get(s, SETTLE_MODE.get(s.lower()))


TIER_WORDS = {"1": "一档", "一": "一档", "一档": "一档", "2": "二档", "二": "二档", "二档": "二档",
              "3": "三档", "三": "三档", "三档": "三档"}


def parse_contrib_tier(value) -> str:
    """缴费档次: 1/一/一档 → 一档 (two or three tiers in 深圳, 重庆 …); other words pass through as written."""
    s = norm_text(value)
    if s.endswith(".0"):
        s = s[:-2]
    return TIER_WORDS.get(s, s)


def parse_psn_type(value) -> str:
    """在职/退休 are normalised; other groups (居民: 成年, 学生儿童, 老年 …) pass through as written."""
    s = norm_text(value)
    return PSN_TYPE.get(s, PSN_TYPE.get(s.lower(), s))

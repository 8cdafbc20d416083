"""``ybcalc tables new``: a short, commented starter table for one region × scheme, to fill from a notice.

The starter holds only what a 医保局 notice states (起付线, 支付比例, 封顶线, 乙类先行自付, 大病/大额,
普通门诊, 个人账户). Every figure is the placeholder 待填: an entry still holding one is `missing`, so
an unfilled starter validates and never settles a bill with a made-up number. Everything else (异地
rules, the exclusion catalogue, codes, regions) comes from the shipped tables the file is laid over.
"""
from __future__ import annotations

from pathlib import Path

from ..i18n import tr
from .loader import PolicyBook
from .schema import PLACEHOLDER

DEFAULT_FOLDER = "ybcalc-tables"

_HEAD = """\
# {name} {scheme_zh}基本医疗保险：我的参数表（由 `ybcalc tables new` 生成）
#
# 怎么填：把每个“{ph}”换成通知里的数字或文字。金额单位是元；比例写小数（85% 写 0.85）。
# 通知不分医院等级（或人员类别）时，同一参数只留一条不带 when 的 {{value: …}}。
# 通知没写的项整段删掉：删掉的项沿用 ybcalc 自带的表（那里没有来源的项仍是“缺失”）。
# 还留着“{ph}”的项按“缺失”处理，不会拿来结算：
#   起付线、支付比例没填：相关账单不结算，并说明缺哪一项；
#   封顶线、大病/大额、个人账户没填：照常结算，账单提示里注明“未计入”。
# 异地就医规则、不予支付目录、代码和地区取自 ybcalc 自带的表，这里不用写。
# 填完检查：ybcalc tables validate --tables {folder}
"""

_REGION_KNOWN = "region: {short}                     # 地区（名称、id 或 6 位区划代码）\n"
_REGION_NEW = """\
region:                          # ybcalc 自带的表里没有这个地区：在这里登记
  name: {name}
  code: {ph}                     # 6 位行政区划代码，如 510700
  # province: sichuan            # 所属省的 id（可不填）
"""

_SOURCES = """\
scheme: {scheme_zh}
title: {name}{scheme_zh}基本医疗保险（我的参数表）
psn_types: {psn_types}

sources:
  notice:                        # 这些数字出自哪份通知（纸质、PDF 均可）
    title: {ph}                  # 通知标题
    doc_no: {ph}                 # 文号，如 某医保发〔2024〕1号；没有文号就删掉这一行
    issuer: {ph}                 # 发文单位，如 某市医疗保障局
    date: {ph}                   # 发文日期 YYYY-MM-DD
    grade: user                  # 用户提供：保持不变
    # url: https://…             # 有网址可填，可不填
"""

# 住院：起付线、支付比例（按人员类别和医院等级的规则，职工与居民不同）、封顶线
_INPATIENT_HEAD = """
benefits:
  inpatient:                     # 住院
    med_types: [21]
    deductible:                  # 起付线（元）
      - from: {ph}               # 通知施行日期 YYYY-MM-DD（下同）
        source: notice
        basis: per_admission     # 按次；按年度累计写 per_year
        amount:                  # hosp_lv：3 三级，2 二级，1 一级，0 基层/社区
          - {{when: {{hosp_lv: 3}}, value: {ph}}}
          - {{when: {{hosp_lv: 2}}, value: {ph}}}
          - {{when: {{hosp_lv: [0, 1]}}, value: {ph}}}
        # nth_factor: [1, 0.5]   # 年内第 2 次及以后住院起付线的倍数（通知有此规定时去掉 #）
    ratio:                       # 统筹基金支付比例
      - from: {ph}
        source: notice
        # segments: [0, 50000]   # 按费用分段时：各段下限（起付线以上的费用，元），value 里每段一个比例
        rates:
"""

_INPATIENT_RATES = {
    "employee": """          - {{when: {{psn_type: 在职, hosp_lv: 3}}, value: [{ph}]}}
          - {{when: {{psn_type: 在职, hosp_lv: 2}}, value: [{ph}]}}
          - {{when: {{psn_type: 在职, hosp_lv: [0, 1]}}, value: [{ph}]}}
          - {{when: {{psn_type: 退休, hosp_lv: 3}}, value: [{ph}]}}
          - {{when: {{psn_type: 退休, hosp_lv: 2}}, value: [{ph}]}}
          - {{when: {{psn_type: 退休, hosp_lv: [0, 1]}}, value: [{ph}]}}
""",
    "resident": """          - {{when: {{hosp_lv: 3}}, value: [{ph}]}}
          - {{when: {{hosp_lv: 2}}, value: [{ph}]}}
          - {{when: {{hosp_lv: [0, 1]}}, value: [{ph}]}}
""",
}

_INPATIENT_CAP = """    cap:                         # 统筹基金年度最高支付限额（封顶线，元）
      - from: {ph}
        source: notice
        amount: {ph}
"""

_OUTPATIENT = """\
  outpatient:                    # 普通门诊（门诊统筹 / 门诊共济）
    med_types: [11, 13, 41]      # 普通门诊、急诊、定点药店购药
    deductible:                  # 年度起付标准（元）
      - from: {ph}
        source: notice
        basis: per_year
        amount: {ph}
    ratio:                       # 支付比例
      - from: {ph}
        source: notice
        rates:
{outpatient_rates}
    cap:                         # 年度支付限额（元）
      - from: {ph}
        source: notice
        amount: {ph}
"""

_SELFPAY = """
selfpay_prop:                    # 乙类药品、诊疗项目个人先行自付比例
  - from: {ph}
    source: notice
    rate: {ph}                   # 如 0.1（即 10%）
"""

_HIFOB = """
critical_illness:
  hifob:                         # 职工大额医疗补助（大额医疗保险）
    - from: {ph}
      source: notice
      base: [above_cap]          # 计入：超过统筹封顶线的政策范围内费用（按通知改，可加 coinsurance 等）
      threshold: {ph}            # 年度起付（元）；通知没有起付写 0
      rates: [{ph}]              # 支付比例
      cap: {ph}                  # 年度最高支付（元）；不设上限写 unlimited

personal_account:                # 个人账户
  - from: {ph}
    source: notice
    pays: [selfpay]              # 可支付：selfpay 政策范围内自付；也付自费写 [selfpay, ownpay]
    med_types: {ph}              # 可用于哪些就诊，如 [11, 13, 14, 21, 41]
"""

_HIFMI = """
critical_illness:
  hifmi:                         # 城乡居民大病保险
    - from: {ph}
      source: notice
      base: [deductible, preselfpay, coinsurance, above_cap]   # 计入的个人负担（按通知改）
      threshold: {ph}            # 年度起付（元）
      # segments: [0, 100000]    # 分段时：起付以上各段下限（元），rates 里每段一个比例
      rates: [{ph}]              # 支付比例
      cap: {ph}                  # 年度最高支付（元）；不设上限写 unlimited
"""


def starter_text(book: PolicyBook, region: str, scheme: str, folder: str = DEFAULT_FOLDER) -> tuple[str, str]:
    """(file name, text) of the starter table for ``region`` (a name ybcalc knows or a new one) and
    ``scheme`` (employee/resident)."""
    from ..divisions import named
    rid = book.region_id(region)
    r = book.regions.get(rid) if rid else None
    division = None if r else named(region).division     # a prefecture of China the tables lack
    name = r.short if r else division.short if division else str(region).strip()
    scheme_zh = "职工" if scheme == "employee" else "居民"
    fill = {"ph": PLACEHOLDER, "name": name, "short": name, "scheme_zh": scheme_zh, "folder": folder}
    text = _HEAD.format(**fill)
    text += _REGION_KNOWN.format(**fill) if r or division else _REGION_NEW.format(**fill)
    shipped = book.tables.get((rid, scheme)) if rid else None
    if scheme == "employee":
        fill["psn_types"] = "[在职, 退休]"
        fill["outpatient_rates"] = (f"          - {{when: {{psn_type: 在职}}, value: [{PLACEHOLDER}]}}\n"
                                    f"          - {{when: {{psn_type: 退休}}, value: [{PLACEHOLDER}]}}")
    else:
        groups = list(shipped.psn_types) if shipped and shipped.psn_types else []
        fill["psn_types"] = "[" + ", ".join(groups) + "]"
        fill["outpatient_rates"] = f"          - {{value: [{PLACEHOLDER}]}}"
    text += _SOURCES.format(**fill)
    text += (_INPATIENT_HEAD + _INPATIENT_RATES[scheme] + _INPATIENT_CAP).format(**fill)
    text += _OUTPATIENT.format(**fill)
    text += _SELFPAY.format(**fill)
    text += (_HIFOB if scheme == "employee" else _HIFMI).format(**fill)
    return f"{name}-{scheme_zh}.yaml", text


def write_starter(book: PolicyBook, region: str, scheme: str, folder: str | Path | None = None,
                  force: bool = False) -> Path:
    """Write the starter table into ``folder`` (default ``./ybcalc-tables``); refuses to overwrite a
    table the user may have filled, unless ``force``."""
    folder = Path(folder or DEFAULT_FOLDER)
    file_name, text = starter_text(book, region, scheme, str(folder))
    path = folder / file_name
    if path.exists() and not force:
        raise FileExistsError(tr(f"{path} 已存在：请直接编辑，或加 --force 重新生成",
                                 f"{path} exists already: edit it, or write a new one with --force / "
                                 f"{path} 已存在：请直接编辑，或加 --force 重新生成"))
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path

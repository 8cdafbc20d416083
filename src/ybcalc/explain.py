"""Step-by-step explanation of one bill, read from the engine's intermediate columns.

Each step says what amount it acted on, what it produced, the rule with the table value, and the
source document — so a member disputing a settlement can see which rule took each yuan.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import codes
from .i18n import tr
from .words import SCOPES, value_words
from .money import INF_FEN, PPM, fen_to_yuan, fmt_yuan

COLUMNS = {"zh": ["步骤", "项目", "计算基数", "金额", "规则与参数", "来源"],
           "en": ["step", "item", "base", "amount", "rule and value", "source"]}


def pct(ppm) -> str:
    v = int(ppm) / PPM * 100
    return f"{v:.4f}".rstrip("0").rstrip(".") + "%"


def yuan(fen, lang: str = "zh") -> str:
    return ("不设" if lang == "zh" else "none") if int(fen) >= INF_FEN // 2 else fmt_yuan(fen)


WARNING_EN = {"二手来源": "secondary source", "无已核实参数，未计入": "no sourced value, not applied",
              "起无已核实数值，未计入": ": no sourced value from this date, not applied",
              "之前无已核实数值，未计入": ": no sourced value before this date, not applied",
              "可能不予支付": "possibly not reimbursable", "医疗救助: 本地区无已核实参数，未计算":
              "medical assistance: no sourced parameters for this region, not computed"}


def translate_warning(w: str, lang: str) -> str:
    if lang == "zh":
        return w
    for zh, en in WARNING_EN.items():
        w = w.replace(zh, en)
    return w


@dataclass
class Explanation:
    mdtrt_id: str
    header: dict
    frame: pd.DataFrame          # one row per step
    warnings: list
    lang: str
    notes: list = field(default_factory=list)     # information (a value's grade …), not warnings

    def __str__(self) -> str:
        lines = [f"{k}: {v}" for k, v in self.header.items()]
        lines.append("")
        for r in self.frame.itertuples(index=False):
            step, item, base, amount, rule, source = r
            lines.append(f"{step:>2}. {item}: {amount}" + (f"  (基数 {base})" if base and self.lang == "zh" else
                                                            f"  (base {base})" if base else ""))
            if rule:
                lines.append(f"     {rule}")
            if source:
                lines.append(f"     {'来源' if self.lang == 'zh' else 'source'}: {source}")
        if self.warnings:
            lines.append("")
            lines.append("提示:" if self.lang == "zh" else "Warnings:")
            lines += [f"  ! {w}" for w in self.warnings]
        if self.notes:
            lines.append("")
            lines.append("说明:" if self.lang == "zh" else "Notes:")
            lines += [f"  · {w}" for w in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<b>{k}</b>: {v}<br>" for k, v in self.header.items())
        warn = "".join(f"<div style='color:#a40'>⚠ {w}</div>" for w in self.warnings)
        notes = "".join(f"<div style='color:#666'>· {w}</div>" for w in self.notes)
        return head + self.frame.to_html(index=False) + warn + notes

    def to_frame(self) -> pd.DataFrame:
        return self.frame


def _entry_source(book, uid, rule_idx=-1, field=None, lang="zh"):
    if uid < 0:
        return None, ""
    e = book.entries[int(uid)]
    src = e.source
    if field and field in e.fields and hasattr(e.fields[field], "rule_source"):
        src = e.fields[field].rule_source(int(rule_idx), e.source)
    return e, (src.cite(lang) + f" — {e.key}") if src else e.key


def _rule_text(e, field, rule_idx, lang="zh") -> str:
    """The condition of the decision-table rule that gave the value, in words: [医院等级 二级]."""
    from .words import condition_words
    if e is None or field not in e.fields or not hasattr(e.fields[field], "rules"):
        return ""
    rules = e.fields[field].rules
    if 0 <= rule_idx < len(rules) and rules[rule_idx].when:
        return f"[{condition_words(rules[rule_idx].when, lang)}]"
    return ""


def _adjust_text(e, mask, lang="zh") -> str:
    """The adjustments applied, in words: ；调整：人员类别 退休：个人负担部分乘以 0.3."""
    from .words import adjustment_words
    if e is None or not mask:
        return ""
    done = [adjustment_words(a.raw, lang) for j, a in enumerate(e.adjust) if mask >> j & 1]
    return (tr("；调整：", "; adjusted: ", lang) + tr("；", "; ", lang).join(done)) if done else ""


def explain_bill(settlement, mdtrt_id: str, lang: str = "zh") -> Explanation:
    zh = lang == "zh"
    b = settlement.raw
    rows = b.index[b["mdtrt_id"].astype(str) == mdtrt_id]
    if len(rows) == 0:
        if mdtrt_id in getattr(settlement, "errors", pd.Series(dtype=object)).index:
            raise KeyError(tr(f"账单 {mdtrt_id} 未能结算：{settlement.errors[mdtrt_id]}",
                              f"bill {mdtrt_id} was not settled: {settlement.errors[mdtrt_id]}", lang))
        import difflib
        ids = pd.unique(b["mdtrt_id"].astype(str))
        near = difflib.get_close_matches(str(mdtrt_id), list(ids), n=3, cutoff=0.6) if len(ids) < 200_000 else []
        hint = (tr(f"；是不是 {'、'.join(near)}？", f"; did you mean {', '.join(near)}?", lang) if near else
                tr(f"；输入中有 {len(ids)} 张已结算的账单", f"; the input has {len(ids)} settled bill(s)", lang)
                + (tr(f"，例如 {'、'.join(ids[:3])}", f", e.g. {', '.join(ids[:3])}", lang) if len(ids) else ""))
        raise KeyError(tr(f"没有已结算的账单 {mdtrt_id!r}{hint}", f"no settled bill {mdtrt_id!r}{hint}", lang))
    r = b.loc[rows[0]]
    L = settlement.lines_raw[settlement.lines_raw["mdtrt_id"].astype(str) == mdtrt_id]
    book = settlement.book
    steps: list[tuple] = []

    def add(item, amount, base="", rule="", source=""):
        steps.append((len(steps) + 1, item, base, amount, rule, source))

    t = book.tables[(r["region"], r["scheme"])]
    mt = codes.MED_TYPE_LABEL.get(r["med_type"], (r["med_type"], r["med_type"]))[0 if zh else 1]
    lv = codes.HOSP_LV_LABEL.get(int(r["hosp_lv"]), ("未知", "unknown"))[0 if zh else 1]
    header = {
        ("就诊ID" if zh else "visit"): mdtrt_id,
        ("人员" if zh else "member"): f"{r['psn_no']} {r['psn_type'] or ''} {r['psn_idet_type'] or ''}".strip()
        + ("" if np.isnan(r["age"]) else (f" {int(r['age'])}岁" if zh else f", age {int(r['age'])}")),
        ("参保" if zh else "insured"): t.title,
        ("就诊" if zh else "visit type"): f"{mt} · {lv} · {pd.Timestamp(r['setl_date']).date()}"
        + ("" if r["ooa"] == "local" else tr(f" · 异地（{codes.FIL_TYPE_LABEL.get(r['ooa'], (r['ooa'],) * 2)[0]}）",
                                              f" · out of area ({codes.FIL_TYPE_LABEL.get(r['ooa'], (r['ooa'],) * 2)[1]})", lang)),
        ("政策日期" if zh else "policy date"): str(pd.Timestamp(r["policy_date"]).date()),
        ("政策版本" if zh else "policy version"): settlement.policy_versions()[rows[0]],
    }

    if int(r.get("psn_type_entry", -1)) >= 0:          # the bill gave no 人员类别: derived from the age
        from .engine.settle import age_band
        ge = book.entries[int(r["psn_type_entry"])]
        band = age_band(ge.raw["groups"][int(r["psn_type_rule"])]["when"]["age"], lang)
        add("人员类别（按年龄推定）" if zh else "member group (from the age)", r["psn_type"],
            rule=(f"账单未填人员类别：年龄 {r['age']:g} → {r['psn_type']}（{band}）" if zh else
                  f"no member group on the bill: age {r['age']:g} → {r['psn_type']} ({band})"),
            source=(ge.source.cite(lang) + f" — {ge.key}") if ge.source else ge.key)
    add("医疗费总额" if zh else "total cost", fmt_yuan(r["medfee_sumamt"]),
        rule=f"{len(L)} 条明细合计" if zh else f"sum of {len(L)} lines")
    if "member_listed" in r.index:                     # a members file was given: was the member eligible?
        from .members import explain_text
        step = explain_text(book, r, lang)
        if step is not None:
            item, status, rule_text, src = step
            add(item, status, rule=rule_text, source=src)
        from .members import move_explain_text
        step = move_explain_text(book, r, lang)
        if step is not None:                           # a change of 参保地/险种 within the year
            item, status, rule_text, src = step
            add(item, status, rule=rule_text, source=src)
    from .claims import explain_step                  # a manual claim: filed within the deadline?
    step = explain_step(book, r, lang)
    if step is not None:
        item, status, rule_text, src = step
        add(item, status, rule=rule_text, source=src)
    # 全自费, by reason
    ex = L[L["fulamt_ownpay_amt"] != 0]
    for reason, grp in ex.groupby("exclusion", sort=False):
        amt = grp["fulamt_ownpay_amt"].sum()
        names = "、".join(grp["item_name"].replace("", np.nan).dropna().unique()[:4])
        if reason == "chrgitm_lv":
            add("全自费（丙类/目录外）" if zh else "self-pay (class C / off catalogue)", fmt_yuan(amt),
                rule=(f"收费项目等级为自费，个人全额负担 {names}" if zh else f"catalogue class self-pay {names}"))
        else:
            rid = reason.split(":", 1)[1]
            rule = next(x for x in book.exclusions if x.id == rid)
            add(("全自费（不予支付）" if zh else "excluded (never reimbursed)"), fmt_yuan(amt),
                rule=f"{rule.label_zh if zh else rule.label_en}: {names}；“{rule.quote}”",
                source=rule.source.cite(lang) if rule.source else "")
    if r["overlmt_selfpay"]:
        add("超限价自费" if zh else "above price limit", fmt_yuan(r["overlmt_selfpay"]),
            rule="超出最高限价（限价×数量）部分由个人负担" if zh else "part above the price limit × quantity")
    pre = L[L["preselfpay_amt"] != 0]
    for (rate, entry, rule_i, own), grp in pre.groupby(["selfpay_rate", "selfpay_entry", "selfpay_rule",
                                                        "selfpay_from_line"], sort=False):
        base = grp["amount"].sum() - grp["overlmt_selfpay"].sum()
        if own:
            src, txt = "", (f"明细自带自付比例 {pct(rate)}" if zh else f"line's own co-payment share {pct(rate)}")
        else:
            e, src = _entry_source(book, entry, rule_i, "rate", lang)
            txt = (f"乙类先行自付 {pct(rate)} {_rule_text(e, 'rate', rule_i, lang)}" if zh
                   else f"class B co-payment {pct(rate)} {_rule_text(e, 'rate', rule_i, lang)}")
        add("乙类先行自付" if zh else "class B co-payment", fmt_yuan(grp["preselfpay_amt"].sum()),
            base=fmt_yuan(base), rule=txt, source=src)
    add("符合政策范围金额" if zh else "policy-eligible amount", fmt_yuan(r["inscp_scp_amt"]),
        rule="总额 − 全自费 − 超限价 − 先行自付" if zh else "total − self-pay − above limit − co-payment")

    # 起付线
    e, src = _entry_source(book, r["deductible_entry"], r["deductible_rule_amount"], "amount", lang)
    if r["deductible_basis"] == "per_year":
        how = (f"年度累计起付线 {yuan(r['deductible_due'])}，本年此前已计 {fmt_yuan(r['deductible_used_before'])}"
               if zh else f"yearly deductible {yuan(r['deductible_due'], lang)}, already used "
               f"{fmt_yuan(r['deductible_used_before'])}")
    else:
        how = (f"按次起付线：本年第 {int(r['admission_no'])} 次，标准 {yuan(r['deductible_due'])}" if zh
               else f"per admission: admission {int(r['admission_no'])} of the year, deductible {yuan(r['deductible_due'])}")
    how += " " + _rule_text(e, "amount", r["deductible_rule_amount"], lang) + _adjust_text(e, int(r["deductible_adjust"]), lang)
    add("起付线（个人负担）" if zh else "deductible (patient)", fmt_yuan(r["act_pay_dedc"]),
        base=fmt_yuan(r["inscp_scp_amt"]), rule=how.strip(), source=src)

    # 分段比例
    e, src = _entry_source(book, r["ratio_entry"], r["ratio_rule_rates"], "rates", lang)
    nseg = len([c for c in b.columns if c.startswith("seg") and c.endswith("_amount") and c[3:-7].isdigit()])
    basis_txt = {"cumulative_cost": "分段按累计费用（含起付线）", "above_deductible": "分段按起付线以上费用",
                 "fund_paid": "分段按统筹基金已支付额（已折算为费用）"}.get(r["ratio_basis"], r["ratio_basis"])
    acc_txt = "，年度累计" if r["ratio_accumulate"] == "per_year" else "，本次单独计算"
    for s in range(nseg):
        amt = int(r[f"seg{s}_amount"])
        if amt <= 0:
            continue
        lo = int(r[f"seg{s}_lo"])
        hi = int(r[f"seg{s + 1}_lo"]) if s + 1 < nseg else INF_FEN
        rate, local = int(r[f"seg{s}_rate"]), int(r[f"seg{s}_rate_local"])
        paid = amt * rate / PPM / 100
        txt = (f"{basis_txt}{acc_txt}；段 {yuan(lo)}–{yuan(hi)}：{fmt_yuan(amt)} × {pct(rate)} = {paid:,.2f}"
               if zh else f"segment {yuan(lo, lang)}–{yuan(hi, lang)}: {fmt_yuan(amt)} × {pct(rate)} = {paid:,.2f}")
        if rate != local:
            fac = int(r.get("ooa_rate_factor", PPM))
            how = (f"× {pct(fac)}" if fac != PPM else "") + (
                f"{' ' if fac != PPM else ''}{'+' if int(r['ooa_rate_add']) >= 0 else ''}{pct(r['ooa_rate_add'])}"
                if int(r["ooa_rate_add"]) or fac == PPM else "")
            txt += (f"（本地比例 {pct(local)}，异地调整 {how}）" if zh else f" (local {pct(local)}, out-of-area {how})")
        txt += " " + _rule_text(e, "rates", r["ratio_rule_rates"], lang) + _adjust_text(e, int(r["ratio_adjust"]), lang)
        add("统筹分段支付" if zh else "fund, by segment", f"{paid:,.2f}", base=fmt_yuan(amt), rule=txt.strip(),
            source=src)
    if r["ooa"] != "local":
        oe, osrc = _entry_source(book, r["ooa_entry"], r["ooa_rule_add"], "ratio_add", lang)
        absolute = int(r.get("ooa_rate", -1)) >= 0
        factor = int(r.get("ooa_rate_factor", PPM))
        amount = pct(r["ooa_rate"]) if absolute else (f"× {pct(factor)}" if factor != PPM else pct(r["ooa_rate_add"]))
        where = SCOPES.get(r["mdtrt_scope"], ("", ""))[0]
        if zh:
            rule = (f"{codes.FIL_TYPE_LABEL.get(r['ooa'], (r['ooa'],))[0]}（{where}）："
                    + (f"执行异地比例 {pct(r['ooa_rate'])}" if absolute else
                       (f"按本地比例的 {pct(factor)}" if factor != PPM else "")
                       + (f"{'，' if factor != PPM else ''}比例调整 {pct(r['ooa_rate_add'])}"
                          if int(r["ooa_rate_add"]) or factor == PPM else ""))
                    + (f"，起付线 {fmt_yuan(r['ooa_deductible'])}" if int(r.get("ooa_deductible", -1)) >= 0 else "")
                    + f"，按 {int(r['hosp_lv_used'])} 级医院标准")
        else:
            rule = (f"{codes.FIL_TYPE_LABEL.get(r['ooa'], (r['ooa'],) * 2)[1]} "
                    f"({SCOPES.get(r['mdtrt_scope'], (r['mdtrt_scope'],) * 2)[1]}): " + (f"rate {pct(r['ooa_rate'])}" if absolute
                                                            else f"{pct(factor)} of the local rate" if factor != PPM
                                                            else f"rate change {pct(r['ooa_rate_add'])}")
                    + (f", deductible {fmt_yuan(r['ooa_deductible'])}" if int(r.get("ooa_deductible", -1)) >= 0 else ""))
        add("异地就医调整" if zh else "out-of-area adjustment", amount, rule=rule, source=osrc)
    ce, csrc = _entry_source(book, r["cap_entry"], r["cap_rule_amount"], "amount", lang)
    cap_known = int(r["cap_entry"]) >= 0
    group = r["cap_group"]
    if group in t.benefits:                 # a cap shared by one benefit's visits: the benefit's label
        group = t.benefits[group].label if zh else group
    cap_txt = ((f"年度最高支付限额 {yuan(r['cap_amount']) if cap_known else '无已核实数值（未计入）'}（{'按基金支付额' if r['cap_basis'] == 'fund' else '按费用'}，"
                f"限额组 {group}），本年此前统筹已付 {fmt_yuan(r['fund_before'])}；未封顶应付 "
                f"{fmt_yuan(r['hifp_uncapped'])}") if zh else
               f"yearly cap {yuan(r['cap_amount'], lang) if cap_known else 'unknown (not applied)'} "
               f"({'of fund payments' if r['cap_basis'] == 'fund' else 'of cost'}, group {group}), "
               f"fund paid before {fmt_yuan(r['fund_before'])}")
    add("统筹基金支付" if zh else "pooled fund pays", fmt_yuan(r["hifp_pay"]), base=fmt_yuan(r["above_deductible"]),
        rule=cap_txt, source=csrc)
    add("按比例自付" if zh else "coinsurance (patient)", fmt_yuan(r["coinsurance"]),
        rule="起付线以上、封顶以下未由统筹支付部分" if zh else "share above the deductible not paid by the fund")
    if r["above_cap"]:
        add("超封顶线部分" if zh else "above the cap (patient)", fmt_yuan(r["above_cap"]),
            rule="超过最高支付限额的政策范围内费用" if zh else "eligible cost beyond the yearly cap")

    for payer, name in (("hifob", ("职工大额医疗补助", "employee large-expense supplement")),
                        ("hifmi", ("居民大病保险", "critical-illness insurance")),
                        ("maf", ("医疗救助", "medical assistance"))):
        if f"{payer}_entry" not in b.columns or r[f"{payer}_entry"] < 0:
            continue
        pe, psrc = _entry_source(book, r[f"{payer}_entry"], r[f"{payer}_rule_rates"], "rates", lang)
        comps = "+".join(value_words(c, lang) for c in pe.raw.get("base", [])) if pe else ""
        segs = []
        nps = len([c for c in b.columns if c.startswith(f"{payer}_seg") and c.endswith("_amount")])
        for s in range(nps):
            amt = int(r[f"{payer}_seg{s}_amount"])
            if amt > 0:
                segs.append(f"{fmt_yuan(amt)}×{pct(r[f'{payer}_seg{s}_rate'])}")
        if zh:
            txt = (f"计入基数（{comps}）{fmt_yuan(r[f'{payer}_base'])}，本年此前累计 {fmt_yuan(r[f'{payer}_base_before'])}，"
                   f"起付 {yuan(r[f'{payer}_threshold'])}，年度限额 {yuan(r[f'{payer}_cap'])}；" + (" + ".join(segs) or "未超过起付"))
        else:
            txt = (f"base ({comps}) {fmt_yuan(r[f'{payer}_base'])}, this year before {fmt_yuan(r[f'{payer}_base_before'])}, "
                   f"threshold {yuan(r[f'{payer}_threshold'], lang)}, yearly cap {yuan(r[f'{payer}_cap'], lang)}; "
                   + (" + ".join(segs) or "below the threshold"))
        txt += " " + _rule_text(pe, "threshold", r[f"{payer}_rule_threshold"], lang)
        add(name[0] if zh else name[1], fmt_yuan(r[f"{payer}_pay"]), base=fmt_yuan(r[f"{payer}_base"]),
            rule=txt.strip(), source=psrc)
    add("基金支付总额" if zh else "total fund payment", fmt_yuan(r["fund_pay_sumamt"]),
        rule="统筹 + 大病/大额 + 医疗救助" if zh else "fund + critical illness + assistance")
    add("个人负担总额" if zh else "patient's total share", fmt_yuan(r["psn_part_amt"]),
        rule="医疗费总额 − 基金支付总额" if zh else "total cost − fund payments")
    ae, asrc = _entry_source(book, r["acct_entry"], -1, None, lang)
    add("个人账户支付" if zh else "personal account pays", fmt_yuan(r["acct_pay"]),
        base=fmt_yuan(r["acct_eligible"]),
        rule=(f"账户余额 {fmt_yuan(r['acct_balance_before'])}，可支付部分 {fmt_yuan(r['acct_eligible'])}"
              + (f"（{'、'.join(value_words(p, lang) for p in ae.raw.get('pays', []))}）" if ae else "（本险种/本类就诊无个人账户支付规则）")) if zh else
        f"balance {fmt_yuan(r['acct_balance_before'])}, payable {fmt_yuan(r['acct_eligible'])}", source=asrc)
    family = str(r.get("acct_payer", "") or "")
    if family:                                         # 家庭共济: the payer's account pays the rest
        from .members import family_explain
        item, rule_text, src = family_explain(book, r, lang)
        add(item, fmt_yuan(r["acct_mulaid_pay"]), base=fmt_yuan(r["acct_mulaid_eligible"]), rule=rule_text,
            source=src)
    add("个人现金支付" if zh else "patient pays in cash", fmt_yuan(r["psn_cash_pay"]),
        rule=(tr("个人负担 − 个人账户 − 共济账户", "patient's share − account − family account", lang) if family
              else "个人负担 − 个人账户" if zh else "patient's share − account"))
    frame = pd.DataFrame(steps, columns=COLUMNS[lang if lang in COLUMNS else "zh"])
    warnings = [translate_warning(w, lang) for w in str(r["warnings"]).split("; ") if w]
    notes = [translate_warning(w, lang) for w in str(r.get("notes", "") or "").split("; ") if w]
    return Explanation(mdtrt_id, header, frame, warnings, lang, notes)


def waterfall_steps(settlement, mdtrt_id: str) -> list[tuple[str, float]]:
    """(label, yuan) from 总费用 down to 个人现金, for charts."""
    b = settlement.raw
    r = b.loc[b["mdtrt_id"].astype(str) == mdtrt_id].iloc[0]
    return [(label, float(fen_to_yuan(r[c]))) for c, label in (
        ("medfee_sumamt", "医疗费总额"), ("hifp_pay", "统筹基金"), ("hifob_pay", "大额补助"), ("hifmi_pay", "大病保险"),
        ("maf_pay", "医疗救助"), ("acct_pay", "个人账户"), ("acct_mulaid_pay", "共济账户"), ("psn_cash_pay", "个人现金"))
        if c != "acct_mulaid_pay" or r.get(c, 0) > 0]

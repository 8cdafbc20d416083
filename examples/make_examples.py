"""Generate the bundled example bills (deterministic). Run: python examples/make_examples.py

Itemized lines (费用明细) in the national platform's field names, for members of the regions whose
tables can settle them, with realistic items: 甲/乙/自费 lines, 乙类 lines carrying the hospital's
自付比例 as real exports do, items the catalogue excludes, a price-limited item, a second admission,
out-of-area care and a low-income (低保) resident. Also writes the same bills without 自付比例
(bills_no_share.csv) and without 收费项目等级 and 自付比例 (bills_no_class.csv), and examples/catalogue.csv,
an item catalogue for these items, made up for the example.
"""
import csv
import random
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(20250601)

ITEMS = {  # name, med_chrgitm_type, chrgitm_lv, selfpay_prop for 乙类
    "bed": ("床位费", "01", 1, None), "nursing": ("护理费", "07", 1, None), "exam": ("CT检查费", "03", 1, None),
    "lab": ("血常规化验费", "04", 1, None), "surgery": ("腹腔镜胆囊切除术", "06", 1, None),
    "drug_a": ("阿莫西林胶囊", "09", 1, None), "drug_b": ("头孢曲松钠注射液", "09", 2, "0.10"),
    "tcm_b": ("复方丹参滴丸", "10", 2, "0.05"), "material_b": ("一次性使用吻合器", "08", 2, "0.20"),
    "own": ("进口靶向药（目录外）", "09", 3, None), "ambulance": ("救护车费", "14", 1, None),
    "albumin": ("人血白蛋白注射液", "09", 2, "0.10"), "consult": ("普通门诊诊察费", "05", 1, None),
    "ointment": ("红霉素软膏", "09", 1, None),
}

MEMBERS = [  # psn_no, insuplc, insutype, psn_type, age, psn_idet_type
    ("BJ001", "北京", "310", "在职", 45, ""), ("BJ002", "北京", "310", "退休", 68, ""),
    ("BJ003", "北京", "390", "劳动年龄内居民", 36, ""), ("SH001", "上海", "310", "在职", 39, ""),
    ("SH002", "上海", "310", "退休", 72, ""), ("SH003", "上海", "390", "成年", 52, ""),
    ("HZ001", "杭州", "310", "在职", 31, ""), ("HZ002", "杭州", "310", "退休", 66, ""),
    ("HZ003", "杭州", "390", "城乡一档", 58, ""), ("SZ001", "深圳", "310", "在职", 42, ""),
    ("SZ002", "深圳", "390", "居民", 63, ""),
    ("BJ004", "北京", "310", "在职", 58, ""),    # a catastrophic year: cost above the fund's 10 万
    ("SH004", "上海", "310", "退休", 70, ""),    # an expensive year above the 统筹 cap: 附加基金
]
CATASTROPHIC = {"BJ004": 5, "SH004": 45}       # surgery/material multiplier for their admissions


def inpatient(total_scale):
    lines = [("bed", 80 * rng.randint(5, 15)), ("nursing", 40 * rng.randint(5, 15)), ("exam", 480),
             ("lab", rng.choice([120, 260, 380])), ("drug_a", rng.randint(200, 800)),
             ("drug_b", rng.randint(800, 3000) * total_scale), ("tcm_b", rng.randint(100, 600))]
    if total_scale > 1:
        lines += [("surgery", 6800 * total_scale), ("material_b", 2400 * total_scale)]
    if rng.random() < 0.5:
        lines.append(("own", rng.randint(1000, 6000) * total_scale))
    if rng.random() < 0.3:
        lines.append(("ambulance", 300))
    return lines


def outpatient():
    lines = [("consult", 25), ("lab", rng.choice([45, 120])), ("drug_a", rng.randint(30, 200))]
    if rng.random() < 0.6:
        lines.append(("drug_b", rng.randint(60, 400)))
    return lines


def main():
    rows, n = [], 0
    for psn, region, insutype, psn_type, age, idet in MEMBERS:
        last_month = 6 if psn == "SH004" else 11   # 上海's 2025-07 cap is not sourced: keep this year before it
        dates = sorted(f"2025-{m:02d}-{d:02d}" for m, d in
                       {(rng.randint(1, last_month), rng.randint(1, 28)) for _ in range(3)})
        plan = ["11", "21", "11"] if rng.random() < 0.5 else ["11", "11", "21"]
        if psn in ("BJ002", "SH002", "BJ004", "SH004"):
            plan = ["21", "11", "21"]          # a second admission in the year
        if region == "深圳":
            plan = ["21", "21", "21"]          # 深圳 outpatient deductibles are not sourced yet
        for date, med_type in zip(dates, plan):
            n += 1
            mdtrt = f"{psn}-{date.replace('-', '')}"
            hosp_lv = rng.choice([1, 2, 3, 3]) if med_type == "21" else rng.choice([0, 2, 3])
            scale = 3 if (med_type == "21" and rng.random() < 0.5) else 1
            if med_type == "21" and psn in CATASTROPHIC:
                scale = CATASTROPHIC[psn]
            items = inpatient(scale) if med_type == "21" else outpatient()
            area, fil = "", ""
            if psn == "HZ001" and med_type == "21":
                area, fil = "上海", "长期居住"        # lives in Shanghai, filed as long-term residence
            for key, amount in items:
                name, cat, lv, prop = ITEMS[key]
                row = {"mdtrt_id": mdtrt, "psn_no": psn, "setl_time": date, "insuplc": region,
                       "insutype": insutype, "psn_type": psn_type, "psn_idet_type": idet, "age": age,
                       "med_type": med_type, "hosp_lv": hosp_lv, "mdtrt_area": area, "fil_type": fil,
                       "med_chrgitm_type": cat, "item_name": name, "chrgitm_lv": lv,
                       "selfpay_prop": prop or "", "pric_uplmt_amt": "", "cnt": 1,
                       "det_item_fee_sumamt": f"{amount:.2f}"}
                if key == "exam" and region == "北京":
                    row["pric_uplmt_amt"], row["det_item_fee_sumamt"] = "420.00", "480.00"
                rows.append(row)
    with open(HERE / "bills.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(HERE / "accounts.csv", "w", newline="", encoding="utf-8") as fh:
        fh.write("psn_no,acct_balance\n")
        for psn, _, insutype, *_ in MEMBERS:
            if insutype == "310":
                fh.write(f"{psn},{rng.choice([800, 2500, 6000])}.00\n")
    # the same bills as a hospital system may export them: without the line's 自付比例 (settled with
    # --assume or a catalogue), and without 收费项目等级 too (classed by --catalogue examples/catalogue.csv)
    for name, drop in (("bills_no_share.csv", {"selfpay_prop"}), ("bills_no_class.csv", {"selfpay_prop", "chrgitm_lv"})):
        with open(HERE / name, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=[k for k in rows[0] if k not in drop], extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    write_catalogue()
    write_member_year()
    print(f"wrote {len(rows)} lines of {n} bills")


def write_catalogue():
    """examples/catalogue.csv: the example items' 收费项目等级 and 自付比例, as an item catalogue (医保目录)
    maps them. Made up for the example bills (codes too): not a real catalogue of any region."""
    note = "示例目录：为示例账单编造，不是真实医保目录 / made up for the example bills, not a real catalogue"
    with open(HERE / "catalogue.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["医疗目录编码", "项目名称", "收费项目等级", "自付比例", "限价", "说明"])
        for i, (name, _cat, lv, prop) in enumerate(ITEMS.values(), 1):
            w.writerow([f"DEMO{i:04d}", name, "甲乙丙"[lv - 1], prop or "", "", note])


# A family's year (notebook 05 “一年的就医”, issue 17): W01 works in 北京 and moves to 上海 on 2025-07-01
# (a new enrolment span; his account moves with him); his mother W02 re-enrolled in 北京 on 2025-03-15
# after a two-year break and waits until 2025-08-14 (national rule, 3 + 2 months); his daughter W03 was
# enrolled in the concentrated period (no wait). W01's account may pay both (家庭共济, 共济账户 = W01).
YEAR_MEMBERS = [  # psn_no, begin, end, insuplc, insutype, paid_on, break_years, acct_payer
    ("W01", "2016-07-01", "2025-06-30", "北京", "职工", "", 0, ""),
    ("W01", "2025-07-01", "", "上海", "职工", "", 0, ""),
    ("W02", "2025-03-15", "", "北京", "居民", "2025-03-15", 2, "W01"),
    ("W03", "2025-01-01", "", "北京", "居民", "2024-11-20", 0, "W01"),
]
YEAR_BILLS = [  # psn_no, date, insuplc, insutype, psn_type, age, med_type, hosp_lv, [(item, amount)]
    ("W01", "2025-02-12", "北京", "310", "在职", 41, "11", 2, [("consult", 25), ("lab", 120), ("drug_b", 380)]),
    ("W03", "2025-04-03", "北京", "390", "学生儿童", 8, "11", 2, [("consult", 25), ("drug_a", 96)]),
    ("W02", "2025-05-08", "北京", "390", "老年人", 68, "11", 2, [("consult", 25), ("lab", 260), ("tcm_b", 180)]),
    ("W02", "2025-07-01", "北京", "390", "老年人", 68, "21", 3,
     [("bed", 640), ("nursing", 320), ("exam", 480), ("lab", 380), ("drug_a", 620), ("drug_b", 5400), ("tcm_b", 360)]),
    ("W02", "2025-09-01", "北京", "390", "老年人", 68, "21", 3,
     [("bed", 960), ("nursing", 480), ("exam", 480), ("lab", 380), ("surgery", 6800), ("material_b", 2400),
      ("drug_b", 4200), ("own", 1800)]),
    ("W01", "2025-09-20", "上海", "310", "在职", 41, "21", 3,
     [("bed", 560), ("nursing", 280), ("exam", 480), ("lab", 260), ("drug_a", 420), ("drug_b", 2600)]),
    ("W03", "2025-10-10", "北京", "390", "学生儿童", 8, "21", 2,
     [("bed", 400), ("nursing", 200), ("lab", 260), ("drug_a", 310), ("drug_b", 1900)]),
    ("W02", "2025-11-15", "北京", "390", "老年人", 68, "11", 2, [("consult", 25), ("lab", 120), ("tcm_b", 260)]),
]


def write_member_year():
    """examples/year_bills.csv, year_members.csv and year_accounts.csv: one family's year (see YEAR_MEMBERS)."""
    rows = []
    for psn, date, region, insutype, psn_type, age, med_type, hosp_lv, items in YEAR_BILLS:
        for key, amount in items:
            name, cat, lv, prop = ITEMS[key]
            rows.append({"mdtrt_id": f"{psn}-{date.replace('-', '')}", "psn_no": psn, "setl_time": date,
                         "insuplc": region, "insutype": insutype, "psn_type": psn_type, "age": age,
                         "med_type": med_type, "hosp_lv": hosp_lv, "med_chrgitm_type": cat, "item_name": name,
                         "chrgitm_lv": lv, "selfpay_prop": prop or "", "cnt": 1, "det_item_fee_sumamt": f"{amount:.2f}"})
    with open(HERE / "year_bills.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(HERE / "year_members.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["人员编号", "参保开始日期", "参保结束日期", "参保地", "险种", "缴费日期", "断缴年数", "共济账户"])
        w.writerows(YEAR_MEMBERS)
    with open(HERE / "year_accounts.csv", "w", newline="", encoding="utf-8") as fh:
        fh.write("psn_no,acct_balance\nW01,3000.00\n")


if __name__ == "__main__":
    main()

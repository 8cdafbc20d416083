"""Generate realistic synthetic itemized bills for benchmarks (vectorized, deterministic).

    python bench/generate.py 1000000 bench/data/bills_1m.csv

Many members across the regions whose tables settle, several bills each over 2024–2025, 职工 and
居民, visit types 普通门诊/住院/门诊慢特病, 甲/乙/丙 lines with 乙类 co-payment shares, some
excluded items, rows in shuffled order (as extracts arrive). As settlement records have them:
settlement times with the time of day (2024-03-15 10:23:45), and a catalogue of a few thousand
items (name with its specification, a 23-character national code), a few of them very common.
"""
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

REGIONS = [  # insuplc, insutype, psn_types, visit types the tables settle, first date
    ("北京", "310", ["在职", "退休"], ["11", "21", "14"]),
    ("北京", "390", ["劳动年龄内居民", "老年人", "学生儿童"], ["11", "21"]),
    ("上海", "310", ["在职", "退休"], ["11", "21"]),
    ("上海", "390", ["成年", "老年", "学生儿童"], ["11", "21"]),
    ("杭州", "310", ["在职", "退休"], ["11", "21"]),
    ("杭州", "390", ["城乡一档", "城乡二档", "少儿"], ["11", "21"]),
    ("深圳", "310", ["在职", "退休"], ["21"]),
    ("深圳", "390", ["居民"], ["21"]),
]
ITEMS = np.array(["床位费", "护理费", "CT检查费", "血常规", "阿莫西林胶囊", "头孢曲松钠注射液", "复方丹参滴丸",
                  "一次性使用吻合器", "进口靶向药", "诊察费", "救护车费"])
ITEM_CAT = np.array(["01", "07", "03", "04", "09", "09", "10", "08", "09", "05", "14"])
ITEM_LV = np.array([1, 1, 1, 1, 1, 2, 2, 2, 3, 1, 1])
SPECS = [f"{d}{u}*{n}{p}" for d in ("0.1", "0.25", "0.5", "1", "2", "5", "10", "20") for u in ("g", "mg", "ml")
         for n in (1, 6, 10, 12, 24) for p in ("粒", "支", "片")]          # 360 specifications
N_CATALOGUE = 4000


def catalogue(rng):
    """(name, code, category, class) of each catalogue item: a kind of ITEMS with a specification."""
    kind = rng.integers(0, len(ITEMS), N_CATALOGUE)
    spec = np.array(SPECS)[rng.integers(0, len(SPECS), N_CATALOGUE)]
    name = np.char.add(np.char.add(np.char.add(ITEMS[kind], "("), spec), ")")
    serial = np.char.zfill(np.arange(N_CATALOGUE).astype(str), 6)
    code = np.char.add(np.char.add(np.char.add("X", ITEM_CAT[kind]), serial), "A00101010044")
    return name, code, ITEM_CAT[kind], ITEM_LV[kind]


def generate(n_lines: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    lines_per_bill = 6
    n_bills = max(1, n_lines // lines_per_bill)
    n_members = max(1, n_bills // 5)
    member_region = rng.integers(0, len(REGIONS), n_members)
    member_group = rng.integers(0, 3, n_members)
    member_age = rng.integers(1, 95, n_members)
    bill_member = rng.integers(0, n_members, n_bills)
    bill_day = rng.integers(0, 700, n_bills)
    bill_lv = rng.integers(0, 4, n_bills)
    reg = member_region[bill_member]
    bill_visit = np.empty(n_bills, dtype=object)
    psn_type = np.empty(n_bills, dtype=object)
    for i, (_, _, groups, visits) in enumerate(REGIONS):
        m = reg == i
        bill_visit[m] = np.array(visits, dtype=object)[rng.integers(0, len(visits), m.sum())]
        psn_type[m] = np.array(groups, dtype=object)[member_group[bill_member[m]] % len(groups)]
    # lines: each bill gets lines_per_bill lines (exact total n_lines, remainder on the first bills)
    bill_of_line = np.repeat(np.arange(n_bills), lines_per_bill)
    extra = n_lines - len(bill_of_line)
    if extra > 0:
        bill_of_line = np.concatenate([bill_of_line, np.arange(extra) % n_bills])
    bill_of_line = bill_of_line[:n_lines]
    name, code, cat, klass = catalogue(rng)
    weight = 1.0 / (np.arange(N_CATALOGUE) + 10.0)       # a few items on most lines, a long tail
    item = rng.choice(N_CATALOGUE, n_lines, p=weight / weight.sum())
    inpatient = np.isin(bill_visit[bill_of_line], ["21", "14"])
    amount = np.where(inpatient, rng.lognormal(7.0, 1.2, n_lines), rng.lognormal(4.0, 1.0, n_lines))
    amount = np.round(np.minimum(amount, 200000), 2)
    lv = klass[item]
    prop = np.where(lv == 2, np.array(["0.10", "0.05", "0.20"])[rng.integers(0, 3, n_lines)], "")
    seconds = rng.integers(7 * 3600, 22 * 3600, n_bills)            # settled between 07:00 and 22:00
    stamps = (np.datetime64("2024-01-01T00:00:00") + bill_day.astype("timedelta64[D]")
              + seconds.astype("timedelta64[s]"))
    dates = np.char.replace(stamps.astype("datetime64[s]").astype(str), "T", " ")
    mid = np.char.add("V", np.arange(n_bills).astype(str))
    pid = np.char.add("P", bill_member.astype(str))
    order = rng.permutation(n_lines)              # extracts arrive in no particular order
    b = bill_of_line[order]
    it = item[order]
    cols = {
        "mdtrt_id": mid[b], "psn_no": pid[b], "setl_time": dates[b],
        "insuplc": np.array([r[0] for r in REGIONS])[reg[b]], "insutype": np.array([r[1] for r in REGIONS])[reg[b]],
        "psn_type": psn_type[b].astype(str), "age": member_age[bill_member[b]], "med_type": bill_visit[b].astype(str),
        "hosp_lv": bill_lv[b], "med_chrgitm_type": cat[it], "item_code": code[it], "item_name": name[it],
        "chrgitm_lv": lv[order],
        "selfpay_prop": prop[order], "det_item_fee_sumamt": np.char.mod("%.2f", amount[order]),
    }
    return pa.table(cols)


def main():
    n = int(float(sys.argv[1]))
    out = Path(sys.argv[2])
    out.parent.mkdir(parents=True, exist_ok=True)
    t = generate(n)
    if out.suffix == ".parquet":
        import pyarrow.parquet as pq
        pq.write_table(t, out)
    else:
        pacsv.write_csv(t, out)
    print(f"wrote {t.num_rows} lines, {out.stat().st_size / 1e6:.0f} MB: {out}")


if __name__ == "__main__":
    main()

"""The README's worked example (用自己的参数结算): the starter table of `ybcalc tables new 攀枝花 --scheme
职工` with the figures of an EXAMPLE notice typed in. The figures are made up for the example; the
notice they stand for is labelled as such in the table itself."""

# Each 待填 of the starter, in order; "待填" keeps the placeholder (that part of the notice is not typed in).
EXAMPLE_FILL = [
    "示例通知：职工医保住院待遇（README 演示用，数字为虚构，非真实政策）",   # sources.notice.title
    "示例〔2024〕1号",                                                # doc_no
    "攀枝花市医疗保障局（示例）",                                       # issuer
    "2024-01-01",                                                     # date
    "2024-01-01", "800", "500", "300",                                # 住院起付线 from; 三级, 二级, 一级及基层
    "2024-01-01", "0.85", "0.88", "0.90", "0.88", "0.91", "0.93",      # 支付比例 from; 在职 3/2/1, 退休 3/2/1
    "2024-01-01", "100000",                                           # 封顶线
    "待填", "待填", "待填", "待填", "待填", "待填", "待填",               # 普通门诊: not in this notice
    "2024-01-01", "0.1",                                              # 乙类先行自付
    "2024-01-01", "0", "0.9", "300000",                               # 大额医疗补助: threshold, rate, cap
    "待填", "待填",                                                   # 个人账户: not in this notice
]


def fill(text: str, values=EXAMPLE_FILL) -> str:
    """The starter with its placeholders (outside comments) replaced by ``values``, in order."""
    values = list(values)
    out = []
    for line in text.splitlines(keepends=True):
        code, sep, comment = line.partition("#") if not line.lstrip().startswith("#") else ("", "", line)
        while "待填" in code:
            i = code.index("待填")
            v = values.pop(0)
            code = code[:i] + v.replace("待填", "\0") + code[i + 2:]
        out.append(code.replace("\0", "待填") + sep + comment)
    assert not values, f"{len(values)} values left over: the starter changed"
    return "".join(out)

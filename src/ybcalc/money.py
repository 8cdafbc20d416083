"""Exact money arithmetic.

Amounts are integer fen (分, int64) everywhere inside the engine; ratios are integer parts per
million (ppm), so ``fen * ppm`` is exact and a single half-up division turns it back into fen.
Tables state yuan and decimal ratios; they are converted once, through ``Decimal`` so that 0.955
is 955000 ppm and never 954999.
"""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import numpy as np

PPM = 1_000_000  # ratio unit: 1.0 == 1_000_000
FEN_PER_YUAN = 100
INF_FEN = np.int64(2**62)  # "no bound" on a money axis; far above any real amount, safe to add


def yuan_to_fen(value) -> int:
    """Exact conversion of a yuan amount (number or text) to integer fen, half up at the fen."""
    d = Decimal(str(value))
    return int((d * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def ratio_to_ppm(value) -> int:
    d = Decimal(str(value))
    return int((d * PPM).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def fen_to_yuan(fen) -> Decimal:
    return (Decimal(int(fen)) / 100).quantize(Decimal("0.01"))


def fmt_yuan(fen) -> str:
    """'12,345.67' for display."""
    return f"{fen_to_yuan(fen):,.2f}"


def div_half_up(num, den):
    """Integer division rounding half up (away from zero for halves), vectorized.

    ``num`` may be negative (differences); ``den`` is positive.
    """
    num = np.asarray(num, dtype=np.int64)
    sign = np.where(num < 0, -1, 1)
    return sign * ((np.abs(num) + den // 2) // den)


def mul_ratio(fen, ppm):
    """fen × ratio, rounded half up to the fen."""
    return div_half_up(np.asarray(fen, dtype=np.int64) * np.asarray(ppm, dtype=np.int64), PPM)


def parse_yuan_text(text: str) -> int:
    """Parse a money cell as people write it: '1,234.50', '¥1234.5', ' 12 '. Raises ValueError."""
    s = str(text).strip().replace(",", "").replace("，", "").replace("¥", "").replace("￥", "")
    s = s.replace("元", "").strip()
    if not s:
        raise ValueError("empty amount")
    try:
        return yuan_to_fen(Decimal(s))
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"not an amount: {text!r}") from exc


def fen_text(fen) -> np.ndarray:
    """Integer fen -> exact yuan text ('-12.05'), vectorized (no floats involved)."""
    fen = np.asarray(fen, dtype=np.int64)
    if not len(fen):
        return np.array([], dtype=object)
    neg = fen < 0
    a = np.abs(fen)
    yuan = (a // 100).astype(str)
    cents = np.char.zfill((a % 100).astype(str), 2)
    return np.where(neg, "-", "") + yuan + "." + cents


def fen_to_arrow_decimal(fen):
    """Integer fen -> pyarrow decimal128(18, 2) array, exact (the fen are the unscaled integers)."""
    import pyarrow as pa
    fen = np.asarray(fen, dtype=np.int64)
    words = np.empty(len(fen) * 2, dtype=np.int64)
    words[0::2] = fen
    words[1::2] = np.where(fen < 0, -1, 0)          # sign extension to 128 bits (little endian)
    return pa.Array.from_buffers(pa.decimal128(18, 2), len(fen), [None, pa.py_buffer(words.tobytes())])

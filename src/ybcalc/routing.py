"""Which partition each input row goes to, so that a partition can be settled on its own.

Two things must never be split across partitions:
  * a member's bills (人员编号 ``psn_no``): they carry the year's state (起付线 used, fund paid …);
  * a bill's lines (``mdtrt_id``): a bill is checked and settled whole — in particular a bill whose
    lines name different members is rejected, which only a partition holding all its lines can see.

Members are read as ``inputs.prepare`` reads them: stripped, with the visit id standing in for an
empty ``psn_no``. Rows go by a hash of that member; the lines of a bill that names several members
(rare: a broken export) all go by a hash of the bill instead. Hashes only spread the work: rows that
prepare would treat as one member or one bill always get equal hashes, and the check for bills with
several members is exact (hash collisions are resolved on the text).

A members file may link members' accounts (家庭共济, ``acct_payer``: whose account pays this member's
costs): the payer's account then runs down in date order over the bills of the whole family, so a
family's bills must meet in one partition too. Rows of a linked member go by their family's root (see
``family_roots``) instead of their own ``psn_no``.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

_MUL = np.uint64(0x100000001B3)          # FNV-1a prime
_SEED = np.uint64(0xCBF29CE484222325)


def text_hash(arr) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit hash, byte length) of each string of an Arrow string array.

    The hash mixes the length with the first 8 and the last 16 bytes, each read as one unaligned
    64-bit word — enough to tell ids apart (their running numbers sit at the end) at a fraction of the
    cost of hashing every byte. Bytes outside a string are masked off, so equal strings hash equal.
    """
    import pyarrow as pa
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    n = len(arr)
    bufs = arr.buffers()
    off = np.frombuffer(bufs[1], np.int32, n + 1, arr.offset * 4).astype(np.int64)
    raw = np.frombuffer(bufs[2], np.uint8) if bufs[2] is not None and bufs[2].size else np.zeros(0, np.uint8)
    data = np.zeros(len(raw) + 32, np.uint8)          # 16 zero bytes either side: every word read is in bounds
    data[16:16 + len(raw)] = raw
    words = np.ndarray((len(data) - 7,), np.uint64, data, 0, (1,))     # the 8 bytes from each position
    start, end = off[:-1] + 16, off[1:] + 16
    length = end - start
    if arr.null_count:                                 # a missing cell reads as empty
        length = np.where(np.asarray(arr.is_null()), 0, length)
        end = start + length
    ln = length.astype(np.uint64)

    def keep_low(w, k):        # the low k bytes of w (k in 0..8)
        k = np.minimum(k, 8).astype(np.uint64) * np.uint64(8)
        return np.where(k >= 64, w, w & ((np.uint64(1) << np.minimum(k, np.uint64(63))) - np.uint64(1)))

    def keep_high(w, k):       # the high k bytes of w
        k = np.minimum(k, 8).astype(np.uint64) * np.uint64(8)
        return np.where(k == 0, np.uint64(0), w >> np.minimum(np.uint64(64) - k, np.uint64(63)))

    first = keep_low(words[start], ln)
    last = keep_high(words[end - 8], ln)
    before_last = keep_high(words[end - 16], np.clip(length - 8, 0, 8))
    h = (_SEED ^ ln) * _MUL
    for w in (first, last, before_last):
        h = (h ^ w) * _MUL
        h ^= h >> np.uint64(29)
    return h, length


def _needs_trim(arr) -> bool:
    """Whether any string might begin or end with whitespace (its first or last byte is an ASCII
    space or control character, or part of a non-ASCII character, which may be a wide space)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    if len(arr) == 0:
        return False
    if pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    bufs = arr.buffers()
    if bufs[2] is None or bufs[2].size == 0:
        return False
    off = np.frombuffer(bufs[1], np.int32, len(arr) + 1, arr.offset * 4)
    data = np.frombuffer(bufs[2], np.uint8)
    ne = np.flatnonzero(off[1:] > off[:-1])
    edge = np.concatenate([data[off[:-1][ne]], data[off[1:][ne] - 1]])
    return bool(((edge <= 32) | (edge >= 0x80)).any())


def _trimmed(arr):
    """``arr`` stripped as prepare strips it (Arrow's utf8_trim_whitespace, which pandas uses too)."""
    import pyarrow.compute as pc
    return pc.utf8_trim_whitespace(arr) if _needs_trim(arr) else arr


def _partition_of(h: np.ndarray, k: int) -> np.ndarray:
    """0..k-1 from a 64-bit hash: its high 32 bits scaled to k (a multiply and a shift; a modulo of
    uint64 costs ten times more)."""
    return ((h >> np.uint64(32)) * np.uint64(k) >> np.uint64(32)).astype(np.int32)


def family_roots(members) -> dict[str, str]:
    """``psn_no`` -> the root of its family, for the members a members file links by ``acct_payer``.

    A family is every member reached through payer links, over all spans (a member may have a payer in
    one span and another in the next, and a payer may pay for several): its root is its first payer in
    text order, the same whichever rows or partitions it is computed from. Unlinked members are not in
    the mapping (they go by their own ``psn_no``)."""
    spans = getattr(members, "spans", members)
    if spans is None or "acct_payer" not in spans.columns or not len(spans):
        return {}
    payer = spans["acct_payer"].astype(str).str.strip().to_numpy(dtype=object)
    who = spans["psn_no"].astype(str).str.strip().to_numpy(dtype=object)
    linked = (payer != "") & (payer != who)
    if not linked.any():
        return {}
    parent: dict[str, str] = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x
    for a, b in zip(who[linked], payer[linked]):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    payers = set(payer[linked])
    roots: dict[str, str] = {}
    for m in sorted(parent):                      # the family's first payer, in text order
        r = find(m)
        if m in payers and r not in roots:
            roots[r] = m
    return {m: roots[find(m)] for m in parent}


def _family_member(member, family: dict | None):
    """An Arrow string array of members with each linked member replaced by its family root."""
    if not family:
        return member
    import pyarrow as pa
    import pyarrow.compute as pc
    if pa.types.is_large_string(member.type):
        member = member.cast(pa.string())
    idx = pc.index_in(member, value_set=pa.array(list(family), pa.string()))
    root = pc.take(pa.array(list(family.values()), pa.string()), idx)
    return pc.if_else(pc.is_valid(idx), root, member)


def _batch_keys(batch, bill_col: str, member_col: str | None, k: int, family: dict | None = None):
    """(bill hash, partition by member (or family), bill text) of one block of rows."""
    bill = _trimmed(batch.column(bill_col))
    hb, _ = text_hash(bill)
    if member_col is None:
        return hb, _partition_of(hb, k), bill
    member = _family_member(_trimmed(batch.column(member_col)), family)
    hm, mlen = text_hash(member)
    return hb, _partition_of(np.where(mlen == 0, hb, hm), k), bill


def partition_rows(table, k: int, bill_col: str, member_col: str | None, family: dict | None = None) -> np.ndarray:
    """Partition number (0..k-1) of each row of an Arrow table (see the module text); ``family``:
    ``family_roots`` of a members file, whose linked members go by their family."""
    import pyarrow as pa
    batches = table.select([c for c in (bill_col, member_col) if c]).to_batches()
    with ThreadPoolExecutor(os.cpu_count() or 1) as threads:     # Arrow and numpy release the GIL
        keys = list(threads.map(lambda b: _batch_keys(b, bill_col, member_col, k, family), batches))
    if not keys:
        return np.zeros(0, np.int32)
    part = np.concatenate([kk[1] for kk in keys])
    if member_col is None:
        return part
    hb = np.concatenate([kk[0] for kk in keys])
    # Bills split over partitions: their lines name members of different partitions. prepare rejects
    # such a bill whole, if it sees all of it: those lines go by the bill instead.
    split = _split_bills(hb, part)
    if len(split):
        bills = pa.chunked_array([kk[2] for kk in keys]).take(pa.array(split)).to_numpy(zero_copy_only=False)
        spread = pd.Series(part[split]).groupby(bills).transform("nunique").to_numpy() > 1   # exact, on the text
        part[split[spread]] = _partition_of(hb[split[spread]], k)
    return part


def _split_bills(hb: np.ndarray, part: np.ndarray, bits: int = 22) -> np.ndarray:
    """Rows whose bill hash has rows in more than one partition (a superset of the rows of split bills:
    hash collisions are settled on the text by the caller).

    Rows are grouped by ``bits`` bits of their bill hash — a bucket whose rows all go to one partition
    holds no split bill — and the rows of mixed buckets (bills of different members that share the
    bucket, or a split bill) are grouped again by the next bits of the hash, until few are left; only
    those are grouped exactly (a hash table over every row costs several times more).
    """
    nb = 1 << bits
    mask = np.uint64(nb - 1)
    p = part.astype(np.int32, copy=False)
    rows = None                                    # None: every row (not copied for the first round)
    for shift in range(64 - bits, -1, -bits):
        if rows is not None and len(rows) <= len(hb) // 64:
            break
        h, pr = (hb, p) if rows is None else (hb[rows], p[rows])
        bucket = ((h >> np.uint64(shift)) & mask).view(np.int64)
        # any one row's partition stands for its bucket: a bucket with two partitions has a row that differs
        rep = np.empty(nb, np.int32)
        rep[bucket] = pr
        mixed = np.zeros(nb, bool)
        mixed[bucket[pr != rep[bucket]]] = True
        keep = mixed[bucket]
        rows = np.flatnonzero(keep) if rows is None else rows[keep]
    if rows is None:
        rows = np.arange(len(hb))
    if not len(rows):
        return rows
    # among those, bills (exact hash) with rows in several partitions
    codes, uniq = pd.factorize(hb[rows])
    lo = np.full(len(uniq), np.iinfo(np.int32).max, np.int32)
    hi = np.full(len(uniq), -1, np.int32)
    np.minimum.at(lo, codes, p[rows])
    np.maximum.at(hi, codes, p[rows])
    return rows[(lo != hi)[codes]]


def route_keys(bill: pd.Series, member: pd.Series | None, several: set, family: dict | None = None) -> pd.Series:
    """The text a row is shuffled on (Dask): its member as prepare reads it (a linked member: its
    family's root, see ``family_roots``), or ``bill:<id>`` for the lines of a bill that names several
    members."""
    b = bill.astype("string").fillna("").str.strip()
    if member is None:
        return b
    m = member.astype("string").fillna("").str.strip()
    m = m.where(m != "", b)
    if family:
        root = m.map(family)
        m = root.where(root.notna(), m).astype("string")
    return ("bill:" + b).where(b.isin(several), m)


def member_pairs(bill: pd.Series, member: pd.Series | None) -> pd.DataFrame:
    """The distinct (bill, member) pairs of some rows, read as prepare reads them (for Dask's pass
    that finds the bills naming several members)."""
    b = bill.astype("string").fillna("").str.strip()
    m = b if member is None else member.astype("string").fillna("").str.strip()
    m = m.where(m != "", b)
    return pd.DataFrame({"bill": b.astype(object), "member": m.astype(object)}).drop_duplicates()

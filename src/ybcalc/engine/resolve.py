"""Picking, for each bill, the table entry in force on its date and evaluating its fields.

Works per (table, parameter, entry) over arrays of bills, never per bill. Bills for which a needed
parameter is missing collect an error naming the region, scheme, parameter and date; the engine
rejects those bills before computing anything.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..i18n import tr
from ..inputs import full_object
from ..money import INF_FEN
from ..policy.model import Param, apply_adjustments


class WarnMasks:
    """Warnings as one boolean mask per distinct message (a batch has few messages, many bills).

    Each message has a kind (:data:`ybcalc.i18n.WARNING_KINDS`): warnings are listed by kind, most
    important first, each text prefixed by its kind's label; notes (kind ``note``: a value's grade …)
    are information and kept apart from the warnings (:meth:`categorical` with ``notes=True``).
    """

    def __init__(self, n: int):
        self.n = n
        self.masks: dict[str, np.ndarray] = {}
        self.kinds: dict[str, str] = {}

    def add(self, idx, message: str, kind: str = "other") -> None:
        m = self.masks.get(message)
        if m is None:
            m = self.masks[message] = np.zeros(self.n, bool)
            self.kinds[message] = kind
        m[np.asarray(idx, dtype=np.int64)] = True

    def merge(self, other: "WarnMasks") -> None:
        for msg, m in other.masks.items():
            self.add(np.flatnonzero(m), msg, other.kinds.get(msg, "other"))

    def take(self, idx: np.ndarray) -> "WarnMasks":
        """Row ``i`` of the result is row ``idx[i]`` of these masks (spreads profiles to bills)."""
        out = WarnMasks(len(idx))
        out.masks = {msg: m[idx] for msg, m in self.masks.items() if m[idx].any()}
        out.kinds = {msg: self.kinds.get(msg, "other") for msg in out.masks}
        return out

    def strings(self, notes: bool = False) -> np.ndarray:
        """'; '-joined messages per row, by kind then text."""
        return np.asarray(self.categorical(notes), dtype=object) if self.n else np.empty(0, dtype=object)

    def _ordered(self, notes: bool) -> list[tuple[str, str]]:
        """(message, text shown) of the warnings (or the notes), by kind then message."""
        from ..i18n import NOTE_KINDS, WARNING_KINDS, kind_label
        order = {k: i for i, k in enumerate(WARNING_KINDS)}
        chosen = [(order.get(self.kinds.get(m, "other"), len(order)), m) for m in self.masks
                  if (self.kinds.get(m, "other") in NOTE_KINDS) == notes]
        return [(m, m if notes or self.kinds.get(m, "other") == "other" else f"{kind_label(self.kinds[m])}: {m}")
                for _, m in sorted(chosen)]

    def categorical(self, notes: bool = False) -> pd.Categorical:
        """The '; '-joined warnings (``notes``: the notes) per row as categories (each distinct text once).

        Rows share few combinations of messages: each row gets a combination number, each distinct
        combination is joined once, and the rows keep only the number.
        """
        ordered = self._ordered(notes)
        combo = np.zeros(self.n, np.int64)
        for j, (msg, _) in enumerate(ordered):
            if j % 60 == 59:                     # renumber densely before the code could overflow
                combo = np.unique(combo, return_inverse=True)[1].astype(np.int64)
            combo = combo * 2 + self.masks[msg]
        _, first, inverse = np.unique(combo, return_index=True, return_inverse=True)
        # a combination's text, read off the masks of one row that has it
        texts = ["; ".join(shown for msg, shown in ordered if self.masks[msg][i]) for i in first]
        if len(set(texts)) < len(texts):          # a message holding "; " could join like another pair
            return pd.Categorical(np.array(texts, dtype=object)[inverse.reshape(-1)])
        return pd.Categorical.from_codes(inverse.reshape(-1), pd.Index(texts, dtype=object))


class Errors:
    """Per-bill error messages (first one wins) and warnings."""

    def __init__(self, n: int):
        self.error = full_object(n, None)
        self.warnings = WarnMasks(n)

    def fail(self, idx, message) -> None:
        idx = np.asarray(idx)
        if np.ndim(message) == 0:
            message = np.full(len(idx), message, dtype=object)
        cur = self.error[idx]
        self.error[idx] = np.where(cur == None, message, cur)  # noqa: E711 (elementwise)

    def warn(self, idx, message: str, kind: str = "other") -> None:
        self.warnings.add(idx, message, kind)

    def take(self, idx: np.ndarray) -> "Errors":
        """Row ``i`` of the result is row ``idx[i]`` of these errors and warnings."""
        out = Errors(len(idx))
        out.error = self.error[idx]
        out.warnings = self.warnings.take(idx)
        return out

    def absorb(self, other: "Errors") -> None:
        """Add the errors (where none is recorded yet) and warnings of ``other``, over the same rows."""
        bad = np.flatnonzero(other.error != None)  # noqa: E711 (elementwise)
        if len(bad):
            self.fail(bad, other.error[bad])
        self.warnings.merge(other.warnings)


class Rows:
    """Bill attributes restricted to some rows, each sliced only when a rule asks for it (a table's
    rules name one or two of the ten attributes)."""

    def __init__(self, attrs, idx: np.ndarray, extra: dict | None = None):
        self.attrs, self.idx, self.cache = attrs, idx, dict(extra or {})

    def get(self, key, default=None):
        if key in self.cache:
            return self.cache[key]
        if key not in self.attrs:
            return default
        self.cache[key] = self.attrs[key][self.idx]
        return self.cache[key]

    def __getitem__(self, key):
        if key not in self:
            raise KeyError(key)
        return self.get(key)

    def __contains__(self, key) -> bool:
        return key in self.cache or key in self.attrs

    def keys(self):
        return set(self.attrs.keys()) | set(self.cache)

    def items(self):
        return ((k, self.get(k)) for k in self.keys())


def subset(attrs: dict, idx: np.ndarray) -> Rows:
    return Rows(attrs, idx)


def resolve(param: Param | None, idx: np.ndarray, dates: np.ndarray, attrs: dict, errors: Errors,
            label: str, fields: dict, width: int = 0, required: bool = True, warn_if_missing: bool = False):
    """Evaluate ``fields`` ({name: default}) of ``param`` for bills ``idx``.

    ``warn_if_missing``: a missing value is not applied and the bill carries a warning naming it
    (used for caps and 大病 terms, which bind only on large costs) instead of failing.

    Returns dict name -> array over ``idx`` (2-D for rate lists, padded to ``width``), plus
    ``_entry`` (uid, -1 where unresolved), ``_rule_<name>`` and ``_adjust`` (bitmask of applied
    adjustments). ``label`` names the parameter in errors ("北京 职工 住院 起付线 …").
    """
    n = len(idx)
    out: dict[str, np.ndarray] = {"_entry": np.full(n, -1, np.int64), "_adjust": np.zeros(n, np.int64)}
    for name, default in fields.items():
        if name in ("rates", "segments"):
            out[name] = np.zeros((n, max(width, 1)), np.int64)
        elif isinstance(default, str):
            out[name] = full_object(n, default)
        else:
            out[name] = np.full(n, default, dtype=np.int64)
        out[f"_rule_{name}"] = np.full(n, -1, np.int64)
    if n == 0:
        return out
    if param is None:
        if warn_if_missing:
            errors.warn(idx, tr(f"{label}：无已核实参数，未计入", f"{label}: no sourced value, not applied"),
                        kind="missing")
        elif required:
            errors.fail(idx, tr(f"{label}：参数表中没有这个参数（无有来源的数值）",
                                f"{label}: parameter not in the table (no sourced value)"))
        return out
    which = param.entry_index(dates[idx])
    for e_i in np.unique(which):
        pos = np.flatnonzero(which == e_i)
        rows = idx[pos]
        if e_i < 0:
            first = param.entries[0].start
            if warn_if_missing:
                errors.warn(rows, tr(f"{label}：{first} 之前无已核实数值，未计入（{param.path}）",
                                     f"{label}: no sourced value before {first}, not applied ({param.path})"),
                            kind="missing")
            elif required:
                errors.fail(rows, tr(f"{label}：{first} 之前没有有效的数值（{param.path}）",
                                     f"{label}: no value in force before {first} ({param.path})")
                            + _assume_hint(param.path, label))
            continue
        entry = param.entries[e_i]
        if entry.missing and getattr(entry, "user", False):
            # the user's own table: what is not filled in yet, and where (its file and key)
            what = _user_missing(entry)
            if warn_if_missing:
                errors.warn(rows, tr(f"{label}：{what[0]}，未计入（{entry.key}）",
                                     f"{label}: {what[1]}, not applied ({entry.key})"), kind="missing")
            elif required:
                errors.fail(rows, tr(f"{label}：{what[0]}（{entry.key}：请按通知填写）",
                                     f"{label}: {what[1]} ({entry.key}: fill in the notice's figure)"))
            continue
        if entry.missing:
            if warn_if_missing:
                errors.warn(rows, tr(f"{label}：{entry.start} 起无已核实数值，未计入（{entry.key}）",
                                     f"{label}: no sourced value from {entry.start}, not applied ({entry.key})"),
                            kind="missing")
            elif required:
                region, _, scheme = entry.key.split(":")[0].partition("/")
                errors.fail(rows, tr(f"{label}：{entry.start} 起缺失 — {first_sentence(entry.missing)}"
                                     f"（{entry.key}；检索记录：`ybcalc tables show {region} --scheme {scheme}`）",
                                     f"{label}: missing from {entry.start} — {first_sentence(entry.missing)} "
                                     f"({entry.key}; what was searched: `ybcalc tables show {region} --scheme {scheme}`)")
                            + _assume_hint(param.path, label))
            continue
        out["_entry"][pos] = entry.uid
        sub = subset(attrs, rows)
        for name, default in fields.items():
            if name not in entry.raw:
                if name == "segments" and "rates" in entry.raw:
                    out[name][pos, 0] = 0
                    out[name][pos, 1:] = INF_FEN
                continue
            fv = entry.fields.get(name, entry.raw[name])
            if hasattr(fv, "evaluate"):
                vals, rule = fv.evaluate(sub, len(rows))
                unmatched = rule < 0
                if unmatched.any():
                    bad_pos = np.flatnonzero(unmatched)
                    errors.fail(rows[bad_pos], np.array(
                        [tr(f"{label}：{entry.key}.{name} 没有适用于这张账单的规则（{d}）",
                            f"{label}: no rule of {entry.key}.{name} matches this bill ({d})") + _fill_group(d, fv)
                         # a 乙类 share sourced for some item kinds only: an assumption covers the others
                         + (_assume_hint(param.path, label) if param.path == "selfpay_prop" else "")
                         for d in _describe_rows(sub, bad_pos)], dtype=object))
                if name == "rates":
                    vals2 = np.zeros((len(rows), out[name].shape[1]), np.int64)
                    vals2[:, : vals.shape[1]] = vals
                    vals = vals2
                out[name][pos] = vals
                out[f"_rule_{name}"][pos] = rule
            elif name == "segments":
                seg = np.full(out[name].shape[1], INF_FEN, np.int64)
                seg[: len(fv)] = [round(float(x) * 100) for x in fv]
                out[name][pos] = seg
            elif isinstance(fv, (list, dict, tuple)):
                # list-valued fields (nth_factor, base, applies_to, pays …): one object per row
                col = np.empty(len(pos), dtype=object)
                col.fill(fv)
                out[name][pos] = col
            else:
                out[name][pos] = fv
        if entry.adjust:
            target = "ratio" if "rates" in fields else "amount"
            key = "rates" if "rates" in fields else next(iter(k for k in fields if k == "amount"), None)
            if key is not None:
                vals, applied = apply_adjustments(out[key][pos], entry.adjust, sub, len(rows), target)
                out[key][pos] = vals
                mask = np.zeros(len(rows), np.int64)
                for j, m in enumerate(applied):
                    mask |= m.astype(np.int64) << j
                out["_adjust"][pos] = mask
    return out


def _user_missing(entry) -> tuple[str, str]:
    """(Chinese, English) of why a user's entry is missing: the placeholders left, or their own note."""
    text = str(entry.missing)
    if text.startswith("用户表未填写："):
        holes = text.split("：", 1)[1]
        return f"用户表未填写：{holes}", f"not filled in: {holes}"
    return first_sentence(text), first_sentence(text)


def _assume_hint(path: str, label: str) -> str:
    """" — or state a value: --assume 攀枝花:住院起付线=<元>" for a parameter an assumption can fill."""
    from ..assume import assume_hint
    hint = assume_hint(path, label.split(" ")[0])
    from ..i18n import tr
    return tr(f"——或给出假设值：{hint}", f" — or state a value: {hint}") if hint else ""


def _fill_group(described: str, value) -> str:
    """What to do when the rules name member groups and the bill gives none: fill the column."""
    if "psn_type=," in described + "," and any("psn_type" in r.when for r in value.rules):
        from ..i18n import tr
        return tr(" — 请填写人员类别（psn_type）", " — fill in the member group (psn_type)")
    return ""


def first_sentence(text: str, limit: int = 120) -> str:
    """The opening of a ``missing`` note: enough to say what is missing (the full research note, often a
    paragraph, stays in the table for ``ybcalc tables show``)."""
    import re
    t = " ".join(str(text).split())
    m = re.search(r"[。；;]|\.(\s|$)", t)
    head = (t[: m.start() + 1] if m else t).rstrip(";；")
    return head if len(head) <= limit else head[: limit - 1].rstrip() + "…"


DESCRIBED = ("psn_type", "contrib_tier", "hosp_lv", "age", "psn_idet_type", "med_type", "fil_type", "hosp_type")


def _describe_rows(attrs, pos: np.ndarray) -> np.ndarray:
    """Each row's own description (``_describe_attrs``), written once per distinct combination."""
    combined = np.zeros(len(pos), np.int64)
    for k in DESCRIBED:
        if k in attrs:
            codes, uniques = pd.factorize(np.asarray(attrs[k])[pos], use_na_sentinel=False)
            combined = pd.factorize(combined * max(len(uniques), 1) + codes)[0]
    _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
    texts = np.array([_describe_attrs(attrs, int(pos[i])) for i in first], dtype=object)
    return texts[inverse.reshape(-1)]


def _describe_attrs(attrs: dict, i: int) -> str:
    parts = []
    for k in DESCRIBED:
        if k in attrs:
            v = attrs[k][i]
            if isinstance(v, float) and np.isnan(v):
                v = tr("未知", "unknown")
            parts.append(f"{k}={v}")
    return tr("，", ", ").join(parts)

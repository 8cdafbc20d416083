"""The library interface: load policies, settle bills, read the result."""
from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from . import codes
from .i18n import tr
from .engine.settle import settle_prepared
from .inputs import BillError, prepare
from .labels import SETTLEMENT_FIELDS, relabel_columns
from .money import fen_text, fen_to_yuan
from .policy.loader import PolicyBook, load_book
from .policy.model import SchemeTable

SETTLEMENT_COLUMNS = list(SETTLEMENT_FIELDS)
ID_COLUMNS = ["mdtrt_id", "psn_no", "setl_time", "insuplc", "insutype", "med_type"]


@lru_cache(maxsize=8)
def _cached_book(root: str | None, signature) -> PolicyBook:
    return load_book(root)


def _files_signature(path: str | Path) -> tuple:
    """Names, sizes and times of a tables folder's files: a user editing their table between two calls
    gets the edited table, not the cached one."""
    p = Path(path)
    files = sorted(p.rglob("*.y*ml")) if p.is_dir() else [p] if p.exists() else []
    return tuple((f.as_posix(), f.stat().st_mtime_ns, f.stat().st_size) for f in files)


def load_tables(path: str | Path | None = None) -> PolicyBook:
    """All policy tables, validated (raises ``TableError`` listing every problem).

    ``path``: your own tables folder (e.g. ``"ybcalc-tables"``, made with ``ybcalc tables new``), laid
    over the shipped tables; a complete copy of ``tables/`` is used alone.
    """
    return _cached_book(str(path) if path else None, _files_signature(path) if path else ())


@dataclass
class Policy:
    """One region × scheme, optionally pinned to a date (``on``) instead of each bill's own date."""
    book: PolicyBook
    table: SchemeTable
    on: dt.date | None = None

    @property
    def region(self) -> str:
        return self.table.region

    @property
    def scheme(self) -> str:
        return self.table.scheme

    def __repr__(self) -> str:
        on = f" on {self.on}" if self.on else ""
        return f"<Policy {self.table.title} ({self.table.key}){on}>"


def load_policy(region: str, insutype: str = "职工", on=None, tables: str | Path | None = None,
                assume=None) -> Policy:
    """``load_policy("北京", insutype="职工", on="2025-06-01")``.

    ``region`` is an id, Chinese name, alias or 6-digit code; ``insutype`` is 职工/居民 or 310/390.
    ``assume``: values for parameters without a sourced value, e.g. ``["乙类先行自付=0.10"]`` (see
    ``ybcalc.assume``); every bill settled with one says so.
    """
    book = load_tables(tables)
    if assume:
        from .assume import with_assumptions
        book = with_assumptions(book, assume)
    rid = book.region_id(region)
    if rid is None:               # a county code of a known region, or: no table yet / the nearest names
        from .divisions import REGION, region_lookup
        found = region_lookup(book, region, REGION)
        if found.region is None:
            raise KeyError(found.reject)
        rid = found.region
    scheme = codes.parse_insutype(insutype)
    if scheme is None:
        raise ValueError(f"unknown insutype {insutype!r}: use 职工/居民 or 310/390")
    table = book.table(rid, scheme)
    on_date = pd.Timestamp(on).date() if on is not None else None
    return Policy(book, table, on_date)


def _date_codes(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(number per date, '2025-03-01' per distinct date): each text written once (a batch has a few
    hundred dates)."""
    uniq, inverse = np.unique(days, return_inverse=True)
    return inverse.reshape(-1), np.datetime_as_string(uniq, unit="D").astype(object)


def _date_texts(days: np.ndarray) -> np.ndarray:
    """'2025-03-01' per date."""
    codes_, texts = _date_codes(days)
    return texts[codes_]


def _categories(values: pd.Series, label=None) -> pd.Categorical:
    """A column of few distinct values as categories; ``label`` gives the text of each value."""
    v = values.array
    if isinstance(v, pd.Categorical):
        codes_, uniq = v.codes, v.categories.to_numpy(dtype=object)
    else:
        codes_, uniq = pd.factorize(values.to_numpy(dtype=object))
    if label is not None:
        uniq = np.array([label(u) for u in uniq], dtype=object)
        if len(set(uniq)) < len(uniq):                     # two values with one label: one category
            labelled = np.where(codes_ >= 0, uniq[np.maximum(codes_, 0)] if len(uniq) else None, None)
            codes_, uniq = pd.factorize(labelled)
    return pd.Categorical.from_codes(codes_, pd.Index(uniq, dtype=object))


def tables_version(book: PolicyBook) -> str:
    """Short hash of the table files' contents: identifies the exact policy data used."""
    h = hashlib.sha256()
    for p in sorted(Path(book.root).rglob("*.yaml")):
        h.update(p.relative_to(book.root).as_posix().encode())
        h.update(p.read_bytes())
    for layer in getattr(book, "overlay_paths", []):      # the user's tables laid over them
        layer = Path(layer)
        for p in sorted(layer.rglob("*.y*ml")) if layer.is_dir() else [layer]:
            h.update(b"user:" + (p.relative_to(layer).as_posix() if layer.is_dir() else p.name).encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:8]


class Settlement:
    """The result of settling bills: one row per bill (``bills``), the lines, and explanations."""

    def __init__(self, bills: pd.DataFrame, lines: pd.DataFrame, book: PolicyBook, rejects: pd.DataFrame,
                 errors: pd.Series):
        self.raw = bills          # fen amounts and every intermediate column
        self.lines_raw = lines
        self.book = book
        self.rejects = rejects
        self.errors = errors

    # ---- tables for people ------------------------------------------------------------------
    def bills(self, lang: str = "en", intermediate: bool = False, money: str = "decimal",
              text: str = "str") -> pd.DataFrame:
        """One row per bill: ids, the settlement fields in yuan, policy version, warnings.

        ``money``: "decimal" (Decimal objects, exact), "text" ("1234.50", for CSV) or "fen" (int64).
        ``text``: "str" (pandas' text type), "object" (Python strings) or "category" (the columns that
        repeat — dates, region, visit type, policy version, warnings — as categories, ids as Python
        strings: what the file writers take, each distinct text encoded, checked and sent once).
        """
        b = self.raw
        region_label = {r: self.book.region_label(r) for r in pd.unique(b["region"])}
        scheme_label = {k: v[0] for k, v in codes.SCHEME_LABEL.items()}
        # zh: codes as words (医疗类别 普通住院, not 21; 待遇类别 住院, not inpatient); en: the national codes
        med_word = (lambda m: codes.MED_TYPE_LABEL.get(m, (m,))[0]) if lang == "zh" else None
        benefit_word = (lambda x: codes.BENEFIT_LABEL.get(x, (x,))[0]) if lang == "zh" else None
        combo, versions = self._policy_version_codes()
        if text == "category":
            # built from codes, never from one Python string per bill: what the writers take
            day, days = _date_codes(b["setl_date"].to_numpy("datetime64[D]"))
            out = pd.DataFrame({
                "mdtrt_id": pd.Series(b["mdtrt_id"].to_numpy(dtype=object), dtype=object),
                "psn_no": pd.Series(b["psn_no"].to_numpy(dtype=object), dtype=object),
                "setl_time": pd.Categorical.from_codes(day, pd.Index(days, dtype=object)),
                "insuplc": _categories(b["region"], region_label.get),
                "insutype": _categories(b["scheme"], lambda s: scheme_label.get(s, s)),
                "med_type": _categories(b["med_type"], med_word), "benefit": _categories(b["benefit"], benefit_word),
            })
        else:
            out = pd.DataFrame({
                "mdtrt_id": b["mdtrt_id"], "psn_no": b["psn_no"],
                "setl_time": pd.Series(_date_texts(b["setl_date"].to_numpy("datetime64[D]")), dtype=object),
                "insuplc": b["region"].map(region_label),
                "insutype": b["scheme"].map(scheme_label),
                "med_type": b["med_type"].map(med_word) if med_word else b["med_type"],
                "benefit": b["benefit"].map(benefit_word) if benefit_word else b["benefit"],
            })
        for c in SETTLEMENT_COLUMNS:
            fen = b[c].to_numpy(np.int64)
            out[c] = (fen if money == "fen" else fen_text(fen) if money == "text"
                      else [fen_to_yuan(v) for v in fen])
        if "catalogue_lines" in b.columns:       # lines classed by the item catalogue (--catalogue)
            out["catalogue_lines"] = b["catalogue_lines"].to_numpy(np.int64)
        if text == "category":
            out["policy_version"] = pd.Categorical.from_codes(combo, pd.Index(versions, dtype=object))
            out["warnings"] = _categories(b["warnings"])
            if "notes" in b:
                out["notes"] = _categories(b["notes"])
        else:
            out["policy_version"] = pd.Series(versions[combo] if len(b) else versions, index=out.index, dtype=object)
            out["warnings"] = pd.Series(b["warnings"].to_numpy(dtype=object), index=out.index, dtype=object)
            if "notes" in b:
                out["notes"] = pd.Series(b["notes"].to_numpy(dtype=object), index=out.index, dtype=object)
        if "member_eligible" in b.columns:               # a members file was given (issue 17)
            from .members import eligibility_texts
            elig = eligibility_texts(b, lang)
            out["eligibility"] = (pd.Categorical(elig) if text == "category"
                                  else pd.Series(elig, index=out.index, dtype=object))
            from .members import account_payer_texts        # which account paid: 本人 / 共济：<payer>
            paid_by = account_payer_texts(b, lang)
            out["acct_paid_by"] = (pd.Categorical(paid_by) if text == "category"
                                   else pd.Series(paid_by, index=out.index, dtype=object))
            from .members import critical_illness_cap_texts  # the 大病 cap in force, rewards included
            cap = critical_illness_cap_texts(b, lang)
            out["hifmi_cap"] = (pd.Categorical(cap) if text == "category"
                                else pd.Series(cap, index=out.index, dtype=object))
        if "claim_status" in b.columns:                  # the input said how bills were settled (手工报销)
            from .claims import claim_texts
            filed = claim_texts(b, self.book, lang)
            out["claim_in_time"] = (pd.Categorical(filed) if text == "category"
                                    else pd.Series(filed, index=out.index, dtype=object))
        # the engine keeps text as object or categories: output pandas' text type (or Python strings)
        for c in (out.columns if text != "category" else []):
            if c in SETTLEMENT_COLUMNS:
                continue
            if isinstance(out[c].dtype, pd.CategoricalDtype):
                out[c] = out[c].astype(str if text == "str" else object)
            elif out[c].dtype == object and text == "str":
                out[c] = out[c].astype(str)
        if intermediate:
            extra = [c for c in b.columns if c not in out.columns and c not in ("setl_date",)]
            out = pd.concat([out, b[extra]], axis=1)
        if lang == "zh":
            out.columns = relabel_columns(out.columns, "zh")
        return out

    def policy_versions(self) -> np.ndarray:
        """``<table>@<latest entry date used>#<tables hash>`` per bill, e.g. beijing/employee@2023-01-01#7b5a5d91;
        ``+user:<files>`` follows where the user's own table files were laid over the table."""
        combo, texts = self._policy_version_codes()
        return texts[combo] if len(self.raw) else np.empty(0, dtype=object)

    def _policy_version_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(number per bill, distinct policy versions): few versions over many bills, each built once."""
        b = self.raw
        version = tables_version(self.book)
        starts = np.array([np.datetime64(e.start, "D") for e in self.book.entries] + [np.datetime64("NaT")],
                          dtype="datetime64[D]")
        latest = np.full(len(b), np.datetime64("NaT"), dtype="datetime64[D]")
        for c in (c for c in b.columns if c.endswith("_entry")):
            uid = b[c].fillna(-1).to_numpy(np.int64)
            d = starts[np.where(uid >= 0, uid, len(starts) - 1)]
            latest = np.where(np.isnat(latest) | (d > latest), d, latest)
        # few distinct (table, date) pairs over many bills: build each text once
        table_code, tables = pd.factorize(np.asarray(b["table"], dtype=object))
        day_code, days = pd.factorize(latest.astype("datetime64[D]").view(np.int64))
        combo, uniq = pd.factorize(table_code.astype(np.int64) * (len(days) + 1) + day_code)
        # a table the user's own files were laid over says so, with the files' names
        user_tag = {f"{k[0]}/{k[1]}": "+user:" + ",".join(t.user_files)
                    for k, t in self.book.tables.items() if getattr(t, "user_files", None)}
        texts = []
        for u in uniq:
            t, d = divmod(int(u), len(days) + 1)
            day = np.int64(days[d]).view("datetime64[D]") if len(days) else np.datetime64("NaT")
            texts.append(f"{tables[t]}{'' if np.isnat(day) else '@' + str(day)}#{version}{user_tag.get(tables[t], '')}")
        texts = np.array(texts, dtype=object)
        if "assumptions" in b.columns:          # values the user assumed (--assume): "…+assume:selfpay_prop=0.1"
            a_code, a_texts = pd.factorize(np.asarray(b["assumptions"], dtype=object))
            combo, pairs = pd.factorize(combo.astype(np.int64) * (len(a_texts) + 1) + a_code)
            texts = np.array([texts[p // (len(a_texts) + 1)] + (f"+assume:{a_texts[p % (len(a_texts) + 1)].replace('; ', ',')}"
                                                                  if a_texts[p % (len(a_texts) + 1)] else "")
                              for p in pairs], dtype=object)
        return combo, texts

    def __len__(self) -> int:
        return len(self.raw)

    def totals(self) -> dict:
        return {c: fen_to_yuan(self.raw[c].sum()) for c in SETTLEMENT_COLUMNS}

    def __getitem__(self, field: str):
        """``result["hifp_pay"]``: the field for a one-bill settlement (Decimal yuan)."""
        if len(self.raw) != 1:
            raise ValueError("indexing by field needs a one-bill settlement; use .bills()")
        return fen_to_yuan(self.raw[field].iat[0])

    def explain(self, mdtrt_id: str | None = None, lang: str = "zh"):
        """Step-by-step explanation of one bill (the only bill when ``mdtrt_id`` is None)."""
        from .explain import explain_bill
        if mdtrt_id is None:
            if len(self.raw) != 1:
                raise ValueError(tr(f"结算了 {len(self.raw)} 张账单：请用 mdtrt_id= 指定一张",
                                    f"{len(self.raw)} bills settled: name one with mdtrt_id="))
            mdtrt_id = self.raw["mdtrt_id"].iat[0]
        return explain_bill(self, str(mdtrt_id), lang)

    def _repr_html_(self):
        return self.bills(lang="zh").to_html(index=False)

    def __repr__(self) -> str:
        return f"<Settlement of {len(self.raw)} bill(s); totals {self.totals()}>"


def policy_inputs(policy, assume=None, catalogue=None):
    """The policy to settle with and the item catalogue, as ``settle`` and ``score_frame`` take them:
    ``policy`` None is the shipped tables and a path the user's folder laid over them; stated
    assumptions (``assume``) fill values that have no source; ``catalogue`` a path, frame or loaded one."""
    if policy is None or isinstance(policy, (str, Path)):
        policy = load_tables(policy)
    if assume:
        from .assume import with_assumptions
        policy = with_assumptions(policy, assume)
    if catalogue is not None:
        from .catalogue import load_catalogue
        catalogue = load_catalogue(catalogue)
    return policy, catalogue


def settle(lines, policy: Policy | PolicyBook | None = None, *, accounts=None, state=None, on=None,
           source: str = "<lines>", strict: bool = True, assume=None, catalogue=None, members=None) -> Settlement:
    """Settle itemized lines (a DataFrame, or a list of dicts) — one bill or many.

    ``policy``: a ``Policy`` (its region/scheme fill lines that do not name them; its ``on`` date pins
    the rules), the whole ``PolicyBook`` (lines name their region and scheme), or the path of your own
    tables folder (laid over the shipped tables, as ``load_tables(path)``). ``accounts``: personal
    account balances, a mapping psn_no -> yuan or a number for a one-member batch. ``state``: a frame
    of year-to-date amounts per member (see ``ybcalc.batch``). ``strict``: raise on any bad line or
    missing parameter; otherwise they are returned in ``Settlement.rejects`` / ``.errors``.
    ``assume``: values for parameters without a sourced value (``["乙类先行自付=0.10"]``, see
    ``ybcalc.assume``). ``catalogue``: an item catalogue (file, DataFrame or ``load_catalogue``'s result)
    that lines lacking 收费项目等级 / 自付比例 / 限价 take them from.
    ``members``: enrolment spans (a members file path, a DataFrame or ``ybcalc.members.read_members``):
    a bill outside its member's spans or in a waiting period gets no fund payment.
    """
    if isinstance(lines, (list, tuple)):
        lines = pd.DataFrame(list(lines))
    elif isinstance(lines, dict):
        lines = pd.DataFrame(lines)
    policy, catalogue = policy_inputs(policy, assume, catalogue)
    book = policy.book if isinstance(policy, Policy) else policy
    default_region = policy.region if isinstance(policy, Policy) else None
    default_scheme = policy.scheme if isinstance(policy, Policy) else None
    if on is None and isinstance(policy, Policy) and policy.on is not None:
        on = policy.on
    if members is not None:
        from .members import read_members
        members = read_members(members, book)
    prepared = prepare(lines, source=source, book=book, default_region=default_region,
                       default_scheme=default_scheme, require_date=on is None, catalogue=catalogue, members=members)
    if strict and len(prepared.rejects):
        raise BillError(prepared.rejects, source)
    if isinstance(policy, Policy):
        other = prepared.lines[(prepared.lines["region"] != policy.region) |
                               (prepared.lines["scheme"] != policy.scheme)]
        if len(other):
            raise ValueError(f"{source}: {len(other)} line(s) belong to another region/scheme than {policy!r} "
                             f"(first: mdtrt_id {other['mdtrt_id'].iat[0]}); pass ybcalc.load_tables() instead")
    st = _state_frame(accounts, state, prepared.lines)
    bills, out_lines, errors = settle_prepared(prepared.lines, book, on=on, state=st, members=members)
    if strict and len(errors):
        raise SettlementError(errors)
    return Settlement(bills, out_lines, book, prepared.rejects, errors)


def parameters(lines, policy: Policy | PolicyBook | None = None, *, on=None, assume=None) -> pd.DataFrame:
    """One row per bill: the table values it is settled with (起付线, 分段比例, 封顶线, 大病/大额,
    异地 terms), and ``missing``, what would stop it from settling.

    Values that cannot be resolved are None. Amounts are Decimal yuan, ratios Decimal (0.85);
    ``ratio_rates``/``ratio_segments`` are lists (segment lower bounds in yuan on the table's basis).
    ``deductible`` is the table amount with its adjustments, before nth-admission and 异地 factors.
    """
    from decimal import Decimal
    from .engine.settle import resolve_parameters
    from .money import INF_FEN, PPM
    if isinstance(lines, (list, tuple, dict)):
        lines = pd.DataFrame(list(lines) if not isinstance(lines, dict) else lines)
    if policy is None or isinstance(policy, (str, Path)):
        policy = load_tables(policy)       # None: the shipped tables; a path: the user's folder over them
    if assume:
        from .assume import with_assumptions
        policy = with_assumptions(policy, assume)
    book = policy.book if isinstance(policy, Policy) else policy
    if on is None and isinstance(policy, Policy) and policy.on is not None:
        on = policy.on
    prepared = prepare(lines, book=book, default_region=policy.region if isinstance(policy, Policy) else None,
                       default_scheme=policy.scheme if isinstance(policy, Policy) else None,
                       require_date=on is None)
    if len(prepared.rejects):
        raise BillError(prepared.rejects, "<lines>")
    bills, P, errors = resolve_parameters(prepared.lines, book, on=on)

    def yuan(fen, ok):
        return [fen_to_yuan(int(f)) if k and f < INF_FEN // 2 else (None if not k else "unlimited")
                for f, k in zip(fen, ok)]

    def ratio(ppm):
        return Decimal(int(ppm)) / PPM

    def listed(seg, rates, ok, width_from):
        out_s, out_r = [], []
        for srow, rrow, k, w in zip(seg, rates, ok, width_from):
            if not k:
                out_s.append(None)
                out_r.append(None)
                continue
            used = [i for i in range(len(srow)) if i == 0 or srow[i] < INF_FEN // 2]
            out_s.append([fen_to_yuan(int(srow[i])) for i in used])
            out_r.append([ratio(rrow[i]) for i in used])
        return out_s, out_r

    d_ok = P["deductible_entry"] >= 0
    r_ok = P["ratio_entry"] >= 0
    c_ok = P["cap_entry"] >= 0
    out = pd.DataFrame({"mdtrt_id": bills["mdtrt_id"].astype(str), "region": bills["region"].astype(str),
                        "scheme": bills["scheme"].astype(str), "benefit": bills["benefit"].astype(str),
                        "policy_date": pd.Series(bills["policy_date"].to_numpy("datetime64[D]")).astype(str)})
    out["deductible"] = yuan(P["deductible_amount"], d_ok)
    out["deductible_basis"] = np.where(d_ok, P["deductible_basis"], None)
    segs, rates = listed(P["ratio_segments"], P["ratio_rates"], r_ok, r_ok)
    out["ratio_segments"] = segs
    out["ratio_rates"] = rates
    out["cap"] = yuan(P["cap_amount"], c_ok)
    away = P["ooa_entry"] >= 0
    out["ooa_rate_add"] = [ratio(v) if k else None for v, k in zip(P["ooa_add"], away)]
    out["ooa_rate_factor"] = [ratio(v) if k else None for v, k in zip(P["ooa_factor"], away)]
    out["ooa_rate"] = [ratio(v) if k and v >= 0 else None for v, k in zip(P["ooa_rate"], away)]
    out["ooa_deductible"] = [fen_to_yuan(int(v)) if k and v >= 0 else None for v, k in zip(P["ooa_deductible"], away)]
    for payer, arrs in P["programs"]:
        ok = arrs["active"]
        out[f"{payer}_threshold"] = yuan(arrs["threshold"], ok)
        segs, rates = listed(arrs["segments"], arrs["rates"], ok, ok)
        out[f"{payer}_segments"] = segs
        out[f"{payer}_rates"] = rates
        out[f"{payer}_cap"] = yuan(arrs["cap"], ok)
    out["missing"] = [e or "" for e in errors.error]
    return out


class SettlementError(ValueError):
    """Bills could not be settled (e.g. a parameter the bill needs has no sourced value)."""

    def __init__(self, errors: pd.Series):
        self.errors = errors
        lines = [f"  bill {k}: {v}" for k, v in list(errors.items())[:20]]
        more = f"\n  … and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} bill(s) cannot be settled:\n" + "\n".join(lines) + more)


def _state_frame(accounts, state, lines: pd.DataFrame) -> pd.DataFrame | None:
    """Merge account balances and year-to-date state into one frame of fen, keyed by psn_no."""
    frames = []
    if accounts is not None:
        if isinstance(accounts, (int, float, str)) or hasattr(accounts, "as_tuple"):
            members = pd.unique(lines["psn_no"])
            accounts = {m: accounts for m in members}
        if isinstance(accounts, dict):
            accounts = pd.DataFrame({"psn_no": list(accounts), "acct_balance": list(accounts.values())})
        frames.append(accounts)
    if state is not None:
        frames.append(state)
    if not frames:
        return None
    from .money import yuan_to_fen
    out = None
    for f in frames:
        f = f.copy()
        f["psn_no"] = f["psn_no"].astype(str).str.strip()
        if f["psn_no"].duplicated().any():
            raise ValueError(f"member state: psn_no {f.loc[f['psn_no'].duplicated(), 'psn_no'].iat[0]!r} "
                             f"appears more than once (give one row per member)")
        for c in f.columns:
            if c != "psn_no" and c != "year":
                if c.endswith("admissions"):
                    f[c] = f[c].astype(np.int64)
                else:
                    f[c] = [yuan_to_fen(v) for v in f[c]]
        out = f if out is None else out.merge(f, on="psn_no", how="outer")
    return out.fillna(0)

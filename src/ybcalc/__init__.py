"""ybcalc: itemized Chinese hospital bills → what basic medical insurance really pays.

    import ybcalc
    policy = ybcalc.load_policy("北京", insutype="职工", on="2025-06-01")
    result = ybcalc.settle(bill_lines, policy)
    print(result.explain())
"""
from .api import (Policy, Settlement, SettlementError, load_policy, load_tables, parameters,  # noqa: F401
                  settle, tables_version)
from .batch import score  # noqa: F401  (one row per bill for a DataFrame of lines)
from .inputs import BillError  # noqa: F401
from .policy.schema import TableError  # noqa: F401

__version__ = "0.1.0"
__all__ = ["BillError", "Policy", "Settlement", "SettlementError", "TableError", "load_policy", "load_tables",
           "parameters", "score", "settle", "tables_version"]

"""Acquisition: candles → triple-barrier labels and causal features → walk-forward prediction blobs.

Pure logic, no Dagster: ``market_data`` (load and check candles), ``labels``, ``features``,
``folds``, ``families``, ``screening`` (PTE grid), ``hpo``, ``pipeline`` (``acquire``). The
Dagster assets that call them live in ``assets.py``.
"""

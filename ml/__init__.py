"""Churn and engagement-segment models: labels, features, training, registry, scoring, monitoring.

One module per stage of a model's life (see ``ml/README.md``). Nothing here has side effects at
import: tracking URIs, thresholds and the warehouse's store (``warehouse.store.open_store``)
arrive as function arguments, from ``config.load_settings()`` in each module's ``main()`` or in
``pipeline/model_tasks.py``.
"""

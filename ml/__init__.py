"""Churn and engagement-segment models: labels, features, training, registry, scoring, monitoring.

One module per stage of a model's life (see ``ml/README.md``). Nothing here has side effects at
import: tracking URIs, database paths and thresholds arrive as function arguments from
``config.load_settings()`` in each module's ``main()``.
"""

"""Monitoring: Prometheus metrics (``collector``, ``exposition``), the
ETA's drift check (``drift``) and the log records' format, text or JSON
lines (``logs``).

``prometheus_client`` is imported by the submodules only, and they only by
``serve`` and by ``worker --metrics-port``: read commands never load it.
"""

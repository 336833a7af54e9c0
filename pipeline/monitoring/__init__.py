"""Monitoring: Prometheus metrics (``collector``, ``exposition``) and the
ETA's drift check (``drift``).

``prometheus_client`` is imported by the submodules only, and they only by
``serve`` and by ``worker --metrics-port``: read commands never load it.
"""

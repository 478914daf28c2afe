"""The performance benchmark (python -m signal_freshdesk_dev.bench; see run.py).

Imports nothing: child.py imports naive.py (the naive baseline) from here while its cold-start clock runs.
"""

"""Everything that decides: mapping, consent, outcomes, timing, and the ingest and retry flows.

The core talks to the outside only through the Protocols in `ports`; it imports no adapter and no
boto3, botocore or urllib3 (tests/unit/test_architecture.py holds it to that).
"""

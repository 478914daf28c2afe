"""Security tests: hostile input, webhook authentication, request limits, privacy of the logs, TLS."""

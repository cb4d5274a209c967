"""Simulators of the outside systems (SYSPRO, Mailchimp) for tests, the demo and benchmarks.

They are tools, not part of the product path: no module under ``shared`` or ``services`` imports them.
"""

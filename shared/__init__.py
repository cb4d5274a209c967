"""ml-connector's contract and plumbing: events, topics, codec, settings, Kafka helpers, logging, metrics.

No business rules live here, and nothing here imports a service.
"""

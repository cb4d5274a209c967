"""The audit service: every event in SQL, the read models an operator asks about, and replay.

Shell: ``app`` (Kafka consumer + API mount). Pure: ``projection`` (records -> rows), ``sync_state``,
``aggregates``, ``timeline``. Adapters: ``store`` (write path), ``database`` (engines, migrations),
``queries`` and ``reconcile`` (read models), ``api`` (HTTP), ``replay`` and ``offsets`` (Kafka writes),
``cli``/``cli_replay``/``render`` (command line). Decisions: docs/adr/0040-0042.
"""

"""The rebalancing daemon: recommendations in, migrations under limits and automation levels.

``policy`` (automation levels, per-VM overrides, the reloadable file), ``limits`` (concurrency,
rate, cooldowns, holds, back-off), ``picture`` (current data and the checks before a move),
``executor`` (parallel execution, the timeline), ``core`` (decisions and approvals, no
Kafka) and ``service`` (the Kafka loop).
"""

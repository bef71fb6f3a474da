"""Collectors: one subpackage per platform, and the event schema they all publish.

Collectors turn a platform (trace replay, vSphere, OpenStack) into xdrs events and apply
migrations on it. They publish through a :class:`collectors.events.Sink`, so the Kafka
client stays out of the platform code and tests can capture events in a list.
"""

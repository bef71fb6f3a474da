"""Collectors: one subpackage per platform, and the event schema they all publish.

Collectors turn a platform (trace replay, vSphere, OpenStack) into xdrs events and apply
migrations on it. Each platform lives in its own subpackage and imports its SDK only there,
so the placement core installs and tests without any of them. They publish through a
:class:`collectors.events.Sink`, so the Kafka client stays out of the platform code.
"""

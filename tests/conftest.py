"""Suite-wide test set-up.

The markers (``broker``, ``kafka``, ``vcsim``, ``prometheus``) are declared in
pyproject.toml; a ``kafka`` test talks to a broker too, so it carries ``broker`` as well.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("kafka") is not None:
            item.add_marker(pytest.mark.broker)

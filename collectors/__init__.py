"""Platform collectors: inventory, metrics and the migration call of each platform.

Each platform lives in its own subpackage and imports its SDK only there, so the placement
core installs and tests without any of them.
"""

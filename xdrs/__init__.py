"""xdrs: the command line and file I/O around the pure placement core (``placement``).

``xdrs.snapshot`` reads and writes ``drs-peer-cluster/1`` snapshots, ``xdrs.actions`` writes
and replays action lists, and ``xdrs.cli`` is the ``xdrs`` command.
"""

"""Platform commands of the ``xdrs`` command."""

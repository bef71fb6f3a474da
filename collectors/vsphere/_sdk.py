"""pyvmomi, seen by the type checker as dynamic.

pyvmomi's bundled hints type managed-object properties as optional and faults as
non-exceptions, which fights every call; the adapter treats the SDK as dynamic here, in one
place, rather than cast at each use.
"""

from typing import Any

import pyVmomi
from pyVim import connect as _connect

vim: Any = pyVmomi.vim
vmodl: Any = pyVmomi.vmodl
SmartConnect: Any = _connect.SmartConnect
Disconnect: Any = _connect.Disconnect

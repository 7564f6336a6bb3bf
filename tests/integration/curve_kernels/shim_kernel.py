"""A real kernel for the CurveZMQ policy tests: the wrapper echo kernel behind a small shim.

``shim_kernel.py CONNECTION_FILE [copy=PATH] [mark=PATH] [ignore-keys=PATH]``:
``copy`` keeps a copy of the connection file (to know the keys a run used), ``mark`` notes
that the kernel was started, ``ignore-keys`` behaves like a kernel that predates CurveZMQ:
it drops the Curve keys (writing the rest to PATH) and binds in plain text.
"""

import json
import os
import shutil
import sys

connection_file = sys.argv[1]
for arg in sys.argv[2:]:
    what, _, path = arg.partition("=")
    if what == "copy":
        shutil.copy(connection_file, path)
    elif what == "mark":
        open(path, "w").close()
    elif what == "ignore-keys":
        with open(connection_file) as f:
            info = {k: v for k, v in json.load(f).items() if not k.startswith("curve_")}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        connection_file = path
os.execv(
    sys.executable,
    [sys.executable, "-m", "wrapper_kernel.examples.echo", "-f", connection_file],
)

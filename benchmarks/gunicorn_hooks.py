"""gunicorn config for the benchmark servers (``gunicorn -c benchmarks/gunicorn_hooks.py ...``).

After a worker has loaded the app, it writes a file named after its pid into ``$BENCH_READY_DIR``
holding its memory at that moment, so the runner knows when every worker is ready (gunicorn
workers load the app one by one after the fork, without ``--preload``) and what loading cost.
"""

import json
import os
from typing import Any


def post_worker_init(worker: Any) -> None:
    directory = os.environ.get("BENCH_READY_DIR")
    if not directory:
        return
    status = {}
    with open(f"/proc/{worker.pid}/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                status[key] = int(value.split()[0]) / 1024
    tmp = os.path.join(directory, f".{worker.pid}.tmp")
    with open(tmp, "w") as handle:
        json.dump(status, handle)
    os.replace(tmp, os.path.join(directory, str(worker.pid)))

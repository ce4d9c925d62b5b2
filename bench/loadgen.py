"""Load generator of ``platform_bench.py``: a separate process, so that the client's work is not the
orchestrator's and the orchestrator can sample memory and CPU meanwhile.

    BENCH_API_KEY=sk_test_… python bench/loadgen.py --base-url http://127.0.0.1:PORT

Reads one JSON command per line on stdin and answers one JSON line on stdout:

* ``{"op": "batch", "requests": [[method, path, body_index | null], ...], "bodies": [...],
  "concurrency": 8, "expect": 200, "collect": "id" | "*" | null, "prefix": "%PDF-" | null}``:
  ``concurrency`` threads, each with its own keep-alive HTTP/1.1 connection (opened before the clock
  starts), take the requests in order until none is left; an answer whose status is not ``expect`` or
  whose body does not start with ``prefix`` is a failure. Answer: ``{"latencies_ms": [...],
  "wall_s": …, "statuses": {...}, "failed": 0, "errors": [...], "collected": [...]}``; the latency of
  a request runs from sending it to having read the whole answer, ``wall_s`` from the release of the
  threads to the last answer.
* ``{"op": "exit"}``.

Only the standard library: what it costs per request is the client's cost, nothing else.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import sys
import threading
import time
import urllib.parse
from typing import Any


def run_batch(base_url: str, key: str, command: dict[str, Any]) -> dict[str, Any]:
    parsed = urllib.parse.urlsplit(base_url)
    requests = command["requests"]
    bodies = [json.dumps(body).encode() for body in command.get("bodies", [])]
    concurrency = max(1, min(int(command["concurrency"]), len(requests)))
    expect = int(command.get("expect", 200))
    collect = command.get("collect")
    prefix = (command.get("prefix") or "").encode()
    n = len(requests)
    latencies: list[float] = [0.0] * n
    statuses: list[int] = [0] * n
    collected: list[Any] = [None] * n
    ok: list[bool] = [False] * n
    errors: list[str] = []
    counter = itertools.count()  # next() on it is atomic under the GIL
    barrier = threading.Barrier(concurrency + 1)

    def worker() -> None:
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)
        conn.connect()
        barrier.wait()
        while (i := next(counter)) < n:
            method, path, body_index = requests[i]
            headers = {"X-API-Key": key}
            data = None
            if body_index is not None:
                data = bodies[body_index]
                headers["Content-Type"] = "application/json"
            started = time.perf_counter()
            try:
                conn.request(method, path, body=data, headers=headers)
                response = conn.getresponse()
                content = response.read()
            except (http.client.HTTPException, OSError) as exc:
                latencies[i] = (time.perf_counter() - started) * 1000
                statuses[i] = -1
                errors.append(f"{method} {path}: {exc!r}")
                conn.close()
                conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=300)
                continue
            latencies[i] = (time.perf_counter() - started) * 1000
            statuses[i] = response.status
            if response.status != expect or not content.startswith(prefix):
                if len(errors) < 5:
                    errors.append(f"{method} {path} -> {response.status}: {content[:500]!r}")
                continue
            ok[i] = True
            if collect == "*":
                collected[i] = json.loads(content)
            elif collect:
                collected[i] = json.loads(content)[collect]
        conn.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    counts: dict[str, int] = {}
    for status in statuses:
        counts[str(status)] = counts.get(str(status), 0) + 1
    return {
        "latencies_ms": latencies,
        "wall_s": wall,
        "statuses": counts,
        "failed": ok.count(False),
        "errors": errors,
        "collected": collected if collect else [],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    args = parser.parse_args()
    key = os.environ["BENCH_API_KEY"]
    for line in sys.stdin:
        command = json.loads(line)
        if command["op"] == "exit":
            break
        if command["op"] != "batch":
            raise SystemExit(f"unknown command {command['op']!r}")
        print(json.dumps(run_batch(args.base_url, key, command)), flush=True)


if __name__ == "__main__":
    main()

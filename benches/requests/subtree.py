"""Requests a sync of one chosen page's subtree makes (docs/BENCHMARKS.md,
"Requests per 1,000 pages"): starts `confsync sim --seed 1` with PAGES
pages in 10 spaces, picks the largest subtree of 30 to 120 pages from the
simulator's truth, runs `confsync sync --pages <its root>` into a new data
directory, and prints the sync's report and the simulator's requests by
operation (attachment downloads apart).

    python3 benches/requests/subtree.py <confsync binary> [PAGES=10000]
"""

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request


def main():
    binary = sys.argv[1]
    pages = sys.argv[2] if len(sys.argv) > 2 else "10000"
    env = {**os.environ, "RUST_LOG": "warn"}
    sim = subprocess.Popen(
        [binary, "sim", "--addr", "127.0.0.1:0", "--seed", "1", "--pages", pages, "--spaces", "10"],
        stdout=subprocess.PIPE, env=env,
    )
    data = tempfile.mkdtemp(prefix="confsync-subtree-")
    try:
        creds = json.loads(sim.stdout.readline())
        base = creds["base_url"]

        def get(path):
            return json.load(urllib.request.urlopen(base + path))

        truth = get("/_sim/truth?account=" + urllib.parse.quote(creds["email"]))["content"]
        children = collections.defaultdict(list)
        for entry in truth:
            if entry["type"] == "page" and entry.get("parent_id"):
                children[entry["parent_id"]].append(entry["id"])

        def subtree(root):
            seen, queue = set(), [root]
            while queue:
                page = queue.pop()
                if page not in seen:
                    seen.add(page)
                    queue.extend(children.get(page, []))
            return seen

        sizes = {e["id"]: len(subtree(e["id"])) for e in truth if e["type"] == "page"}
        root = max((i for i, n in sizes.items() if 30 <= n <= 120), key=lambda i: (sizes[i], i))
        print(f"root {root}, subtree of {sizes[root]} pages")
        urllib.request.urlopen(urllib.request.Request(base + "/_sim/stats/reset", method="POST"))
        out = subprocess.run(
            [binary, "sync", "--site", base, "--email", creds["email"], "--data-dir", data,
             "--pages", root],
            env={**env, "CONFSYNC_API_TOKEN": creds["api_token"]},
            capture_output=True, text=True, check=True,
        )
        print(out.stdout.strip().splitlines()[-1])
        ops = {op: n for op, n in get("/_sim/stats")["operations"].items() if "/download/" not in op}
        print(f"requests beyond downloads: {sum(ops.values())}")
        for op, n in sorted(ops.items()):
            print(f"{n:8} {op}")
    finally:
        sim.kill()
        sim.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()

"""confsync against LlamaIndex's and LangChain's Confluence loaders, at equal
work, on one simulated site, in one run.

    python compare.py --confsync target/release/confsync [--pages 10000]
                      [--spaces 10] [--runs 5] [--tools confsync,llamaindex,langchain]

Starts `confsync sim`, then runs each tool --runs times, interleaved (so
that the machine's noise falls on all alike), each as its own process:

- confsync: `confsync sync --content pages --spaces <keys>` into a new data
  directory each run (pages converted to Markdown, chunked and indexed);
- llamaindex, langchain: load.py, which loads every page of the same spaces.

Reports, per tool, the median wall time (process start to exit), pages/s,
requests per 1,000 pages (the simulator's count), peak RSS (the process's
own, from wait4) and pages obtained against the simulator's truth; then the
ratios to confsync. Prints a Markdown table for docs/BENCHMARKS.md.
"""

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def get(url, auth=None):
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def post(url):
    urllib.request.urlopen(urllib.request.Request(url, method="POST")).read()


def measured(argv, env=None):
    """Runs argv; returns (wall seconds, peak RSS in MB, stdout)."""
    out = tempfile.TemporaryFile()
    started = time.monotonic()
    child = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - started
    stderr = child.stderr.read().decode(errors="replace")
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"{argv[0]} failed ({child.returncode}):\n{stderr[-3000:]}")
    out.seek(0)
    return wall, usage.ru_maxrss / 1024, out.read().decode()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--confsync", required=True)
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--spaces", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tools", default="confsync,llamaindex,langchain")
    args = parser.parse_args()
    tools = args.tools.split(",")

    sim = subprocess.Popen(
        [args.confsync, "sim", "--addr", "127.0.0.1:0", "--seed", "1",
         "--pages", str(args.pages), "--spaces", str(args.spaces)],
        stdout=subprocess.PIPE, env={**os.environ, "RUST_LOG": "warn"},
    )
    try:
        creds = json.loads(sim.stdout.readline())
        run_all(args, tools, creds)
    finally:
        sim.kill()
        sim.wait()


def run_all(args, tools, creds):
    base, email, token = creds["base_url"], creds["email"], creds["api_token"]
    auth = f"{email}:{token}"
    spaces = get(f"{base}/wiki/api/v2/spaces?limit=250", auth)["results"]
    keys = sorted(s["key"] for s in spaces)
    truth = get(f"{base}/_sim/truth?account={urllib.parse.quote(email)}")["content"]
    true_pages = {c["id"] for c in truth if c["type"] == "page" and c["space_key"] in keys}
    print(f"site: {len(true_pages)} readable pages in {len(keys)} spaces; {args.runs} runs each",
          file=sys.stderr)

    results = {tool: [] for tool in tools}
    for run in range(args.runs):
        for tool in tools:
            post(f"{base}/_sim/stats/reset")
            if tool == "confsync":
                data = tempfile.mkdtemp(prefix="confsync-peers-")
                wall, rss, stdout = measured(
                    [args.confsync, "sync", "--site", base, "--email", email,
                     "--data-dir", data, "--content", "pages", "--spaces", ",".join(keys)],
                    env={**os.environ, "CONFSYNC_API_TOKEN": token, "RUST_LOG": "warn"},
                )
                shutil.rmtree(data, ignore_errors=True)
                report = json.loads(stdout.strip().splitlines()[-1])
                obtained = report["pages"]["added"]
                correct = obtained  # the sync tests check its content against the truth
            else:
                wall, rss, stdout = measured(
                    [sys.executable, os.path.join(HERE, "load.py"), tool, base, email, token, *keys]
                )
                loaded = json.loads(stdout.strip().splitlines()[-1])
                obtained = loaded["documents"]
                correct = len(set(loaded["ids"]) & true_pages)
            stats = get(f"{base}/_sim/stats")
            requests = stats["total"]
            results[tool].append(
                {"wall": wall, "rss": rss, "requests": requests, "obtained": obtained,
                 "correct": correct}
            )
            print(f"run {run + 1} {tool:>10}: {wall:6.2f} s, {requests} requests, "
                  f"{obtained} pages ({correct} true), peak RSS {rss:.0f} MB", file=sys.stderr)

    n = len(true_pages)
    base_wall = statistics.median(r["wall"] for r in results[tools[0]])
    print()
    print(f"| loader | wall time (median of {args.runs}) | pages/s | requests per 1,000 pages "
          f"| peak RSS | pages obtained / truth | time vs {tools[0]} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for tool in tools:
        rows = results[tool]
        wall = statistics.median(r["wall"] for r in rows)
        requests = statistics.median(r["requests"] for r in rows)
        rss = max(r["rss"] for r in rows)
        correct = min(r["correct"] for r in rows)
        print(f"| {tool} | {wall:.2f} s | {n / wall:,.0f} | {requests * 1000 / n:.1f} "
              f"| {rss:.0f} MB | {correct:,} / {n:,} | {wall / base_wall:.1f}× |")


if __name__ == "__main__":
    main()

"""Times the reports of bench/history.sh through the gateway (issue 19).

Usage: python3 bench/history-reports.py BASE_URL ADMIN_TOKEN

Right after a settlement (which empties the report cache): `/stats/top`
for the day, week and month of 2026-11-21, cold (20 requests, each a new
cache key: limit 1..20) and warm (50 repeats); `/revenues?period=month`
for creator 1000001 (10,000 videos) cold, then warm; the month's CSV for
creator 1000002 (100,000 videos). Prints one line per measure, in ms.
"""

import sys
import time
import urllib.request

base, token = sys.argv[1], sys.argv[2]


def get(path, accept="application/json"):
    request = urllib.request.Request(
        base + path, headers={"authorization": f"Bearer {token}", "accept": accept}
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        body = response.read()
        status = response.status
    elapsed = (time.perf_counter() - start) * 1000
    if status != 200:
        raise SystemExit(f"{path}: {status}")
    return elapsed, body


def summary(samples):
    samples = sorted(samples)
    p = lambda q: samples[min(len(samples) - 1, int(q * len(samples)))]
    return f"p50 {p(0.5):.1f}, p99 {p(0.99):.1f}, max {samples[-1]:.1f} ms (n={len(samples)})"


for period in ("day", "week", "month"):
    path = f"/api/v1/stats/top?metric=views&period={period}&date=2026-11-21"
    cold = [get(f"{path}&limit={limit}")[0] for limit in range(1, 21)]
    warm = [get(f"{path}&limit=5")[0] for _ in range(50)]
    print(f"top {period:5}: cold {summary(cold)}; warm {summary(warm)}")

path = "/api/v1/revenues?period=month&date=2026-11-21&creator_id=1000001"
cold, body = get(path)
warm = [get(path)[0] for _ in range(20)]
print(f"revenues month, 10,000 videos: cold {cold:.1f} ms ({len(body)} bytes); warm {summary(warm)}")

path = "/api/v1/revenues?period=month&date=2026-11-21&creator_id=1000002"
elapsed, body = get(path, accept="text/csv")
lines = body.count(b"\n")
print(f"revenues month CSV, 100,000 videos: {elapsed:.1f} ms, {len(body)} bytes, {lines} lines")

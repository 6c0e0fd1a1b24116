"""Load for the hostile-input benchmarks (issue 15), against a running
gateway on loopback. Bounded in count and time; stops by itself.

    python3 bench/hostile.py burst  --gateway URL --pid PID [--logins 200] [--rounds 2] [--idle 30]
    python3 bench/hostile.py import --gateway URL --admin-email E --admin-password P [--days 90000]

burst: signs one viewer up, then sends LOGINS concurrent logins ROUNDS times,
and prints the statuses, the slowest answer and the resident memory of PID
(before, peak while bursting, and after IDLE seconds of idle).

import: signs a creator in, uploads a video, then imports DAYS distinct days
of it (one CSV) while two threads keep playing videos and uploading, and
prints the import's time and the p50/p99/max of the plays and uploads made
during it.
"""

import argparse
import http.client
import json
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor


def connect(url):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def call(url, method, path, body=None, token=None, content_type="application/json", headers=None):
    conn = connect(url)
    h = dict(headers or {})
    if body is not None:
        h["content-type"] = content_type
    if token:
        h["authorization"] = f"Bearer {token}"
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    conn.request(method, path, body=data, headers=h)
    r = conn.getresponse()
    raw = r.read()
    conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw
    return r.status, dict(r.getheaders()), parsed


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def burst(args):
    email = f"burst-{int(time.time() * 1000)}@example.com"
    call(args.gateway, "POST", "/api/v1/auth/signup",
         {"email": email, "password": "burst-password", "display_name": "Burst", "role": "viewer"})
    time.sleep(2)
    before = rss_mib(args.pid)
    peak = before
    stop = threading.Event()

    def sample():
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, rss_mib(args.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    statuses = {}
    slowest = 0.0

    def login(_):
        started = time.monotonic()
        status, headers, _ = call(args.gateway, "POST", "/api/v1/auth/login",
                                  {"email": email, "password": "burst-password"})
        retry = "retry-after" in {k.lower() for k in headers}
        return status, retry, time.monotonic() - started

    for n in range(args.rounds):
        with ThreadPoolExecutor(max_workers=args.logins) as pool:
            for status, retry, took in pool.map(login, range(args.logins)):
                key = f"{status}{' (retry-after)' if retry else ''}"
                statuses[key] = statuses.get(key, 0) + 1
                slowest = max(slowest, took)
        print(f"round {n + 1}: statuses so far {statuses}", flush=True)
    stop.set()
    sampler.join()
    time.sleep(args.idle)
    idle = rss_mib(args.pid)
    print(f"logins: {args.rounds} x {args.logins}; statuses {statuses}; slowest answer {slowest:.2f} s")
    print(f"RSS of pid {args.pid}: before {before:.1f} MiB, peak {peak:.1f} MiB, "
          f"after {args.idle} s idle {idle:.1f} MiB (idle - before = {idle - before:+.1f} MiB)")


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def importing(args):
    email = f"import-{int(time.time() * 1000)}@example.com"
    call(args.gateway, "POST", "/api/v1/auth/signup",
         {"email": email, "password": "import-password", "display_name": "Import", "role": "creator"})
    _, _, tokens = call(args.gateway, "POST", "/api/v1/auth/login",
                        {"email": email, "password": "import-password"})
    creator = tokens["access_token"]
    _, _, tokens = call(args.gateway, "POST", "/api/v1/auth/login",
                        {"email": args.admin_email, "password": args.admin_password})
    admin = tokens["access_token"]
    _, _, video = call(args.gateway, "POST", "/api/v1/videos",
                       {"title": "Imported history", "duration_seconds": 600}, token=creator)
    video_id = video["video_id"]
    lines = ["video_id,day,views,watch_seconds,ad_views"]
    day = 0
    import datetime
    first = datetime.date(1800, 1, 1)
    for d in range(args.days):
        lines.append(f"{video_id},{first + datetime.timedelta(days=d)},3,30,1")
    csv = "\n".join(lines) + "\n"
    print(f"CSV: {args.days} days, {len(csv) / 1e6:.2f} MB", flush=True)

    stop = threading.Event()
    plays, uploads, failures = [], [], {}

    def player(n):
        i = 0
        while not stop.is_set():
            i += 1
            started = time.monotonic()
            status, _, _ = call(args.gateway, "POST", f"/api/v1/videos/{video_id}/play",
                                headers={"x-forwarded-for": f"10.9.{n}.{i % 250}"})
            (plays if status == 200 else failures.setdefault(f"play {status}", [])).append(
                time.monotonic() - started)

    def uploader():
        while not stop.is_set():
            started = time.monotonic()
            status, _, _ = call(args.gateway, "POST", "/api/v1/videos",
                                {"title": "During the import", "duration_seconds": 60}, token=creator)
            (uploads if status == 201 else failures.setdefault(f"upload {status}", [])).append(
                time.monotonic() - started)
            time.sleep(0.05)

    threads = [threading.Thread(target=player, args=(n,)) for n in range(2)]
    threads.append(threading.Thread(target=uploader))
    for t in threads:
        t.start()
    time.sleep(1)
    plays.clear()
    uploads.clear()
    started = time.monotonic()
    status, _, report = call(args.gateway, "POST", "/api/v1/admin/imports/daily-counts",
                             csv, token=admin, content_type="text/csv")
    took = time.monotonic() - started
    stop.set()
    for t in threads:
        t.join()
    accepted = report.get("accepted") if isinstance(report, dict) else report
    print(f"import: HTTP {status}, accepted {accepted}, {took:.2f} s")
    for name, values in (("plays", plays), ("uploads", uploads)):
        ms = [v * 1000 for v in values]
        print(f"{name} during it: {len(ms)}, p50 {percentile(ms, 50):.1f} ms, "
              f"p99 {percentile(ms, 99):.1f} ms, max {max(ms) if ms else float('nan'):.1f} ms")
    print(f"failed requests: { {k: len(v) for k, v in failures.items()} }")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["burst", "import"])
    p.add_argument("--gateway", required=True)
    p.add_argument("--pid", type=int)
    p.add_argument("--logins", type=int, default=200)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--idle", type=float, default=30)
    p.add_argument("--admin-email")
    p.add_argument("--admin-password")
    p.add_argument("--days", type=int, default=90_000)
    args = p.parse_args()
    burst(args) if args.mode == "burst" else importing(args)


if __name__ == "__main__":
    main()

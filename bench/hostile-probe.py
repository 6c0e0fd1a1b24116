"""Replays the attacks of issue 15 against a running gateway (loopback only)
and prints, per finding, what the platform did: a quick before/after check
of the findings, not a test (the tests are gateway/tests/api/hostile.rs).

    python3 bench/hostile-probe.py --gateway URL --admin-email E --admin-password P

Bounded: a few hundred requests, stops by itself.
"""

import argparse
import datetime
import json
import socket
import time
import urllib.parse

from hostile import call  # bench/hostile.py


def probe(args):
    g = args.gateway
    stamp = int(time.time() * 1000)
    _, _, t = call(g, "POST", "/api/v1/auth/login",
                   {"email": args.admin_email, "password": args.admin_password})
    admin = t["access_token"]
    email = f"probe-{stamp}@example.com"
    call(g, "POST", "/api/v1/auth/signup",
         {"email": email, "password": "probe-password", "display_name": "P", "role": "creator"})
    _, _, t = call(g, "POST", "/api/v1/auth/login", {"email": email, "password": "probe-password"})
    creator = t["access_token"]
    today = datetime.date.today()
    call(g, "POST", "/api/v1/ads", {"title": "Ad", "duration_seconds": 15,
                                    "start_date": str(today - datetime.timedelta(days=2)),
                                    "end_date": str(today + datetime.timedelta(days=2))}, token=admin)
    _, _, v = call(g, "POST", "/api/v1/videos", {"title": "Long", "duration_seconds": 86400}, token=creator)
    video = v["video_id"]
    results = []

    ip = {"x-forwarded-for": f"10.77.{stamp % 250}.1"}
    _, _, p = call(g, "POST", f"/api/v1/videos/{video}/play", headers=ip)
    ads = 0
    for pos in [2147483647, 0, 86399, 0, 86000, 0]:
        _, _, r = call(g, "POST", f"/api/v1/videos/{video}/pause",
                       {"session_id": p["session_id"], "position_seconds": pos}, headers=ip)
        ads += r.get("ad_views_counted", 0) if isinstance(r, dict) else 0
    results.append((1, f"six reports at once, 86,400 s video: {ads} ad views"))

    ip = {"x-forwarded-for": f"10.78.{stamp % 250}.1"}
    _, _, p = call(g, "POST", f"/api/v1/videos/{video}/play", headers=ip)
    watched = 0
    for i in range(1, 101):
        _, _, r = call(g, "POST", f"/api/v1/videos/{video}/pause",
                       {"session_id": p["session_id"], "position_seconds": 5 * i}, headers=ip)
        watched += r.get("watched_seconds_added", 0) if isinstance(r, dict) else 0
    results.append((2, f"100 reports of +5 s at once: {watched} watched seconds"))

    s, _, _ = call(g, "GET", "/api/v1/stats/top?metric=views&period=week&date=%2B262142-12-31")
    results.append((3, f"/stats/top at +262142-12-31: HTTP {s}"))

    s, _, r = call(g, "POST", "/api/v1/admin/imports/daily-counts",
                   f"video_id,day,views,watch_seconds,ad_views\n{video},2001-01-01,9223372036854775807,0,0\n",
                   token=admin, content_type="text/csv")
    accepted = r.get("accepted") if isinstance(r, dict) else r
    results.append((5, f"import of 9223372036854775807 views: HTTP {s}, accepted {accepted}"))

    s, h, body = call(g, "POST", "/api/v1/admin/imports/daily-counts", "x" * (17 * 1024 * 1024),
                      token=admin, content_type="text/csv")
    ct = {k.lower(): v for k, v in h.items()}.get("content-type", "-")
    results.append((7, f"17 MiB import: HTTP {s}, {ct}"))
    u = urllib.parse.urlparse(g)
    with socket.create_connection((u.hostname, u.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: " + b"p" * 20000 + b"\r\n\r\n")
        sock.settimeout(5)
        head = sock.recv(65536).decode("latin-1")
    status_line = head.split("\r\n", 1)[0]
    length = [l for l in head.split("\r\n") if l.lower().startswith("content-length")]
    results.append((7, f"20 KB header: {status_line}, {length[0] if length else 'no content-length'}"))

    s, _, _ = call(g, "POST", "/api/v1/auth/signup",
                   '{"email":"probe-x-%d@example.com","password":"probe-password","display_name":"X","role":"viewer"} xyz' % stamp)
    results.append((10, f"JSON followed by garbage: HTTP {s}"))

    yesterday = today - datetime.timedelta(days=1)
    s, _, r = call(g, "POST", "/api/v1/admin/settlements",
                   {"from": str(yesterday), "to": str(yesterday)}, token=admin)
    run_id = r["run_ids"][0]
    time.sleep(3)
    _, _, run = call(g, "GET", f"/api/v1/admin/settlements/{run_id}", token=admin)
    results.append((11, f"yesterday settled 3 s after start-up: {run['status']} {run.get('error') or ''}"))

    s, _, _ = call(g, "GET", "/metrics")
    results.append((12, f"/metrics on the API listener: HTTP {s}"))
    for n, what in results:
        print(f"finding {n:2}: {what}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--gateway", required=True)
    p.add_argument("--admin-email", required=True)
    p.add_argument("--admin-password", required=True)
    probe(p.parse_args())


if __name__ == "__main__":
    main()

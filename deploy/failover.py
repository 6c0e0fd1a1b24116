"""Load through the gateway while one streaming-service instance is killed.

Signs up a creator, uploads a video, then plays it from many threads for
--duration seconds, each play from a fresh anonymous client IP (sent as
X-Forwarded-For; the gateway trusts the loopback proxy), so every play that
succeeds with view_counted=true is one view the platform owes. At --kill-at
seconds it sends SIGKILL to --kill-pid. Prints a JSON summary: plays sent,
answered, failed, the failure window (first to last failed play), counted
views, and the video id for the caller to compare with the database.

Standard library only; run by deploy/failover.sh.
"""

import argparse
import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse


def call(conn, method, path, body=None, token=None, ip=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    if ip:
        headers["x-forwarded-for"] = ip
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, (json.loads(data) if data else None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--kill-pid", type=int, required=True)
    parser.add_argument("--kill-at", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()

    url = urllib.parse.urlparse(args.gateway)
    connect = lambda: http.client.HTTPConnection(url.hostname, url.port, timeout=10)

    setup = connect()
    email = f"failover-{int(time.time() * 1000)}@example.com"
    status, _ = call(setup, "POST", "/api/v1/auth/signup",
                     {"email": email, "password": "failover-password", "display_name": "Failover", "role": "creator"},
                     ip="10.200.0.1")
    assert status == 201, f"sign-up answered {status}"
    status, tokens = call(setup, "POST", "/api/v1/auth/login",
                          {"email": email, "password": "failover-password"}, ip="10.200.0.1")
    assert status == 200, f"login answered {status}"
    status, video = call(setup, "POST", "/api/v1/videos",
                         {"title": "Failover", "duration_seconds": 600}, token=tokens["access_token"])
    assert status == 201, f"upload answered {status}"
    video_id = video["video_id"]

    lock = threading.Lock()
    results = []  # (sent_at, status or None, view_counted)
    start = time.monotonic()
    stop_at = start + args.duration
    counter = iter(range(1, 1 << 30))

    def worker():
        conn = connect()
        while time.monotonic() < stop_at:
            with lock:
                n = next(counter)
            ip = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
            sent = time.monotonic() - start
            try:
                status, body = call(conn, "POST", f"/api/v1/videos/{video_id}/play", {}, ip=ip)
                counted = status == 200 and bool(body and body.get("view_counted"))
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = connect()
                status, counted = None, False
            with lock:
                results.append((sent, status, counted))

    threads = [threading.Thread(target=worker) for _ in range(args.threads)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, start + args.kill_at - time.monotonic()))
    killed_at = time.monotonic() - start
    os.kill(args.kill_pid, signal.SIGKILL)
    for t in threads:
        t.join()

    failed = sorted((r for r in results if r[1] != 200), key=lambda r: r[0])
    after_kill = [r for r in results if r[0] >= killed_at]
    summary = {
        "video_id": video_id,
        "plays_sent": len(results),
        "plays_answered_200": sum(1 for r in results if r[1] == 200),
        "plays_failed": len(failed),
        "failed_statuses": sorted({str(r[1]) for r in failed}),
        "counted_views": sum(1 for r in results if r[2]),
        "killed_at_s": round(killed_at, 3),
        "plays_per_s": round(len(results) / args.duration, 1),
        "failure_window_s": round(failed[-1][0] - failed[0][0], 3) if failed else 0.0,
        "first_failure_after_kill_s": round(failed[0][0] - killed_at, 3) if failed else None,
        "last_failure_after_kill_s": round(failed[-1][0] - killed_at, 3) if failed else None,
        "plays_after_kill": len(after_kill),
        "plays_after_kill_failed": sum(1 for r in after_kill if r[1] != 200),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())

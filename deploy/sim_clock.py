"""The simulated day and its development clock, for deploy/simulate.sh and
deploy/compose.sh: prints `DAY CLOCK`.

    python3 deploy/sim_clock.py ZONE SPEED LEAD_SECONDS

DAY is the last day of the previous month (of the one before, in a month's
first four days, so that it is long settled), in the platform time zone;
CLOCK starts LEAD_SECONDS of wall-clock time before DAY's midnight and runs
SPEED times faster (`start@anchor xSPEED`, what `--dev-clock` takes).
"""
import datetime as dt
import sys
import zoneinfo

zone, speed, lead = zoneinfo.ZoneInfo(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
now = dt.datetime.now(dt.timezone.utc)
today = now.astimezone(zone).date()
first = today.replace(day=1)
day = first - dt.timedelta(days=1)
if today < day + dt.timedelta(days=4):
    day = day.replace(day=1) - dt.timedelta(days=1)
start = dt.datetime.combine(day, dt.time(0), zone) - dt.timedelta(seconds=lead * speed)
print(day.isoformat(), f"{start.isoformat()}@{now.isoformat()}x{speed}")

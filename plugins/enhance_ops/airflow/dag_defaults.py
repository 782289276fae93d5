"""What every archive DAG shares: a start in the past without catch-up (a new deployment
does not run the days before it), and one run at a time (a DAG's runs write the same
catalog rows and derivative names)."""
from __future__ import annotations

import datetime as dt
from typing import Any

SHARED: dict[str, Any] = {
    "start_date": dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    "catchup": False,
    "max_active_runs": 1,
}

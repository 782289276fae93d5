"""The Assets the DAGs update, for downstream DAGs to schedule on: one definition for every DAG that writes them."""
from __future__ import annotations

from airflow.sdk import Asset, AssetAlias

ENHANCED = Asset("s3://archive/enhanced")
LEDGER = Asset("s3://archive/ledger")
REPORTS = Asset("s3://archive/reports")
# a review changes enhanced/ only when it releases: its task names this alias and adds ENHANCED to it then
RELEASED = AssetAlias("released-from-review")

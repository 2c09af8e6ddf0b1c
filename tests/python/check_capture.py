#!/usr/bin/env python3
"""Checks a captured stream file the way a researcher would load it.

Usage: check_capture.py nodes|pods FILE

Loads FILE with Python's csv module and with pandas.read_csv, and checks: exactly the
original column names in order, no blank lines, no duplicated rows, rows in time order.
Prints one line of JSON ({"rows": N, ...}) on success; exits 1 with the reason otherwise.
"""
import csv
import json
import sys

import pandas as pd

COLUMNS = {
    "nodes": ["instance", "collection_time", "observation_time", "cpu_usage", "memory_usage",
              "network_usage", "wattage", "num_processes", "kepler_wattage", "scaph_wattage",
              "wattage_auxilary"],
    "pods": ["instance", "collection_time", "observation_time", "name", "namespace",
             "cpu_usage", "memory_usage", "network_usage", "wattage_kepler", "wattage_scaph"],
}


def fail(reason):
    print(reason)
    sys.exit(1)


def main():
    table, path = sys.argv[1], sys.argv[2]
    expected = COLUMNS[table]
    with open(path, newline="", encoding="utf-8") as f:
        text = f.read()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if any(line.strip() == "" for line in lines):
        fail("blank line in the capture")
    records = list(csv.reader(text.splitlines()))
    if not records or records[0] != expected:
        fail(f"csv header {records[:1]} != {expected}")
    rows = records[1:]
    if any(len(r) != len(expected) for r in rows):
        fail("a row has the wrong number of fields")
    keys = [tuple(r) for r in rows]
    if len(set(keys)) != len(keys):
        fail("duplicated rows")
    key_column = 0 if table == "nodes" else 3
    per_cycle = set()
    for r in rows:
        k = (r[1], r[key_column])
        if k in per_cycle:
            fail(f"{r[key_column]} twice in the cycle of {r[1]}")
        per_cycle.add(k)
    frame = pd.read_csv(path, keep_default_na=False)
    if list(frame.columns) != expected:
        fail(f"pandas columns {list(frame.columns)} != {expected}")
    if len(frame) != len(rows):
        fail(f"pandas read {len(frame)} rows, csv {len(rows)}")
    times = pd.to_datetime(frame["collection_time"], format="%Y-%m-%dT%H:%M:%S.%fZ", utc=True)
    if not times.is_monotonic_increasing:
        fail("rows not in time order")
    numeric = pd.read_csv(path)
    for column in expected[5 if table == "pods" else 3:]:
        if not pd.api.types.is_numeric_dtype(numeric[column]):
            fail(f"column {column} is not numeric for pandas")
    print(json.dumps({"rows": len(rows), "cycles": int(times.nunique())}))


if __name__ == "__main__":
    main()

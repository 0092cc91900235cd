"""Re-print the demo's table from the metrics files in this folder (no training, no attacks).

    .venv/bin/python reports/demo-quick/format.py > reports/demo-quick/demo.txt
"""
import json
from pathlib import Path

from dfl_lib.demo import DEMO_RUNS, format_demo

HERE = Path(__file__).resolve().parent
RUNS = ("mnist-resnet18-plain-ce-none-s0-679b5748a12d", "mnist-resnet18-dfl-pcl-pgd-s0-ab5693704346")

results = []
for (label, _), run in zip(DEMO_RUNS, RUNS):
    metrics = json.loads((HERE / run / "metrics-full.json").read_text())
    results.append({"label": label, **metrics, "path": f"reports/demo-quick/{run}/metrics-full.json"})
print(format_demo(results, profile="quick"))

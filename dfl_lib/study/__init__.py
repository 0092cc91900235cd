"""The notebook study: every run the notebooks need (`plan.py`), its time estimate
(`estimate.py`), the runner that trains and evaluates the plan and executes the notebooks with
papermill (`runner.py`, `main.py`), the report index (`index.py`), a notebook's bookkeeping
(`notebook.py`), a run end to end (`experiment.py`: train_run, evaluate_run), the plan's runs as
figure records and the finished results the paper comparison reads (`records.py`), Figure 4's
2-D networks (`geometry.py`, `geometry_runs.py`), the feature-space study (`feature_runs.py`)
and the command-line demo (`demo.py`).

The top of the stack: may import every other sub-package.
"""

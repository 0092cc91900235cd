"""The study runner: every run the notebooks need and the poisoning study's grid (`plan.py`),
its time estimate (`estimate.py`, `cpu_speed.py`), the runner that trains and evaluates the plan
(`runner.py`) and executes the notebooks with papermill on the project's own kernel (`index.py`,
`kernel.py`, `main.py`, `invocations.py`), the report index (`index.py`), a notebook's
bookkeeping (`notebook.py`), the plan's runs as figure records and the finished results the
paper comparison reads (`records.py`, `poison_records.py`), and the verdicts drawn from them
(`evidence.py`). What one run computes lives below, in `dfl_lib.experiments`.

The top of the stack: may import every other sub-package.
"""

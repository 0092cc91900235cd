"""The paper: its numbers and claims, transcribed once (`numbers.py` with `paper_results.csv`
and `paper_claims.csv`), the verdict of each claim (`verdicts.py`), and our tables beside the
paper's (`comparison.py`), which only read finished results.

May import: the core modules and evaluation (to pick rows by threat model and attack); never
the study's runner.
"""

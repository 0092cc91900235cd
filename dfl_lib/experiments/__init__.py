"""Experiments: what one run of the study computes, composed from the parts below. A run's
config from a profile and a defence (`configs.py`), the data it trains on, poisoned or not
(`data.py`, `poisoned.py`), one run trained and a trained run evaluated (`run.py`), its clean
and perturbed features (`features.py`), a poisoned run's measurements (`poison_metrics.py`),
and Figure 4's 2-D networks with their own training loop (`geometry.py`, `geometry_runs.py`).

The study runner (`dfl_lib.study`) decides which experiments to run and writes the reports; the
experiments know nothing of plans, notebooks or indexes.

May import: the core modules and every layer below it (data, models, losses, attacks,
poisoning, defences, runs, training, evaluation, paper, figures); never the study.
"""

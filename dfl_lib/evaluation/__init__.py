"""Evaluation: robust accuracy under one attack or a table of them with per-threat-model worst
cases (`robust.py`), the threat model every result carries (`threat.py`), rows picked by what
they are (`selection.py`), the gradient-masking checks (`checks.py`, Carlini et al. 2019), the
attack suites as data and a run's evaluation under its config (`suites.py`), BatchNorm folded for fast attacks (`fold.py`), and
feature-space metrics and UMAP (`featurespace.py`).

    threat = threat_model(cfg)                  # ThreatModel("Linf", cfg.eps), set once
    table = evaluate(model.eval(), x, y, attacks=attack_suite(cfg, suite="full"), threat=threat)
    flags = masking_checks(model, x, y, threat=threat, results=table)
    table, flags = evaluate_suite(model, x, y, cfg=cfg, suite="full")   # the three lines above

May import: the core modules, data, models, losses, attacks and runs; never training or the
study.
"""

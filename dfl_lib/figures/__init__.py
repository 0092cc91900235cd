"""Figures and tables: plotting and formatting only, from records the other sub-packages
computed. `curves.py` (training curves, Figures 1, 3, 5, 6), `comparison.py` (paper vs ours),
`tables.py` (markdown and text tables), `geometry.py` (Figure 4), `featurespace.py` (UMAP
panels), `diagram.py` (Figure 2 drawn from the model), `explore.py` (the epsilon widgets).

May import: the core modules, data, models, attacks, evaluation and paper; never training or the
study.
"""

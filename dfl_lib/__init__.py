"""dfl_lib: helpers for the dfl-study notebooks (data, models with the Defensive Feature Layer,
losses, attacks, training, evaluation, plotting and run I/O)."""

__version__ = "0.1.0"

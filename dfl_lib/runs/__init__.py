"""Run folders: where a run lives and how it is kept (`folder.py`: path, life cycle, resume),
its key (`versions.py`: the declared version of each computation a run executes, beside its
config and data), files written atomically, checkpoints, provenance (`io.py`), and one process per
run folder (`lock.py`).

May import: the core modules only (config, errors).
"""

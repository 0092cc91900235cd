"""Run folders: where a run lives and how it is kept (`folder.py`: path, life cycle, resume),
its key (`codehash.py`: the code a run executes, hashed over every module it imports, across
sub-packages), files written atomically, checkpoints, provenance (`io.py`), and one process per
run folder (`lock.py`).

May import: the core modules only (config, errors).
"""

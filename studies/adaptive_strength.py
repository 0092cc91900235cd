"""Is the adaptive attack at least as strong as PGD-50 on a PCL model (issue 19, item 6)?

    python studies/adaptive_strength.py [PROFILE] [N]

Trains (or reuses, from runs/<profile>) the profile's MNIST DFL + PCL cell with PGD training,
seed 0, and on the first N images of its evaluation subset prints, as one JSON line: clean,
PGD-50 on cross-entropy, the adaptive attack from a random start on the PCL objective alone (the
first version), and the adaptive attack warm-started from PGD-50 (the study's), all at eps 0.3."""
import json
import sys

from dfl_lib.evaluation.robust import eval_subset, robust_accuracy
from dfl_lib.experiments.run import train_run
from dfl_lib.study.plan import cell_config, runs_dir_name

profile = sys.argv[1] if len(sys.argv) > 1 else "quick"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
cfg = cell_config(profile, dataset="mnist", row="dfl_pcl", setting="adversarial training")
run = train_run(cfg, runs_root=f"runs/{runs_dir_name(profile)}", progress=False)
x, y = eval_subset(run["data"], n=n, seed=cfg.seed)
out = {"profile": profile, "n": n, "run": run["run_dir"].name}
rows = {"clean": ("clean", {}),
        "PGD-50 (CE)": ("pgd", {"eps": cfg.eps, "steps": 50}),
        "adaptive, objective alone": ("pgd_adaptive", {"eps": cfg.eps, "steps": 50,
                                                       "ce_weight": 0.0, "warm_start": False,
                                                       "defence_loss": run["loss"]}),
        "adaptive (study)": ("pgd_adaptive", {"eps": cfg.eps, "steps": 50,
                                              "defence_loss": run["loss"]})}
for label, (attack, kw) in rows.items():
    r = robust_accuracy(run["model"], x, y, attack=attack, seed=cfg.seed, **kw)
    out[label] = r["accuracy"]
    out[f"{label} seconds"] = round(r["seconds"], 1)
print(json.dumps(out), flush=True)

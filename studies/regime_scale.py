"""How little MNIST PGD training reaches the field's regime on this CPU (issue 19, item 3)?

    python studies/regime_scale.py N_TRAIN EPOCHS [SEED] [N_AA]

Trains the quick profile's plain ResNet-18 (width 16, PGD-10, bf16) on N_TRAIN images for EPOCHS
epochs (cached in runs/ like any run), then on the first N_AA images of the seed's evaluation
subset measures clean, PGD-10 and AutoAttack (torchattacks' standard version, L-inf eps 0.3).
Prints one JSON line; the field's regime (Madry et al.): ~98.5% clean, ~88.5% AutoAttack."""
import json
import sys
import time

import torch

from dfl_lib import make_config
from dfl_lib.evaluation.robust import eval_subset, robust_accuracy
from dfl_lib.experiments.run import train_run

n_train, epochs = int(sys.argv[1]), int(sys.argv[2])
seed = int(sys.argv[3]) if len(sys.argv) > 3 else 0
n_aa = int(sys.argv[4]) if len(sys.argv) > 4 else 250
cfg = make_config("quick", dataset="mnist", model="resnet18", dfl=False, loss="ce",
                  train_attack="pgd", n_train=n_train, epochs=epochs, seed=seed)
t0 = time.perf_counter()
run = train_run(cfg, progress=False)
train_s = sum(h.get("train_seconds", 0.0) for h in run["history"])
x, y = eval_subset(run["data"], n=n_aa, seed=seed)
out = {"n_train": n_train, "epochs": epochs, "seed": seed, "n": n_aa, "train_seconds": train_s}
for name, kw in (("clean", {}), ("pgd", {"eps": 0.3, "steps": 10}),
                 ("autoattack", {"eps": 0.3, "n_queries": 1000})):
    r = robust_accuracy(run["model"], x, y, attack=name, seed=seed, **kw)
    out[name] = r["accuracy"]
    out[f"{name}_seconds"] = r["seconds"]
print(json.dumps(out), flush=True)

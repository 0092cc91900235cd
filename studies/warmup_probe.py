"""Probe (per optimiser step): does ResNet-50 (+DFL) train under PGD-10 at eps 0.3 on MNIST at the quick
profile's sizes, and which remedy makes it? lr warm-up and eps ramp over the first steps.

    python studies/warmup_probe.py NAME MODEL DFL(0|1) LR WARMUP_STEPS RAMP_STEPS STEPS

Prints running loss/accuracy every 10 steps, then clean and PGD-10 accuracy on 200 validation
images (reports/fidelity-pcl-depth/warmup_probe.txt holds the output of five such runs)."""
import sys, time, torch
import torch.nn.functional as F
from dfl_lib.data.datasets import load_dataset
from dfl_lib.models.resnet import build_model
from dfl_lib.attacks import pgd
from dfl_lib.training.loop import to_float, batch_indices
torch.set_num_threads(2)
name = sys.argv[1]; model_name = sys.argv[2]; dfl = sys.argv[3] == "1"
lr0 = float(sys.argv[4]); warm = int(sys.argv[5]); ramp = int(sys.argv[6]); steps = int(sys.argv[7])
data = load_dataset("mnist", n_train=10000, n_val=500, seed=0)
torch.manual_seed(0)
model = build_model(model_name, num_classes=10, in_channels=1, width=16, dfl=dfl, mean=data.mean, std=data.std)
model.to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=lr0, momentum=0.9, weight_decay=5e-4)
gen = torch.Generator().manual_seed(0); agen = torch.Generator().manual_seed(1)
step = 0; t0 = time.time(); acc_hist = []; loss_hist = []
while step < steps:
    for idx in batch_indices(len(data.y_train), batch_size=128, generator=gen):
        xb, yb = to_float(data.x_train[idx]), data.y_train[idx]
        eps = 0.3 * min(1.0, (step + 1) / ramp) if ramp else 0.3
        lr = lr0 * min(1.0, (step + 1) / warm) if warm else lr0
        for g in opt.param_groups: g["lr"] = lr
        k = 64
        model.eval(); xa = pgd(model, xb[:k], yb[:k], eps=eps, steps=10, generator=agen, keep_best=False) if eps > 0 else xb[:k]; model.train()
        x = torch.cat([xa, xb[k:]]).contiguous(memory_format=torch.channels_last)
        logits = model(x); loss = F.cross_entropy(logits, yb)
        opt.zero_grad(); loss.backward(); opt.step()
        acc_hist.append(float((logits.argmax(1) == yb).float().mean())); loss_hist.append(float(loss.detach()))
        step += 1
        if step % 10 == 0:
            print(f"{name} step {step} eps {eps:.3f} lr {lr:.4f} loss {sum(loss_hist[-10:])/10:.3f} acc {sum(acc_hist[-10:])/10:.3f} adv-half-acc? t {time.time()-t0:.0f}s", flush=True)
        if step >= steps: break
# quick validation: clean and PGD on 200 val images
model.eval()
xv, yv = to_float(data.x_val[:200]), data.y_val[:200]
with torch.no_grad(): ca = float((model(xv).argmax(1) == yv).float().mean())
xa = pgd(model, xv, yv, eps=0.3, steps=10, generator=torch.Generator().manual_seed(5))
with torch.no_grad(): pa = float((model(xa).argmax(1) == yv).float().mean())
print(f"RESULT {name} val clean {ca:.3f} val pgd {pa:.3f} time {time.time()-t0:.0f}s", flush=True)

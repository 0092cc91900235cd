"""What one PGD step (forward + backward to the input, batch 128, ResNet-18 width 16, MNIST-sized)
costs with and without the DFL, fp32 and bf16 autocast, and the DFL's parts (1x1 ConvTranspose2d
against a 1x1 Conv2d, then adaptive max-pooling) on stage-shaped maps. Prints milliseconds.

    python benchmarks/dfl_step.py
"""
import time, torch, torch.nn.functional as F
from torch import nn
from dfl_lib.models.resnet import build_model
torch.manual_seed(0)
x = torch.rand(128, 1, 28, 28)
y = torch.randint(0, 10, (128,))

def step(net, dtype):
    xi = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
        loss = F.cross_entropy(net(xi), y)
    g, = torch.autograd.grad(loss, xi)
    return g

def timeit(fn, n=30):
    fn(); fn()
    t = time.perf_counter()
    for _ in range(n): fn()
    return (time.perf_counter() - t) / n

for dtype in ("fp32", "bf16"):
    res = {}
    for dfl in (False, True):
        net = build_model("resnet18", num_classes=10, in_channels=1, width=16, dfl=dfl).eval()
        res[dfl] = timeit(lambda: step(net, dtype))
    print(dtype, {k: round(v * 1000, 1) for k, v in res.items()}, "ratio", round(res[True] / res[False], 2))
    # the DFL's parts on stage-1..3 shaped maps
    for c, s in ((16, 28), (32, 14), (64, 7)):
        f = torch.rand(128, c, s, s)
        deconv = nn.ConvTranspose2d(c, c, 1, bias=False); conv = nn.Conv2d(c, c, 1, bias=False)
        def part(mod, pool):
            fi = f.clone().requires_grad_(True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                out = mod(fi)
                out = F.adaptive_max_pool2d(out, 4) if pool else out
            g, = torch.autograd.grad(out.float().sum(), fi)
        print(f"  {dtype} c{c} s{s}: deconv {timeit(lambda: part(deconv, False))*1e3:.1f} ms, "
              f"conv {timeit(lambda: part(conv, False))*1e3:.1f} ms, "
              f"deconv+pool {timeit(lambda: part(deconv, True))*1e3:.1f} ms")

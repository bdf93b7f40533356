"""PyTorch reference for the classify model's train step (same CNN, batch 32 x 3 x 32 x 32, SGD).

Run with a torch venv (e.g. the one `cargo xtask check-tch` makes under target/):
    target/tch-venv/bin/python3 benches/torch_classify_step.py
Compare with the img/s that `cargo xtask train classify` reports. An informal context number,
not yet a side-by-side `cargo xtask bench`.
"""
import time, torch, torch.nn as nn
torch.set_num_threads(2); torch.manual_seed(0)
def block(i,o): return nn.Sequential(nn.Conv2d(i,o,3,padding=1,bias=False), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
m = nn.Sequential(block(3,16), block(16,32), block(32,64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64,5))
opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
x = torch.randn(32,3,32,32); y = torch.randint(0,5,(32,))
for i in range(10):
    opt.zero_grad(); nn.functional.cross_entropy(m(x),y).backward(); opt.step()
n=100; t=time.perf_counter()
for i in range(n):
    opt.zero_grad(); l=nn.functional.cross_entropy(m(x),y); l.backward(); opt.step(); l.item()
dt=(time.perf_counter()-t)/n
print(f"torch {torch.__version__} 2 threads: {dt*1000:.1f} ms/step, {32/dt:.0f} img/s")

"""PyTorch side of `cargo xtask bench step`: the same models, shapes and thread count as the
Rust side (`xtask/src/bench/step.rs`), one training step = forward, cross-entropy, backward,
SGD(lr=0.01) update; median of R steps after two warm-up steps, in ms.

Usage: python3 benches/step/bench_torch.py --threads T --repeats R --models classify,cnn4,...
Prints one JSON object. Made with torch 2.9.0 and torchvision 0.24.0 (not asserted here).

classify / cnn4: Kindling's SmallCnn (Conv 3x3 without bias -> BatchNorm -> ReLU -> MaxPool 2)
per width, global average pool, Linear. segment: Kindling's UNet (double convs with BatchNorm,
max-pool, a bottleneck of twice the last width, ConvTranspose 2x2 stride 2, concatenation
[up, skip], 1x1 head). resnet18 / mobilenet_v3_small: torchvision's.
"""
import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torchvision

# name: (batch, image side, classes) -- the Rust side's MODELS table.
MODELS = {
    "classify": (32, 32, 5),
    "cnn4": (32, 64, 10),
    "segment": (8, 48, 3),
    "resnet18": (8, 224, 1000),
    "mobilenet_v3_small": (8, 224, 1000),
}


def small_cnn(widths, classes):
    layers, c = [], 3
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(),
                   nn.MaxPool2d(2)]
        c = w
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes))


def double_conv(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                         nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU())


class UNet(nn.Module):
    def __init__(self, classes, widths=(16, 32, 64)):
        super().__init__()
        self.down, c = nn.ModuleList(), 3
        for w in widths:
            self.down.append(double_conv(c, w))
            c = w
        self.pool = nn.MaxPool2d(2, 2)
        self.bottleneck = double_conv(c, 2 * c)
        c = 2 * c
        self.ups, self.convs = nn.ModuleList(), nn.ModuleList()
        for w in reversed(widths):
            self.ups.append(nn.ConvTranspose2d(c, w, 2, stride=2))
            self.convs.append(double_conv(2 * w, w))
            c = w
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, conv, skip in zip(self.ups, self.convs, reversed(skips)):
            x = conv(torch.cat([up(x), skip], 1))
        return self.head(x)


def build(name, classes):
    if name == "classify":
        return small_cnn([16, 32, 64], classes)
    if name == "cnn4":
        return small_cnn([32, 64, 128, 256], classes)
    if name == "segment":
        return UNet(classes)
    return getattr(torchvision.models, name)(weights=None)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--models", default="classify")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    out = {"torch": torch.__version__, "threads": a.threads, "train_ms": {}}
    for name in a.models.split(","):
        batch, size, classes = MODELS[name]
        model = build(name, classes).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        x = torch.randn(batch, 3, size, size)
        shape = (batch, size, size) if name == "segment" else (batch,)
        y = (torch.arange(int(torch.tensor(shape).prod())) % classes).reshape(shape)
        samples = []
        for i in range(a.repeats + 2):
            t = time.perf_counter()
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            loss.item()
            if i >= 2:
                samples.append((time.perf_counter() - t) * 1000.0)
        out["train_ms"][name] = statistics.median(samples)
    print(json.dumps(out))


if __name__ == "__main__":
    main()

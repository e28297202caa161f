#!/usr/bin/env python3
"""PyTorch twin of `hgn bench --preset paper`: the same network, shapes and training step.

DeepMind's hgn_paper_config architecture (reference D1) in PyTorch, NCHW:
encoder (3 strided blocks, TF SAME/VALID padding) -> z 32x4x4 -> 5-conv latent transform ->
(q, p) 16x4x4 each -> separable H = K(p) + U(q) conv nets with softplus -> leapfrog steps
(kick-drift-kick, force reused between steps) -> decoder from q only -> GECO loss -> Adam.
The window follows the preset's protocol (reference D3): `reconstruct` (the default, as the
`paper` preset: all 31 frames in, 30 steps back, 31 targets) or `forecast` (5 frames in,
29 steps forward, 30 targets).

Unlike hgn, which writes dH/dq and dH/dp as explicit tensor operations, this twin takes them
with torch.autograd.grad(create_graph=True), i.e. true double backward, as the public
implementations do.

Usage: python3 bench/torch_hgn.py [--batch-size 16] [--steps 5] [--warmup 2] [--threads 2]
                                  [--device cpu|cuda]
Prints one line: median ms/step, sequences/s and peak memory (resident memory of the process on
the CPU; the CUDA caching allocator's peak on a GPU).
"""
import argparse
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def same_pad(x, kernel, stride=1):
    """TF SAME padding for an even or odd kernel: the extra zero goes after."""
    n = x.shape[-1]
    out = -(-n // stride)
    total = max((out - 1) * stride + kernel - n, 0)
    before = total // 2
    return F.pad(x, (before, total - before, before, total - before))


class Encoder(nn.Module):
    def __init__(self, channels_in, hidden=64, z_channels=32):
        super().__init__()
        h = hidden
        self.convs = nn.ModuleList([
            nn.Conv2d(channels_in, h // 2, 2, 2), nn.Conv2d(h // 2, h, 4),
            nn.Conv2d(h, h, 2, 2), nn.Conv2d(h, h, 4),
            nn.Conv2d(h, h, 2, 2), nn.Conv2d(h, 2 * z_channels, 4),
        ])

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = conv(x) if i % 2 == 0 else conv(same_pad(x, 4))
            if i < len(self.convs) - 1:
                x = F.relu(x)
        return x.chunk(2, dim=1)


class Transform(nn.Module):
    def __init__(self, channels=32, hidden=64):
        super().__init__()
        sizes = [channels, hidden, hidden, hidden, hidden, channels]
        self.convs = nn.ModuleList([nn.Conv2d(a, b, 3, padding=1) for a, b in zip(sizes, sizes[1:])])

    def forward(self, z):
        for i, conv in enumerate(self.convs):
            z = conv(z)
            if i < len(self.convs) - 1:
                z = F.relu(z)
        return z


class Energy(nn.Module):
    """channels [32, 64, 64, 64, 1], kernels [3, 2, 2, 2, 2], strides [1, 2, 1, 2, 1]."""

    def __init__(self, channels_in=16, width=64):
        super().__init__()
        self.c0 = nn.Conv2d(channels_in, width // 2, 3)
        self.c1 = nn.Conv2d(width // 2, width, 2, 2)
        self.c2 = nn.Conv2d(width, width, 2)
        self.c3 = nn.Conv2d(width, width, 2, 2)
        self.c4 = nn.Conv2d(width, 1, 2)

    def forward(self, x):
        x = F.softplus(self.c0(same_pad(x, 3)))
        x = F.softplus(self.c1(x))
        x = F.softplus(self.c2(same_pad(x, 2)))
        x = F.softplus(self.c3(x))
        x = self.c4(same_pad(x, 2))
        return x.sum(dim=(1, 2, 3))


class Decoder(nn.Module):
    def __init__(self, q_channels=16, size=4, hidden=64):
        super().__init__()
        self.constant = nn.Parameter(torch.ones(1, 2, size, size))
        chans = q_channels + 2
        self.blocks = nn.ModuleList()
        for block in range(3):
            layers = nn.ModuleList([nn.Conv2d(chans, hidden, 3, padding=1), nn.Conv2d(hidden, hidden, 3, padding=1)])
            if block == 2:
                layers.append(nn.Conv2d(hidden, 3, 3, padding=1))
            self.blocks.append(layers)
            chans = hidden

    def forward(self, q):
        x = torch.cat([q, self.constant.expand(q.shape[0], -1, -1, -1)], dim=1)
        for b, layers in enumerate(self.blocks):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            for i, conv in enumerate(layers):
                x = conv(x)
                if not (b == 2 and i == len(layers) - 1):
                    x = F.leaky_relu(x, 0.2)
        return torch.sigmoid(x)


class Hgn(nn.Module):
    def __init__(self, frames=5):
        super().__init__()
        self.encoder = Encoder(3 * frames)
        self.transform = Transform()
        self.kinetic = Energy()
        self.potential = Energy()
        self.decoder = Decoder()
        self.geco_lambda = nn.Parameter(torch.tensor([float(torch.log(torch.expm1(torch.tensor(1.0))))]))

    def grad(self, net, x):
        # True double backward: the gradient keeps its graph for the training backward pass.
        return torch.autograd.grad(net(x).sum(), x, create_graph=True)[0]

    def forward(self, frames, noise, steps, dt=0.125):
        b, k, c, h, w = frames.shape
        mean, log_scale = self.encoder(frames.reshape(b, k * c, h, w))
        z = mean + log_scale.exp() * noise
        q, p = self.transform(z).chunk(2, dim=1)
        qs = [q]
        force = self.grad(self.potential, q)
        for _ in range(steps):
            p_half = p - 0.5 * dt * force
            q = q + dt * self.grad(self.kinetic, p_half)
            force = self.grad(self.potential, q)
            p = p_half - 0.5 * dt * force
            qs.append(q)
        t = len(qs)
        recon = self.decoder(torch.cat(qs, dim=0)).reshape(t, b, c, h, w).transpose(0, 1)
        return recon, mean, log_scale


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--protocol", choices=["reconstruct", "forecast"], default="reconstruct")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    reconstruct = args.protocol == "reconstruct"
    k, steps, dt = (31, 30, -0.125) if reconstruct else (5, 29, 0.125)
    model = Hgn(frames=k).to(device)
    optim = torch.optim.Adam(model.parameters(), lr=1.5e-4, eps=1e-8)
    b = args.batch_size
    window = k if reconstruct else k + steps
    frames = torch.rand(b, window, 3, 32, 32, device=device)
    noise = torch.randn(b, 32, 4, 4, device=device)
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        inference = frames[:, :k].clone().requires_grad_(False)
        # Rollout state i is frame k - 1 + i forward, frame W - 1 - i backward.
        targets = frames.flip(1) if reconstruct else frames[:, k - 1:]
        recon, mean, log_scale = model(inference, noise, steps, dt)
        mse = ((recon - targets) ** 2).mean()
        t, c, h, w = targets.shape[1:]
        kl = 0.5 * (mean ** 2 + (2 * log_scale).exp() - 2 * log_scale - 1).sum() / (b * t * c * h * w)
        lam = F.softplus(model.geco_lambda)
        constraint = mse - 1e-3
        loss = lam.detach() * constraint + kl - lam * constraint.detach()
        optim.zero_grad(set_to_none=True)
        loss.sum().backward()
        optim.step()
        if cuda:
            torch.cuda.synchronize(device)
        if i >= args.warmup:
            times.append((time.perf_counter() - start) * 1e3)
    median = statistics.median(times)
    if cuda:
        peak_mib = torch.cuda.max_memory_allocated(device) / 2**20
        where = f"{torch.cuda.get_device_name(device)}, CUDA"
    else:
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        where = f"{args.threads} threads"
    print(f"torch {torch.__version__}: median {median:.1f} ms/step, {b * 1e3 / median:.2f} sequences/s, "
          f"peak memory {peak_mib:.0f} MiB ({where}, batch {b}, {args.protocol}, {steps} rollout steps)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch twin of `hgn bench --preset paper|tiny|vector`: the same networks, shapes and step.

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

`--preset tiny` and `--preset vector` twin hgn's quick presets: the same layers at their widths,
a fixed kinetic energy |p|^2/2, a deterministic encoder and a plain MSE loss, 4 decoded states;
`vector` with a 2-vector state, MLP energies and a spatial broadcast decoder.

Usage: python3 bench/torch_hgn.py [--preset paper|tiny|vector] [--batch-size 16] [--steps 5]
                                  [--warmup 2] [--threads 2] [--device cpu|cuda]
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
    """With `vector`: the last conv gives `hidden` channels and a linear layer on the flattened
    4x4 map gives mean and log-scale of a vector z (hgn's `vector` preset)."""

    def __init__(self, channels_in, hidden=64, z_channels=32, vector=False):
        super().__init__()
        h = hidden
        last = h if vector else 2 * z_channels
        self.convs = nn.ModuleList([
            nn.Conv2d(channels_in, h // 2, 2, 2), nn.Conv2d(h // 2, h, 4),
            nn.Conv2d(h, h, 2, 2), nn.Conv2d(h, h, 4),
            nn.Conv2d(h, h, 2, 2), nn.Conv2d(h, last, 4),
        ])
        self.head = nn.Linear(h * 16, 2 * z_channels) if vector else None

    def forward(self, x):
        for i, conv in enumerate(self.convs):
            x = conv(x) if i % 2 == 0 else conv(same_pad(x, 4))
            if i < len(self.convs) - 1 or self.head is not None:
                x = F.relu(x)
        if self.head is not None:
            x = self.head(x.flatten(1))
        return x.chunk(2, dim=1)


class Transform(nn.Module):
    """Five convs, 3x3 on a map; on a vector (hgn's 1x1 convs) plain linear layers."""

    def __init__(self, channels=32, hidden=64, vector=False):
        super().__init__()
        sizes = [channels, hidden, hidden, hidden, hidden, channels]
        self.convs = nn.ModuleList([
            nn.Linear(a, b) if vector else nn.Conv2d(a, b, 3, padding=1) for a, b in zip(sizes, sizes[1:])
        ])

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


class MlpEnergy(nn.Module):
    """hgn's energy of a vector state: layers [width, width, 1] with softplus between."""

    def __init__(self, channels_in=2, width=16):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(channels_in, width), nn.Linear(width, width), nn.Linear(width, 1)])

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.softplus(x)
        return x.sum(dim=1)


class BroadcastDecoder(nn.Module):
    """hgn's spatial broadcast decoder: per pixel an MLP of (q, x, y), leaky ReLU, sigmoid."""

    def __init__(self, q_dim=2, size=32, width=48):
        super().__init__()
        self.position = nn.Linear(q_dim, width)
        self.coordinates = nn.Linear(2, width)
        self.layers = nn.ModuleList([nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, 3)])
        axis = torch.linspace(-1.0, 1.0, size)
        y, x = torch.meshgrid(axis, axis, indexing="ij")
        self.register_buffer("grid", torch.stack([x.flatten(), y.flatten()], dim=1))
        self.size = size

    def forward(self, q):
        h = F.leaky_relu(self.coordinates(self.grid)[None] + self.position(q)[:, None], 0.2)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i < len(self.layers) - 1:
                h = F.leaky_relu(h, 0.2)
        return torch.sigmoid(h.transpose(1, 2).reshape(q.shape[0], 3, self.size, self.size))


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


# hgn's presets: (hidden, latent channels or vector dims, Hamiltonian width, learned kinetic
# energy, variational, vector state).
PRESETS = {
    "paper": dict(hidden=64, latent=16, width=64, kinetic=True, variational=True, vector=False),
    "tiny": dict(hidden=16, latent=4, width=16, kinetic=False, variational=False, vector=False),
    "vector": dict(hidden=24, latent=2, width=16, kinetic=False, variational=False, vector=True),
}


class Hgn(nn.Module):
    def __init__(self, frames=5, hidden=64, latent=16, width=64, kinetic=True, variational=True, vector=False):
        super().__init__()
        self.encoder = Encoder(3 * frames, hidden, 2 * latent, vector)
        self.transform = Transform(2 * latent, hidden, vector)
        energy = (lambda: MlpEnergy(latent, width)) if vector else (lambda: Energy(latent, width))
        # Without a kinetic net K(p) = |p|^2 / 2, so dH/dp = p (hgn's fixed mass 1).
        self.kinetic = energy() if kinetic else None
        self.potential = energy()
        self.decoder = BroadcastDecoder(latent, 32, 2 * hidden) if vector else Decoder(latent, 4, hidden)
        self.variational = variational
        self.geco_lambda = nn.Parameter(torch.tensor([float(torch.log(torch.expm1(torch.tensor(1.0))))]))

    def grad(self, net, x):
        # True double backward: the gradient keeps its graph for the training backward pass.
        return torch.autograd.grad(net(x).sum(), x, create_graph=True)[0]

    def forward(self, frames, noise, steps, dt=0.125, decoded=None):
        b, k, c, h, w = frames.shape
        mean, log_scale = self.encoder(frames.reshape(b, k * c, h, w))
        z = mean + log_scale.exp() * noise if self.variational else mean
        q, p = self.transform(z).chunk(2, dim=1)
        qs = [q]
        force = self.grad(self.potential, q)
        for _ in range(steps):
            p_half = p - 0.5 * dt * force
            q = q + dt * (self.grad(self.kinetic, p_half) if self.kinetic is not None else p_half)
            force = self.grad(self.potential, q)
            p = p_half - 0.5 * dt * force
            qs.append(q)
        chosen = [qs[i] for i in decoded] if decoded is not None else qs
        t = len(chosen)
        recon = self.decoder(torch.cat(chosen, dim=0)).reshape(t, b, c, h, w).transpose(0, 1)
        return recon, mean, log_scale


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="paper",
                    help="the hgn preset to twin (default: paper)")
    ap.add_argument("--protocol", choices=["reconstruct", "forecast"], default=None,
                    help="default: the preset's (paper: reconstruct; tiny, vector: forecast)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    preset = PRESETS[args.preset]
    protocol = args.protocol or ("reconstruct" if args.preset == "paper" else "forecast")
    reconstruct = protocol == "reconstruct"
    # hgn's rollouts: paper 29 forward / 30 back, tiny 9, vector 29; tiny and vector decode 4
    # states spread evenly (as `hgn bench` does), paper all of them.
    forward_steps = {"paper": 29, "tiny": 9, "vector": 29}[args.preset]
    k, steps, dt = (31, 30, -0.125) if reconstruct else (5, forward_steps, 0.125)
    states = steps + 1
    n = 4  # hgn's decoded_frames for tiny and vector
    decoded = list(range(states)) if args.preset == "paper" else [i * (states - 1) // (n - 1) for i in range(n)]
    model = Hgn(frames=k, **preset).to(device)
    optim = torch.optim.Adam(model.parameters(), lr=1.5e-4, eps=1e-8)
    b = args.batch_size
    window = k if reconstruct else k + steps
    frames = torch.rand(b, window, 3, 32, 32, device=device)
    latent = preset["latent"]
    noise = torch.randn(*((b, 2 * latent) if preset["vector"] else (b, 2 * latent, 4, 4)), device=device)
    params = sum(p.numel() for p in model.parameters())
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        inference = frames[:, :k].clone().requires_grad_(False)
        # Rollout state i is frame k - 1 + i forward, frame W - 1 - i backward.
        targets = (frames.flip(1) if reconstruct else frames[:, k - 1:])[:, decoded]
        recon, mean, log_scale = model(inference, noise, steps, dt, decoded)
        mse = ((recon - targets) ** 2).mean()
        if model.variational:
            t, c, h, w = targets.shape[1:]
            kl = 0.5 * (mean ** 2 + (2 * log_scale).exp() - 2 * log_scale - 1).sum() / (b * t * c * h * w)
            lam = F.softplus(model.geco_lambda)
            constraint = mse - 1e-3
            loss = lam.detach() * constraint + kl - lam * constraint.detach()
        else:
            loss = mse
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
          f"peak memory {peak_mib:.0f} MiB ({where}, preset {args.preset}, {params} parameters, batch {b}, "
          f"{protocol}, {steps} rollout steps, {len(decoded)} decoded)")


if __name__ == "__main__":
    main()

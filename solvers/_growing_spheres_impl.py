"""Growing Spheres internals: log-space layer sampler, batched search, batched greedy sparsifier.

Laugel et al. 2018, https://arxiv.org/abs/1712.08443 (Algorithm 1 and its feature-selection
step); reference code github.com/thibaultlaugel/growingspheres. Rows of a batch are flat
(N, d) here; `owner` tensors name the instance of every queried row so the oracle charges
each sampled point to the instance it was drawn for.
"""

from __future__ import annotations

import math

import torch


def ring_radii(lo: torch.Tensor, hi: torch.Tensor, d: int, u: torch.Tensor) -> torch.Tensor:
    """Radii uniform in volume in the shells lo <= r <= hi of R^d, never forming r**d.

    P(r <= s) = (s^d - a^d) / (b^d - a^d), so r = b * (t + u (1 - t))^(1/d) with t = (a/b)^d.
    In logs: log r = log b + logaddexp(d log(a/b), log u + log1p(-t)) / d, in float64, so
    every layer is exact in d = 784 (the reference's r**d underflows below r ~ 0.38 and
    overflows above r ~ 2.4: growingspheres issue 2). lo = 0 gives a ball.

    Args:
        lo, hi: (m,) inner and outer radii, 0 <= lo <= hi.
        d: the dimension.
        u: (m,) uniform numbers in (0, 1] (u = 0 would put a ball sample on the centre).
    Returns:
        (m,) float64 radii in [lo, hi].
    """
    lo, hi, u = lo.double(), hi.double(), u.double()
    log_t = d * (torch.log(lo) - torch.log(hi))  # -inf for a ball
    log_mix = torch.logaddexp(log_t, torch.log(u) + torch.log1p(-torch.exp(log_t)))
    return torch.exp(torch.log(hi) + log_mix / d).clamp(lo, hi)


def sample_layer(lo: torch.Tensor, hi: torch.Tensor, d: int, generator: torch.Generator,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """Offsets uniform in volume in the layers [lo_i, hi_i] of R^d: Gaussian directions, log-space radii.

    Args:
        lo, hi: (m,) inner and outer radius of each row's layer.
        d: the dimension.
        generator: random source on the rows' device.
        out: optional float32 (m, d) buffer to fill (reused between calls).
    Returns:
        float32 (m, d) offsets; row i has norm in [lo_i, hi_i] (up to float32 rounding).
    """
    m, dev = len(lo), lo.device
    out = torch.empty(m, d, device=dev) if out is None else out
    torch.randn(m, d, generator=generator, out=out)
    u = 1.0 - torch.rand(m, generator=generator, device=dev, dtype=torch.float64)  # (0, 1]
    r = ring_radii(lo, hi, d, u)
    return out.mul_((r / out.norm(dim=1).double()).float().unsqueeze(1))


def search_layers(oracle, x, target, idx, lo, hi, n_in_layer, batch_rows, generator, bufs, shape):
    """One layer for each instance in `idx`: sample, clip to [0,1], query, keep the closest enemy.

    An enemy is a sampled point the model assigns to `target`. Points are clipped to the
    pixel box after sampling, and distances to x are measured after clipping.

    Args:
        oracle: the (black-box) oracle; every row is charged to its instance.
        x: float32 (N, d) the instances; target: int64 (N,).
        idx: int64 (m,) instances that sample a layer now; lo, hi: (m,) their layer radii.
        n_in_layer: points per layer and instance; batch_rows: rows per oracle call.
        generator: random source; bufs: two float32 (batch_rows, d) work buffers.
        shape: the per-row image shape (C, H, W) the oracle expects.
    Returns:
        found bool (m,), dist float32 (m,) (inf where none), point float32 (m, d), n_enemy int64 (m,).
    """
    m, d, dev = len(idx), x.shape[1], x.device
    best_d = torch.full((m,), math.inf, device=dev)
    best_z = x[idx].clone()
    n_enemy = torch.zeros(m, dtype=torch.long, device=dev)
    total = m * n_in_layer
    for s in range(0, total, batch_rows):
        e = min(total, s + batch_rows)
        loc = torch.arange(s, e, device=dev) // n_in_layer
        owner = idx[loc]
        z = sample_layer(lo[loc], hi[loc], d, generator, out=bufs[0][: e - s])
        x_rows = torch.index_select(x, 0, owner, out=bufs[1][: e - s])
        z.add_(x_rows).clamp_(0.0, 1.0)
        hit = (oracle.predict(z.view(-1, *shape), owner=owner) == target[owner]).nonzero().squeeze(1)
        if len(hit) == 0:
            continue
        l_hit = loc[hit]
        dist = (z[hit] - x_rows[hit]).norm(dim=1)
        n_enemy.index_add_(0, l_hit, torch.ones_like(l_hit))
        c_min = torch.full((m,), math.inf, device=dev).scatter_reduce(0, l_hit, dist, "amin")
        at_min = dist == c_min[l_hit]
        pick = torch.full((m,), total, dtype=torch.long, device=dev).scatter_reduce(
            0, l_hit[at_min], hit[at_min], "amin")
        better = (c_min < best_d).nonzero().squeeze(1)
        best_z[better] = z[pick[better]]
        best_d[better] = c_min[better]
    return torch.isfinite(best_d), best_d, best_z, n_enemy


def greedy_sparsify(oracle, x, target, x_cf, owner, budget, batch_rows, shape, k_first=8, k_max=256):
    """The reference feature selection, exactly, batched: revert coordinates smallest |delta| first.

    The reference walks the changed coordinates in ascending |x_cf - x| and reverts each one
    to x's value if the target class still holds, else keeps it and goes on. Here each
    instance tests k cumulative prefixes of its next coordinates in one batch
    (state + first 1, first 2, ..., first k reverted): with p leading enemies, the first p
    reversions are accepted and coordinate p+1 is kept, exactly the reference's decisions.
    k doubles after k accepted reversions and halves after a rejection (galloping), so easy
    stretches cost few rounds and hard ones waste few queries. Every accepted state was
    queried and assigned to `target`, so the result is always an enemy.

    Args:
        oracle: the oracle; x, target, x_cf: float32 (m, d), int64 (m,), float32 (m, d) enemies.
        owner: int64 (m,) instance ids for query counting; budget: int64 (m,) queries allowed.
        batch_rows: rows per oracle call; shape: per-row image shape.
        k_first, k_max: first and largest number of prefixes tested per round.
    Returns:
        float32 (m, d) sparsified enemies, int64 (m,) queries spent, bool (m,) finished
        (False where the budget cut the walk short).
    """
    m, d, dev = x.shape[0], x.shape[1], x.device
    state = x_cf.clone()
    order = (x_cf - x).abs().argsort(dim=1, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(d, device=dev).expand(m, d))
    pos = ((x_cf - x) == 0).sum(1)  # unchanged coordinates sort first; the reference skips them
    k_now = torch.full((m,), k_first, dtype=torch.long, device=dev)
    left = budget.to(dev).clone()
    spent = torch.zeros(m, dtype=torch.long, device=dev)
    while True:
        a = ((pos < d) & (left > 0)).nonzero().squeeze(1)
        if len(a) == 0:
            break
        k = torch.minimum(torch.minimum(k_now[a], d - pos[a]), left[a])
        row_of = torch.repeat_interleave(torch.arange(len(a), device=dev), k)
        j = torch.arange(len(row_of), device=dev) - (torch.cumsum(k, 0) - k)[row_of] + 1
        ok = torch.empty(len(row_of), dtype=torch.bool, device=dev)
        for s in range(0, len(row_of), batch_rows):
            r, jj = a[row_of[s:s + batch_rows]], j[s:s + batch_rows]
            rk = rank[r] - pos[r].unsqueeze(1)
            z = torch.where((rk >= 0) & (rk < jj.unsqueeze(1)), x[r], state[r])
            ok[s:s + batch_rows] = oracle.predict(z.view(-1, *shape), owner=owner[r]) == target[r]
        fail_j = torch.where(ok, k[row_of] + 1, j)
        p = (k + 1).scatter_reduce(0, row_of, fail_j, "amin") - 1  # leading enemies
        rk = rank[a] - pos[a].unsqueeze(1)
        state[a] = torch.where((rk >= 0) & (rk < p.unsqueeze(1)), x[a], state[a])
        full = p == k
        pos[a] += torch.where(full, k, p + 1)
        k_now[a] = torch.where(full, (2 * k_now[a]).clamp(max=k_max), (k_now[a] // 2).clamp(min=1))
        left[a] -= k
        spent[a] += k
    return state, spent, pos >= d

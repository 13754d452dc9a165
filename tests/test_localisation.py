"""Localisation metrics (metrics.localisation): known answers on hand-made 28x28 maps, then real controlled data.

Every hand-made value below is worked out by hand in the comments (mask = a 4x4 patch, 16 of 784
pixels, unless a row says otherwise); Quantus' own quirks are pinned where they decide a value:
ties at the maximum all count for the pointing game, tied pixels rank in raster order (top-left
first), AttributionLocalisation adds 1e-9 to its denominator.
"""

import math

import pytest
import torch

from bench.contract.metrics import NEEDS, AttrBatch, CFBatch, MetricContext
from metrics import ATTR_METRICS, CF_METRICS

LOC = ("loc_pointing_game", "loc_attribution_localisation", "loc_top_k_intersection",
       "loc_relevance_rank_accuracy", "loc_relevance_mass_accuracy", "loc_auc")
SHORT = dict(zip(LOC, ("pg", "al", "topk", "rank", "mass", "auc")))
D = 784  # pixels of a 28x28 image


def patch(r0: int, c0: int, size: int = 4) -> torch.Tensor:
    m = torch.zeros(1, 28, 28, dtype=torch.bool)
    m[:, r0:r0 + size, c0:c0 + size] = True
    return m


def attr_batch(attr: torch.Tensor, mask: torch.Tensor | None, x: torch.Tensor | None = None) -> AttrBatch:
    n = len(attr)
    return AttrBatch(x=torch.zeros(n, 1, 28, 28) if x is None else x, attr=attr.float(),
                     explained=torch.zeros(n, dtype=torch.long), seconds=torch.zeros(n, dtype=torch.float64),
                     mask=mask)


def scores(b: AttrBatch) -> dict[str, torch.Tensor]:
    ctx = MetricContext(seed=0)  # no oracle: localisation never evaluates a model
    return {SHORT[name]: ATTR_METRICS.get(name)(b, ctx) for name in LOC}


def hand_made():
    """(rows of (label, map, mask), expected {metric: [value per row]})."""
    M = patch(10, 10)  # rows 10-13, cols 10-13
    rows, expect = [], {k: [] for k in SHORT.values()}

    def row(label, a, mask=M, **want):
        rows.append((label, a, mask))
        for k in expect:
            expect[k].append(want[k])

    # 1. the mask itself: every score at its top (AL: 16 / (16 + 1e-9))
    row("exact", M.float(), pg=1, al=1, topk=1, rank=1, mass=1, auc=1)
    # 2. one peak outside, zeros elsewhere: the peak misses; the 15 tied zeros after it rank in raster
    #    order (row 0), outside too. AUC: the 16 mask zeros lose to the peak and tie the other 767
    #    zeros: (767 * 0.5) / 768
    a = torch.zeros(1, 28, 28)
    a[0, 20, 20] = 1.0
    row("peak outside", a, pg=0, al=0, topk=0, rank=0, mass=0, auc=767 / 1536)
    # 3. half the mass inside, the mask ranked first: 16 px of 1 inside, 32 px of 0.5 outside (mass 16
    #    each) -> mass and AL 0.5 while every rank score is 1
    a = M.float().clone()
    a[0, 20:24, 16:24] = 0.5
    row("half mass", a, pg=1, al=0.5, topk=1, rank=1, mass=0.5, auc=1)
    # 4. half the top-16 inside: 8 mask px of 1, 8 of 0, and 8 px of 1 outside. PG: the tied maxima
    #    include mask pixels -> 1. AUC: (8*760 wins + 0.5*8*8 ties + 0.5*8*760 ties) / (16*768)
    a = torch.zeros(1, 28, 28)
    a[0, 10:12, 10:14] = 1.0
    a[0, 20:22, 20:24] = 1.0
    row("half rank", a, pg=1, al=0.5, topk=0.5, rank=0.5, mass=0.5, auc=(8 * 760 + 32 + 3040) / 12288)
    # 5. the sign choices: -1 on the mask, one +0.1 outside. Signed (PG, top-k) and positive-part (AL)
    #    scores see only the +0.1 outside -> 0; magnitude scores (rank, mass, AUC) see the mask:
    #    mass = 16 / 16.1
    a = -M.float()
    a[0, 20, 20] = 0.1
    row("negative on the mask", a, pg=0, al=0, topk=0, rank=1, mass=16 / 16.1, auc=1)
    # 6. a constant map: Quantus' pointing game counts any tied maximum -> 1; top-k and rank take the
    #    first 16 raster pixels (row 0, cols 0-15): none in a central patch -> 0; mass = share 16/784
    c = torch.full((1, 28, 28), 0.5)
    row("constant", c, pg=1, al=16 / D, topk=0, rank=0, mass=16 / D, auc=0.5)
    # 7. the same constant map on the top-left corner patch (rows 0-3, cols 0-3): the first 16
    #    raster pixels hold its 4 top-row pixels -> top-k = rank = 4/16
    row("constant, corner patch", c, mask=patch(0, 0), pg=1, al=16 / D, topk=0.25, rank=0.25, mass=16 / D, auc=0.5)
    # 8. an empty mask: NaN everywhere (Quantus' pointing game alone would say 1: NaN into a bool array)
    nan = math.nan
    row("empty mask", M.float(), mask=torch.zeros(1, 28, 28, dtype=torch.bool),
        pg=nan, al=nan, topk=nan, rank=nan, mass=nan, auc=nan)
    return rows, expect


def test_known_answers_on_hand_made_maps():
    rows, expect = hand_made()
    b = attr_batch(torch.stack([a for _, a, _ in rows]), torch.stack([m for _, _, m in rows]))
    got = scores(b)
    for k, want in expect.items():
        assert got[k].dtype == torch.float64 and got[k].shape == (len(rows),), k
        for (label, _, _), g, w in zip(rows, got[k].tolist(), want, strict=True):
            if math.isnan(w):
                assert math.isnan(g), (k, label, g)
            else:
                assert g == pytest.approx(w, abs=1e-6), (k, label, g, w)


def test_top_k_takes_k_and_k1_is_the_pointing_game_without_ties():
    g = torch.Generator().manual_seed(1)
    a = torch.rand(6, 1, 28, 28, generator=g)
    m = torch.stack([patch(4 * i, 3 * i) for i in range(6)])
    a[:3] += 2 * m[:3]  # three maps peak on their patch, three anywhere
    b, ctx = attr_batch(a, m), MetricContext()
    top1 = ATTR_METRICS.get("loc_top_k_intersection")(b, ctx, k=1)
    assert torch.equal(top1, ATTR_METRICS.get("loc_pointing_game")(b, ctx))
    assert top1[:3].tolist() == [1.0, 1.0, 1.0]
    # k=32 on the mask itself: all 16 mask pixels, then 16 more outside -> 0.5
    assert ATTR_METRICS.get("loc_top_k_intersection")(attr_batch(m.float() + 0.01 * a, m), ctx, k=32).tolist() == [0.5] * 6


@pytest.fixture(scope="module")
def controlled():
    from bench.data import load_dataset

    return {name: load_dataset(name).test for name in ("mnist-decoy", "mnist-distractor")}


@pytest.mark.parametrize("name", ["mnist-decoy", "mnist-distractor"])
def test_real_controlled_data_mask_like_map_tops_and_random_map_sits_at_chance(controlled, name):
    n = 256
    split = controlled[name]
    x, m = split.x[:n], split.mask[:n]
    share = m.flatten(1).double().mean(1)  # chance of every share-type score: |mask| / 784
    assert share.unique().tolist() == pytest.approx([16 / D] if name == "mnist-decoy" else [0.5])
    g = torch.Generator().manual_seed(0)
    mask_like = m.float() + 0.05 * torch.randn(x.shape, generator=g)
    random_map = torch.randn(x.shape, generator=g)

    top = scores(attr_batch(mask_like, m, x))
    for k in ("pg", "topk", "rank", "auc"):  # the mask's pixels rank first: at the top
        assert float(top[k].mean()) >= 0.99, (name, k, float(top[k].mean()))
    # mass scores are diluted by the noise on the 768 (or 392) pixels outside: Quantus agrees with the
    # formula on the real masks, far above chance
    flat, inside = mask_like.flatten(1).double(), m.flatten(1)
    mass = (flat.abs() * inside).sum(1) / flat.abs().sum(1)
    pos = flat.clamp(min=0)
    al = (pos * inside).sum(1) / (pos.sum(1) + 1e-9)
    assert torch.allclose(top["mass"], mass, atol=1e-5) and torch.allclose(top["al"], al, atol=1e-5)
    # ...and near their expectation: E|N(0, sd)| = sd sqrt(2/pi) per pixel outside for mass, E max(N, 0) =
    # sd / sqrt(2 pi) for AL's positive part (decoy: mass 0.343, AL 0.511; distractor: 0.962, 0.980)
    k, sd = float(inside.sum(1)[0]), 0.05
    for key, out in (("mass", sd * math.sqrt(2 / math.pi)), ("al", sd / math.sqrt(2 * math.pi))):
        assert float(top[key].mean()) == pytest.approx(k / (k + (D - k) * out), abs=0.02), (name, key)

    chance = scores(attr_batch(random_map, m, x))
    s = float(share.mean())
    tol = dict(pg=0.1 if s == 0.5 else 0.03, al=0.02, topk=0.02, rank=0.02, mass=0.02)
    for k, t in tol.items():
        assert abs(float(chance[k].mean()) - s) < t, (name, k, float(chance[k].mean()), s)
    assert abs(float(chance["auc"].mean()) - 0.5) < 0.02, (name, float(chance["auc"].mean()))
    for k in SHORT.values():
        assert float(top[k].mean()) > float(chance[k].mean()) + 0.3, (name, k)


def cf_batch(x, x_cf, mask):
    n = len(x)
    z = torch.zeros(n, dtype=torch.float64)
    return CFBatch(x=x, x_cf=x_cf, target=torch.zeros(n, dtype=torch.long), probs_cf=torch.eye(10)[[0] * n],
                   queries=z, grad_queries=z, seconds=z, mask=mask)


def test_cf_mask_share_known_answers():
    M = patch(10, 10)
    x = torch.full((5, 1, 28, 28), 0.5)
    x_cf = x.clone()
    x_cf[0, 0, 10:12, 10:12] += 0.3  # only inside -> 1
    x_cf[1, 0, 0:2, 0:2] -= 0.3  # only outside -> 0
    x_cf[2, 0, 10, 10:14] += 0.2  # 0.8 inside...
    x_cf[2, 0, 20, 20:24] -= 0.2  # ...0.8 outside (a decrease counts by its size) -> 0.5
    x_cf[3, 0, 11, 11] -= 0.4  # 0.4 inside, 0.1 + 0.3 outside -> 0.5
    x_cf[3, 0, 0, 0] += 0.1
    x_cf[3, 0, 27, 27] -= 0.3
    # row 4: no change -> NaN
    s = CF_METRICS.get("cf_mask_share")(cf_batch(x, x_cf, M.expand(5, 1, 28, 28)), MetricContext())
    assert s.dtype == torch.float64
    assert s[:4].tolist() == pytest.approx([1.0, 0.0, 0.5, 0.5]) and math.isnan(s[4])


def test_a_batch_without_a_mask_raises_a_clear_error():
    a = torch.rand(2, 1, 28, 28)
    b = AttrBatch(x=torch.zeros(2, 1, 28, 28), attr=a, explained=torch.zeros(2, dtype=torch.long),
                  seconds=torch.zeros(2))
    assert b.mask is None  # the default: data without a ground truth
    for name in LOC:
        with pytest.raises(ValueError, match="ground-truth mask"):
            ATTR_METRICS.get(name)(b, MetricContext())
    with pytest.raises(ValueError, match="ground-truth mask"):
        CF_METRICS.get("cf_mask_share")(cf_batch(torch.zeros(2, 1, 28, 28), torch.ones(2, 1, 28, 28), None))
    with pytest.raises(ValueError, match="not shaped like x"):
        ATTR_METRICS.get("loc_auc")(attr_batch(a, torch.ones(2, 28, 28, dtype=torch.bool)), MetricContext())


def test_registered_with_the_mask_need_and_off_the_default_boards():
    from bench.tasks import metric_fns

    assert "mask" in NEEDS
    for registry, names in ((ATTR_METRICS, LOC), (CF_METRICS, ("cf_mask_share",))):
        for name in names:
            f = registry.get(name)
            assert f.metric_name == name and f.needs == ("mask",) and f.board is False and f.version == "1"
            assert f.higher_is_better is True and "Off the boards" in f.definition
        board = [f.metric_name for f in metric_fns(registry, [])]
        assert not set(names) & set(board), set(names) & set(board)
        assert [f.metric_name for f in metric_fns(registry, list(names))] == list(names)  # a run may name them
    assert ATTR_METRICS.get("loc_pointing_game").kind == "proportion"
    assert CF_METRICS.get("cf_mask_share").valid_only is True

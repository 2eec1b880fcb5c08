"""The shipped encoder inverts held-out heads better than the average latent (its file checks: test_generator.py)."""
import torch

from warpgan.generator import TriPlaneGenerator
from warpgan.inversion import Encoder, image_scores, invert_encoder
from warpgan.world import HELDOUT_SEED, render_heads, sample_cameras, sample_heads


def test_shipped_encoder_beats_the_average_head():
    G, E = TriPlaneGenerator.from_pretrained("tiny"), Encoder.from_pretrained("tiny")
    assert not E.training and not any(p.requires_grad for p in E.parameters())
    c = sample_cameras(6, HELDOUT_SEED + 21)
    real = render_heads(sample_heads(6, HELDOUT_SEED + 21), c)["image"]
    inv = invert_encoder(E, G, real, c)
    with torch.no_grad():
        average = G.synthesis(G.backbone.mapping.w_avg.expand(6, G.num_ws, -1), c, noise_mode="const")["image"]
    ours, base = image_scores(inv.image, real)["psnr"], image_scores(average, real)["psnr"]
    assert (ours > base).float().mean() >= 5 / 6 and ours.mean() > base.mean() + 2, (ours, base)


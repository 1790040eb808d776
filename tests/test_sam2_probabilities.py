"""SAM 2's (K+1, H, W) probabilities: argmax is the official label map by construction, ties included."""
import torch

from models.sam2.inference import label_map, probabilities


def test_argmax_is_the_official_label_map_even_at_float32_ties():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 64, 64, generator=gen) * 4
    logits[1, :20] = logits[0, :20] + torch.randn(20, 64, generator=gen) * 1e-7   # objects tie within rounding
    logits[2, 20:30] = torch.randn(10, 64, generator=gen) * 1e-8                   # at the threshold 0
    logits[:, 40:42] = -1024.0                                                      # objects not started
    plain = torch.softmax(torch.cat([torch.zeros_like(logits[:1]), logits]), 0)
    official = label_map(logits, [1, 2, 3])
    assert (plain.argmax(0).to(torch.uint8) != official).any()   # the case exists: plain softmax gets it wrong
    probs = probabilities(logits)
    assert (probs.argmax(0).to(torch.uint8) == official).all()
    assert (probs - plain).abs().max() <= 1.2e-7                   # one float32 step at the tie pixels only
    assert (probs[:, 40:42, :][0] == 1).all()

"""The vision-tower warm start: after it, unseen clean/noisy pairs are told apart by the features."""

import pytest
import torch
import torch.nn.functional as F

from ssvqa.testing import build_tiny_model
from ssvqa.warm_start import pooled_video_features, vision_module, warm_start_vision


def _content(seed: int, frames: int = 2, side: int = 56) -> torch.Tensor:
    """A smooth random picture (upsampled 7x7 noise), slightly moving: (T, 3, side, side) uint8."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 7, 7, generator=g) * 200 + 20
    picture = F.interpolate(coarse, size=(side + frames, side + frames), mode="bicubic", align_corners=False)[0]
    return torch.stack([picture[:, t : t + side, t : t + side] for t in range(frames)]).clamp(0, 255).to(torch.uint8)


def _noisy(video: torch.Tensor, seed: int, strength: float = 40.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(10_000 + seed)
    return (video.float() + torch.randn(video.shape, generator=g) * strength).clamp(0, 255).to(torch.uint8)


def _features(model, processor, seeds):
    with torch.no_grad():
        clean = pooled_video_features(model, processor, [_content(s) for s in seeds])
        noisy = pooled_video_features(model, processor, [_noisy(_content(s), s) for s in seeds])
    return clean, noisy


def _ordered(model, processor, head, seeds) -> float:
    """Share of the contents of ``seeds`` whose clean video the head's score
    ``cos(head, pooled features)`` puts above its noisy copy."""
    clean, noisy = _features(model, processor, seeds)
    score_clean, score_noisy = F.cosine_similarity(clean, head[None], dim=-1), F.cosine_similarity(noisy, head[None], dim=-1)
    return float((score_clean > score_noisy).float().mean())


def test_warm_start_moves_only_the_vision_tower_and_separates_unseen_clean_noisy_pairs():
    torch.manual_seed(0)
    model, processor = build_tiny_model("qwen2_5_vl", "tiny", seed=0)
    unseen = range(100, 132)
    language = {name: p.detach().clone() for name, p in model.named_parameters() if ".visual." not in f".{name}"}
    vision = {name: p.detach().clone() for name, p in vision_module(model).named_parameters()}
    pairs = []
    for s in range(64):  # training contents; the noisy one is second (worse) or first, both ways
        clean, noisy = _content(s), _noisy(_content(s), s)
        pairs.append({"video_a": clean, "video_b": noisy, "prob": 0.0} if s % 2 else {"video_a": noisy, "video_b": clean, "prob": 1.0})
    pairs.append({"video_a": _content(0), "video_b": _content(0), "prob": 0.5})  # no direction: skipped

    history = warm_start_vision(model, processor, pairs, steps=40, batch_size=8, seed=0)

    # on 32 contents it never saw, the learned direction puts clean above noisy clearly more often
    # than the untrained tower's features do with the same head (measured: 0.75 against 0.44)
    fresh, _ = build_tiny_model("qwen2_5_vl", "tiny", seed=0)
    warmed, untrained = _ordered(model, processor, history["head"], unseen), _ordered(fresh, processor, history["head"], unseen)
    assert warmed > 0.5 and warmed - untrained >= 0.2, (warmed, untrained)
    assert sum(history["accuracy"][-10:]) / 10 > 0.9
    for name, p in model.named_parameters():
        if name in language:
            assert torch.equal(p, language[name]), f"{name} changed"
    moved = [name for name, p in vision_module(model).named_parameters() if not torch.equal(p, vision[name])]
    assert moved, "the vision tower did not change"
    assert not model.training and all(p.requires_grad for p in model.parameters())


def test_warm_start_needs_pairs_with_a_direction():
    model, processor = build_tiny_model("qwen2_5_vl", "tiny", seed=0)
    with pytest.raises(ValueError, match="prob != 0.5"):
        warm_start_vision(model, processor, [{"video_a": _content(0), "video_b": _content(1), "prob": 0.5}], steps=1)


def test_a_head_per_group_orders_groups_that_one_head_cannot():
    """Two groups whose pairs disagree on the same videos (in one, noisy is worse; in the other,
    better): one shared head can order at most one group, a head per group (``group_of``) both."""
    pairs = []
    for s in range(32):
        clean, noisy = _content(s), _noisy(_content(s), s)
        pairs.append({"video_a": clean, "video_b": noisy, "prob": 0.0, "group": "noise is worse"})
        pairs.append({"video_a": clean, "video_b": noisy, "prob": 1.0, "group": "noise is better"})
    accuracy = {}
    for name, group_of in (("one", None), ("per group", lambda row: row["group"])):
        torch.manual_seed(0)
        model, processor = build_tiny_model("qwen2_5_vl", "tiny", seed=0)
        history = warm_start_vision(model, processor, pairs, steps=40, batch_size=8, group_of=group_of, seed=0)
        accuracy[name] = sum(history["accuracy"][-10:]) / 10
        assert set(history["heads"]) == ({None} if group_of is None else {"noise is worse", "noise is better"})
    assert accuracy["per group"] > 0.9 and accuracy["one"] < 0.7, accuracy

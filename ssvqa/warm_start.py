"""Warm start of a randomly initialised vision tower by same-content ranking.

A ranker built from random weights (the tiny CPU default, :mod:`ssvqa.testing`) does not learn
texture distortions (noise, blur, compression, down-up scaling) from the pair loss alone: at
initialisation its language model ignores the order of the two videos, so the loss settles on the
label marginal within a few dozen steps, and its nearly linear, mean-pooled vision tower hardly
separates a clean video from a noisy one (zero-mean noise cancels in the mean). A real video LMM
does not have this problem: its pretrained vision encoder already tells such videos apart.

:func:`warm_start_vision` stands in for that pretrained encoder. It trains the vision tower (and
its merger/projector) alone, for a short while, to rank the two videos of pairs with *exact*
labels -- labels known by construction, e.g. two levels of one distortion ladder of one content --
with a throw-away head: ``score(video) = scale * cos(w, mean of the video's visual tokens)`` and
the logistic ranking loss ``softplus(score(worse) - score(better))``. The cosine (rather than a
linear ``w . f``) keeps the features from collapsing: the score can only grow by turning the
features' *direction*, not by shrinking or inflating their norm. The head ``w`` is discarded;
the language model is not touched. The pair training that follows starts from a vision tower
whose pooled features already order quality, and learns to read them.

With ``group_of`` (e.g. a pair's distortion type) each group gets its own head ``w``: one axis
cannot order noise (which adds fine detail) together with blur and scaling (which remove it), and
a shared head learns its training pairs without carrying to new contents
(``recipes/tiny/README.md``, rows 19-26).

Only pairs whose ``prob`` is not 0.5 are used, and only the videos' pixels and the pair's
direction; nothing else about the data is seen.

Example::

    from ssvqa.warm_start import warm_start_vision

    history = warm_start_vision(model, processor, distortion_pairs, steps=150,
                                sampling=VideoSampling(num_frames=4, max_pixels=112 * 112))
    history["loss"][-1], history["accuracy"][-1]
"""

from __future__ import annotations

import functools
import os
import random
from typing import Any, Callable, Hashable, Mapping, Sequence

import torch
import torch.nn.functional as F

from ssvqa.pairs.dataset import row_video_file
from ssvqa.sampling import UNIFORM_FRAME_RATE, DecodedVideos, VideoSampling


def vision_module(model) -> torch.nn.Module:
    """The vision tower of a Qwen-VL-style model (``model.model.visual`` or ``model.visual``)."""
    for holder in (getattr(model, "model", None), model):
        visual = getattr(holder, "visual", None)
        if visual is not None:
            return visual
    raise ValueError(f"{type(model).__name__}: no vision tower named 'visual' (warm start supports the Qwen-VL families)")


def pooled_video_features(model, processor, videos: Sequence[torch.Tensor], frame_rate: float = UNIFORM_FRAME_RATE) -> torch.Tensor:
    """``(len(videos), hidden)``: the mean of each video's visual tokens as the language model
    receives them (after the vision tower's merger). ``videos`` are ``(T, 3, H, W)`` uint8 frames
    playing at ``frame_rate`` (:attr:`VideoSampling.frame_rate`)."""
    metadata = [{"total_num_frames": len(v), "fps": frame_rate, "frames_indices": list(range(len(v)))} for v in videos]
    inputs = processor.video_processor(videos=list(videos), return_tensors="pt", do_sample_frames=False,
                                       video_metadata=metadata)
    visual = vision_module(model)
    pixels = inputs["pixel_values_videos"].to(next(visual.parameters()).device, next(visual.parameters()).dtype)
    grid = inputs["video_grid_thw"].to(pixels.device)
    tokens = model.get_video_features(pixel_values_videos=pixels, video_grid_thw=grid).pooler_output
    return torch.stack([t.float().mean(0) for t in tokens])


def warm_start_vision(
    model,
    processor,
    pairs: Sequence[Mapping[str, Any]] | Any,
    *,
    steps: int = 150,
    batch_size: int = 8,
    learning_rate: float = 1e-3,
    scale: float = 10.0,
    sampling: VideoSampling | None = None,
    video_root: str | os.PathLike | None = None,
    group_of: Callable[[Mapping[str, Any]], Hashable] | None = None,
    seed: int = 0,
    log_every: int = 0,
) -> dict[str, Any]:
    """Train ``model``'s vision tower to rank the videos of ``pairs`` (see the module doc).

    Args:
        model: a Qwen2-VL / Qwen2.5-VL / Qwen3-VL model (changed in place: only the parameters of
            its vision tower move).
        processor: its processor.
        pairs: rows with ``video_a``, ``video_b`` (``{"path", "bytes"}``, paths, or decoded
            ``(T, 3, H, W)`` uint8 frames) and ``prob``
            (P(second is better)); rows with ``prob == 0.5`` are skipped. A ``datasets.Dataset``
            works too.
        steps: optimiser steps (AdamW, constant ``learning_rate``) of ``batch_size`` pairs.
        scale: the head's score is ``scale * cos(w, features)`` (bounds the logits to +-scale).
        sampling: how videos become frames: the ranker's own (default: 4 frames of at most 112x112).
        video_root: the folder that videos given only as paths are read in (and may not leave,
            :func:`ssvqa.pairs.dataset.row_video_file`); None: rows must hold their bytes.
        group_of: the group of a row (e.g. its distortion type, known by construction): each group
            gets its own head, so the features must order quality within every group but need not
            put, say, "noisier" and "blurrier" on one axis. None: one head for all rows.
        seed: the order of pairs and the head's initialisation.
        log_every: print the running loss and accuracy every this many steps (0: silent).

    Returns:
        ``{"loss": [...], "accuracy": [...], "head": w, "heads": {group: w}}``: per step, the loss
        and the share of the batch's pairs the heads order right (before the step); and the final
        directions (for inspection: ``scale * cos(w, pooled_video_features(...))`` scores videos;
        ``head`` is the first group's, the only one without ``group_of``).
    """
    rows = [row for row in pairs if float(row["prob"]) != 0.5]
    if not rows:
        raise ValueError("warm_start_vision needs pairs with a known direction (prob != 0.5)")
    sampling = sampling or VideoSampling(num_frames=4)
    decoded = DecodedVideos(sampling)
    frames = functools.partial(_frames, decoded=decoded, video_root=video_root)
    features_of = functools.partial(pooled_video_features, model, processor, frame_rate=sampling.frame_rate)
    visual = vision_module(model)
    generator = torch.Generator().manual_seed(seed)
    hidden = features_of([frames(rows[0]["video_a"])]).shape[-1]
    groups = [group_of(row) if group_of else None for row in rows]
    names = sorted(set(groups), key=str)
    index = {name: i for i, name in enumerate(names)}
    heads = torch.nn.Parameter(torch.randn(len(names), hidden, generator=generator))
    trained = [p for p in visual.parameters()]
    flags = [p.requires_grad for p in trained]
    was_training = model.training
    optimizer = torch.optim.AdamW([*trained, heads], lr=learning_rate, weight_decay=0.0)
    rng = random.Random(seed)
    history: dict[str, Any] = {"loss": [], "accuracy": []}
    try:
        for p in trained:
            p.requires_grad_(True)
        model.train()
        for step in range(steps):
            picked = [rng.randrange(len(rows)) for _ in range(batch_size)]
            batch = [rows[i] for i in picked]
            head = heads[torch.tensor([index[groups[i]] for i in picked])]
            videos = []
            for row in batch:
                first, second = frames(row["video_a"]), frames(row["video_b"])
                better, worse = (second, first) if float(row["prob"]) > 0.5 else (first, second)
                videos += [better, worse]
            features = features_of(videos)
            scores = scale * F.cosine_similarity(features, head.repeat_interleave(2, dim=0), dim=-1)
            margin = scores[0::2] - scores[1::2]
            loss = F.softplus(-margin).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            history["loss"].append(loss.item())
            history["accuracy"].append(float((margin > 0).float().mean()))
            if log_every and (step + 1) % log_every == 0:
                recent = slice(-log_every, None)
                print(f"[warm start] step {step + 1}/{steps}: loss {sum(history['loss'][recent]) / log_every:.3f}, "
                      f"pair accuracy {sum(history['accuracy'][recent]) / log_every:.3f}", flush=True)
    finally:
        for p, flag in zip(trained, flags):
            p.requires_grad_(flag)
        model.train(was_training)
        optimizer.zero_grad(set_to_none=True)
    history["heads"] = {name: heads[i].detach().clone() for name, i in index.items()}
    history["head"] = heads[0].detach().clone()
    return history


def _frames(video: Any, decoded: DecodedVideos, video_root) -> torch.Tensor:
    """A row's video as frames: decoded already, its bytes, or a path inside ``video_root``."""
    if isinstance(video, torch.Tensor):
        return video
    data, path = (video.get("bytes"), video.get("path")) if isinstance(video, Mapping) else (None, video)
    if data:
        return decoded.frames(data, name=str(path or "<video bytes>"))
    return decoded.frames(str(row_video_file(path, video_root, "a warm-start pair's video")), name=str(path))

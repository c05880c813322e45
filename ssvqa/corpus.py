"""A small, varied corpus of source clips made with ffmpeg's synthetic sources.

Tests, examples and benchmarks need "unlabeled videos" without downloading any. ``make_corpus``
writes ``num_clips`` short clips, each a different content: a panned test pattern, a fractal
zoom, coloured Game of Life, a cellular automaton, rotating gradients, a Sierpinski fractal,
a camera pan over a still fractal, scrolling text (when a font is found; moving boxes
otherwise) and colour bars with a moving object. Content, motion speed, colours, frame size
and aspect vary with the seed (clip 0 has the given size, clip 1 is its portrait twin).

Clips are idempotent: a clip's file name carries a digest of the exact ffmpeg command that
makes it, so an existing file is that clip, complete (files are written under a temporary
name and renamed when ffmpeg succeeds), and is not made again.

>>> plan_corpus(num_clips=3, seed=0, size=(320, 240))[1].size  # portrait twin of 320x240
(240, 320)

Command line: ``ssvqa make-corpus OUT_DIR [--num-clips 8] [--seed 0] [--duration 2]
[--size 320x240] [--fps 25]`` (:mod:`ssvqa.commands.make_corpus`).

Length: over 400 lines, half of them the eleven content recipes (ffmpeg source graphs) that make
the corpus varied.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import random
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ssvqa.errors import SsvqaError

# Aspect ratios (width / height) drawn for clips after the first two.
ASPECTS = (4 / 3, 16 / 9, 1.0, 3 / 4, 9 / 16, 21 / 9, 3 / 2)
FRAME_RATES = (24, 25, 30)
# Clip encode: visually lossless H.264, fast; the corpus stands for pristine sources.
CLIP_ENCODER = ("-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-pix_fmt", "yuv420p")


@dataclass(frozen=True)
class ClipRecipe:
    """How one clip is made: a lavfi source, a filter chain, size, rate and length."""

    index: int
    kind: str
    size: tuple[int, int]
    fps: float
    duration: float
    source: str
    filters: str

    def command(self, output: str | Path, threads: int = 1) -> list[str]:
        """The ffmpeg argument list that writes this clip to ``output``."""
        graph = f"{self.source},{self.filters}" if self.filters else self.source
        return [
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-filter_threads", str(threads), "-f", "lavfi", "-i", graph, "-t", f"{self.duration:g}",
            *CLIP_ENCODER, "-threads", str(threads), "-an", "-map_metadata", "-1", str(output),
        ]

    @property
    def file_name(self) -> str:
        """``<index>-<kind>-<digest of the command>.mp4``: changes whenever the clip would."""
        digest = hashlib.sha256("\0".join(self.command("OUT")).encode()).hexdigest()[:8]
        return f"{self.index:02d}-{self.kind}-{digest}.mp4"


# ---------------------------------------------------------------------------------------------
# Content kinds: each turns a seeded random generator and the clip's geometry into lavfi text.


def _colour(rng: random.Random, lo: int = 0, hi: int = 255) -> str:
    return "0x" + "".join(f"{rng.randint(lo, hi):02x}" for _ in range(3))


def _pattern(rng, w, h, fps, duration):
    """A moving test pattern seen through a panning window (camera motion over sharp detail)."""
    big = f"{2 * w}x{2 * h}"
    a, b = rng.uniform(0.4, 1.5), rng.uniform(0.3, 1.2)
    return (
        f"testsrc2=size={big}:rate={fps}",
        f"crop={w}:{h}:x='(iw-ow)/2*(1+sin(t*{a:.3f}))':y='(ih-oh)/2*(1+cos(t*{b:.3f}))'",
    )


# Points on the Mandelbrot set's boundary where zooming keeps showing detail.
_MANDELBROT_POINTS = (
    (-0.743643887, 0.131825904), (-0.7453, 0.1127), (-1.25066, 0.02012), (-0.160, 1.0405),
    (0.2850, 0.0100), (-0.8, 0.156), (-1.7497, 0.0), (0.3602, -0.6413), (-0.1011, 0.9563),
)


def _mandelbrot(rng, w, h, fps, duration):
    """A zoom into the Mandelbrot set (fine fractal detail, smooth colour bands)."""
    x, y = rng.choice(_MANDELBROT_POINTS)
    start = rng.uniform(0.05, 1.5)
    end = start * rng.uniform(0.15, 0.6)
    return (
        f"mandelbrot=size={w}x{h}:rate={fps}:start_x={x}:start_y={y}:start_scale={start:.4f}"
        f":end_scale={end:.5f}:end_pts={max(1, round(duration * fps))}:maxiter={rng.choice((200, 300, 400))}",
        "format=yuv420p",
    )


_LIFE_RULES = ("B3/S23", "B36/S23", "B3678/S34678", "B368/S245", "B34/S34")


def _life(rng, w, h, fps, duration):
    """A coloured cellular "Game of Life" variant with mould trails (hard edges, flat areas)."""
    cell = rng.choice((1, 2, 3))  # cell size in pixels, upscaled without smoothing
    cw, ch = max(8, w // cell), max(8, h // cell)
    return (
        f"life=size={cw}x{ch}:rate={fps}:rule={rng.choice(_LIFE_RULES)}:seed={rng.randrange(2**31)}"
        f":ratio={rng.uniform(0.1, 0.5):.3f}:mold={rng.randint(0, 20)}"
        f":life_color={_colour(rng, 120)}:death_color={_colour(rng, 0, 90)}:mold_color={_colour(rng, 40, 160)}",
        f"scale={w}:{h}:flags=neighbor,format=yuv420p",
    )


_CELLAUTO_RULES = (18, 30, 45, 73, 90, 105, 110, 150)


def _cellauto(rng, w, h, fps, duration):
    """An elementary cellular automaton scrolling down, tinted (dense fine texture)."""
    red, green, blue = (rng.uniform(0.3, 1.0) for _ in range(3))
    return (
        f"cellauto=size={w}x{h}:rate={fps}:rule={rng.choice(_CELLAUTO_RULES)}:seed={rng.randrange(2**31)}"
        f":ratio={rng.uniform(0.2, 0.7):.3f}:full=1",
        f"format=rgb24,lutrgb=r='val*{red:.3f}':g='val*{green:.3f}':b='val*{blue:.3f}',"
        f"gblur=sigma={rng.uniform(0.0, 0.8):.2f},format=yuv420p",
    )


def _gradients(rng, w, h, fps, duration):
    """Smooth rotating colour gradients (no texture at all: the easy case for codecs)."""
    count = rng.randint(2, 6)
    colours = ":".join(f"c{i}={_colour(rng)}" for i in range(count))
    # Explicit colours and end points: the source draws random ones otherwise, even with a seed.
    return (
        f"gradients=size={w}x{h}:rate={fps}:n={count}:{colours}:type={rng.randint(0, 3)}"
        f":speed={rng.uniform(0.015, 0.08):.4f}:x0={rng.randrange(w)}:y0={rng.randrange(h)}"
        f":x1={rng.randrange(w)}:y1={rng.randrange(h)}",
        "format=yuv420p",
    )


def _sierpinski(rng, w, h, fps, duration):
    """A Sierpinski carpet or triangle that jumps about (self-similar structure)."""
    return (
        f"sierpinski=size={w}x{h}:rate={fps}:seed={rng.randrange(2**31)}:jump={rng.randint(1, 60)}"
        f":type={rng.choice(('carpet', 'triangle'))}",
        "format=yuv420p",
    )


def _fractal_pan(rng, w, h, fps, duration):
    """A camera pan and slow zoom across one still, detailed fractal image."""
    x, y = rng.choice(_MANDELBROT_POINTS)
    scale = rng.uniform(0.02, 0.5)
    speed = rng.uniform(0.2, 0.8)
    return (
        f"mandelbrot=size={2 * w}x{2 * h}:rate={fps}:start_x={x}:start_y={y}:start_scale={scale:.4f}"
        f":end_scale={scale:.4f}:maxiter=300",
        # Render the fractal once and repeat it; then move a window across it.
        f"trim=end_frame=1,loop=loop=-1:size=1,"
        f"crop={w}:{h}:x='(iw-ow)*(0.5+0.5*sin(t*{speed:.3f}))':y='(ih-oh)*t/{max(duration, 0.1):g}*0.9',"
        "format=yuv420p",
    )


_WORDS = (
    "quality", "video", "ranking", "pairs", "frames", "motion", "detail", "texture", "colour",
    "contrast", "signal", "noise", "sharp", "smooth", "light", "shadow", "focus", "scene",
)


def _text(rng, w, h, fps, duration):
    """Scrolling lines of text over a gradient (sharp glyph edges), or moving boxes without a font."""
    background = (
        f"gradients=size={w}x{h}:rate={fps}:c0={_colour(rng, 0, 80)}:c1={_colour(rng, 0, 80)}"
        f":x0=0:y0=0:x1={w - 1}:y1={h - 1}:speed=0.01"
    )
    font = find_font()
    if font is None:
        return _boxes(rng, w, h, fps, duration, background)
    lines, filters = max(2, h // 60), []
    for i in range(lines):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(2, 5)))
        size = rng.randint(max(10, h // 16), max(12, h // 8))
        speed = rng.uniform(0.3, 1.2) * w
        filters.append(
            f"drawtext=fontfile='{font}':text='{words}':fontsize={size}:fontcolor={_colour(rng, 150)}"
            f":x='w-mod(t*{speed:.1f}\\,w+tw)':y={int((i + 0.5) * h / lines - size / 2)}"
        )
    return background, ",".join(filters) + ",format=yuv420p"


def _boxes(rng, w, h, fps, duration, background=None):
    """Coloured boxes moving over a background (overlays: drawbox cannot move with time)."""
    background = background or f"color=c={_colour(rng, 0, 90)}:size={w}x{h}:rate={fps}"
    chains, current = [f"{background}[bg0]"], "bg0"
    count = rng.randint(2, 5)
    for i in range(count):
        bw, bh = rng.randint(max(2, w // 10), max(4, w // 4)), rng.randint(max(2, h // 10), max(4, h // 4))
        sx, sy, phase = rng.uniform(0.2, 1.0) * w, rng.uniform(0.5, 2.5), rng.uniform(0, 6.28)
        chains.append(f"color=c={_colour(rng, 100)}:size={bw}x{bh}:rate={fps}[box{i}]")
        out = f"[bg{i + 1}]" if i < count - 1 else ""
        chains.append(
            f"[{current}][box{i}]overlay=x='mod(t*{sx:.1f}+{rng.randrange(w)},W)'"
            f":y='(H-h)/2*(1+sin(t*{sy:.2f}+{phase:.2f}))':shortest=1{out}"
        )
        current = f"bg{i + 1}"
    return ";".join(chains), "format=yuv420p"


def _bars(rng, w, h, fps, duration):
    """Colour bars (SMPTE, HD or PAL) with a moving box: large flat areas and sharp edges."""
    bars = rng.choice(("smptebars", "smptehdbars", "pal100bars"))
    return _boxes(rng, w, h, fps, duration, background=f"{bars}=size={w}x{h}:rate={fps}")


KINDS: dict[str, Callable] = {
    "pattern": _pattern,
    "mandelbrot": _mandelbrot,
    "life": _life,
    "cellauto": _cellauto,
    "gradients": _gradients,
    "sierpinski": _sierpinski,
    "fractal_pan": _fractal_pan,
    "text": _text,
    "bars": _bars,
}


def find_font() -> str | None:
    """A TrueType font file for drawtext (fontconfig's "sans", else common paths), or None."""
    if shutil.which("fc-match"):
        result = subprocess.run(["fc-match", "-f", "%{file}", "sans"], capture_output=True, text=True)
        if result.returncode == 0 and Path(result.stdout.strip()).is_file():
            return _drawtext_safe(result.stdout.strip())
    for candidate in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/Library/Fonts/Arial.ttf",
    ):
        if Path(candidate).is_file():
            return _drawtext_safe(candidate)
    return None


def _drawtext_safe(path: str) -> str | None:
    # The path goes into a filter option, which ffmpeg unquotes twice (graph, then options):
    # rather than escape for both levels, skip fonts whose path would need it.
    return None if any(c in path for c in "'\\:,;[]=") else path


# ---------------------------------------------------------------------------------------------


def _even(value: float) -> int:
    return max(64, int(round(value / 2)) * 2)


def clip_sizes(num_clips: int, size, rng: random.Random) -> list[tuple[int, int]]:
    """Frame sizes: a list of sizes is cycled; one size gives varied aspects of about its area.

    Clip 0 keeps the size, clip 1 is its portrait twin, later clips draw an aspect from
    :data:`ASPECTS` and an area between 0.6x and 1.3x (even sides, at least 64).
    """
    if size and isinstance(size[0], (tuple, list)):
        return [tuple(size[i % len(size)]) for i in range(num_clips)]
    width, height = size
    sizes = [(width, height), (min(width, height), max(width, height))]
    area = width * height
    for _ in range(2, num_clips):
        aspect = rng.choice(ASPECTS)
        scaled = area * rng.uniform(0.6, 1.3)
        sizes.append((_even(math.sqrt(scaled * aspect)), _even(math.sqrt(scaled / aspect))))
    return sizes[:num_clips]


def plan_corpus(
    num_clips: int = 8,
    seed: int = 0,
    duration: float = 2.0,
    size: tuple[int, int] | Sequence[tuple[int, int]] = (320, 240),
    fps: float | None = None,
) -> list[ClipRecipe]:
    """The recipes :func:`make_corpus` renders (pure: nothing is written).

    Kinds follow a seeded order and repeat with new parameters past ``len(KINDS)`` clips; each
    clip's parameters come from a generator seeded by ``(seed, index)``, so asking for more
    clips keeps the earlier ones unchanged.
    """
    if num_clips < 1:
        raise ValueError("num_clips must be >= 1")
    if duration <= 0:
        raise ValueError("duration must be > 0")
    order = list(KINDS)
    random.Random(f"ssvqa-corpus:{seed}").shuffle(order)
    sizes = clip_sizes(num_clips, size, random.Random(f"ssvqa-corpus-sizes:{seed}"))
    recipes = []
    for index in range(num_clips):
        rng = random.Random(f"ssvqa-corpus:{seed}:{index}")
        kind = order[index % len(order)]
        rate = fps if fps is not None else rng.choice(FRAME_RATES)
        width, height = sizes[index]
        source, filters = KINDS[kind](rng, width, height, rate, duration)
        recipes.append(ClipRecipe(index, kind, (width, height), rate, duration, source, filters))
    return recipes


def make_corpus(
    out_dir: str | Path,
    num_clips: int = 8,
    seed: int = 0,
    duration: float = 2.0,
    size: tuple[int, int] | Sequence[tuple[int, int]] = (320, 240),
    fps: float | None = None,
    threads: int = 1,
) -> list[Path]:
    """Write ``num_clips`` synthetic source clips into ``out_dir`` and return their paths.

    Args:
        out_dir: created if missing. Existing complete clips are kept (see the module doc).
        num_clips: how many clips (kinds repeat with new parameters after ``len(KINDS)``).
        seed: everything random (kind order, parameters, sizes, frame rates) follows it.
        duration: seconds per clip.
        size: ``(W, H)`` for varied aspects around that area (clip 1 portrait), or a list of
            sizes used in turn.
        fps: frame rate of every clip; ``None`` draws 24, 25 or 30 per clip.
        threads: ffmpeg threads per clip.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for recipe in plan_corpus(num_clips, seed, duration, size, fps):
        path = out_dir / recipe.file_name
        if not path.exists():
            temp = out_dir / f".{recipe.file_name}.{os.getpid()}.partial.mp4"
            try:
                result = subprocess.run(recipe.command(temp, threads), capture_output=True, text=True)
                if result.returncode != 0:
                    raise SsvqaError(f"ffmpeg could not make corpus clip {recipe.file_name}: {result.stderr.strip()[-500:]}")
                os.replace(temp, path)
            finally:
                temp.unlink(missing_ok=True)
        paths.append(path)
    return paths


QUALITY_FILE = "quality.csv"


def make_graded_pool(
    sources: Sequence[str | Path],
    out_dir: str | Path,
    *,
    types: Sequence[str],
    versions_per_source: int = 3,
    levels: Sequence[int] | None = None,
    seed: int = 0,
    max_pixels: int | None = 160 * 120,
    threads: int = 1,
) -> Path:
    """Unlabeled-looking videos with a *hidden* known quality: a test bed for teachers and rounds.

    Each source gets ``versions_per_source`` versions, each a random distortion of ``types`` at a
    random level 0-4 (0 = the pristine reference; levels are drawn without repeats per source, so
    one content's versions differ in quality). The files' names say nothing about their quality;
    ``quality.csv`` (``name,mos,distortion,level,content``; ``content`` is the source's file name)
    holds it, with ``mos = 100 * (1 - level / 4)``,
    so the folder loads as a benchmark with :func:`ssvqa.benchmarks.load_labelled_folder`.
    With ``levels``, each source instead gets one version at a chosen level (the ``i``-th source in
    sorted order at ``levels[i]``; its type is still drawn): e.g. anchors that span the quality
    range across several contents and types.
    Across types a level means a similar SSIM loss (the ladders are calibrated that way, see
    :mod:`ssvqa.distortions`), which is what makes one quality scale for the whole pool.

    Finished videos are kept when called again (resumable); returns the path of ``quality.csv``.
    """
    from ssvqa.distortions import CATALOGUE, Variant, render_variants

    if levels is not None and (len(levels) != len(sources) or not all(0 <= level <= 4 for level in levels)):
        raise ValueError(f"levels must give one level 0-4 per source ({len(sources)}), got {list(levels)}")
    if not 1 <= versions_per_source <= 5:
        raise ValueError(f"versions_per_source must be within 1..5 (levels 0-4), got {versions_per_source}")
    unknown = [t for t in types if t not in CATALOGUE]
    if unknown or not types:
        raise ValueError(f"unknown or no distortion types {unknown}; known: {', '.join(CATALOGUE)}")
    out_dir = Path(out_dir)
    table = out_dir / QUALITY_FILE
    if table.exists() and all((out_dir / name).exists() for name in read_quality(table)):
        return table  # made before (the draw is seeded, so it would come out the same)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    rows = []
    for index, source in enumerate(sorted(Path(s) for s in sources)):
        chosen = [levels[index]] if levels is not None else rng.sample(range(5), versions_per_source)
        variants = [Variant(()) if level == 0 else Variant(((rng.choice(list(types)), level),)) for level in chosen]
        work = out_dir / ".work" / f"{index:04d}"
        rendered = render_variants(source, variants, work, seed=seed + index, max_pixels=max_pixels, threads=threads)
        for variant, level, path in zip(variants, chosen, rendered):
            # an opaque name: the content's index and a hash of the recipe, not the recipe itself
            tag = hashlib.sha256(f"{seed}/{index}/{variant.name}".encode()).hexdigest()[:10]
            name = f"{index:04d}-{tag}.mp4"
            if not (out_dir / name).exists():
                os.replace(path, out_dir / name)  # same file system; the work folder goes afterwards
            rows.append((name, 100.0 * (1 - level / 4), variant.steps[0][0] if variant.steps else "pristine", level, source.name))
    shutil.rmtree(out_dir / ".work", ignore_errors=True)
    lines = ["name,mos,distortion,level,content"] + [f"{n},{q:.1f},{d},{lv},{c}" for n, q, d, lv, c in rows]
    table.write_text("\n".join(lines) + "\n")
    return table


def read_quality(path: str | Path) -> dict[str, float]:
    """``quality.csv`` of :func:`make_graded_pool` as ``{file name: quality 0-100}``."""
    with open(path, newline="") as handle:
        return {row["name"]: float(row["mos"]) for row in csv.DictReader(handle)}

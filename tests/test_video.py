import pytest
import torch

from ssvqa.errors import VideoError
from ssvqa.video import decode_frames, fit_size, probe, resize_frames, uniform_indices

GOOD = ["landscape_720p30", "portrait", "small_10fps", "one_frame", "ten_bit", "vfr"]
BAD = {
    "empty": "0-byte",
    "not_video": "not a readable video",
    "truncated": "not a readable video",
    "audio_only": "no video stream",
}


@pytest.mark.parametrize("name", GOOD)
def test_odd_but_valid_videos_decode_to_the_asked_frame_count(odd_videos, name):
    frames = decode_frames(odd_videos[name], num_frames=8, max_pixels=112 * 112, multiple=28)
    assert frames.shape[0] == 8 and frames.shape[1] == 3 and frames.dtype == torch.uint8
    h, w = frames.shape[-2:]
    assert h % 28 == 0 and w % 28 == 0 and h * w <= 112 * 112
    info = probe(odd_videos[name])
    assert (h > w) == info.portrait or h == w


def test_probe_reads_shape_rate_and_bit_depth(odd_videos):
    info = probe(odd_videos["small_10fps"])
    assert (info.width, info.height, round(info.fps)) == (192, 144, 10)
    assert info.num_frames == 10
    assert probe(odd_videos["ten_bit"]).pixel_format == "yuv420p10le"
    assert probe(odd_videos["portrait"]).portrait


def test_one_frame_video_repeats_its_frame(odd_videos):
    frames = decode_frames(odd_videos["one_frame"], num_frames=4)
    assert all(torch.equal(frames[0], f) for f in frames)


def test_fps_sampling_follows_presentation_time(odd_videos):
    # the VFR clip: 15 frames in its first 0.5 s, then one frame per 0.1 s
    info = probe(odd_videos["vfr"])
    frames = decode_frames(odd_videos["vfr"], fps=4.0)
    assert frames.shape[0] == max(1, int(info.duration * 4 + 1e-6))


@pytest.mark.parametrize("name,reason", sorted(BAD.items()))
def test_bad_videos_raise_one_error_naming_file_and_reason(odd_videos, name, reason):
    with pytest.raises(VideoError) as caught:
        decode_frames(odd_videos[name], num_frames=4)
    assert str(odd_videos[name]) in str(caught.value)
    assert reason in caught.value.reason


def test_missing_file_is_a_video_error(tmp_path):
    with pytest.raises(VideoError, match="does not exist"):
        probe(tmp_path / "nope.mp4")


def test_uniform_indices_cover_the_clip_and_repeat_when_short():
    assert uniform_indices(100, 4) == [12, 37, 62, 87]
    assert uniform_indices(2, 4) == [0, 0, 1, 1]


def test_resize_keeps_aspect_and_never_upscales():
    assert fit_size(144, 192, 10**6, 1) == (144, 192)
    frames = torch.randint(0, 255, (2, 3, 720, 406), dtype=torch.uint8)
    out = resize_frames(frames, 112 * 112, 28)
    h, w = out.shape[-2:]
    assert h > w and h * w <= 112 * 112 and out.dtype == torch.uint8


def test_embedded_bytes_decode_like_the_file_and_errors_use_the_given_name(odd_videos):
    path = odd_videos["small_10fps"]
    from_bytes = decode_frames(path.read_bytes(), num_frames=4, name="row-7.mp4")
    assert torch.equal(from_bytes, decode_frames(path, num_frames=4))
    with pytest.raises(VideoError, match="row-7.mp4: 0-byte"):
        decode_frames(b"", num_frames=4, name="row-7.mp4")
    with pytest.raises(VideoError, match="row-8.mp4: not a readable video"):
        decode_frames(b"garbage" * 10, num_frames=4, name="row-8.mp4")


def test_a_file_cut_short_with_its_index_first_is_refused_but_a_stream_copied_cut_is_not(tmp_path):
    import subprocess

    whole = tmp_path / "whole.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10",
                    "-t", "5", "-c:v", "libx264", "-movflags", "+faststart", str(whole)], check=True)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.3)])
    # The index survives, so the file opens and decodes a few frames without any error of its own.
    for read in (probe, lambda path: decode_frames(path, num_frames=4)):
        with pytest.raises(VideoError, match=r"cut.mp4: truncated: only 1\.\d+ of the 5\.00 s its header declares"):
            read(cut)
    # A cut made by stream copy keeps frames before its edit list: more frames than its duration
    # shows, yet nothing is missing.
    trimmed = tmp_path / "trimmed.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-ss", "1.5", "-i", str(whole), "-c", "copy", str(trimmed)],
                   check=True)
    assert probe(trimmed).duration == pytest.approx(3.5, abs=0.15)

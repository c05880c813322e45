"""Benchmark readers: label files in each benchmark's own format, resolved to videos under a root.

Every benchmark folder here is fabricated in the layout its authors released (see the format
notes in ssvqa/benchmarks.py); the videos are copies of one real 1-frame clip.
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pytest
import scipy.io

from conftest import make_video
from ssvqa.benchmarks import benchmark_names, load_benchmark, load_labelled_folder, load_scored
from ssvqa.errors import SsvqaError, VideoError


@pytest.fixture(scope="module")
def clip_bytes(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", size="64x48", frames=1).read_bytes()


@pytest.fixture
def put(tmp_path, clip_bytes):
    """``put("a/b.mp4", ...)`` writes copies of the clip under tmp_path/bench and returns the root."""
    root = tmp_path / "bench"
    root.mkdir()

    def write(*names):
        for name in names:
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(clip_bytes)
        return root

    return write


def write_text(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_konvid_1k_attributes_csv(put):
    root = put("KoNViD_1k_videos/3339962845.mp4", "KoNViD_1k_videos/5404167164.mp4")
    write_text(
        root / "KoNViD_1k_metadata/KoNViD_1k_attributes.csv",
        "flickr_id,file_name,MOS,SD,n\n"
        "3339962845,3339962845_original_centercrop_960x540_8s.mp4,4.64,0.51,50\n"
        "5404167164,5404167164_original_centercrop_960x540_8s.mp4,1.22,0.44,52\n",
    )
    ds = load_benchmark("KoNViD-1k", root)
    assert ds.column_names == ["video", "mos", "name", "mos_std"]
    assert ds["mos"] == [4.64, 1.22] and ds["mos_std"] == [0.51, 0.44]
    assert ds["video"][0] == str((root / "KoNViD_1k_videos/3339962845.mp4").absolute())
    assert ds["name"] == ["3339962845", "5404167164"]


def test_konvid_falls_back_to_the_file_name_column(put):
    root = put("videos/3339962845_original_centercrop_960x540_8s.mp4")
    write_text(root / "KoNViD_1k_attributes.csv", "flickr_id,file_name,MOS\n3339962845,3339962845_original_centercrop_960x540_8s.mp4,3.5\n")
    ds = load_benchmark("konvid1k", root)
    assert ds["video"][0].endswith("3339962845_original_centercrop_960x540_8s.mp4")
    assert "mos_std" not in ds.column_names  # no std column in this file


def test_live_vqc_data_mat(put):
    root = put("Video/A001.mp4", "Video/B102.mp4", "Video/G111.mp4")
    names = np.empty((3, 1), dtype=object)
    for i, name in enumerate(["A001.mp4", "B102.mp4", "G111.mp4"]):
        names[i, 0] = np.array([name])
    scipy.io.savemat(root / "data.mat", {"video_list": names, "mos": np.array([[80.2], [35.5], [61.0]])})
    ds = load_benchmark("LIVE-VQC", root)
    assert ds["name"] == ["A001.mp4", "B102.mp4", "G111.mp4"]
    assert ds["mos"] == pytest.approx([80.2, 35.5, 61.0])
    assert all(os.path.isfile(v) for v in ds["video"])


def test_live_vqc_csv_variant(put):
    root = put("Video/A001.mp4", "Video/A002.mp4")
    write_text(root / "LIVE_VQC_metadata.csv", "name,mos\nA001.mp4,70\nA002.mp4,20\n")
    assert load_benchmark("live_vqc", root)["mos"] == [70.0, 20.0]


def test_youtube_ugc_csv_export(put):
    root = put("original_videos/Gaming/720P/Gaming_720P-1a2b.mkv", "h264/Vlog_360P-7c8d_orig.mp4")
    write_text(
        root / "original_videos_MOS_for_YouTube_UGC_dataset.csv",
        "vid,MOS full,MOS chunk00\nGaming_720P-1a2b,3.91,3.8\nVlog_360P-7c8d,2.05,2.1\n",
    )
    ds = load_benchmark("YouTube-UGC", root)
    assert ds["mos"] == [3.91, 2.05]
    assert ds["video"][0].endswith("Gaming_720P-1a2b.mkv") and ds["video"][1].endswith("Vlog_360P-7c8d_orig.mp4")


@pytest.mark.skipif(importlib.util.find_spec("openpyxl") is not None, reason="openpyxl installed: .xlsx reads")
def test_youtube_ugc_xlsx_without_openpyxl_says_what_to_do(put):
    root = put("a/Gaming_720P-1a2b.mkv")
    (root / "original_videos_MOS_for_YouTube_UGC_dataset.xlsx").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(SsvqaError, match="openpyxl.*export"):
        load_benchmark("youtube-ugc", root)


def test_lsvq_splits(put):
    root = put("ia-batch1/clipA.mp4", "ia-batch1/clipB.mp4", "yfcc-batch3/1234.mp4", "ia-batch9/big1080.mp4")
    write_text(
        root / "labels_train_test.csv",
        "name,p1,p2,p3,height,width,mos_p1,mos_p2,mos_p3,mos,frame_number,is_test\n"
        "ia-batch1/clipA,0,0,0,240,320,60,61,62,65.5,150,False\n"
        "ia-batch1/clipB,0,0,0,240,320,40,41,42,41.25,150,True\n"
        "yfcc-batch3/1234,0,0,0,360,640,50,51,52,52.0,240,True\n",
    )
    write_text(root / "labels_test_1080p.csv", "name,height,width,mos,frame_number\nia-batch9/big1080,1080,1920,71.3,300\n")
    test = load_benchmark("LSVQ", root)
    assert test["name"] == ["ia-batch1/clipB", "yfcc-batch3/1234"] and test["mos"] == [41.25, 52.0]
    assert test["video"][1] == str((root / "yfcc-batch3/1234.mp4").absolute())
    assert load_benchmark("LSVQ", root, split="train")["name"] == ["ia-batch1/clipA"]
    assert load_benchmark("LSVQ", root, split="test_1080p")["mos"] == [71.3]
    # a repo-style labels_test.csv (no is_test column) is the test split by itself
    write_text(root / "labels_test.csv", "name,mos\nia-batch1/clipA,11.0\n")
    assert load_benchmark("LSVQ", root)["mos"] == [11.0]
    with pytest.raises(SsvqaError, match="no split 'val'"):
        load_benchmark("LSVQ", root, split="val")

    # the same through the spec strings that commands and recipes take
    assert load_scored(f"lsvq/test_1080p={root}")["mos"] == [71.3]
    assert load_scored(f"LSVQ={root}", split="train")["name"] == ["ia-batch1/clipA"]
    with pytest.raises(SsvqaError, match="'test_1080p' in the name but 'train'"):
        load_scored(f"lsvq/test_1080p={root}", split="train")
    assert load_scored(root / "labels_test.csv")["mos"] == [11.0]  # a label file: videos in its folder
    with pytest.raises(SsvqaError, match="not to the label file"):
        load_scored(root / "labels_test.csv", split="test")
    with pytest.raises(SsvqaError, match="neither NAME=ROOT"):
        load_scored(root / "missing.csv")


@pytest.mark.parametrize(
    ("benchmark", "label_file"),
    [("LIVE-YT-Gaming", "LIVE-YT-Gaming_metadata.csv"), ("CGVDS", "CGVDS_metadata.csv"), ("Waterloo-IVC-4K", "MOS.csv")],
)
def test_metadata_csv_benchmarks(put, benchmark, label_file):
    root = put("videos/g1.mp4", "videos/g2.mp4")
    write_text(root / "mos_files" / label_file, "File,width,height,framerate,MOS,std\ng1.mp4,360,640,30,77.1,9.5\ng2.mp4,360,640,60,30.4,12.0\n")
    ds = load_benchmark(benchmark, root)
    assert ds["mos"] == [77.1, 30.4] and ds["mos_std"] == [9.5, 12.0]


def test_kvq_challenge_csv(put):
    root = put("train/0001.mp4", "train/0002.mp4", "val/0101.mp4")
    write_text(root / "train_data.csv", "filename,score\ntrain/0001.mp4,3.25\ntrain/0002.mp4,1.75\n")
    write_text(root / "val_data.csv", "video,label\nval/0101.mp4,2.5\n")  # unknown header: position 0, 1
    assert load_benchmark("KVQ", root, split="train")["mos"] == [3.25, 1.75]
    assert load_benchmark("KVQ", root, split="val")["name"] == ["val/0101.mp4"]
    with pytest.raises(SsvqaError, match="no label file.*test_data.csv"):
        load_benchmark("KVQ", root)


def test_live_yt_hfr_transposed_csv(put):
    root = put("1Runner/1Runner_crf_0_24fps.webm", "Flips/Flips_crf_63_120fps.webm")
    write_text(
        root / "subjective_scores/subject_MOS.csv",
        "File Names,1Runner_crf_0_24fps,Flips_crf_63_120fps\nMOS,41.9,55.3\nstd,11.5,9.2\n",
    )
    ds = load_benchmark("LIVE-YT-HFR", root)
    assert ds["name"] == ["1Runner_crf_0_24fps", "Flips_crf_63_120fps"]
    assert ds["mos"] == [41.9, 55.3] and ds["mos_std"] == [11.5, 9.2]
    assert ds["video"][1].endswith("Flips/Flips_crf_63_120fps.webm")


def test_generic_reader_formats(put, tmp_path):
    root = put("clips/a.mp4", "clips/b.mkv")
    write_text(root / "labels.json", json.dumps([{"file": "clips/a.mp4", "score": 2.0}, {"file": "clips/b.mkv", "score": 4.0}]))
    ds = load_labelled_folder(root, "labels.json", name_column="file", score_column="score", benchmark="mine")
    assert ds["mos"] == [2.0, 4.0] and "mine" in ds.info.description
    write_text(root / "map.json", json.dumps({"a": 1.5, "b": 3.5}))  # name -> score, found by stem
    assert load_labelled_folder(root, root / "map.json")["video"][1].endswith("clips/b.mkv")
    write_text(root / "l.jsonl", '{"name": "a.mp4", "mos": 1, "sd": 0.2}\n{"name": "b.mkv", "mos": 2, "sd": 0.3}\n')
    assert load_labelled_folder(root, "l.jsonl", std_column="sd")["mos_std"] == [0.2, 0.3]
    # FAST-VQA / DOVER labels.txt: "name,_,_,score" without header
    write_text(root / "labels.txt", "clips/a.mp4,0,0,71.2\nclips/b.mkv,0,0,12.9\n")
    ds = load_labelled_folder(root, "labels.txt", name_column=0, score_column=3, header=False)
    assert ds["mos"] == [71.2, 12.9]
    write_text(root / "t.tsv", "name\tmos\na.mp4\t5\n")
    assert load_labelled_folder(root, "t.tsv")["mos"] == [5.0]


def test_missing_videos_error_or_skip_with_a_list(put):
    root = put("v/a.mp4")
    write_text(root / "labels.csv", "name,mos\na.mp4,1\ngone1.mp4,2\ngone2.mp4,3\n")
    with pytest.raises(SsvqaError, match=r"2 of 3 labelled videos not found.*gone1\.mp4, gone2\.mp4"):
        load_labelled_folder(root, "labels.csv")
    with pytest.warns(UserWarning, match="2 of 3.*gone1.mp4"):
        ds = load_labelled_folder(root, "labels.csv", on_missing="skip")
    assert ds["name"] == ["a.mp4"] and "2 labelled videos missing" in ds.info.description


def test_paths_escaping_the_root_are_rejected(put, tmp_path, clip_bytes):
    root = put("in.mp4")
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(clip_bytes)
    for name in ("../outside.mp4", str(outside)):
        write_text(root / "labels.csv", f"name,mos\nin.mp4,1\n{name},2\n")
        with pytest.raises(VideoError, match="outside the benchmark root"):
            load_labelled_folder(root, "labels.csv")
    # a symlink inside the root that leads out is no way around it
    (root / "link.mp4").symlink_to(outside)
    write_text(root / "labels.csv", "name,mos\nlink.mp4,2\n")
    with pytest.raises(VideoError, match="outside the benchmark root"):
        load_labelled_folder(root, "labels.csv")
    # an absolute path that stays inside the root is fine
    write_text(root / "labels.csv", f"name,mos\n{root / 'in.mp4'},2\n")
    assert load_labelled_folder(root, "labels.csv")["mos"] == [2.0]


def test_ambiguous_names_and_bad_scores_are_named(put):
    root = put("x/clip.mp4", "y/clip.mp4")
    write_text(root / "labels.csv", "name,mos\nclip,1\n")
    with pytest.raises(SsvqaError, match="matches 2 videos"):
        load_labelled_folder(root, "labels.csv")
    write_text(root / "bad.csv", "name,mos\nx/clip.mp4,\n")
    with pytest.raises(SsvqaError, match=r"bad.csv, line 2: score '' is not a number"):
        load_labelled_folder(root, "bad.csv")
    write_text(root / "cols.csv", "video,quality\nx/clip.mp4,3\n")
    with pytest.raises(SsvqaError, match=r"none of the columns \['name'\].*video, quality"):
        load_labelled_folder(root, "cols.csv")


def test_unknown_benchmark_is_named(tmp_path):
    with pytest.raises(SsvqaError, match="unknown benchmark 'NotABench'"):
        load_benchmark("NotABench", tmp_path)
    assert {"konvid-1k", "live-vqc", "youtube-ugc", "lsvq", "kvq", "live-yt-hfr"} <= set(benchmark_names())

"""gpa_arrays.experiments: synthetic clips, loaders, the lifting experiment, the CLI."""

import doctest
import json
import subprocess
import sys

import numpy as np
import pytest
from test_cli import python_env

from gpa_arrays import camera, cli, experiments, skeletons
from gpa_arrays.experiments import _clips, _graphs, _loaders

TINY = experiments.ExperimentConfig(
    steps=25, batch_size=32, width=32, channels=32, n_source=48, n_target=40,
    n_test=24,
)  # fmt: skip


# --- synthetic clips (NumPy only) ------------------------------------------------------


def test_clip_domains_shapes_cameras_and_motion():
    d = experiments.make_clip_domains(30, 20, 10, frames=9, seed=4)
    assert d.source_3d.shape == (30, 9, 17, 3) and d.source_camera.shape == (30, 4)
    assert d.target_2d.shape == (20, 9, 17, 2) and d.target_camera.shape == (20, 4)
    assert d.test_2d.shape == (10, 9, 17, 2) and d.test_3d.shape == (10, 9, 17, 3)
    # one camera per clip: every frame's 2D is its projection through it
    np.testing.assert_allclose(
        d.test_2d, camera.project(d.test_3d, d.test_camera[:, None]), atol=1e-12
    )
    # wild clips stay inside their frames; studio cameras are the four H36M ones
    assert np.abs(d.test_2d[..., 0]).max() <= 1.0
    assert len(np.unique(d.source_camera[:, 0])) <= 4
    # smooth motion: consecutive frames differ by centimetres, not decimetres
    step = np.linalg.norm(np.diff(d.source_3d, axis=1), axis=-1)
    assert 0 < step.mean() < 0.03 and step.max() < 0.2
    # bone lengths are constant within a clip (one person)
    parents = skeletons.get("h36m_17").parents
    bones = np.linalg.norm(
        d.source_3d[:, :, 1:] - d.source_3d[:, :, list(parents[1:])], axis=-1
    )
    np.testing.assert_allclose(
        bones, np.broadcast_to(bones[:, :1], bones.shape), atol=1e-9
    )


def test_clip_domains_are_seeded_and_independent_of_other_sizes():
    a = experiments.make_clip_domains(12, 6, 4, seed=1)
    b = experiments.make_clip_domains(12, 9, 4, seed=1, dtype=np.float32)
    np.testing.assert_array_equal(a.source_3d.astype(np.float32), b.source_3d)
    np.testing.assert_array_equal(a.test_2d.astype(np.float32), b.test_2d)
    c = experiments.make_clip_domains(12, 6, 4, seed=2)
    assert not np.allclose(a.source_3d, c.source_3d)
    with pytest.raises(ValueError, match="n_source: expected a non-negative int"):
        experiments.make_clip_domains(-1)
    with pytest.raises(TypeError, match="frames: expected an int, got float"):
        experiments.make_clip_domains(2, 2, 2, frames=9.0)
    with pytest.raises(ValueError, match="dtype: expected float32 or float64"):
        experiments.make_clip_domains(2, 2, 2, dtype=np.int32)


def test_clips_from_sequences():
    clips, origin = experiments.clips_from_sequences(
        [np.arange(5.0), np.arange(10.0, 13.0)], 3, stride=2
    )
    assert clips.tolist() == [
        [0, 0, 1], [1, 2, 3], [3, 4, 4], [10, 10, 11], [11, 12, 12],
    ]  # fmt: skip
    assert origin.tolist() == [[0, 0], [0, 2], [0, 4], [1, 0], [1, 2]]
    with pytest.raises(ValueError, match="frames: expected an odd number"):
        experiments.clips_from_sequences([np.arange(5.0)], 4)
    with pytest.raises(ValueError, match="stride: expected a positive int, got 0"):
        experiments.clips_from_sequences([np.arange(5.0)], 3, stride=0)
    with pytest.raises(ValueError, match="at least one non-empty sequence"):
        experiments.clips_from_sequences([np.zeros((0, 3))], 3)


# --- loaders, on small files in the users' layouts -------------------------------------


def _rot_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def write_h36m(tmp_path, rng):
    """A tiny ``data_3d_h36m.npz`` and camera JSON in VideoPose3D's layout.

    Camera k looks along world +y from 5 m away, turned by a yaw about z;
    its orientation is the quaternion of camera->world rotation ``R_z(yaw) @ B``
    with B the fixed axis swap (camera x, y, z = world x, -z, y).
    """
    base = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # camera -> world axes
    intrinsic, extrinsic, truth = [], {"S1": [], "S5": []}, {}
    for k in range(4):
        intrinsic.append({
            "id": str(k), "center": [500.0 + k, 505.0 - k],
            "focal_length": [1140.0 + k, 1141.0], "radial_distortion": [0.0] * 3,
            "tangential_distortion": [0.0, 0.0], "res_w": 1000, "res_h": 1002,
        })  # fmt: skip
    for subject in extrinsic:
        for k in range(4):
            yaw = np.pi / 2 * k + 0.1
            r = _rot_z(yaw) @ base
            # quaternion of r (w, x, y, z), scalar first, from its trace
            w = np.sqrt(1.0 + np.trace(r)) / 2
            q = [w, (r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w),
                 (r[1, 0] - r[0, 1]) / (4 * w)]  # fmt: skip
            position = _rot_z(yaw) @ np.array([0.0, -5.0, 1.0])
            extrinsic[subject].append(
                {"orientation": q, "translation": list(position * 1000.0)}
            )
    poses = {}
    for subject in extrinsic:
        poses[subject] = {}
        for a, action in enumerate(("Walking", "Sitting 1")):
            frames = 7 + 3 * a
            world = rng.normal(scale=0.3, size=(frames, 32, 3))
            world[..., 2] += 1.0
            poses[subject][action] = world
    path = tmp_path / "data_3d_h36m.npz"
    np.savez(path, positions_3d=np.array(poses, dtype=object))
    cams = tmp_path / "h36m_cameras.json"
    cams.write_text(json.dumps({"intrinsic": intrinsic, "extrinsic": extrinsic}))
    truth = {"poses": poses, "intrinsic": intrinsic, "extrinsic": extrinsic}
    return path, cams, truth


def test_load_h36m_npz(tmp_path, rng):
    path, cams, truth = write_h36m(tmp_path, rng)
    out = experiments.load_h36m_npz(path, cams, subjects=("S1", "S5"), frames=3,
                                    stride=2)  # fmt: skip
    # 2 subjects x (7 + 10 frames, every 2nd: 4 + 5 clips) x 4 cameras
    assert out["source_3d"].shape == (2 * 9 * 4, 3, 17, 3)
    assert out["source_camera"].shape == (72, 9)
    assert out["names"] == {
        "subjects": ["S1", "S5"],
        "actions": ["Sitting 1", "Walking"],
    }
    # one clip checked against the transform written out by hand
    i = 6  # "Sitting 1" (10 frames: 5 clips per camera), camera 1, clip 1
    s, a, k = out["origin"][i]
    assert (s, a, k) == (0, 0, 1)  # S1, "Sitting 1" (sorted), camera 1
    world = truth["poses"]["S1"]["Sitting 1"][:, _loaders.H36M_17_OF_32]
    yaw = np.pi / 2 * k + 0.1
    r = _rot_z(yaw) @ np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])
    position = np.array(truth["extrinsic"]["S1"][k]["translation"]) / 1000.0
    cam_space = (world - position) @ r  # R^T (X - t), row vectors
    # clip 1 of the sequence is centred on frame 2: frames 1, 2, 3
    np.testing.assert_allclose(out["source_3d"][i], cam_space[1:4], atol=1e-9)
    intr = truth["intrinsic"][k]
    np.testing.assert_allclose(
        out["source_camera"][i, :4],
        [2 * intr["focal_length"][0] / 1000, 2 * intr["focal_length"][1] / 1000,
         2 * intr["center"][0] / 1000 - 1, 2 * intr["center"][1] / 1000 - 1.002],
    )  # fmt: skip
    # the cameras see the subject in front of them
    assert (out["source_3d"][..., 2] > 3.0).all()


def test_load_h36m_npz_errors(tmp_path, rng):
    path, cams, _ = write_h36m(tmp_path, rng)
    with pytest.raises(ValueError, match=r"subjects: \['S9'\] not in both"):
        experiments.load_h36m_npz(path, cams, subjects=("S9",))
    with pytest.raises(ValueError, match=r"cameras: expected a dict .* 'intrinsic'"):
        experiments.load_h36m_npz(path, {"extrinsic": {}})
    bad = tmp_path / "bad.npz"
    np.savez(bad, poses=np.zeros(3))
    with pytest.raises(ValueError, match="expected the key 'positions_3d'"):
        experiments.load_h36m_npz(bad, cams)


def write_3dhp(tmp_path, d, valid=None, sequence=None):
    """A tiny 3DHP test ``.npz`` from synthetic wild clips (their centre frames)."""
    poses = d.test_3d[:, 4]  # (F, 17, 3) metres, H36M-17
    cam = d.test_camera
    width = np.where(np.arange(len(cam)) % 2 == 0, 2048.0, 1920.0)
    height = np.where(np.arange(len(cam)) % 2 == 0, 2048.0, 1080.0)
    uv = camera.image_coordinates(camera.project(poses, cam), width, height)
    f_px = cam[:, :2] * width[:, None] / 2
    c_px = camera.image_coordinates(cam[:, 2:4], width, height)
    order = skeletons.mapping("h36m_17", "mpi_inf_3dhp_17")
    arrays = {
        "pose_2d": uv[:, order], "pose_3d": poses[:, order] * 1000.0,
        "camera": np.concatenate([f_px, c_px], axis=1),
        "image_size": np.stack([width, height], axis=1),
    }  # fmt: skip
    if valid is not None:
        arrays["valid"] = valid
    if sequence is not None:
        arrays["sequence"] = sequence
    path = tmp_path / "3dhp_test.npz"
    np.savez(path, **arrays)
    return path, poses


def test_load_3dhp_test_npz(tmp_path):
    d = experiments.make_clip_domains(1, 1, 12, seed=3)
    valid = np.ones(12, bool)
    valid[[3, 7]] = False
    sequence = np.repeat([1, 2], 6)
    path, poses = write_3dhp(tmp_path, d, valid=valid, sequence=sequence)
    out = experiments.load_3dhp_test_npz(path, frames=3)
    assert out["test_2d"].shape == (10, 3, 17, 2) and out["test_3d"].shape == (
        10,
        3,
        17,
        3,
    )
    # centre frames are the valid frames, in order, back in H36M-17 metres
    np.testing.assert_allclose(out["test_3d"][:, 1], poses[valid], atol=1e-12)
    # the normalised 2D are the projections of the 3D through the normalised camera
    np.testing.assert_allclose(
        out["test_2d"][:, 1],
        camera.project(out["test_3d"][:, 1], out["test_camera"]),
        atol=1e-9,
    )
    np.testing.assert_allclose(out["test_camera"], d.test_camera[valid], atol=1e-12)
    # clips do not cross sequences: the last frame of sequence 1 is repeated
    assert out["origin"][:, 0].tolist() == [0] * 5 + [1] * 5
    np.testing.assert_array_equal(out["test_3d"][4, 2], out["test_3d"][4, 1])
    assert out["target_2d"] is out["test_2d"]


def test_load_3dhp_test_npz_errors(tmp_path):
    d = experiments.make_clip_domains(1, 1, 4, seed=3)
    path, _ = write_3dhp(tmp_path, d)
    arrays = dict(np.load(path))
    del arrays["image_size"]
    np.savez(tmp_path / "a.npz", **arrays)
    with pytest.raises(ValueError, match=r"missing \['image_size'\]"):
        experiments.load_3dhp_test_npz(tmp_path / "a.npz")
    arrays = dict(np.load(path))
    arrays["pose_3d"] = arrays["pose_3d"][:, :16]
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(ValueError, match=r"expected pose_2d \(F, 17, 2\) and pose_3d"):
        experiments.load_3dhp_test_npz(tmp_path / "b.npz")
    arrays = dict(np.load(path))
    arrays["camera"] = arrays["camera"][:2]
    np.savez(tmp_path / "c.npz", **arrays)
    with pytest.raises(
        ValueError, match=r"expected camera of shape \(4,\) or \(4, 4\)"
    ):
        experiments.load_3dhp_test_npz(tmp_path / "c.npz")


# --- the table (NumPy only) -------------------------------------------------------------


def fake_result(seeds=(0, 1, 2)):
    runs = []
    for seed in seeds:
        for lifter, base in (("simple_baseline", 150.0), ("videopose3d", 160.0)):
            for variant, gain in (("none", 0.0), ("weak", 40.0), ("perspective", 41.0)):
                mp = base - gain + seed
                runs.append({
                    "lifter": lifter, "variant": variant, "seed": seed, "mpjpe": mp,
                    "p_mpjpe": mp * 0.7, "pck": 200 - mp, "auc": 100 - mp / 2,
                    "final_loss": 0.1, "seconds": 1.0,
                })  # fmt: skip
    return experiments.ExperimentResult(runs=runs, description="fake")


def test_summary_improvement_and_table_layout():
    result = fake_result()
    summary = result.summary()
    mean, std, n = summary[("simple_baseline", "weak")]["mpjpe"]
    assert (mean, std, n) == (111.0, 1.0, 3)
    np.testing.assert_array_equal(result.improvement("videopose3d", "perspective"),
                                  [41.0, 41.0, 41.0])  # fmt: skip
    text = experiments.format_table(result)
    lines = text.splitlines()
    assert lines[0] == "fake" and "over 3 seeds" in lines[1]
    assert lines[3].startswith("SimpleBaseline") and "151.0 ± 1.0" in lines[3]
    assert lines[4].startswith("  + GPA (weak)") and "111.0 ± 1.0 (-40.0)" in lines[4]
    assert lines[5].startswith("  + GPA (perspective)") and "(-41.0)" in lines[5]
    assert lines[6].startswith("VideoPose3D (9 fr.)")
    assert "(+40.0)" in lines[4]  # PCK rises by as much
    assert lines[9].startswith("MPJPE change, seed by seed")
    assert lines[10].split() == [
        "SimpleBaseline",
        "+",
        "GPA",
        "(weak)",
        "-40.0",
        "±",
        "0.0",
    ]
    assert lines[13].split()[-3:] == ["-41.0", "±", "0.0"] and len(lines) == 14
    one = experiments.format_table(fake_result(seeds=(0,)))
    assert "±" not in one and "(-40.0)" in one


@pytest.mark.parametrize("module", [_clips, _graphs, _loaders])
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_importing_experiments_does_not_import_torch():
    code = (
        "import sys, gpa_arrays, gpa_arrays.cli; gpa_arrays.experiments; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=python_env())


def test_missing_torch_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match="pip install torch"):
        experiments.run_experiment(**experiments.synthetic_inputs(TINY), config=TINY)


# --- the experiment, end to end (torch) -------------------------------------------------


def test_tiny_experiment_end_to_end():
    pytest.importorskip("torch")
    inputs = experiments.synthetic_inputs(TINY, seed=1)
    kept = {k: v.copy() for k, v in inputs.items()}
    result = experiments.run_experiment(
        **inputs, lifters=("simple_baseline", "videopose3d"), seeds=(0, 1), config=TINY
    )
    for k, v in inputs.items():  # the caller's arrays are not modified
        np.testing.assert_array_equal(v, kept[k])
    assert len(result.runs) == 2 * 2 * 3
    for run in result.runs:
        assert 0 < run["p_mpjpe"] < run["mpjpe"] < 2000
        assert 0 <= run["pck"] <= 100 and 0 <= run["auc"] <= run["pck"]
    by = {(r["lifter"], r["variant"], r["seed"]): r for r in result.runs}
    # the variants differ only in the 2D inputs: GPA changes the result
    assert (
        by["simple_baseline", "none", 0]["mpjpe"]
        != by["simple_baseline", "weak", 0]["mpjpe"]
    )
    # seeded: a rerun of one configuration gives the same numbers
    again = experiments.run_experiment(
        **inputs, lifters=("videopose3d",), variants=("weak",), seeds=(1,), config=TINY
    )
    assert again.runs[0]["mpjpe"] == pytest.approx(by["videopose3d", "weak", 1]["mpjpe"],
                                                   rel=1e-6)  # fmt: skip
    text = experiments.format_table(result)
    assert "+ GPA (perspective)" in text and "VideoPose3D (9 fr.)" in text


def test_experiment_on_single_frames_and_argument_errors():
    pytest.importorskip("torch")
    d = experiments.make_clip_domains(40, 30, 20, frames=1, seed=0)
    args = (d.source_3d[:, 0], d.source_camera, d.target_2d[:, 0], d.target_camera,
            d.test_2d[:, 0], d.test_3d[:, 0])  # fmt: skip
    result = experiments.run_experiment(
        *args, lifters=("simple_baseline",), variants=("none", "weak"), seeds=(3,),
        config=TINY,
    )  # fmt: skip
    assert [r["variant"] for r in result.runs] == ["none", "weak"]
    with pytest.raises(
        ValueError, match="source_3d: videopose3d needs clips of at least"
    ):
        experiments.run_experiment(*args, lifters=("videopose3d",), config=TINY)
    with pytest.raises(ValueError, match="source_3d: stgcn needs clips of at least 3"):
        experiments.run_experiment(*args, config=TINY)
    with pytest.raises(ValueError, match=r"lifters: expected a non-empty selection"):
        experiments.run_experiment(*args, lifters=("gcn",), config=TINY)
    with pytest.raises(ValueError, match=r"test_3d: expected the clips and joints"):
        experiments.run_experiment(*args[:5], args[5][:3], config=TINY)
    with pytest.raises(
        ValueError, match=r"target_camera: expected shape \(4,\), \(9,\)"
    ):
        experiments.run_experiment(*args[:3], args[3][:2], *args[4:], config=TINY)
    with pytest.raises(ValueError, match=r"source_3d: expected a 3-D or 4-D array"):
        experiments.run_experiment(args[0][..., :2], *args[1:], config=TINY)


def test_experiment_on_the_loaded_files(tmp_path, rng, capsys):
    pytest.importorskip("torch")
    h36m, cams, _ = write_h36m(tmp_path, rng)
    d = experiments.make_clip_domains(1, 1, 16, seed=5)
    hp3d, _ = write_3dhp(tmp_path, d)
    code = cli.main(["experiment", "--h36m", str(h36m), "--h36m-cameras", str(cams),
                     "--3dhp", str(hp3d), "--h36m-subjects", "S1,S5", "--steps", "3",
                     "--batch-size", "16", "--seeds", "0", "--variants", "none,weak",
                     "--lifters", "all", "--threads", "1"])  # fmt: skip
    assert code == 0
    # the real-data path runs every lifter
    out = capsys.readouterr().out
    for name in ("SemGCN", "SimpleBaseline", "ST-GCN (3 fr.)", "VideoPose3D (9 fr.)"):
        assert name in out


def test_cli_experiment(capsys):
    pytest.importorskip("torch")
    code = cli.main([
        "experiment", "--steps", "4", "--batch-size", "16", "--n-source", "24",
        "--n-target", "24", "--n-test", "12", "--seeds", "0,1",
        "--variants", "none,weak", "--threads", "1",
        "--lifters", "simple_baseline,videopose3d",
    ])  # fmt: skip
    assert code == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("Synthetic studio -> wild: 24 source")
    assert any(line.startswith("SimpleBaseline") for line in lines)
    assert any(line.startswith("  + GPA (weak)") for line in lines)
    assert not any("perspective" in line for line in lines)
    assert "VideoPose3D + GPA (weak) seed 1" in err
    assert cli.main(["experiment", "--h36m", "x.npz"]) == 2
    assert "go together" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["experiment", "--lifters", "gcn"])
    import torch

    if not torch.cuda.is_available():
        assert cli.main(["experiment", "--device", "cuda", "--steps", "1"]) == 2
        assert "torch sees no CUDA device" in capsys.readouterr().err


def test_cli_gpu_size_runs_shrunk_on_the_cpu(capsys):
    # the --gpu-size networks (1024 units and channels), a few steps on tiny data
    pytest.importorskip("torch")
    code = cli.main([
        "experiment", "--gpu-size", "--steps", "2", "--batch-size", "8",
        "--n-source", "16", "--n-target", "16", "--n-test", "8", "--seeds", "0",
        "--variants", "none,perspective", "--quiet",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "2 steps of 8" in out and "+ GPA (perspective)" in out


def test_training_clips_move_by_one_translation_each():
    torch = pytest.importorskip("torch")
    import gpa_arrays
    from gpa_arrays.experiments._train import _align_clips

    d = experiments.make_clip_domains(16, 12, 1, seed=2)
    target = torch.from_numpy(d.target_2d.reshape(-1, 17, 2))
    cams = torch.from_numpy(np.repeat(d.target_camera, 9, axis=0))
    clips = torch.from_numpy(d.source_3d)
    aug = gpa_arrays.GPA(target, cams, seed=0, return_2d=True)
    moved_2d = _align_clips(aug, clips)
    assert moved_2d.shape == (16, 9, 17, 2)
    # replay the call: the 3D moved by one translation per clip, and the 2D
    # are their projections through the paired target's camera
    aug.reset()
    moved_3d, again_2d = aug(clips)
    torch.testing.assert_close(again_2d, moved_2d, rtol=0, atol=0)
    shift = (moved_3d - clips).numpy()
    np.testing.assert_allclose(shift, np.broadcast_to(shift[:, :1, :1], shift.shape),
                               atol=1e-9)  # fmt: skip
    index = aug.pair_indices(16, step=0)
    np.testing.assert_allclose(
        moved_2d[:, 4, 0].numpy(), d.target_2d.reshape(-1, 17, 2)[index, 0], atol=1e-9
    )


# --- the graph lifters: graphs (NumPy) and layers (torch) -------------------------------

GRAPH_TINY = experiments.ExperimentConfig(
    steps=6, batch_size=16, semgcn_channels=8, semgcn_blocks=1, stgcn_channels=8,
    n_source=12, n_target=12, n_test=6, frames=3,
)  # fmt: skip


def test_st_neighbour_classes_of_a_chain_over_three_frames():
    # joints 0 - 1 - 2, root 0; node t * 3 + j
    classes = _graphs.st_neighbour_classes([-1, 0, 1], 3)
    assert classes.shape == (5, 9, 9) and _graphs.NEIGHBOUR_CLASSES == (
        "self", "centripetal", "centrifugal", "past", "future",
    )  # fmt: skip

    def pairs(k):
        return sorted(map(tuple, np.argwhere(classes[k]).tolist()))

    assert pairs(0) == [(n, n) for n in range(9)]
    # closer to the root: 1 -> 0, 2 -> 1 in every frame
    assert pairs(1) == [(1, 0), (2, 1), (4, 3), (5, 4), (7, 6), (8, 7)]
    # farther from the root: 0 -> 1, 1 -> 2
    assert pairs(2) == [(0, 1), (1, 2), (3, 4), (4, 5), (6, 7), (7, 8)]
    # the same joint one frame earlier / later; none before 0 or after 2
    assert pairs(3) == [(3, 0), (4, 1), (5, 2), (6, 3), (7, 4), (8, 5)]
    assert pairs(4) == [(0, 3), (1, 4), (2, 5), (3, 6), (4, 7), (5, 8)]
    # the classes do not overlap, and their union is the graph with self-loops
    assert classes.sum(axis=0).max() == 1
    with pytest.raises(ValueError, match=r"parents: expected one root"):
        _graphs.st_neighbour_classes([-1, -1], 2)
    with pytest.raises(ValueError, match="frames: expected a positive int, got 0"):
        _graphs.st_neighbour_classes([-1, 0], 0)


def test_graphs_of_h36m_come_from_its_parents():
    parents = skeletons.get("h36m_17").parents
    a = _graphs.adjacency(parents)
    assert a.sum() == 17 + 2 * 16 and np.array_equal(a, a.T)
    part, tree = _graphs.body_parts(parents)
    groups = [np.flatnonzero(part == k).tolist() for k in range(len(tree))]
    assert groups == [[0, 7, 8], [1, 2, 3], [4, 5, 6], [9, 10], [11, 12, 13],
                      [14, 15, 16]]  # fmt: skip
    assert tree.tolist() == [-1, 0, 0, 0, 0, 0]
    with pytest.raises(ValueError, match="cycle"):
        _graphs.depths([-1, 2, 1])


def test_semantic_graph_convolution_weights_and_relabelling():
    torch = pytest.importorskip("torch")
    from gpa_arrays.experiments._models import SemGraphConv

    parents = skeletons.get("h36m_17").parents
    torch.manual_seed(0)
    conv = SemGraphConv(2, 5, _graphs.adjacency(parents)).double()
    with torch.no_grad():
        conv.edge_logits.normal_()
        conv.bias.normal_()
    w = conv.edge_weights().detach().numpy()
    # normalised over each joint's neighbours (self included), zero elsewhere
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(w[_graphs.adjacency(parents) == 0] == 0) and np.all(w > -1e-15)
    # relabel the joints: permute the graph, the edge weights and the input
    perm = np.random.default_rng(1).permutation(17)
    inverse = np.argsort(perm)
    permuted_parents = [-1 if parents[p] < 0 else int(inverse[parents[p]])
                        for p in perm]  # fmt: skip
    other = SemGraphConv(2, 5, _graphs.adjacency(permuted_parents)).double()
    with torch.no_grad():
        other.weight.copy_(conv.weight)
        other.bias.copy_(conv.bias)
        other.edge_logits.copy_(conv.edge_logits[perm][:, perm])
    x = torch.randn(4, 17, 2, dtype=torch.float64)
    torch.testing.assert_close(other(x[:, perm]), conv(x)[:, perm])
    # and the layer is not blind to the graph: another input order changes it
    assert not torch.allclose(conv(x[:, perm]), conv(x)[:, perm])


def test_st_graph_convolution_is_the_papers_sum_over_classes():
    torch = pytest.importorskip("torch")
    from gpa_arrays.experiments._models import STGraphConv

    parents = skeletons.get("h36m_17").parents
    torch.manual_seed(0)
    conv = STGraphConv(3, 4, parents).double()
    x = torch.randn(2, 5, 17, 3, dtype=torch.float64)
    # y_a = sum_k sum_b A_k[a, b] x_b W_k / deg_k(a) + bias, on the dense classes
    a = _graphs.st_neighbour_classes(parents, 5)
    deg = a.sum(axis=2, keepdims=True)
    a = torch.from_numpy(np.divide(a, deg, out=np.zeros_like(a), where=deg > 0))
    flat = x.reshape(2, 5 * 17, 3)
    want = torch.einsum("kmn,bnc,kcd->bmd", a, flat, conv.weight) + conv.linear.bias
    torch.testing.assert_close(conv(x).reshape(2, 5 * 17, 4), want)


def test_graph_layer_batch_norm_is_per_channel_over_batch_frames_and_nodes():
    # the layer normalises (B * nodes, C) rows: the statistics of each channel
    # over the batch, the frames and the nodes, as BatchNorm1d on (B, C, nodes)
    torch = pytest.importorskip("torch")
    from gpa_arrays.experiments._models import SemGraphConv, STGraphConv, _GraphLayer

    parents = skeletons.get("h36m_17").parents
    torch.manual_seed(0)
    convs = ((SemGraphConv(2, 6, _graphs.adjacency(parents)), (8, 17, 2)),
             (STGraphConv(2, 6, parents), (8, 3, 17, 2)))  # fmt: skip
    for conv, shape in convs:
        layer = _GraphLayer(conv, 6, 0.0).double().train()
        with torch.no_grad():
            layer.bn.weight.uniform_(0.5, 2.0)
            layer.bn.bias.uniform_(-1.0, 1.0)
        x = torch.randn(*shape, dtype=torch.float64)
        z = layer.conv(x)
        flat = z.reshape(shape[0], -1, 6).transpose(1, 2)  # (B, C, nodes)
        mean = flat.mean(dim=(0, 2))
        var = flat.var(dim=(0, 2), unbiased=False)
        want = (z - mean) / torch.sqrt(var + layer.bn.eps)
        want = torch.relu(want * layer.bn.weight + layer.bn.bias)
        torch.testing.assert_close(layer(x), want)
        # and the running statistics that one training step leaves behind
        n = flat.shape[0] * flat.shape[2]
        m = layer.bn.momentum
        torch.testing.assert_close(layer.bn.running_mean, m * mean)
        torch.testing.assert_close(
            layer.bn.running_var, (1 - m) + m * var * n / (n - 1)
        )


def test_graph_lifters_shapes_and_centre_frame():
    torch = pytest.importorskip("torch")
    from gpa_arrays.experiments._models import STGCN, SemGCN

    parents = skeletons.get("h36m_17").parents
    torch.manual_seed(0)
    sem = SemGCN(parents, channels=8, blocks=2).eval()
    assert sem(torch.randn(3, 17, 2)).shape == (3, 17, 3)
    st = STGCN(parents, frames=5, channels=8, dropout=0.0).eval()
    clips = torch.randn(3, 5, 17, 2)
    assert st(clips).shape == (3, 17, 3)
    # the output is the centre frame's: it depends on every frame of the clip
    for t in range(5):
        other = clips.clone()
        other[:, t] += 1.0
        assert not torch.allclose(st(other), st(clips))


def test_graph_lifters_end_to_end_and_fair():
    pytest.importorskip("torch")
    inputs = experiments.synthetic_inputs(GRAPH_TINY, seed=2)
    result = experiments.run_experiment(
        **inputs, lifters=("semgcn", "stgcn"), variants=("none", "weak"),
        seeds=(0,), config=GRAPH_TINY,
    )  # fmt: skip
    by = {(r["lifter"], r["variant"]): r for r in result.runs}
    assert len(by) == 4
    for run in result.runs:
        assert 0 < run["p_mpjpe"] < run["mpjpe"] and np.isfinite(run["final_loss"])
    assert by["stgcn", "none"]["mpjpe"] != by["stgcn", "weak"]["mpjpe"]
    text = experiments.format_table(result)
    assert text.splitlines()[1].startswith("SemGCN") and "ST-GCN (3 fr.)" in text
    # fair: a variant's run starts from the weights of the baseline's run
    torch = pytest.importorskip("torch")
    from gpa_arrays.experiments._train import _Lifter

    config, dtype = GRAPH_TINY, torch.float32
    nets = []
    for _ in range(2):
        torch.manual_seed(0)
        nets.append(_Lifter("stgcn", config, 17, 0, "cpu", dtype,
                            skeletons.get("h36m_17").parents).net)  # fmt: skip
    for p, q in zip(nets[0].parameters(), nets[1].parameters(), strict=True):
        assert torch.equal(p, q)


def test_graph_lifter_errors():
    pytest.importorskip("torch")
    inputs = experiments.synthetic_inputs(GRAPH_TINY, seed=2)
    with pytest.raises(ValueError, match="skeleton: the graph lifters need a layout"):
        experiments.run_experiment(**inputs, lifters=("semgcn",), seeds=(0,),
                                   skeleton="h36m_16", config=GRAPH_TINY)  # fmt: skip
    with pytest.raises(ValueError, match="skeleton: 'nope' is not known"):
        experiments.run_experiment(**inputs, lifters=("stgcn",), seeds=(0,),
                                   skeleton="nope", config=GRAPH_TINY)  # fmt: skip
    five = experiments._with(GRAPH_TINY, stgcn_frames=5)
    with pytest.raises(ValueError, match="test_2d: stgcn needs clips of at least 5"):
        experiments.run_experiment(**{**inputs, "source_3d": np.repeat(
            inputs["source_3d"], 2, axis=1)}, lifters=("stgcn",), config=five)  # fmt: skip
    even = experiments._with(GRAPH_TINY, stgcn_frames=2)
    with pytest.raises(ValueError, match=r"config\.stgcn_frames: expected an odd"):
        experiments.run_experiment(**inputs, lifters=("stgcn",), config=even)


def test_cli_experiment_graph_lifters(capsys):
    pytest.importorskip("torch")
    code = cli.main([
        "experiment", "--lifters", "semgcn,stgcn", "--steps", "3", "--batch-size",
        "8", "--n-source", "12", "--n-target", "12", "--n-test", "6", "--seeds", "0",
        "--variants", "none,perspective", "--threads", "1", "--quiet",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "SemGCN" in out and "ST-GCN (3 fr.)" in out and "SimpleBaseline" not in out
    # "all" (the default) runs the four lifters in the seed table's order
    code = cli.main([
        "experiment", "--lifters", "all", "--steps", "2", "--batch-size", "8",
        "--n-source", "12", "--n-target", "12", "--n-test", "6", "--seeds", "0",
        "--variants", "none", "--threads", "1", "--quiet",
    ])  # fmt: skip
    assert code == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:]]
    assert names == ["SemGCN", "SimpleBaseline", "ST-GCN", "VideoPose3D"]
    with pytest.raises(SystemExit):
        cli.main(["experiment", "--lifters", "semgcn,gcn"])

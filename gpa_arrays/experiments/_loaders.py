"""Loaders for the files users of the real datasets already have (NumPy only)."""

from __future__ import annotations

import json
import os

import numpy as np

from .. import camera as _camera
from .. import skeletons

__all__ = [
    "H36M_17_OF_32",
    "TRAIN_SUBJECTS",
    "clips_from_sequences",
    "load_3dhp_test_npz",
    "load_h36m_npz",
]

#: The 17 of Human3.6M's 32 joints VideoPose3D keeps, in its H36M-17 order.
H36M_17_OF_32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

#: Human3.6M's training subjects (the cross-dataset protocol trains on these).
TRAIN_SUBJECTS = ("S1", "S5", "S6", "S7", "S8")


def clips_from_sequences(sequences, frames, *, stride=1):
    """Cut sequences into clips centred on every `stride`-th frame.

    Each clip holds `frames` consecutive frames of one sequence around its
    centre frame; near the ends the first or last frame is repeated, as
    VideoPose3D pads its sequences, so that every centre frame gets a clip.

    Parameters
    ----------
    sequences : sequence of (F_i, ...) arrays
        One array per sequence (frames first); all with the same trailing shape.
    frames : int
        Frames per clip (odd).
    stride : int
        Distance between the centre frames of successive clips of a sequence.

    Returns
    -------
    clips : (N, frames, ...) ndarray
    origin : (N, 2) int64 ndarray
        The sequence index and the centre frame of each clip.

    Examples
    --------
    >>> import numpy as np
    >>> from gpa_arrays.experiments import clips_from_sequences
    >>> clips, origin = clips_from_sequences([np.arange(4.0)], 3)
    >>> clips.tolist()
    [[0.0, 0.0, 1.0], [0.0, 1.0, 2.0], [1.0, 2.0, 3.0], [2.0, 3.0, 3.0]]
    """
    for name, value in (("frames", frames), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
        if value < 1:
            raise ValueError(f"{name}: expected a positive int, got {value}")
    if frames % 2 == 0:
        raise ValueError(
            f"frames: expected an odd number (a centre frame), got {frames}"
        )
    half = frames // 2
    clips, origin = [], []
    offsets = np.arange(-half, half + 1)
    for k, seq in enumerate(sequences):
        seq = np.asarray(seq)
        if seq.shape[0] == 0:
            continue
        centres = np.arange(0, seq.shape[0], stride)
        index = np.clip(centres[:, None] + offsets, 0, seq.shape[0] - 1)
        clips.append(seq[index])
        origin.append(np.stack([np.full_like(centres, k), centres], axis=1))
    if not clips:
        raise ValueError("sequences: expected at least one non-empty sequence")
    return np.concatenate(clips), np.concatenate(origin).astype(np.int64)


def _camera_tables(cameras):
    """The two VideoPose3D camera tables from a dict or a JSON file."""
    if isinstance(cameras, (str, os.PathLike)):
        with open(cameras, encoding="utf-8") as handle:
            cameras = json.load(handle)
    if not isinstance(cameras, dict) or not {"intrinsic", "extrinsic"} <= set(cameras):
        raise ValueError(
            "cameras: expected a dict (or JSON file) with keys 'intrinsic' (a list "
            "of 4 camera dicts) and 'extrinsic' (subject -> list of 4 dicts), got "
            f"{sorted(cameras) if isinstance(cameras, dict) else type(cameras)}"
        )
    return cameras["intrinsic"], cameras["extrinsic"]


def _h36m_camera(intrinsic, extrinsic, subject, k):
    """Normalised 9-value row, rotation quaternion and position (m) of one camera."""
    try:
        f = np.asarray(intrinsic["focal_length"], dtype=float)
        c = np.asarray(intrinsic["center"], dtype=float)
        w, h = float(intrinsic["res_w"]), float(intrinsic["res_h"])
        distortion = np.concatenate(
            [intrinsic["radial_distortion"], intrinsic["tangential_distortion"]]
        ).astype(float)
        q = np.asarray(extrinsic["orientation"], dtype=float)
        t = np.asarray(extrinsic["translation"], dtype=float) / 1000.0  # mm -> m
    except KeyError as exc:
        raise ValueError(
            f"cameras: camera {k} of {subject} lacks the key {exc.args[0]!r}"
        ) from None
    row = _camera.normalize_intrinsics(f, c, w, h, distortion=distortion)
    return row, q, t


def load_h36m_npz(path, cameras, *, subjects=TRAIN_SUBJECTS, frames=9, stride=10):
    """Human3.6M poses from VideoPose3D's ``data_3d_h36m.npz``, as camera-space clips.

    Parameters
    ----------
    path : str or path-like
        ``data_3d_h36m.npz`` (VideoPose3D's ``prepare_data_h36m.py``): key
        ``positions_3d``, a pickled dict ``subject -> action -> (F, 32, 3)``
        world positions in metres (Human3.6M's 32 joints), loaded with
        ``allow_pickle=True``: open only files you trust.
    cameras : dict or str or path-like
        The camera tables of VideoPose3D's ``common/h36m_dataset.py``, as a
        dict or a JSON file: ``{"intrinsic": h36m_cameras_intrinsic_params,
        "extrinsic": h36m_cameras_extrinsic_params}``. ``intrinsic`` is a list
        of 4 dicts with ``center`` and ``focal_length`` (pixels),
        ``radial_distortion`` (k1, k2, k3), ``tangential_distortion`` (p1,
        p2), ``res_w``, ``res_h``; ``extrinsic`` maps each subject to a list of
        4 dicts with ``orientation`` (unit quaternion w, x, y, z, camera to
        world) and ``translation`` (camera position, millimetres).
    subjects : sequence of str
        Subjects to load (default the training subjects S1, S5-S8).
    frames : int
        Frames per clip (odd; VideoPose3D's receptive field).
    stride : int
        Distance between clip centres (Human3.6M runs at 50 fps; 10 keeps
        about 156,000 clips of the 1.56 M training frames).

    Returns
    -------
    dict
        ``source_3d`` ``(N, frames, 17, 3)`` float64, metres, camera space,
        H36M-17 order (VideoPose3D's joints ``H36M_17_OF_32``), each
        sequence seen by each of the 4 cameras; ``source_camera`` ``(N, 9)``
        normalised rows ``[fx, fy, cx, cy, k1, k2, k3, p1, p2]``; ``origin``
        ``(N, 3)`` (subject index, action index, camera) and ``names`` (the
        subjects and actions the indices refer to).

    Raises
    ------
    ValueError
        Missing keys or subjects, joints other than 32.
    """
    intrinsic, extrinsic = _camera_tables(cameras)
    with np.load(path, allow_pickle=True) as archive:
        if "positions_3d" not in archive.files:
            raise ValueError(
                f"path: expected the key 'positions_3d' in {os.fspath(path)!r}, "
                f"got {archive.files}"
            )
        data = archive["positions_3d"].item()
    missing = [s for s in subjects if s not in data or s not in extrinsic]
    if missing:
        raise ValueError(
            f"subjects: {missing} not in both the file ({sorted(data)}) and the "
            f"camera table ({sorted(extrinsic)})"
        )
    sequences, cams, origin, actions = [], [], [], []
    for si, subject in enumerate(subjects):
        for action in sorted(data[subject]):
            world = np.asarray(data[subject][action], dtype=float)
            if world.ndim != 3 or world.shape[1:] != (32, 3):
                raise ValueError(
                    f"path: expected (F, 32, 3) positions for {subject}/{action}, "
                    f"got shape {world.shape}"
                )
            world = world[:, H36M_17_OF_32]
            if action not in actions:
                actions.append(action)
            for k in range(len(intrinsic)):
                row, q, t = _h36m_camera(
                    intrinsic[k], extrinsic[subject][k], subject, k
                )
                sequences.append(_camera.world_to_camera(world, q, t))
                cams.append(row)
                origin.append((si, actions.index(action), k))
    clips, where = clips_from_sequences(sequences, frames, stride=stride)
    return {
        "source_3d": clips,
        "source_camera": np.asarray(cams)[where[:, 0]],
        "origin": np.asarray(origin, dtype=np.int64)[where[:, 0]],
        "names": {"subjects": list(subjects), "actions": actions},
    }


def load_3dhp_test_npz(path, *, frames=9):
    """An MPI-INF-3DHP test set from one ``.npz``, as clips around each frame.

    Parameters
    ----------
    path : str or path-like
        An ``.npz`` with, for ``F`` frames (e.g. the toolkit's
        ``annot_data.mat`` of TS1-TS6, concatenated):

        ``pose_2d`` : (F, 17, 2)
            Image coordinates, pixels (the toolkit's ``annot2``), in the
            MPI-INF-3DHP-17 test order (root 14, pelvis).
        ``pose_3d`` : (F, 17, 3)
            Camera space, millimetres (``univ_annot3``), same order.
        ``camera`` : (F, 4) or (4,)
            ``[fx, fy, cx, cy]`` pixels of each frame's camera (TS1-4:
            2048x2048, TS5-6: 1920x1080).
        ``image_size`` : (F, 2) or (2,)
            ``[width, height]`` pixels.
        ``sequence`` : (F,) int, optional
            Sequence of each frame (e.g. 1-6); clips do not cross sequences.
            Default: one sequence.
        ``valid`` : (F,) bool, optional
            The toolkit's ``valid_frame``; only valid frames are kept (clips
            are cut from the valid frames, in order).
    frames : int
        Frames per clip (odd).

    Returns
    -------
    dict
        In H36M-17 order (:func:`gpa_arrays.skeletons.mapping`), one clip per
        kept frame, centred on it: ``test_2d`` ``(K, frames, 17, 2)``
        normalised screen coordinates (VideoPose3D's rule, by the width);
        ``test_3d`` ``(K, frames, 17, 3)`` metres; ``test_camera`` ``(K, 4)``
        normalised; ``target_2d`` and ``target_camera``, the same 2D and
        cameras as GPA's unlabelled targets (transductive: the test inputs
        themselves; pass your own to keep them apart); ``origin`` ``(K, 2)``
        (sequence, frame among the kept frames of that sequence).

    Raises
    ------
    ValueError
        Missing keys, wrong shapes, non-finite values.
    """
    with np.load(path) as archive:
        need = ("pose_2d", "pose_3d", "camera", "image_size")
        missing = [k for k in need if k not in archive.files]
        if missing:
            raise ValueError(
                f"path: expected the keys {list(need)} in {os.fspath(path)!r}, "
                f"missing {missing}"
            )
        arrays = {k: np.asarray(archive[k]) for k in archive.files}
    p2, p3 = arrays["pose_2d"].astype(float), arrays["pose_3d"].astype(float)
    f = p2.shape[0] if p2.ndim == 3 else -1
    if p2.shape != (f, 17, 2) or p3.shape != (f, 17, 3):
        raise ValueError(
            "path: expected pose_2d (F, 17, 2) and pose_3d (F, 17, 3), got "
            f"{p2.shape} and {p3.shape}"
        )

    def per_frame(name, size, dtype=float):
        a = arrays[name].astype(dtype)
        if a.shape == (size,):
            return np.broadcast_to(a, (f, size))
        if a.shape != (f, size):
            raise ValueError(f"path: expected {name} of shape ({size},) or ({f}, "
                             f"{size}), got {a.shape}")  # fmt: skip
        return a

    cam_px = per_frame("camera", 4)
    size = per_frame("image_size", 2)
    sequence = arrays.get("sequence", np.zeros(f, dtype=np.int64))
    valid = arrays.get("valid", np.ones(f, dtype=bool)).astype(bool)
    for name, a in (("sequence", sequence), ("valid", valid)):
        if a.shape != (f,):
            raise ValueError(f"path: expected {name} of shape ({f},), got {a.shape}")
    for name, a in (("pose_2d", p2), ("pose_3d", p3), ("camera", cam_px),
                    ("image_size", size)):  # fmt: skip
        if not np.all(np.isfinite(a[valid] if a.shape[0] == f else a)):
            raise ValueError(f"path: {name} has non-finite values in valid frames")
    order = skeletons.mapping("mpi_inf_3dhp_17", "h36m_17")
    w, h = size[:, 0], size[:, 1]
    norm_2d = _camera.normalize_screen(p2, w, h)[:, order]
    norm_cam = _camera.normalize_intrinsics(cam_px[:, :2], cam_px[:, 2:], w, h)
    metres = p3[:, order] / 1000.0
    seqs_2d, seqs_3d, seqs_cam = [], [], []
    for s in np.unique(sequence[valid]):
        keep = valid & (sequence == s)
        seqs_2d.append(norm_2d[keep])
        seqs_3d.append(metres[keep])
        seqs_cam.append(norm_cam[keep])
    clips_2d, where = clips_from_sequences(seqs_2d, frames)
    clips_3d, _ = clips_from_sequences(seqs_3d, frames)
    cams = np.concatenate(seqs_cam)  # the centre frame's camera, clip by clip
    return {
        "test_2d": clips_2d,
        "test_3d": clips_3d,
        "test_camera": cams,
        "target_2d": clips_2d,
        "target_camera": cams,
        "origin": where,
    }

"""Synthetic clips: short, smooth motions seen through the studio and wild cameras."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import synthetic
from ..camera import project
from ..synthetic import _Angles, _bone_lengths, _forward_kinematics, _sample_angles

__all__ = ["ClipDomains", "make_clip_domains"]

#: Frame rate of the synthetic clips (Human3.6M's, as VideoPose3D uses it).
FRAME_RATE = 50.0

# Speed (m/s) of the root along the subject's facing direction: a walking pace
# for the walking family, a slow shuffle for the others.
_WALK_SPEED = (0.8, 1.6)
_OTHER_SPEED = (0.0, 0.3)
# Fraction of the way from the first to the second joint-angle set covered
# over one clip: at 50 fps and 9 frames, up to half of a full change of
# pose in 0.16 s, a brisk but human movement.
_MAX_PROGRESS = 0.5


@dataclass(frozen=True)
class ClipDomains:
    """Source clips, unlabelled target clips and a labelled target test set.

    Attributes
    ----------
    source_3d : (N, T, 17, 3) float array, metres, camera space
        Source clips (studio cameras, H36M-17 order, root 0).
    source_camera : (N, 4) float array
        ``[fx, fy, cx, cy]`` (normalised) of each source clip's camera.
    target_2d : (M, T, 17, 2) float array, normalised screen coordinates
        Unlabelled target-domain clips (wild cameras): what GPA pairs with.
    target_camera : (M, 4) float array
        Camera of each target clip.
    test_2d : (K, T, 17, 2) float array, normalised screen coordinates
        Labelled target-domain test clips (a separate draw), the inputs.
    test_3d : (K, T, 17, 3) float array, metres, camera space
        Their ground truth.
    test_camera : (K, 4) float array
        Camera of each test clip.
    seed : int
        The seed that made them.
    """

    source_3d: np.ndarray
    source_camera: np.ndarray
    target_2d: np.ndarray
    target_camera: np.ndarray
    test_2d: np.ndarray
    test_3d: np.ndarray
    test_camera: np.ndarray
    seed: int


def _motions(n, frames, rng, mix):
    """(n, frames, 17, 3) body-frame clips, root at the origin in the centre frame.

    Each clip interpolates the joint angles of two poses of one action family
    (one person, one set of bone lengths) with a smoothstep, and moves the
    root at a constant speed along the facing direction.
    """
    p = np.asarray(mix, dtype=float)
    action = rng.choice(len(synthetic.ACTIONS), size=n, p=p / p.sum()).astype(np.int8)
    start = _sample_angles(action, rng)
    end = _sample_angles(action, rng)
    lengths = _bone_lengths(n, rng)
    reach = rng.uniform(0.0, _MAX_PROGRESS, size=n)
    t = np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1)
    weight = reach[:, None] * (t * t * (3.0 - 2.0 * t))  # (n, frames) smoothstep

    def blend(a, b):
        shape = (n, frames, *a.shape[1:])
        w = weight.reshape(n, frames, *([1] * (a.ndim - 1)))
        return (a[:, None] + (b - a)[:, None] * w).reshape(n * frames, *shape[2:])

    angles = _Angles(
        {k: blend(v, end.body[k]) for k, v in start.body.items()},
        {k: blend(v, end.side[k]) for k, v in start.side.items()},
    )
    poses = _forward_kinematics(angles, np.repeat(lengths, frames, axis=0))
    poses = poses.reshape(n, frames, 17, 3)
    walking = action == synthetic.ACTIONS.index("walking")
    speed = np.where(
        walking, rng.uniform(*_WALK_SPEED, size=n), rng.uniform(*_OTHER_SPEED, size=n)
    )
    seconds = (np.arange(frames) - (frames - 1) / 2) / FRAME_RATE
    poses[..., 1] += (speed[:, None] * seconds)[:, :, None]  # y is forward
    return poses


def _view(clips, rng, view):
    """See each clip through one camera of a domain; all of its frames share it."""
    n, frames = clips.shape[:2]
    # The domain views work on any number of points per pose: a clip's frames
    # are seen as one (T * 17)-point pose, so they share placement and camera,
    # the ground rests under the clip's lowest joint, and (wild) every frame
    # fits in the image.
    pose_3d, camera = view(clips.reshape(n, frames * 17, 3), rng)[:2]
    pose_3d = pose_3d.reshape(n, frames, 17, 3)
    return pose_3d, camera, project(pose_3d, camera[:, None], check=False)


def make_clip_domains(
    n_source=2000, n_target=2000, n_test=1000, *, frames=9, seed=0, dtype=np.float64
):
    """Generate synthetic clips for the cross-domain lifting experiment.

    Poses are those of :mod:`gpa_arrays.synthetic` set in motion: each clip
    blends two joint-angle sets of one action family (one person) with a
    smoothstep over up to half of the way, at 50 frames per second, and
    moves the root along the facing direction (0.8 to 1.6 m/s when walking, up
    to 0.3 m/s otherwise). Source clips are seen through the four studio
    cameras (:func:`gpa_arrays.synthetic.studio_view`, Human3.6M-like), target
    and test clips through one in-the-wild camera each
    (:func:`gpa_arrays.synthetic.wild_view`, MPI-INF-3DHP-like), with the
    action mixes of those two domains. A clip keeps its camera and placement
    over all its frames.

    Parameters
    ----------
    n_source, n_target, n_test : int
        Number of source, unlabelled target and labelled test clips.
    frames : int
        Frames ``T`` per clip.
    seed : int
        Fixes every number; the three sets come from independent streams, so
        each is the same whatever the sizes of the others.
    dtype : {numpy.float64, numpy.float32}

    Returns
    -------
    ClipDomains

    Examples
    --------
    >>> from gpa_arrays.experiments import make_clip_domains
    >>> d = make_clip_domains(20, 10, 5, frames=9, seed=0)
    >>> d.source_3d.shape, d.target_2d.shape, d.test_3d.shape
    ((20, 9, 17, 3), (10, 9, 17, 2), (5, 9, 17, 3))
    """
    sizes = {"n_source": n_source, "n_target": n_target, "n_test": n_test}
    for name, value in {**sizes, "frames": frames}.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
        if value < (1 if name == "frames" else 0):
            raise ValueError(f"{name}: expected a non-negative int, got {value}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    streams = np.random.SeedSequence(seed).spawn(3)
    out = []
    for stream, n, mix, view in (
        (streams[0], n_source, synthetic.SOURCE_MIX, synthetic.studio_view),
        (streams[1], n_target, synthetic.TARGET_MIX, synthetic.wild_view),
        (streams[2], n_test, synthetic.TARGET_MIX, synthetic.wild_view),
    ):
        rng = np.random.default_rng(stream)
        out.append(_view(_motions(int(n), int(frames), rng, mix), rng, view))
    (s3, s_cam, _), (_, t_cam, t2), (e3, e_cam, e2) = out
    return ClipDomains(
        source_3d=s3.astype(dtype),
        source_camera=s_cam.astype(dtype),
        target_2d=t2.astype(dtype),
        target_camera=t_cam.astype(dtype),
        test_2d=e2.astype(dtype),
        test_3d=e3.astype(dtype),
        test_camera=e_cam.astype(dtype),
        seed=seed,
    )

"""Built-in synthetic data: plausible H36M-17 poses seen from two camera domains.

A deterministic generator of human poses on the Human3.6M-17 skeleton (the
VideoPose3D joint order of ``CONVENTIONS.md``) and of the cameras that see them,
so that GPA can be demonstrated, tested and benchmarked without a dataset.

Poses
-----
Each pose is built by forward kinematics from the pelvis outwards:

* **Bone lengths** are per-person: the mean lengths of Human3.6M subjects (about
  1.7 m standing height), times a body-size factor (sd 5.5 %, clipped to
  +-15 %), times a per-bone factor (sd 3 %, clipped to +-10 %), shared by the
  left and right limbs up to a 0.5 % asymmetry.
* **Joint angles** are drawn per *action family* (standing, walking, sitting,
  phoning, bending, crouching, arms raised), jittered (sd 4 degrees) and clipped
  to :data:`JOINT_LIMITS`, which stay inside the ranges of motion of adult
  humans: spine flexion and side bend, hip flexion/abduction/rotation, knee
  flexion 0-150 degrees, shoulder elevation 0-180 degrees in a plane from
  40 degrees behind the frontal plane to 130 degrees across the body, elbow
  flexion 0-150 degrees, head pitch and yaw. Walking couples hips, knees and
  arm swing through a gait phase; phoning raises one hand to the head.
* The feet rest on the ground: the root (pelvis) height is that of the lowest
  joint plus an ankle height of 7 cm.

Camera domains
--------------
``studio`` (source, Human3.6M-like)
    Four fixed cameras at the corners of a room, 4.6 to 5.6 m from its centre,
    1.5 to 1.8 m high, tilted down to points about 0.5 m above the floor near
    the centre, with the normalised intrinsics of the four Human3.6M cameras
    (f about 2.29). Subjects stand anywhere within 1 m of the centre, facing
    any direction. The 2D statistics come out close to Human3.6M's (figure S1
    of the paper): box scale 0.45 +- 0.08 (H36M 0.43 +- 0.10), root x
    0.08 +- 0.25 (0.06 +- 0.22), root y -0.14 +- 0.10 (-0.16 +- 0.13).
``wild`` (target, in-the-wild / MPI-INF-3DHP-like)
    One camera per pose: 4.5 m typical distance (log-uniform, 2.5 to 8 m), 0.3
    to 2.6 m high, pitched from 10 degrees up to 25 degrees down, rolled a
    little, and turned so that the subject lands anywhere in the frame, often
    off-centre (direction off the optical axis up to 90 % of the half field of
    view, Beta(2, 2) distributed). Focal lengths are those of 3DHP's test cameras
    (1.465 for TS1-4, 2048x2048; 1.754 for TS5-6, 1920x1080) or a phone-like
    1.1 to 2.4 with 1:1, 4:3 or 16:9 frames. Every joint of every pose lies
    inside its frame with a 2 % margin.

Normalised intrinsics follow the VideoPose3D convention (both focal lengths and
both image axes divided by the image width), so ``[fx, fy, cx, cy]`` rows can be
passed to :func:`gpa_arrays.gpa` as they are.

Everything is vectorised NumPy; a ``seed`` fixes every number. The source and
target streams come from independent children of one ``SeedSequence``, so the
source domain of a seed does not change with the number of target poses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _geometry as G

__all__ = [
    "ACTIONS",
    "BONE_LENGTHS",
    "H36M17_PARENTS",
    "JOINT_LIMITS",
    "Domains",
    "make_domains",
    "sample_poses",
    "studio_view",
    "wild_view",
]

#: Parent of each Human3.6M-17 joint (VideoPose3D order), -1 for the root.
#: (To be shared with ``gpa_arrays.skeletons`` once that module exists.)
H36M17_PARENTS = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)

#: Action families, in the order of the codes ``Domains.*_action`` holds.
ACTIONS = (
    "standing",
    "walking",
    "sitting",
    "phoning",
    "bending",
    "crouching",
    "arms_raised",
)

#: Mean length, in metres, of the bone ending at each joint (index = child joint;
#: entry 0, the root, is unused). Rounded averages over the Human3.6M training
#: subjects: hip 13 cm, thigh 45 cm, shin 45 cm, pelvis-spine 23 cm, spine-thorax
#: 26 cm, thorax-nose 12 cm, nose-head top 12 cm, shoulder 15 cm, upper arm 28 cm,
#: forearm 25 cm.
BONE_LENGTHS = (
    0.0, 0.133, 0.454, 0.449, 0.133, 0.454, 0.449, 0.233, 0.257, 0.117, 0.115,
    0.151, 0.278, 0.252, 0.151, 0.278, 0.252,
)  # fmt: skip

#: Hard range of each joint angle, in degrees, after jitter (see module notes).
#: ``shoulder_plane`` is the plane of elevation: 0 raises the arm sideways,
#: 90 forwards, negative values behind the body. Hip flexion is positive
#: forwards, abduction positive away from the midline, rotation positive inwards.
JOINT_LIMITS = {
    "spine_lean": (-30.0, 90.0),
    "spine_bend": (-30.0, 30.0),
    "spine_twist": (-40.0, 40.0),
    "head_pitch": (-50.0, 60.0),
    "head_yaw": (-70.0, 70.0),
    "hip_flexion": (-30.0, 135.0),
    "hip_abduction": (-10.0, 45.0),
    "hip_rotation": (-40.0, 40.0),
    "knee_flexion": (0.0, 150.0),
    "shoulder_elevation": (0.0, 180.0),
    "shoulder_plane": (-40.0, 130.0),
    "arm_twist": (-60.0, 90.0),
    "elbow_flexion": (0.0, 150.0),
}

_BODY_ANGLES = ("spine_lean", "spine_bend", "spine_twist", "head_pitch", "head_yaw")
_SIDE_ANGLES = (
    "hip_flexion", "hip_abduction", "hip_rotation", "knee_flexion",
    "shoulder_elevation", "shoulder_plane", "arm_twist", "elbow_flexion",
)  # fmt: skip

_STAND = {
    "spine_lean": (-5, 10),
    "spine_bend": (-5, 5),
    "spine_twist": (-10, 10),
    "head_pitch": (-10, 20),
    "head_yaw": (-30, 30),
    "hip_flexion": (-5, 10),
    "hip_abduction": (0, 12),
    "hip_rotation": (-10, 20),
    "knee_flexion": (0, 15),
    "shoulder_elevation": (0, 30),
    "shoulder_plane": (-20, 90),
    "arm_twist": (-20, 40),
    "elbow_flexion": (0, 45),
}

# Uniform ranges (degrees) of each angle per action family; unlisted angles
# take the standing range. Walking and phoning are refined in `_couple`.
_FAMILIES = {
    "standing": {},
    "walking": {
        "spine_lean": (0, 10),
        "spine_bend": (-4, 4),
        "head_pitch": (-5, 15),
        "head_yaw": (-20, 20),
        "hip_abduction": (0, 8),
        "hip_rotation": (-5, 15),
        "shoulder_elevation": (5, 15),
        "shoulder_plane": (0, 20),
        "elbow_flexion": (10, 45),
    },
    "sitting": {
        "spine_lean": (-15, 25),
        "spine_bend": (-8, 8),
        "spine_twist": (-20, 20),
        "head_pitch": (-10, 30),
        "head_yaw": (-40, 40),
        "hip_flexion": (70, 100),
        "hip_abduction": (0, 25),
        "hip_rotation": (-15, 25),
        "knee_flexion": (60, 110),
        "shoulder_elevation": (0, 50),
        "shoulder_plane": (40, 110),
        "arm_twist": (0, 60),
        "elbow_flexion": (20, 110),
    },
    "phoning": {
        "head_pitch": (0, 25),
        "head_yaw": (-20, 20),
    },
    "bending": {
        "spine_lean": (40, 85),
        "spine_bend": (-15, 15),
        "spine_twist": (-20, 20),
        "head_pitch": (-40, 0),
        "hip_flexion": (0, 30),
        "knee_flexion": (0, 40),
        "shoulder_elevation": (20, 100),
        "shoulder_plane": (60, 110),
        "arm_twist": (0, 40),
        "elbow_flexion": (0, 60),
    },
    "crouching": {
        "spine_lean": (15, 50),
        "spine_twist": (-15, 15),
        "head_pitch": (-30, 10),
        "hip_flexion": (95, 130),
        "hip_abduction": (10, 35),
        "hip_rotation": (-20, 10),
        "knee_flexion": (110, 150),
        "shoulder_elevation": (10, 80),
        "shoulder_plane": (40, 110),
        "arm_twist": (0, 60),
        "elbow_flexion": (20, 110),
    },
    "arms_raised": {
        "head_pitch": (-30, 10),
        "shoulder_elevation": (90, 175),
        "shoulder_plane": (-20, 100),
        "arm_twist": (-30, 60),
        "elbow_flexion": (0, 70),
    },
}

#: Action mix of the source (Human3.6M-like: mostly standing, walking, sitting,
#: phoning) and of the target domain (3DHP-like: more exercise and crouching).
SOURCE_MIX = (0.25, 0.25, 0.2, 0.1, 0.1, 0.05, 0.05)
TARGET_MIX = (0.15, 0.2, 0.15, 0.1, 0.1, 0.15, 0.15)

_JITTER_DEG = 4.0
_ANKLE_HEIGHT = 0.07

# Rest offsets in the thorax frame (x right, y forward, z up), metres, unit
# direction times the bone length: the nose sits forward of the neck, the head
# top above and slightly behind the nose, the shoulders a little below the
# thorax joint.
_NOSE_DIRECTION = np.array([0.0, 0.5, 0.866])
_HEAD_DIRECTION = np.array([0.0, -0.26, 0.966])

# Human3.6M camera intrinsics (VideoPose3D's h36m_dataset.py: cameras 54138969,
# 55011271, 58860488, 60457274), normalised by the image width.
_STUDIO_INTRINSICS = np.array(
    [
        [2.2901, 2.2876, 0.0251, 0.0289],
        [2.2994, 2.2952, 0.0177, 0.0162],
        [2.2983, 2.2960, 0.0396, 0.0028],
        [2.2910, 2.2895, 0.0299, 0.0018],
    ]
)
# Azimuth (degrees), horizontal distance from the room centre and height (m).
_STUDIO_PLACEMENT = np.array(
    [
        [45.0, 4.9, 1.62],
        [138.0, 5.3, 1.75],
        [222.0, 4.6, 1.52],
        [317.0, 5.6, 1.68],
    ]
)
# Where each camera looks (world x, y, z in metres): near the room centre,
# 0.5 m above the floor, each aimed a little differently.
_STUDIO_LOOK_AT = np.array(
    [[0.25, -0.1, 0.5], [0.1, 0.2, 0.45], [-0.2, 0.1, 0.55], [0.3, 0.15, 0.5]]
)
_STUDIO_AREA_RADIUS = 1.0

# Wild focal lengths: 3DHP TS1-4 (2048x2048), TS5-6 (1920x1080); phone-like.
_WILD_3DHP = ((1.465, 1.0), (1.754, 1080 / 1920))
_WILD_ASPECTS = (1.0, 0.75, 1080 / 1920)
_FRAME_MARGIN = 0.02


# --- small vectorised geometry -------------------------------------------------


def _rot(axis, angle):
    """(N, 3, 3) rotations by `angle` (N,) radians about coordinate `axis`."""
    c = np.cos(angle)
    s = np.sin(angle)
    r = np.zeros((*angle.shape, 3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r[..., axis, axis] = 1.0
    r[..., i, i] = c
    r[..., j, j] = c
    r[..., i, j] = -s
    r[..., j, i] = s
    return r


def _rot_xyz(a, b, c):
    """(N, 3, 3) products ``R_x(a) @ R_y(b) @ R_z(c)`` of angle arrays (N,).

    Written out: one pass instead of three rotations and two matrix products.
    """
    ca, sa, cb, sb, cc, sc = (
        np.cos(a),
        np.sin(a),
        np.cos(b),
        np.sin(b),
        np.cos(c),
        np.sin(c),
    )
    r = np.empty((*a.shape, 3, 3))
    r[..., 0, 0] = cb * cc
    r[..., 0, 1] = -cb * sc
    r[..., 0, 2] = sb
    r[..., 1, 0] = ca * sc + sa * sb * cc
    r[..., 1, 1] = ca * cc - sa * sb * sc
    r[..., 1, 2] = -sa * cb
    r[..., 2, 0] = sa * sc - ca * sb * cc
    r[..., 2, 1] = sa * cc + ca * sb * sc
    r[..., 2, 2] = ca * cb
    return r


def _apply(r, v):
    """Rotate one vector `v` (3,) by each of `r` (N, 3, 3) -> (N, 3)."""
    return r @ v


def _apply_each(r, v):
    """Rotate vector ``v[n]`` (N, 3) by ``r[n]`` (N, 3, 3) -> (N, 3)."""
    return r[:, :, 0] * v[:, 0:1] + r[:, :, 1] * v[:, 1:2] + r[:, :, 2] * v[:, 2:3]


def _bent(angle):
    """(N, 3) unit vectors ``R_x(angle) @ (0, 0, -1)``.

    A hanging segment swung forward (+y) by `angle` about the x axis.
    """
    return np.stack([np.zeros_like(angle), np.sin(angle), -np.cos(angle)], axis=-1)


def _pinhole(points, camera):
    """Pinhole projections of `points` (N, J, 3) through `camera` (N, 4) -> (N, J, 2).

    The formula of :func:`gpa_arrays.camera.project` for 4-value rows (the
    shared ``_geometry.project_linear``), so the result equals
    ``project(points, camera[:, None], check=False)`` bit for bit. Evaluated
    with NumPy on purpose: the data are made once per run, and compiling the
    Numba projection kernels would cost a fresh install seconds more than
    this pass (see ``gpa-arrays demo``'s cold start in ``docs/benchmarks.md``).
    """
    one = points.dtype.type(1)
    fx, fy, cx, cy = (camera[:, c, None] for c in range(4))
    u, v = G.project_linear(
        points[..., 0], points[..., 1], points[..., 2], fx, fy, cx, cy, one
    )
    return np.stack([u, v], axis=-1)


def _rotate_points(r, points):
    """Rotate each pose: `r` (N, 3, 3), `points` (N, J, 3) -> (N, J, 3)."""
    # a batched matmul: about 5x faster than the equivalent einsum here
    return points @ r.transpose(0, 2, 1)


# --- poses ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Angles:
    """Per-pose joint angles in radians; side angles are ``(N, 2)`` (right, left)."""

    body: dict
    side: dict


def _sample_angles(action, rng):
    n = action.shape[0]
    names = list(ACTIONS)
    body = {}
    side = {}
    for name in _BODY_ANGLES + _SIDE_ANGLES:
        lo = np.array([_FAMILIES[f].get(name, _STAND[name])[0] for f in names], float)
        hi = np.array([_FAMILIES[f].get(name, _STAND[name])[1] for f in names], float)
        shape = (n,) if name in _BODY_ANGLES else (n, 2)
        u = rng.random(shape)
        a, b = lo[action], hi[action]
        if name in _SIDE_ANGLES:
            a, b = a[:, None], b[:, None]
        (body if name in _BODY_ANGLES else side)[name] = a + u * (b - a)
    _couple(action, body, side, rng)
    for group in (body, side):
        for name, value in group.items():
            value += rng.normal(scale=_JITTER_DEG, size=value.shape)
            lo, hi = JOINT_LIMITS[name]
            group[name] = np.radians(np.clip(value, lo, hi))
    return _Angles(body, side)


def _couple(action, body, side, rng):
    """Walking gait and phoning hand-to-head, written over the family ranges."""
    walk = np.flatnonzero(action == ACTIONS.index("walking"))
    if walk.size:
        phase = rng.uniform(0.0, 2 * np.pi, size=walk.size)
        swing = np.stack([np.sin(phase), -np.sin(phase)], axis=1)
        side["hip_flexion"][walk] = 8.0 + 22.0 * swing
        # the knee bends most while the leg swings forward
        side["knee_flexion"][walk] = 8.0 + 45.0 * np.clip(
            np.stack([np.cos(phase), -np.cos(phase)], axis=1), 0.0, None
        )
        # arms swing against the legs: forward (plane 90) or backward (plane -30)
        arm = -swing
        side["shoulder_elevation"][walk] = 5.0 + 20.0 * np.abs(arm)
        side["shoulder_plane"][walk] = np.where(arm > 0, 90.0, -30.0)
    phone = np.flatnonzero(action == ACTIONS.index("phoning"))
    if phone.size:
        hand = rng.integers(0, 2, size=phone.size)  # 0 right, 1 left
        for name, (lo, hi) in (
            ("shoulder_elevation", (30, 60)),
            ("shoulder_plane", (40, 90)),
            ("arm_twist", (-10, 30)),
            ("elbow_flexion", (120, 145)),
        ):
            side[name][phone, hand] = rng.uniform(lo, hi, size=phone.size)


def _bone_lengths(n, rng):
    """(N, 17) bone lengths in metres (index = child joint)."""
    mean = np.asarray(BONE_LENGTHS)
    size = np.clip(rng.normal(1.0, 0.055, size=(n, 1)), 0.85, 1.15)
    # one factor per bone type, shared left/right up to a small asymmetry
    bone_type = np.array([0, 1, 2, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 8, 9, 10])
    per_type = np.clip(rng.normal(1.0, 0.03, size=(n, 11)), 0.9, 1.1)
    asym = np.clip(rng.normal(1.0, 0.005, size=(n, 17)), 0.985, 1.015)
    return mean * size * per_type[:, bone_type] * asym


def _forward_kinematics(angles, lengths):
    """(N, 17, 3) poses in the body frame (x right, y forward, z up), root at 0."""
    n = lengths.shape[0]
    b, s = angles.body, angles.side
    pose = np.zeros((n, 17, 3))
    zero = np.zeros(n)

    # Spine: half of the lean, bend and twist at each of the two spine segments.
    # A positive lean tilts forward (+y), i.e. a negative rotation about x.
    half = _rot_xyz(-b["spine_lean"] / 2, b["spine_bend"] / 2, b["spine_twist"] / 2)
    r_thorax = half @ half
    # a rotation applied to up = (0, 0, 1) is its last column
    pose[:, 7] = lengths[:, 7:8] * half[:, :, 2]
    pose[:, 8] = pose[:, 7] + lengths[:, 8:9] * r_thorax[:, :, 2]
    r_head = r_thorax @ _rot_xyz(-b["head_pitch"], zero, b["head_yaw"])
    pose[:, 9] = pose[:, 8] + lengths[:, 9:10] * _apply(r_head, _NOSE_DIRECTION)
    pose[:, 10] = pose[:, 9] + lengths[:, 10:11] * _apply(r_head, _HEAD_DIRECTION)

    for k, (hip, knee, foot, shoulder, elbow, wrist) in enumerate(
        ((1, 2, 3, 14, 15, 16), (4, 5, 6, 11, 12, 13))
    ):
        out = 1.0 if k == 0 else -1.0  # +x is the subject's right
        # Leg: flexion about x (forward positive), abduction about y (outwards),
        # rotation about the thigh's rest axis (inwards positive).
        r_leg = _rot_xyz(
            s["hip_flexion"][:, k],
            -out * s["hip_abduction"][:, k],
            out * s["hip_rotation"][:, k],
        )
        pose[:, hip, 0] = out * lengths[:, hip]
        # down = (0, 0, -1): minus the last column
        pose[:, knee] = pose[:, hip] - lengths[:, knee : knee + 1] * r_leg[:, :, 2]
        # the knee flexes backwards: the shin swings by -flexion about x
        shin = _apply_each(r_leg, _bent(-s["knee_flexion"][:, k]))
        pose[:, foot] = pose[:, knee] + lengths[:, foot : foot + 1] * shin
        # Arm: elevation in the plane of elevation (ISB convention), then twist
        # about the upper arm, which sets the plane the elbow bends in.
        shoulder_offset = np.array([out, 0.0, -0.1])
        shoulder_offset /= np.linalg.norm(shoulder_offset)
        pose[:, shoulder] = pose[:, 8] + lengths[:, shoulder : shoulder + 1] * _apply(
            r_thorax, shoulder_offset
        )
        r_arm = (
            r_thorax
            @ _rot(2, out * s["shoulder_plane"][:, k])
            @ _rot(1, -out * s["shoulder_elevation"][:, k])
            @ _rot(2, out * s["arm_twist"][:, k])
        )
        pose[:, elbow] = (
            pose[:, shoulder] - lengths[:, elbow : elbow + 1] * r_arm[:, :, 2]
        )
        forearm = _apply_each(r_arm, _bent(s["elbow_flexion"][:, k]))
        pose[:, wrist] = pose[:, elbow] + lengths[:, wrist : wrist + 1] * forearm
    return pose


def sample_poses(n, rng, *, mix=SOURCE_MIX):
    """Sample `n` plausible H36M-17 poses in a body frame.

    Parameters
    ----------
    n : int
        Number of poses.
    rng : numpy.random.Generator
        Source of randomness (the only one).
    mix : sequence of float
        Probability of each action family of :data:`ACTIONS` (normalised here).

    Returns
    -------
    poses : (n, 17, 3) float64 ndarray, metres
        Body frame: x to the subject's right, y forward (facing), z up; the
        root (pelvis) at the origin.
    action : (n,) int8 ndarray
        Index of each pose's family in :data:`ACTIONS`.
    """
    p = np.asarray(mix, dtype=float)
    action = rng.choice(len(ACTIONS), size=n, p=p / p.sum()).astype(np.int8)
    angles = _sample_angles(action, rng)
    lengths = _bone_lengths(n, rng)
    return _forward_kinematics(angles, lengths), action


# --- camera domains ----------------------------------------------------------------


def _place_on_ground(poses, heading):
    """World poses (z up, ground z = 0) facing `heading`, root above the origin."""
    c = np.cos(heading)[:, None]
    s = np.sin(heading)[:, None]
    x, y = poses[..., 0], poses[..., 1]
    world = np.empty_like(poses)
    world[..., 0] = c * x - s * y  # a turn about the vertical z axis
    world[..., 1] = s * x + c * y
    world[..., 2] = poses[..., 2] + (
        _ANKLE_HEIGHT - poses[..., 2].min(axis=1, keepdims=True)
    )
    return world


# Camera frame from a world frame whose y axis is the viewing direction:
# camera x = world x, camera y = -world z (down), camera z = world y (forward).
_WORLD_TO_CAMERA_BASE = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def _camera_rotation(yaw, pitch, roll):
    """World-to-camera rotations of cameras with the given attitudes.

    Each camera is turned by `yaw` about the vertical (positive to the left),
    tilted down by `pitch` and rolled by `roll` (radians, (N,) arrays).
    """
    # world-frame turn, then the fixed axis swap, then tilt about the camera's
    # own x axis (positive looks down) and roll about its optical axis
    return _rot(2, roll) @ _rot(0, pitch) @ (_WORLD_TO_CAMERA_BASE @ _rot(2, -yaw))


def studio_view(poses, rng):
    """See body-frame poses through the fixed cameras of a studio (source domain).

    Parameters
    ----------
    poses : (N, 17, 3) float ndarray, metres
        Body-frame poses from :func:`sample_poses`.
    rng : numpy.random.Generator

    Returns
    -------
    pose_3d : (N, 17, 3) float64 ndarray, metres, camera space
    camera : (N, 4) float64 ndarray
        ``[fx, fy, cx, cy]`` (normalised) of the camera that sees each pose.
    camera_id : (N,) int8 ndarray
        Which of the four studio cameras.
    aspect : (N,) float64 ndarray
        Image height over width (1 for the studio cameras).
    """
    n = poses.shape[0]
    camera_id = rng.integers(0, len(_STUDIO_PLACEMENT), size=n).astype(np.int8)
    heading = rng.uniform(0.0, 2 * np.pi, size=n)
    radius = _STUDIO_AREA_RADIUS * np.sqrt(rng.random(n))
    angle = rng.uniform(0.0, 2 * np.pi, size=n)
    world = _place_on_ground(poses, heading)
    world[..., 0] += (radius * np.cos(angle))[:, None]
    world[..., 1] += (radius * np.sin(angle))[:, None]

    azimuth = np.radians(_STUDIO_PLACEMENT[:, 0])
    distance, height = _STUDIO_PLACEMENT[:, 1], _STUDIO_PLACEMENT[:, 2]
    centre = np.stack(
        [distance * np.cos(azimuth), distance * np.sin(azimuth), height], axis=1
    )
    look = _STUDIO_LOOK_AT - centre
    yaw = np.arctan2(-look[:, 0], look[:, 1])
    pitch = np.arctan2(-look[:, 2], np.hypot(look[:, 0], look[:, 1]))
    rotation = _camera_rotation(yaw, pitch, np.zeros(4))
    pose_3d = _rotate_points(rotation[camera_id], world - centre[camera_id][:, None, :])
    camera = _STUDIO_INTRINSICS[camera_id]
    return pose_3d, camera, camera_id, np.ones(n)


def wild_view(poses, rng, *, max_tries=20):
    """See body-frame poses through one in-the-wild camera each (target domain).

    Parameters
    ----------
    poses : (N, 17, 3) float ndarray, metres
        Body-frame poses from :func:`sample_poses`.
    rng : numpy.random.Generator
    max_tries : int
        Re-draws of the camera for poses that fall outside their frame; the
        last try centres the subject and moves the camera back until it fits.

    Returns
    -------
    pose_3d : (N, 17, 3) float64 ndarray, metres, camera space
    camera : (N, 4) float64 ndarray
        ``[fx, fy, cx, cy]`` (normalised) of each pose's camera.
    aspect : (N,) float64 ndarray
        Image height over width of each camera (normalised y spans
        ``[-aspect, aspect]``).
    """
    n = poses.shape[0]
    heading = rng.uniform(0.0, 2 * np.pi, size=n)
    world = _place_on_ground(poses, heading)

    kind = rng.choice(3, size=n, p=[0.35, 0.35, 0.3])
    focal = np.where(kind == 0, _WILD_3DHP[0][0], _WILD_3DHP[1][0])
    aspect = np.where(kind == 0, _WILD_3DHP[0][1], _WILD_3DHP[1][1])
    phone = kind == 2
    focal[phone] = rng.uniform(1.1, 2.4, size=phone.sum())
    aspect[phone] = rng.choice(_WILD_ASPECTS, size=phone.sum())
    camera = np.empty((n, 4))
    camera[:, 0] = focal
    camera[:, 1] = focal * rng.uniform(0.998, 1.002, size=n)
    camera[:, 2] = rng.normal(0.0, 0.01, size=n)
    camera[:, 3] = rng.normal(0.0, 0.01, size=n) * aspect

    pose_3d = np.empty_like(world)
    todo = np.arange(n)
    for attempt in range(max_tries + 1):
        k = todo.size
        last = attempt == max_tries
        distance = np.exp(rng.uniform(np.log(2.5), np.log(8.0), size=k))
        height = rng.uniform(0.3, 2.6, size=k)
        pitch = np.radians(rng.uniform(-10.0, 25.0, size=k))
        roll = np.radians(rng.normal(0.0, 3.0, size=k))
        # subject's direction off the optical axis: centred more often than not,
        # but anywhere up to most of the half field of view (a smooth, bounded
        # Beta(2, 2) bump; clipping a normal would pile poses up at the bound)
        half_fov = np.arctan(1.0 / focal[todo])
        offset = 0.9 * (2.0 * rng.beta(2.0, 2.0, size=k) - 1.0) * half_fov
        if last:  # centre the subject, straight view, step back
            distance = np.full(k, 8.0)
            offset[:] = 0.0
            roll[:] = 0.0
            height[:] = 1.0
            pitch[:] = 0.0
        centre = np.stack(
            [-distance * np.sin(offset), -distance * np.cos(offset), height], axis=1
        )
        rotation = _camera_rotation(np.zeros(k), pitch, roll)
        cam = _rotate_points(rotation, world[todo] - centre[:, None, :])
        uv = _pinhole(cam, camera[todo])
        fits = (
            (cam[..., 2].min(axis=1) > 0.5)
            & (np.abs(uv[..., 0]).max(axis=1) <= 1.0 - _FRAME_MARGIN)
            & (np.abs(uv[..., 1]).max(axis=1) <= (1.0 - _FRAME_MARGIN) * aspect[todo])
        )
        if last:
            fits[:] = True
        pose_3d[todo[fits]] = cam[fits]
        todo = todo[~fits]
        if todo.size == 0:
            break
    return pose_3d, camera, aspect


# --- the two domains ----------------------------------------------------------------


@dataclass(frozen=True)
class Domains:
    """A source and a target domain, ready for :func:`gpa_arrays.gpa`.

    ``gpa(d.source_3d, d.target_2d, d.target_camera)`` aligns the source poses
    to the target domain; a lifting network trains on source 2D -> 3D and is
    tested on target 2D -> 3D. All arrays share one floating dtype (`int8`
    codes aside). Cameras are ``[fx, fy, cx, cy]`` rows in normalised units
    (VideoPose3D convention: divided by the image width).

    Attributes
    ----------
    source_3d : (N, 17, 3) array, metres
        Source poses in their studio camera's space (H36M-17 order, root 0).
    source_2d : (N, 17, 2) array, normalised
        Their linear (pinhole) projections through `source_camera`.
    source_camera : (N, 4) array
        Intrinsics of the studio camera that sees each source pose.
    source_camera_id : (N,) int8 array
        Which of the four studio cameras (0-3).
    source_action : (N,) int8 array
        Action family of each source pose, an index into :data:`ACTIONS`.
    target_3d : (M, 17, 3) array, metres
        Target poses in their own camera's space (ground truth for tests).
    target_2d : (M, 17, 2) array, normalised
        Their projections: the unlabelled target data GPA pairs with.
    target_camera : (M, 4) array
        Intrinsics of each target pose's camera.
    target_aspect : (M,) array
        Image height / width of each target camera.
    target_action : (M,) int8 array
        Action family of each target pose.
    seed : int
        The seed that made them.
    """

    source_3d: np.ndarray
    source_2d: np.ndarray
    source_camera: np.ndarray
    source_camera_id: np.ndarray
    source_action: np.ndarray
    target_3d: np.ndarray
    target_2d: np.ndarray
    target_camera: np.ndarray
    target_aspect: np.ndarray
    target_action: np.ndarray
    seed: int


def make_domains(n_source=100_000, n_target=None, *, seed=0, dtype=np.float64):
    """Generate a studio source domain and an in-the-wild target domain.

    Parameters
    ----------
    n_source : int
        Source poses ``N``.
    n_target : int, optional
        Target poses ``M``; default ``N``.
    seed : int
        Fixes every number. The source domain of a seed is the same whatever
        `n_target` is, and vice versa.
    dtype : {numpy.float64, numpy.float32}
        Floating dtype of the arrays (computed in float64, then rounded).

    Returns
    -------
    Domains

    Raises
    ------
    ValueError
        For negative sizes or a non-floating dtype.

    Examples
    --------
    >>> from gpa_arrays import synthetic
    >>> d = synthetic.make_domains(1000, 500, seed=0)
    >>> d.source_3d.shape, d.target_2d.shape, d.target_camera.shape
    ((1000, 17, 3), (500, 17, 2), (500, 4))
    """
    n_target = n_source if n_target is None else n_target
    for name, value in (("n_source", n_source), ("n_target", n_target)):
        if isinstance(value, bool) or int(value) != value or value < 0:
            raise ValueError(f"{name}: expected a non-negative int, got {value!r}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype: expected float32 or float64, got {dtype}")
    source_seq, target_seq = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(source_seq)
    poses, source_action = sample_poses(int(n_source), rng, mix=SOURCE_MIX)
    source_3d, source_camera, camera_id, _ = studio_view(poses, rng)
    rng = np.random.default_rng(target_seq)
    poses, target_action = sample_poses(int(n_target), rng, mix=TARGET_MIX)
    target_3d, target_camera, aspect = wild_view(poses, rng)
    source_2d = _pinhole(source_3d, source_camera)
    target_2d = _pinhole(target_3d, target_camera)
    return Domains(
        source_3d=source_3d.astype(dtype, copy=False),
        source_2d=source_2d.astype(dtype, copy=False),
        source_camera=source_camera.astype(dtype, copy=False),
        source_camera_id=camera_id,
        source_action=source_action,
        target_3d=target_3d.astype(dtype, copy=False),
        target_2d=target_2d.astype(dtype, copy=False),
        target_camera=target_camera.astype(dtype, copy=False),
        target_aspect=aspect.astype(dtype, copy=False),
        target_action=target_action,
        seed=seed,
    )

"""gpa_arrays.camera: hand-checked values, loops, invariances, backends, errors."""

import numpy as np
import pytest
from naive import project_point, quaternion_conjugate, quaternion_rotate

from gpa_arrays import camera

# Human3.6M camera 54138969 (VideoPose3D's h36m_dataset metadata)
H36M_F = np.array([1145.0494, 1143.7811])
H36M_C = np.array([512.5415, 515.4515])
H36M_K = np.array([-0.2071, 0.2479, -0.0031, -0.0009, -0.0013])


def random_quaternions(rng, n):
    q = rng.normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


# --- screen coordinates ---------------------------------------------------------------


def test_normalize_screen_by_hand():
    got = camera.normalize_screen(
        [[0, 0], [1000, 1002], [500, 501], [250, 0]], 1000, 1002
    )
    np.testing.assert_allclose(
        got, [[-1, -1.002], [1, 1.002], [0, 0], [-0.5, -1.002]], rtol=0, atol=1e-15
    )
    # the PoseDA docstring's rule maps both axes to [-1, 1]
    got = camera.normalize_screen([[0, 0], [1920, 1080]], 1920, 1080, rule="poseda")
    np.testing.assert_allclose(got, [[-1, -1], [1, 1]], atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rule", ["width", "poseda"])
def test_screen_round_trip(rng, dtype, rule):
    w = rng.integers(200, 3000, size=50).astype(float)
    h = rng.integers(200, 3000, size=50).astype(float)
    pixels = (
        rng.uniform(0, 1, size=(50, 17, 2)) * np.stack([w, h], 1)[:, None]
    ).astype(dtype)
    normalised = camera.normalize_screen(pixels, w, h, rule=rule)
    assert normalised.dtype == dtype and normalised.shape == pixels.shape
    back = camera.image_coordinates(normalised, w, h, rule=rule)
    # a few roundings of values of order 1 (normalised), scaled back by w / 2
    tol = 4 * np.finfo(dtype).eps * 3000
    np.testing.assert_allclose(back, pixels, rtol=0, atol=tol)
    # per-frame sizes are aligned with the leading axis: frame i uses w[i], h[i]
    for i in (0, 17, 49):
        np.testing.assert_array_equal(
            normalised[i], camera.normalize_screen(pixels[i], w[i], h[i], rule=rule)
        )
    # the other direction too
    again = camera.normalize_screen(
        camera.image_coordinates(normalised, w, h, rule=rule), w, h, rule=rule
    )
    np.testing.assert_allclose(again, normalised, rtol=0, atol=8 * np.finfo(dtype).eps)


def test_screen_rules_agree_for_square_images(rng):
    xy = rng.uniform(0, 2048, size=(10, 2))
    np.testing.assert_allclose(
        camera.normalize_screen(xy, 2048, 2048),
        camera.normalize_screen(xy, 2048, 2048, rule="poseda"),
        atol=1e-15,
    )


def test_screen_errors():
    with pytest.raises(ValueError, match=r"xy: expected shape \(\.\.\., 2\)"):
        camera.normalize_screen(np.zeros((3, 3)), 10, 10)
    with pytest.raises(ValueError, match="w: expected positive, finite image sizes"):
        camera.normalize_screen(np.zeros((3, 2)), 0, 10)
    with pytest.raises(ValueError, match=r"h: .* got nan at index 1$"):
        camera.normalize_screen(np.zeros((3, 2)), 10, [10, np.nan, 10])
    with pytest.raises(ValueError, match="rule: expected one of 'width', 'poseda'"):
        camera.image_coordinates(np.zeros((3, 2)), 10, 10, rule="height")
    with pytest.raises(ValueError, match="w: has 2 batch axes"):
        camera.normalize_screen(np.zeros((3, 2)), np.ones((3, 1)), 10)
    with pytest.raises(ValueError, match="do not match the leading axes"):
        camera.normalize_screen(np.zeros((3, 17, 2)), np.ones(4), 10)
    with pytest.raises(TypeError, match="xy: expected a real floating"):
        camera.normalize_screen(np.zeros((3, 2), dtype=complex), 10, 10)


# --- intrinsics -----------------------------------------------------------------------


def test_normalize_intrinsics_h36m_and_3dhp():
    got = camera.normalize_intrinsics(H36M_F, H36M_C, 1000, 1002)
    np.testing.assert_allclose(got, [2.2901, 2.2876, 0.0251, 0.0289], atol=1e-4)
    # 3DHP test sequences: TS1-4 2048 x 2048, TS5-6 1920 x 1080
    assert camera.normalize_intrinsics(1500.0, [1024, 1024], 2048, 2048)[
        0
    ] == pytest.approx(1.4648, abs=1e-4)
    assert camera.normalize_intrinsics(1683.0, [960, 540], 1920, 1080)[
        0
    ] == pytest.approx(1.753, abs=1e-3)
    rows = camera.normalize_intrinsics(H36M_F, H36M_C, 1000, 1002, distortion=H36M_K)
    assert rows.shape == (9,)
    np.testing.assert_array_equal(rows[4:], H36M_K)
    # the PoseDA rule differs on y for non-square images, never silently
    poseda = camera.normalize_intrinsics(H36M_F, H36M_C, 1000, 1002, rule="poseda")
    np.testing.assert_allclose(poseda[[0, 2]], got[[0, 2]], rtol=1e-15)
    np.testing.assert_allclose(poseda[1], 2 * H36M_F[1] / 1002, rtol=1e-15)
    np.testing.assert_allclose(poseda[3], 2 * H36M_C[1] / 1002 - 1, rtol=1e-15)


@pytest.mark.parametrize("rule", ["width", "poseda"])
def test_normalised_projection_equals_normalised_pixel_projection(rng, rule):
    # projecting with normalised intrinsics == projecting in pixels, then
    # normalising the pixels with the same rule
    m = 40
    f = rng.uniform(800, 2000, size=(m, 2))
    w = rng.integers(640, 2048, size=m).astype(float)
    h = rng.integers(480, 2048, size=m).astype(float)
    c = np.stack([w, h], 1) * rng.uniform(0.4, 0.6, size=(m, 2))
    points = rng.normal(scale=0.4, size=(m, 17, 3))
    points[..., 2] += 5
    pixels = f[:, None] * points[..., :2] / points[..., 2:] + c[:, None]
    rows = camera.normalize_intrinsics(f, c, w, h, rule=rule)
    assert rows.shape == (m, 4)
    np.testing.assert_allclose(
        camera.project(points, rows),
        camera.normalize_screen(pixels, w, h, rule=rule),
        rtol=0,
        atol=1e-13,
    )


def test_intrinsics_from_matrix(rng):
    f = rng.uniform(800, 2000, size=(5, 2))
    c = rng.uniform(400, 600, size=(5, 2))
    k = np.zeros((5, 3, 3))
    k[:, 0, 0], k[:, 1, 1] = f[:, 0], f[:, 1]
    k[:, 0, 2], k[:, 1, 2] = c[:, 0], c[:, 1]
    k[:, 2, 2] = 1
    np.testing.assert_array_equal(
        camera.intrinsics_from_matrix(k, 1000, 1000),
        camera.normalize_intrinsics(f, c, 1000, 1000),
    )
    distortion = rng.normal(scale=0.01, size=(5, 5))
    assert camera.intrinsics_from_matrix(
        k, 1000, 1000, distortion=distortion
    ).shape == (
        5,
        9,
    )
    k[3, 0, 1] = 0.5
    with pytest.raises(ValueError, match=r"matrix: expected .*no skew.* at index 3$"):
        camera.intrinsics_from_matrix(k, 1000, 1000)
    with pytest.raises(ValueError, match=r"matrix: expected shape \(\.\.\., 3, 3\)"):
        camera.intrinsics_from_matrix(np.eye(4), 10, 10)


def test_intrinsics_errors():
    with pytest.raises(ValueError, match="f_px: 1 focal length"):
        camera.normalize_intrinsics([[1000, 1000], [0, 1000]], [500, 500], 1000, 1000)
    with pytest.raises(ValueError, match="c_px: 1 non-finite principal point"):
        camera.normalize_intrinsics(1000, [np.nan, 500], 1000, 1000)
    with pytest.raises(ValueError, match="distortion: expected shape"):
        camera.normalize_intrinsics(1000, [500, 500], 1000, 1000, distortion=[0, 0])
    with pytest.raises(ValueError, match="distortion: 1 non-finite"):
        camera.normalize_intrinsics(
            1000, [500, 500], 1000, 1000, distortion=[0, 0, np.inf, 0, 0]
        )
    with pytest.raises(ValueError, match="rule: expected"):
        camera.normalize_intrinsics(1000, [500, 500], 1000, 1000, rule="h")


# --- extrinsics -----------------------------------------------------------------------


def test_extrinsics_by_hand():
    # camera at (1, 2, 3) turned a quarter turn about the world z axis
    q = [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]
    got = camera.world_to_camera([[2.0, 2.0, 3.0], [1.0, 3.0, 4.0]], q, [1, 2, 3])
    # world +x is camera -y, world +y is camera +x
    np.testing.assert_allclose(got, [[0, -1, 0], [1, 0, 1]], atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extrinsics_against_quaternion_loop(rng, dtype):
    q = random_quaternions(rng, 30)
    t = rng.normal(size=(30, 3))
    x = rng.normal(size=(30, 17, 3))
    got = camera.world_to_camera(x.astype(dtype), q.astype(dtype), t.astype(dtype))
    assert got.dtype == dtype
    for i in (0, 11, 29):
        for k in (0, 16):
            want = quaternion_rotate(quaternion_conjugate(q[i]), x[i, k] - t[i])
            np.testing.assert_allclose(got[i, k], want, atol=50 * np.finfo(dtype).eps)
    back = camera.camera_to_world(got.astype(np.float64), q, t)
    np.testing.assert_allclose(back, x, atol=1e-5 if dtype == np.float32 else 1e-14)


def test_quaternion_and_matrix_agree(rng):
    q = random_quaternions(rng, 100)
    r = camera.quaternion_to_matrix(q)
    np.testing.assert_allclose(
        r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape), atol=1e-14
    )
    np.testing.assert_allclose(np.linalg.det(r), 1, atol=1e-14)
    v = rng.normal(size=3)
    np.testing.assert_allclose(r[7] @ v, quaternion_rotate(q[7], v), atol=1e-14)
    x = rng.normal(size=(100, 5, 3))
    t = rng.normal(size=(100, 3))
    np.testing.assert_allclose(
        camera.world_to_camera(x, q, t), camera.world_to_camera(x, r, t), atol=1e-14
    )
    np.testing.assert_allclose(
        camera.camera_to_world(x, q, t), camera.camera_to_world(x, r, t), atol=1e-14
    )
    # -q is the same rotation; a slightly non-unit quaternion is normalised
    np.testing.assert_allclose(camera.quaternion_to_matrix(-q), r, atol=1e-15)
    np.testing.assert_allclose(
        camera.quaternion_to_matrix(q * (1 + 5e-5)), r, atol=1e-15
    )


def test_extrinsics_single_camera_broadcasts(rng):
    q = random_quaternions(rng, 1)[0]
    x = rng.normal(size=(4, 6, 17, 3))
    got = camera.world_to_camera(x, q, [0.1, 0.2, 0.3])
    assert got.shape == x.shape
    np.testing.assert_allclose(
        got[2, 3], camera.world_to_camera(x[2, 3], q, [0.1, 0.2, 0.3]), atol=1e-15
    )


def test_opencv_extrinsics_conversion(rng):
    # the recipe of the module docstring: X_cam = R_cv X + t_cv
    r_cv = camera.quaternion_to_matrix(random_quaternions(rng, 1)[0])
    t_cv = rng.normal(size=3)
    x = rng.normal(size=(10, 3))
    np.testing.assert_allclose(
        camera.world_to_camera(x, r_cv.T, -r_cv.T @ t_cv), x @ r_cv.T + t_cv, atol=1e-14
    )


def test_extrinsics_errors():
    with pytest.raises(ValueError, match="rotation: expected unit quaternions"):
        camera.world_to_camera(np.zeros(3), [1.0, 0.1, 0, 0], np.zeros(3))
    with pytest.raises(ValueError, match="rotation: expected proper rotation matrices"):
        camera.world_to_camera(np.zeros(3), np.diag([1.0, 1, -1]), np.zeros(3))
    with pytest.raises(ValueError, match="rotation: expected a quaternion"):
        camera.world_to_camera(np.zeros(3), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"position: expected shape \(\.\.\., 3\)"):
        camera.world_to_camera(np.zeros(3), [1.0, 0, 0, 0], np.zeros(2))
    with pytest.raises(ValueError, match="rotation: has 2 batch axes"):
        camera.world_to_camera(np.zeros((4, 3)), np.ones((4, 2, 4)) / 2, np.zeros(3))


# --- projection -----------------------------------------------------------------------


def make_points(rng, shape, depth=5.0):
    points = rng.normal(scale=0.5, size=(*shape, 3))
    points[..., 2] += depth
    return points


def make_cameras(rng, m, cols):
    cam = np.empty((m, cols))
    cam[:, :2] = rng.uniform(1.2, 2.4, size=(m, 2))
    cam[:, 2:4] = rng.uniform(-0.1, 0.1, size=(m, 2))
    if cols == 9:
        cam[:, 4:] = rng.normal(scale=0.1, size=(m, 5))
    return cam


@pytest.mark.parametrize("cols", [4, 9])
def test_project_against_loop(rng, backend, cols):
    points = make_points(rng, (30, 17))
    points[0, :4, 0] = [6.0, -6.0, 0.0, 100.0]  # |x / z| > 1: clamped
    cam = make_cameras(rng, 30, cols)
    got = backend(camera.project, points, cam)
    for i in (0, 7, 29):
        for k in (0, 1, 2, 3, 16):
            np.testing.assert_allclose(
                got[i, k], project_point(points[i, k], cam[i]), rtol=0, atol=1e-14
            )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cols", [4, 9])
def test_project_backends_bit_identical(rng, kernel_backend, dtype, cols, small_chunks):
    points = make_points(rng, (211, 17)).astype(dtype)
    points[3, 2, :2] = 40.0  # clamped
    cam = make_cameras(rng, 211, cols).astype(dtype)
    want = camera.project(points, cam, backend="numpy")
    assert want.dtype == dtype and want.shape == (211, 17, 2)
    got = kernel_backend(camera.project, points, cam)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, want)
    # one camera for everything, the pinhole part of each row, and a camera
    # per joint
    for rows in (cam[0], cam[:, :4]):
        np.testing.assert_array_equal(
            kernel_backend(camera.project, points, rows),
            camera.project(points, rows, backend="numpy"),
        )
    per_joint = np.broadcast_to(cam[:, None], (211, 17, cols))
    np.testing.assert_array_equal(
        kernel_backend(camera.project, points, per_joint), want
    )
    # into a Fortran-ordered out=
    out = kernel_backend.xp.asfortranarray(kernel_backend.xp.empty((211, 17, 2), dtype))
    p, c = kernel_backend.device(points, cam)
    assert camera.project(p, c, out=out, backend=kernel_backend.name) is out
    np.testing.assert_array_equal(kernel_backend.host(out), want)


def test_project_camera_alignment(rng):
    points = make_points(rng, (6, 4, 17))
    cam = make_cameras(rng, 6, 9)
    got = camera.project(points, cam)  # (6, 9) rows apply to the leading axis
    for i in range(6):
        np.testing.assert_array_equal(got[i], camera.project(points[i], cam[i]))
    # a grid of cameras (6, 4) for the two leading axes
    grid = make_cameras(rng, 24, 4).reshape(6, 4, 4)
    got = camera.project(points, grid)
    np.testing.assert_array_equal(got[5, 2], camera.project(points[5, 2], grid[5, 2]))
    # one point seen by many cameras broadcasts to the cameras' shape
    assert camera.project(points[0, 0, 0], cam).shape == (6, 2)
    with pytest.raises(ValueError, match="do not match the leading axes"):
        camera.project(points, cam[:5])


def test_project_world_to_camera_is_a_pinhole(rng):
    # project(world_to_camera(X)) with normalised intrinsics equals the pixel
    # pinhole K [R^T (X - t)] normalised to the screen
    q = random_quaternions(rng, 1)[0]
    r = camera.quaternion_to_matrix(q)
    position = np.array([0.3, -0.2, -6.0])
    in_front = rng.normal(scale=0.4, size=(50, 17, 3))
    in_front[..., 2] += 6.0
    world = camera.camera_to_world(in_front, q, position)
    k = np.array([[1150.0, 0, 512.0], [0, 1148.0, 515.0], [0, 0, 1]])
    homogeneous = np.einsum("ab,njb->nja", k @ r.T, world - position)
    pixels = homogeneous[..., :2] / homogeneous[..., 2:]
    rows = camera.intrinsics_from_matrix(k, 1000, 1002)
    got = camera.project(camera.world_to_camera(world, q, position), rows)
    np.testing.assert_allclose(
        got, camera.normalize_screen(pixels, 1000, 1002), rtol=0, atol=1e-13
    )


def test_project_checks(rng, backend):
    points = make_points(rng, (5, 17))
    cam = make_cameras(rng, 5, 4)
    bad = points.copy()
    bad[2, 3, 2] = -1.0
    bad[4, 0, 2] = 0.0
    with pytest.raises(
        ValueError,
        match=r"points_3d: 2 of 85 points lie at or behind the camera plane .* first at index \(2, 3\)",
    ):
        backend(camera.project, bad, cam)
    got = backend(camera.project, bad, cam, check=False)
    # the formula, evaluated as is (clamped, sign flipped)
    np.testing.assert_allclose(got[2, 3], project_point(bad[2, 3], cam[2]), atol=1e-14)
    bad = points.copy()
    bad[1, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"1 of 85 point has a non-finite .* \(1, 1\)"):
        backend(camera.project, bad, cam)
    bad_cam = cam.copy()
    bad_cam[3, 0] = -1
    with pytest.raises(
        ValueError, match=r"camera: 1 of 5 row has .* first at index 3$"
    ):
        backend(camera.project, points, bad_cam)
    unchecked = backend(camera.project, points, bad_cam, check=False)
    np.testing.assert_allclose(
        unchecked[3, 5], project_point(points[3, 5], bad_cam[3]), atol=1e-14
    )
    # the index is the caller's, through alignment and broadcasting
    grid = make_cameras(rng, 24, 9).reshape(6, 4, 9)
    grid[5, 2, 6] = np.inf
    with pytest.raises(ValueError, match=r"first at index \(5, 2\)$"):
        backend(camera.project, make_points(rng, (6, 4, 3, 17)), grid)
    column = make_cameras(rng, 6, 4)[:, None]
    column[4, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"first at index \(4, 0\)$"):
        backend(camera.project, make_points(rng, (6, 4, 17)), column)


def test_project_argument_errors(rng):
    points = make_points(rng, (5, 17))
    cam = make_cameras(rng, 5, 4)
    with pytest.raises(ValueError, match=r"camera: expected shape \(\.\.\., 4\) or"):
        camera.project(points, cam[:, :3])
    with pytest.raises(ValueError, match=r"points_3d: expected shape \(\.\.\., 3\)"):
        camera.project(points[..., :2], cam)
    with pytest.raises(TypeError, match="points_3d: expected a real floating"):
        camera.project(points.astype(complex), cam)


def test_project_out_and_layouts(rng, backend, small_chunks):
    points = make_points(rng, (40, 17))
    cam = make_cameras(rng, 40, 9)
    want = camera.project(points, cam, backend="numpy")
    xp = backend.xp
    p, c = backend.device(points, cam)
    kw = dict(backend=backend.name)
    out = xp.empty((40, 17, 2))
    assert camera.project(p, c, out=out, **kw) is out
    np.testing.assert_array_equal(backend.host(out), want)
    fortran = xp.asfortranarray(xp.empty((40, 17, 2)))
    camera.project(xp.asfortranarray(p), c, out=fortran, **kw)
    np.testing.assert_array_equal(backend.host(fortran), want)
    strided = camera.project(p[::2], c[::2], **kw)
    np.testing.assert_array_equal(backend.host(strided), want[::2])
    assert backend.host(camera.project(p[:0], c[:0], **kw)).shape == (0, 17, 2)
    # caller arrays are not modified
    camera.project(p, c, **kw)
    np.testing.assert_array_equal(backend.host(p), points)
    np.testing.assert_array_equal(backend.host(c), cam)


def test_project_argument_and_dtype_rules(rng):
    points = make_points(rng, (40, 17))
    cam = make_cameras(rng, 40, 9)
    with pytest.raises(ValueError, match=r"out: expected shape \(40, 17, 2\)"):
        camera.project(points, cam, out=np.empty((40, 17, 3)))
    with pytest.raises(TypeError, match="out: expected dtype float64"):
        camera.project(points, cam, out=np.empty((40, 17, 2), np.float32))
    # dtype rules as in gpa: float16 -> float32, integers -> float64
    assert camera.project(points.astype(np.float16), cam).dtype == np.float32
    assert camera.project(np.round(points * 100).astype(int), cam).dtype == np.float64
    copies = points.copy(), cam.copy()
    camera.project(points, cam)
    np.testing.assert_array_equal(points, copies[0])
    np.testing.assert_array_equal(cam, copies[1])


def test_top_level_project_is_camera_project():
    import gpa_arrays

    assert gpa_arrays.project is camera.project

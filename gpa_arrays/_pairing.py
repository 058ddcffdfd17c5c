"""Counter-based pairing of source poses with target poses.

The pairing is a pure function of ``(seed, step, i)``: source pose ``i`` is paired
with target ``pair(i)``. Because nothing depends on evaluation order, every backend
evaluates it inside its own kernel, one pose at a time, and gets bit-identical
indices: the NumPy reference, the Numba kernels, and the CUDA kernels (whose C
twin lives in ``_backends/kernels/pairing.cuh``). No O(N) permutation array is
ever built on the default path.

Algorithm
---------
*Key schedule.* ``mix64`` is the SplitMix64 output function (Steele, Lea and
Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014; constants of
Stafford's "Mix13"). A 64-bit stream key is derived from the user seed and a step
counter (the :class:`~gpa_arrays.GPA` object advances the step on every call), and
one 64-bit key per Feistel round from the stream key::

    stream = mix64(seed ^ mix64(step + GOLDEN))
    key[r] = mix64(stream + (r + 1) * GOLDEN) >> 32    r = 0 .. ROUNDS - 1
    key[ROUNDS] = mix64(stream + (ROUNDS + 1) * GOLDEN)

The Feistel rounds take 32-bit keys; the 64-bit ``key[ROUNDS]`` is the key of
the ``"random"`` pairing.

*Permutation of [0, K).* A mixed-radix Feistel network (the alternating-modulus
construction of Black and Rogaway, "Ciphers with arbitrary finite domains", CT-RSA
2002) permutes the rectangle ``[0, a) x [0, b)`` with ``a = ceil(sqrt(K))`` and
``b = ceil(K / a)``. Writing ``x = L * b + R``, round ``r`` maps ``(L, R)`` to
``(R, (L + F_r(R)) mod m_r)`` where ``m_r`` is ``a`` on even and ``b`` on odd
rounds, so after an even number of rounds the shape is ``a x b`` again. The round
function is ``F_r(R) = fastrange(mix32(R ^ key[r]), m_r)``, with Lemire's
multiply-shift reduction instead of a division; ``mix32`` is two folded
32 x 32 -> 64-bit products (see its docstring). Since ``a, b <= 2**24`` for
``K <= 2**48``, a round needs 32-bit words only. The chain of six rounds is
latency bound, and these products have a third of the latency of the 64-bit
ones of SplitMix64: the permutation costs half of what it did with
``mix64`` as the round function (about 6 instead of 12 ns per pose, one core),
and a GPU multiplies 32-bit words natively. Values that land in ``[K, a*b)``
are walked along their cycle until they re-enter ``[0, K)`` (cycle walking); since
``a*b - K < a``, fewer than ``1 / sqrt(K)`` of the points need a second step. A
power-of-two domain would need up to twice ``K`` and make the walk the common case.

*Pairing kinds* (``N`` sources, ``M`` targets, ``K = max(N, M)``):

``"permutation"``
    ``j = perm_K(i) mod M``. For ``N == M`` a permutation; for ``N < M`` the
    first ``N`` images of a permutation of ``[0, M)``, hence distinct; for
    ``N > M`` a permutation of ``[0, N)`` folded onto ``[0, M)``, so every
    target is used ``floor(N / M)`` or ``ceil(N / M)`` times.
``"random"``
    ``j = mulhi64(mix64(key[ROUNDS] + (i + 1) * GOLDEN), M)``: independent
    uniform draws (the bias of the multiply-high reduction is below ``M / 2**64``).
``"identity"``
    ``j = i`` (``N == M``).

All functions here work on NumPy ``uint64`` arrays (used by the reference) and
are compiled unchanged by Numba for scalars (used by the CPU kernels).
"""

from __future__ import annotations

import functools
import math
import numbers
import secrets

import numpy as np

from ._status import POSE_INDEX, new_status, raise_for_pose_status

__all__ = [
    "KIND_ARRAY",
    "KIND_IDENTITY",
    "KIND_PERMUTATION",
    "KIND_RANDOM",
    "MAX_POSES",
    "ROUNDS",
    "PairingSpec",
    "feistel",
    "feistel_round",
    "feistel_rounds",
    "mix32",
    "mix64",
    "mulhi64",
    "random_index",
    "resolve_pairing",
    "resolve_seed",
    "round_keys",
]

_U = np.uint64

#: 2**64 / golden ratio, the SplitMix64 increment.
GOLDEN = _U(0x9E3779B97F4A7C15)
_M1 = _U(0xBF58476D1CE4E5B9)
_M2 = _U(0x94D049BB133111EB)
_S27 = _U(27)
_S30 = _U(30)
_S31 = _U(31)
_S32 = _U(32)
_MASK32 = _U(0xFFFFFFFF)
_ONE = _U(1)
# mix32's multipliers: the odd 32-bit primes PRIME32_1 and PRIME32_2 of Collet's
# xxHash32 (PRIME32_1 = 2**32 / golden ratio, rounded to a prime)
_C1 = _U(0x9E3779B1)
_C2 = _U(0x85EBCA77)

#: Feistel rounds. Four already give a pseudorandom permutation for a strong round
#: function (Luby-Rackoff); six buy margin for tiny domains at a cost of a few ns.
ROUNDS = 6

#: Largest supported number of poses (sources or targets): keeps ``a * b`` and
#: every intermediate product inside 64 bits.
MAX_POSES = 2**48

KIND_PERMUTATION = 0
KIND_RANDOM = 1
KIND_IDENTITY = 2
KIND_ARRAY = 3

_KINDS = {
    "permutation": KIND_PERMUTATION,
    "random": KIND_RANDOM,
    "identity": KIND_IDENTITY,
}


# --- the shared arithmetic (NumPy arrays and Numba scalars alike) ---------------


def mix64(z):
    """SplitMix64 output function: a bijective 64-bit mixer.

    Parameters
    ----------
    z : uint64 scalar or array

    Returns
    -------
    uint64 scalar or array, same shape as `z`.
    """
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def mix32(x):
    """Hash a 32-bit word to a 32-bit word with two folded products.

    Each step multiplies the word by a 32-bit odd constant into a 64-bit
    product and folds its high half onto its low half (``h ^ (h >> 32)``, kept
    to 32 bits), so every output bit depends on every input bit after two steps.

    Parameters
    ----------
    x : uint64 scalar or array
        Only the low 32 bits are used.

    Returns
    -------
    uint64 scalar or array below ``2**32``, same shape as `x`.

    Notes
    -----
    A 32 x 32 -> 64-bit product is what vector units multiply fastest (one
    ``vpmuludq``, latency 5 cycles, against 15 for a full 64-bit ``vpmullq``)
    and what a GPU computes natively. The masks are no-ops on the values but
    tell the compiler that the upper halves are zero. It is not a bijection;
    a Feistel round function need not be.
    """
    h = (x & _MASK32) * _C1
    h = (h ^ (h >> _S32)) & _MASK32
    h = h * _C2
    return (h ^ (h >> _S32)) & _MASK32


def round_keys(seed, step, keys):
    """Fill `keys` (``ROUNDS + 1`` uint64) with the key schedule of (seed, step).

    ``keys[:ROUNDS]`` are the Feistel rounds' 32-bit keys, ``keys[ROUNDS]`` the
    64-bit key of the ``"random"`` pairing.
    """
    stream = mix64(seed ^ mix64(step + GOLDEN))
    for r in range(ROUNDS):
        keys[r] = mix64(stream + _U(r + 1) * GOLDEN) >> _S32
    keys[ROUNDS] = mix64(stream + _U(ROUNDS + 1) * GOLDEN)


def feistel_round(left, right, key, m):
    """One Feistel round: ``(L, R) -> (R, (L + F(R)) mod m)`` with ``L < m``.

    ``L, R, m < 2**24`` and a 32-bit `key`: ``F(R) = fastrange(mix32(R ^ key), m)``.
    """
    f = (mix32(right ^ key) * (m & _MASK32)) >> _S32
    t = left + f
    # (t >= m) ? t - m : t, branch-free: for t < m the subtraction wraps to a huge
    # unsigned value and the minimum keeps t.
    return right, np.minimum(t, t - m)


def feistel_rounds(left, right, keys, a, b):
    """The six rounds of the mixed-radix Feistel network on ``(L, R)``.

    Parameters
    ----------
    left, right : uint64 scalars or arrays
        ``L in [0, a)``, ``R in [0, b)``.
    keys : (ROUNDS + 1,) uint64 array or tuple
        Round keys from :func:`round_keys`.
    a, b : uint64
        Radices.

    Returns
    -------
    left, right : uint64 scalars or arrays, again ``L in [0, a)``, ``R in [0, b)``.
    """
    # Written out (ROUNDS == 6) rather than looped: the loop-free form is what
    # Numba can inline into its kernels.
    left, right = feistel_round(left, right, keys[0], a)
    left, right = feistel_round(left, right, keys[1], b)
    left, right = feistel_round(left, right, keys[2], a)
    left, right = feistel_round(left, right, keys[3], b)
    left, right = feistel_round(left, right, keys[4], a)
    left, right = feistel_round(left, right, keys[5], b)
    return left, right


def feistel(x, keys, a, b):
    """One pass of the mixed-radix Feistel bijection of ``[0, a*b)``.

    Parameters
    ----------
    x : uint64 scalar or array
        Points in ``[0, a*b)``, written ``x = L * b + R``.
    keys : (ROUNDS + 1,) uint64 array or tuple
        Round keys from :func:`round_keys`.
    a, b : uint64
        Radices, ``a * b >= K``.

    Returns
    -------
    uint64 scalar or array in ``[0, a*b)``, same shape as `x`.
    """
    left = x // b
    left, right = feistel_rounds(left, x - left * b, keys, a, b)
    return left * b + right


def mulhi64(x, y):
    """High 64 bits of the 128-bit product of two uint64 values."""
    x0 = x & _MASK32
    x1 = x >> _S32
    y0 = y & _MASK32
    y1 = y >> _S32
    p00 = x0 * y0
    p01 = x0 * y1
    p10 = x1 * y0
    p11 = x1 * y1
    mid = (p00 >> _S32) + (p01 & _MASK32) + (p10 & _MASK32)
    return p11 + (p01 >> _S32) + (p10 >> _S32) + (mid >> _S32)


def random_index(i, keys, m):
    """Target of source `i` under the ``"random"`` pairing (uint64 in ``[0, m)``)."""
    return mulhi64(mix64(keys[ROUNDS] + (i + _ONE) * GOLDEN), m)


# --- host-side resolution -------------------------------------------------------


@functools.lru_cache(maxsize=64)
def radices(k: int) -> tuple[int, int]:
    """Feistel radices ``(a, b)`` for a domain of `k` points (``a*b >= k``)."""
    if k <= 1:
        return 1, 1
    a = math.isqrt(k - 1) + 1
    b = -(-k // a)
    return a, b


def resolve_seed(seed) -> int:
    """Turn a user seed into the 64-bit integer the kernels use.

    Parameters
    ----------
    seed : None, int or numpy.random.Generator
        ``None`` draws 64 fresh bits from the operating system; an integer must lie
        in ``[0, 2**64)``; a Generator is advanced by one 64-bit draw.

    Returns
    -------
    int in ``[0, 2**64)``.

    Raises
    ------
    TypeError
        For any other type.
    ValueError
        For an integer outside ``[0, 2**64)``.
    """
    if type(seed) is int and 0 <= seed < 2**64:
        return seed
    if seed is None:
        return secrets.randbits(64)
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        value = int(seed)
        if not 0 <= value < 2**64:
            raise ValueError(f"seed: expected an integer in [0, 2**64), got {value}")
        return value
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**64, dtype=np.uint64))
    raise TypeError(
        "seed: expected None, an int or a numpy.random.Generator, "
        f"got {type(seed).__name__}"
    )


class PairingSpec:
    """Everything a kernel needs to evaluate ``pair(i)``, resolved on the host.

    Attributes
    ----------
    kind : int
        One of the ``KIND_*`` codes.
    n, m : int
        Number of sources (in the whole data set) and of targets.
    seed, step : int
        Key material (uint64 range); unused by identity and array pairings.
    offset, count : int
        The poses of this call are the global poses ``offset .. offset+count-1``
        (a chunk of a larger data set, e.g. one Dask block); ``offset = 0`` and
        ``count = n`` for a whole call. The pairing of a pose depends on its
        global index only, so chunked and whole calls agree bit for bit.
    a, b, k : int
        Feistel radices and domain size ``k = max(n, m)``.
    index : ndarray or None
        The explicit ``(count,)`` target indices of an array pairing.
    """

    __slots__ = ("a", "b", "count", "index", "k", "kind", "m", "n", "offset", "seed",
                 "step")  # fmt: skip

    def __init__(self, kind, n, m, seed=0, step=0, index=None, offset=0, count=None):
        self.kind = kind
        self.n = n
        self.m = m
        self.seed = seed
        self.step = step
        self.index = index
        self.offset = offset
        self.count = n - offset if count is None else count
        self.k = max(n, m)
        self.a, self.b = radices(self.k)

    def chunk(self, offset, count, index=None):
        """The same pairing restricted to global poses ``offset .. offset+count-1``."""
        if not 0 <= offset <= offset + count <= self.n:
            raise ValueError(
                f"chunk: poses [{offset}, {offset + count}) are not inside "
                f"[0, {self.n})"
            )
        if self.kind == KIND_ARRAY and index is None:
            index = self.index[offset : offset + count]
        return PairingSpec(
            self.kind, self.n, self.m, self.seed, self.step, index, offset, count
        )


def resolve_pairing(pairing, n: int, m: int, seed, step: int = 0) -> PairingSpec:
    """Validate a user ``pairing`` argument against the pose counts.

    Parameters
    ----------
    pairing : {"permutation", "random", "identity"} or (n,) integer array
        An array is a NumPy array, or a CuPy array for the CUDA backend.
    n, m : int
        Number of sources and of targets.
    seed : None, int or numpy.random.Generator
    step : int
        Position in an advancing stream of pairings (0 for a one-off call).

    Returns
    -------
    PairingSpec

    Raises
    ------
    ValueError, TypeError
        Naming the argument, with what was expected and what came.
    """
    if n > MAX_POSES or m > MAX_POSES:
        raise ValueError(
            f"pairing: at most {MAX_POSES} sources and targets are supported, "
            f"got {n} sources and {m} targets"
        )
    if n > 0 and m == 0:
        # for every kind: with no target there is no record to read, and the
        # kernels' explicit-index path would otherwise meet an empty (on a
        # device, null) records array
        raise ValueError(f"target_2d: {n} sources need at least one target, got 0")
    if type(pairing) is str:
        kind = _KINDS.get(pairing)
        if kind is None:
            raise ValueError(
                "pairing: expected 'permutation', 'random', 'identity' or an "
                f"integer array, got {pairing!r}"
            )
        if kind == KIND_IDENTITY and n != m:
            raise ValueError(
                "pairing: 'identity' needs as many targets as sources, "
                f"got {n} sources and {m} targets"
            )
        if kind == KIND_IDENTITY:
            return PairingSpec(kind, n, m)
        return PairingSpec(kind, n, m, resolve_seed(seed), step)
    index = pairing
    # a NumPy array, or a CuPy array for the CUDA backend (duck-typed: this
    # module never imports CuPy)
    if not all(hasattr(index, a) for a in ("dtype", "shape", "astype")):
        raise TypeError(
            "pairing: expected 'permutation', 'random', 'identity' or an integer "
            f"array, got {type(pairing).__name__}"
        )
    if index.dtype.kind not in "iu" or index.dtype == np.bool_:
        raise TypeError(f"pairing: expected an integer array, got dtype {index.dtype}")
    if index.shape != (n,):
        raise ValueError(
            f"pairing: expected shape ({n},) (one target index per source pose), "
            f"got {index.shape}"
        )
    if index.dtype == np.uint64 and n:
        # values above 2**63 - 1 would wrap to negative int64: report them
        # here, with the value the caller passed
        huge = index > np.iinfo(np.int64).max
        if huge.any():
            status = new_status()
            status[POSE_INDEX] = (int(huge.sum()), int(huge.argmax()))
            raise_for_pose_status(status, n, m, index)
    if index.dtype != np.int64:
        index = index.astype(np.int64)
    return PairingSpec(KIND_ARRAY, n, m, index=index)

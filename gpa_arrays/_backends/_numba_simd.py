"""Per-pose vector code for the Numba kernels, written as LLVM IR.

A pose of ``J`` joints is ``E = 3 J`` consecutive values ``x0 y0 z0 x1 ...``.
Numba's auto-vectoriser handles the per-joint translation well but not the
extent (the min and max of the x and y coordinates, a reduction it may not
reassociate without fast-math), which costs half of a scalar kernel's time. These
intrinsics emit the vector code directly, for a joint count known at compile
time (the length of the ``joints`` tuple the kernels pass around):

* the pose is loaded as whole vectors of ``W`` lanes (64 bytes, or the largest
  power of two not above ``E``); when ``W`` does not divide ``E`` the last vector
  is placed to end exactly at the pose's end, overlapping its neighbour, which is
  harmless for a min/max and, for stores, rewrites identical values;
* lane ``l`` of the vector at offset ``o`` holds coordinate ``(o + l) % 3``, so
  the x and y lanes are picked with constant masks, and the root and position
  3-vectors become per-vector patterns with one constant shuffle each.

Every operation is the same IEEE operation the scalar code performs (min/max
are exact; ``(s - r) + p`` keeps its order), so results are bit-identical to the
NumPy reference. All loads of a pose happen before any store, so the output may
alias the source.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["pose_extent", "pose_place", "row_pointer", "target_extent"]

_VECTOR_BYTES = 64


def _layout(n_values, itemsize):
    """Vector width and load offsets covering ``n_values`` consecutive values."""
    width = 1
    while width * 2 <= n_values and width * 2 * itemsize <= _VECTOR_BYTES:
        width *= 2
    offsets = list(range(0, n_values - width + 1, width))
    if n_values % width:
        offsets.append(n_values - width)
    return width, offsets


def row_pointer(context, builder, array_type, array, row, row_type=types.intp):
    """Pointer to ``array[row, 0, ...]`` (the row's first element), of its dtype.

    `row` is an integer of Numba type `row_type`; no bounds check, no wraparound.
    """
    ary = context.make_array(array_type)(context, builder, array)
    zero = context.get_constant(types.intp, 0)
    index = context.cast(builder, row, row_type, types.intp)
    return cgutils.get_item_pointer2(
        context,
        builder,
        ary.data,
        cgutils.unpack_tuple(builder, ary.shape),
        cgutils.unpack_tuple(builder, ary.strides),
        array_type.layout,
        [index] + [zero] * (array_type.ndim - 1),
        wraparound=False,
    )


def _load_vectors(builder, base, vector_type, offsets, align):
    vectors = []
    for offset in offsets:
        pointer = builder.gep(base, [ir.Constant(ir.IntType(64), offset)])
        pointer = builder.bitcast(pointer, vector_type.as_pointer())
        vectors.append(builder.load(pointer, align=align))
    return vectors


def _lane_mask(offset, width, coordinate, n_coordinates):
    return ir.Constant(
        ir.VectorType(ir.IntType(1), width),
        [int((offset + lane) % n_coordinates == coordinate) for lane in range(width)],
    )


def _all_finite(builder, vectors, width):
    """True when every lane of every vector is finite (an i1)."""
    finite = None
    for vector in vectors:
        # v - v is 0 for finite v and NaN otherwise; "ordered equal" is false
        # exactly for NaN
        zero = builder.fsub(vector, vector)
        ok = builder.fcmp_ordered("==", zero, zero)
        finite = ok if finite is None else builder.and_(finite, ok)
    bits = builder.bitcast(finite, ir.IntType(width))
    return builder.icmp_signed("==", bits, ir.Constant(ir.IntType(width), -1))


def _pick(builder, a, b, less):
    """``a < b ? a : b`` (or ``a > b``): exactly the scalar kernels' min/max."""
    op = "<" if less else ">"
    return builder.select(builder.fcmp_ordered(op, a, b), a, b)


def _shuffle(builder, a, b, lanes):
    i32 = ir.IntType(32)
    return builder.shuffle_vector(
        a, b, ir.Constant(ir.VectorType(i32, len(lanes)), lanes)
    )


def _halve_pair(builder, a, b, width):
    """Min of the two halves of `a` and of `b`, packed: ``[a' | b']``."""
    half = width // 2
    low = _shuffle(builder, a, b, [*range(half), *range(width, width + half)])
    high = _shuffle(
        builder, a, b, [*range(half, width), *range(width + half, 2 * width)]
    )
    return _pick(builder, low, high, True)


def _reduce_four(builder, xmin, ymin, xmax, ymax, width):
    """Horizontal min, min, max, max of four vectors of `width` lanes.

    The maxima are negated (exact), so all four are minimum reductions that
    share one vector: each halving step costs one or two shuffles and one min
    for all four instead of one reduction tree per quantity.
    """
    i32 = ir.IntType(32)
    quantities = [xmin, ymin, builder.fneg(xmax), builder.fneg(ymax)]
    if width == 1:
        values = [builder.extract_element(v, ir.Constant(i32, 0)) for v in quantities]
    else:
        # [xmin | ymin] and [-xmax | -ymax], groups of width/2 lanes
        first = _halve_pair(builder, quantities[0], quantities[1], width)
        second = _halve_pair(builder, quantities[2], quantities[3], width)
        group = width // 2
        if group == 1:
            values = [
                builder.extract_element(v, ir.Constant(i32, lane))
                for v in (first, second)
                for lane in (0, 1)
            ]
        else:
            # four groups of width/4 lanes in one vector
            quarter = group // 2
            take_low = [
                base + t
                for base in (0, group, width, width + group)
                for t in range(quarter)
            ]
            take_high = [lane + quarter for lane in take_low]
            vector = _pick(
                builder,
                _shuffle(builder, first, second, take_low),
                _shuffle(builder, first, second, take_high),
                True,
            )
            group = quarter
            while group > 1:
                half = group // 2
                pattern = list(range(width))
                for base in range(0, width, group):
                    for t in range(half):
                        pattern[base + t] = base + t + half
                vector = _pick(
                    builder, vector, _shuffle(builder, vector, vector, pattern), True
                )
                group = half
            step = width // 4
            values = [
                builder.extract_element(vector, ir.Constant(i32, g * step))
                for g in range(4)
            ]
    xmin, ymin, nxmax, nymax = values
    return xmin, ymin, builder.fneg(nxmax), builder.fneg(nymax)


def _signature_parts(array, joints):
    """(dtype, values per pose) of a flat pose array and a joint-count token."""
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None
    if array.layout != "C" or not isinstance(array.dtype, types.Float):
        return None
    if not isinstance(joints, (types.UniTuple, types.Tuple)):
        return None
    return array.dtype, len(joints)


def _extent_intrinsic(n_coordinates):
    """Build the extent intrinsic for poses of `n_coordinates` values per joint."""

    @intrinsic
    def extent(typingctx, flat, row, joints):
        parts = _signature_parts(flat, joints)
        if parts is None or not isinstance(row, types.Integer):
            return None
        dtype, n_joints = parts
        n_values = n_coordinates * n_joints
        n_extremes = 4
        signature = types.Tuple([dtype] * n_extremes + [types.boolean])(
            flat, row, joints
        )

        def codegen(context, builder, sig, args):
            scalar = context.get_value_type(dtype)
            if n_values == 0:  # generic kernels compile but never take this path
                nan = ir.Constant(scalar, float("nan"))
                false = ir.Constant(ir.IntType(1), 0)
                values = [nan] * n_extremes + [false]
                return context.make_tuple(builder, sig.return_type, values)
            itemsize = context.get_abi_sizeof(scalar)
            width, offsets = _layout(n_values, itemsize)
            vector_type = ir.VectorType(scalar, width)
            base = row_pointer(context, builder, sig.args[0], args[0], args[1])
            vectors = _load_vectors(builder, base, vector_type, offsets, itemsize)
            inf = ir.Constant(vector_type, [float("inf")] * width)
            ninf = ir.Constant(vector_type, [float("-inf")] * width)
            extremes = []
            for coordinate in (0, 1):
                low = inf
                high = ninf
                for offset, vector in zip(offsets, vectors, strict=True):
                    # select(mask, pick(acc, v), acc): one masked min/max
                    mask = _lane_mask(offset, width, coordinate, n_coordinates)
                    low = builder.select(mask, _pick(builder, low, vector, True), low)
                    high = builder.select(
                        mask, _pick(builder, high, vector, False), high
                    )
                extremes += [low, high]
            finite = _all_finite(builder, vectors, width)
            xmin, ymin, xmax, ymax = _reduce_four(
                builder, *extremes[::2], *extremes[1::2], width
            )
            values = [xmin, xmax, ymin, ymax, finite]
            return context.make_tuple(builder, sig.return_type, values)

        return signature, codegen

    return extent


@intrinsic
def pose_place(typingctx, flat, out, row, root3, position3, joints):
    """Write ``(pose - root3) + position3`` per coordinate.

    Returns ``(all finite, all in front)``: whether every written value is
    finite, and whether every written depth (z) is positive, tested on the
    vectors just stored (a compare and a mask per vector, no reduction).

    Parameters (compiled code only)
    -------------------------------
    flat, out : C-contiguous ``(N, 3J)`` arrays of one float dtype (may alias)
    row : integer, the pose
    root3, position3 : 3-tuples of that dtype, ``(x, y, z)`` each
    joints : tuple of length ``J``

    """
    parts = _signature_parts(flat, joints)
    if parts is None or not isinstance(row, types.Integer):
        return None
    dtype, n_joints = parts
    n_values = 3 * n_joints
    if not (isinstance(out, types.Array) and out.ndim == 2 and out.layout == "C"):
        return None
    if out.dtype != dtype or not out.mutable:
        return None
    for triple in (root3, position3):
        if not (isinstance(triple, types.UniTuple) and triple.count == 3):
            return None
        if triple.dtype != dtype:
            return None
    signature = types.UniTuple(types.boolean, 2)(
        flat, out, row, root3, position3, joints
    )

    def codegen(context, builder, sig, args):
        if n_values == 0:  # generic kernels compile but never take this path
            false = ir.Constant(ir.IntType(1), 0)
            return context.make_tuple(builder, sig.return_type, [false, false])
        scalar = context.get_value_type(dtype)
        itemsize = context.get_abi_sizeof(scalar)
        width, offsets = _layout(n_values, itemsize)
        vector_type = ir.VectorType(scalar, width)
        i32 = ir.IntType(32)
        source = row_pointer(context, builder, sig.args[0], args[0], args[2])
        target = row_pointer(context, builder, sig.args[1], args[1], args[2])
        vectors = _load_vectors(builder, source, vector_type, offsets, itemsize)

        def as_vector(triple):
            values = cgutils.unpack_tuple(builder, triple)
            vector = ir.Constant(ir.VectorType(scalar, 4), ir.Undefined)
            for lane, value in enumerate(values):
                vector = builder.insert_element(vector, value, ir.Constant(i32, lane))
            return vector

        root = as_vector(args[3])
        position = as_vector(args[4])
        results = []
        for offset, vector in zip(offsets, vectors, strict=True):
            pattern = [(offset + lane) % 3 for lane in range(width)]
            r = _shuffle(builder, root, root, pattern)
            p = _shuffle(builder, position, position, pattern)
            results.append(builder.fadd(builder.fsub(vector, r), p))
        for offset, value in zip(offsets, results, strict=True):
            pointer = builder.gep(target, [ir.Constant(ir.IntType(64), offset)])
            pointer = builder.bitcast(pointer, vector_type.as_pointer())
            builder.store(value, pointer, align=itemsize)
        finite = _all_finite(builder, results, width)
        zero = ir.Constant(vector_type, [0.0] * width)
        front = None
        for offset, value in zip(offsets, results, strict=True):
            # lanes that hold no depth pass; "ordered greater" fails for NaN
            ok = builder.or_(
                builder.fcmp_ordered(">", value, zero),
                builder.not_(_lane_mask(offset, width, 2, 3)),
            )
            front = ok if front is None else builder.and_(front, ok)
        bits = builder.bitcast(front, ir.IntType(width))
        all_front = builder.icmp_signed("==", bits, ir.Constant(ir.IntType(width), -1))
        return context.make_tuple(builder, sig.return_type, [finite, all_front])

    return signature, codegen


#: ``(xmin, xmax, ymin, ymax, all_finite)`` of pose `row` of a C-contiguous
#: ``(N, 3J)`` array; `joints` is a tuple of length J (a compile-time constant).
pose_extent = _extent_intrinsic(3)

#: The same for 2D poses, a C-contiguous ``(M, 2J)`` array.
target_extent = _extent_intrinsic(2)

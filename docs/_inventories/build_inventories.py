"""Write the small intersphinx inventories the docs link against.

The documentation must build without network access (CI machines reach only
package registries), so instead of downloading each project's full
``objects.inv`` we write, once, inventories holding just the names our docs
reference, with the URLs those projects publish them under. Sphinx reads them
through the second element of each ``intersphinx_mapping`` entry; with network
access a full inventory can be dropped in their place.

Run ``python docs/_inventories/build_inventories.py`` after adding a reference.
"""

import pathlib
import zlib

HERE = pathlib.Path(__file__).parent

# name -> (role, uri relative to the project's base URL); "$" = the name
PROJECTS = {
    "numpy": (
        "NumPy",
        "2.4",
        {
            "numpy.ndarray": ("py:class", "reference/generated/numpy.ndarray.html#$"),
            "numpy.dtype": ("py:class", "reference/generated/numpy.dtype.html#$"),
            "numpy.float32": ("py:attribute", "reference/arrays.scalars.html#$"),
            "numpy.float64": ("py:attribute", "reference/arrays.scalars.html#$"),
            "numpy.random.Generator": ("py:class", "reference/random/generator.html#$"),
            "numpy.memmap": ("py:class", "reference/generated/numpy.memmap.html#$"),
            "numpy.load": ("py:function", "reference/generated/numpy.load.html#$"),
            "numpy.linalg.svd": (
                "py:function",
                "reference/generated/numpy.linalg.svd.html#$",
            ),
            "numpy.from_dlpack": (
                "py:function",
                "reference/generated/numpy.from_dlpack.html#$",
            ),
        },
    ),
    "cupy": (
        "CuPy",
        "14",
        {
            "cupy.ndarray": ("py:class", "reference/generated/cupy.ndarray.html#$"),
            "cupy.RawModule": ("py:class", "reference/generated/cupy.RawModule.html#$"),
            "cupy.from_dlpack": (
                "py:function",
                "reference/generated/cupy.from_dlpack.html#$",
            ),
        },
    ),
    "torch": (
        "PyTorch",
        "2.13",
        {
            "torch.Tensor": ("py:class", "tensors.html#$"),
            "torch.from_dlpack": ("py:function", "generated/torch.from_dlpack.html#$"),
            "torch.utils.data.DataLoader": ("py:class", "data.html#$"),
        },
    ),
    "numba": (
        "Numba",
        "0.68",
        {
            "numba.njit": ("py:function", "reference/jit-compilation.html#$"),
            "numba.set_num_threads": ("py:function", "user/threading-layer.html#$"),
            "numba.config.THREADING_LAYER": (
                "py:data",
                "reference/envvars.html#envvar-NUMBA_THREADING_LAYER",
            ),
        },
    ),
    "dask": (
        "Dask",
        "2026.8",
        {
            "dask.array.Array": ("py:class", "generated/dask.array.Array.html#$"),
        },
    ),
    "python": (
        "Python",
        "3.11",
        {
            "os.fork": ("py:function", "library/os.html#$"),
            "multiprocessing.pool.Pool": ("py:class", "library/multiprocessing.html#$"),
        },
    ),
}


def write(key, project, version, entries):
    """Write ``<key>.inv`` in Sphinx's inventory format, version 2."""
    lines = []
    for name, (role, uri) in sorted(entries.items()):
        lines.append(f"{name} {role} 1 {uri} -")
    body = zlib.compress(("\n".join(lines) + "\n").encode())
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    (HERE / f"{key}.inv").write_bytes(header + body)


if __name__ == "__main__":
    for key, (project, version, entries) in PROJECTS.items():
        write(key, project, version, entries)

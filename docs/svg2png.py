"""SVG -> PNG through the system's librsvg and cairo (ctypes; no Python package needed).

    python docs/svg2png.py IN.svg OUT.png [--scale 1.0]
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


class _Dimensions(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("em", ctypes.c_double), ("ex", ctypes.c_double)]


def _lib(name: str, fallback: str) -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library(name) or fallback)


def svg_to_png(svg: str, png: str, scale: float = 1.0) -> None:
    rsvg = _lib("rsvg-2", "librsvg-2.so.2")
    cairo = _lib("cairo", "libcairo.so.2")
    rsvg.rsvg_handle_new_from_data.restype = ctypes.c_void_p
    cairo.cairo_image_surface_create.restype = ctypes.c_void_p
    cairo.cairo_create.restype = ctypes.c_void_p
    err = ctypes.c_void_p()
    # Textual writes spaces as &#160;, which librsvg collapses at the start of a run of
    # text: plain spaces, preserved, keep every column where the terminal had it.
    with open(svg, encoding="utf-8") as f:
        data = f.read().replace("&#160;", " ").replace("<svg ", '<svg xml:space="preserve" ', 1).encode()
    handle = rsvg.rsvg_handle_new_from_data(data, ctypes.c_size_t(len(data)), ctypes.byref(err))
    if not handle:
        raise RuntimeError(f"{svg}: librsvg could not read it")
    dims = _Dimensions()
    rsvg.rsvg_handle_get_dimensions(ctypes.c_void_p(handle), ctypes.byref(dims))
    w, h = int(dims.width * scale), int(dims.height * scale)
    surface = cairo.cairo_image_surface_create(0, w, h)  # CAIRO_FORMAT_ARGB32
    cr = cairo.cairo_create(ctypes.c_void_p(surface))
    cairo.cairo_scale(ctypes.c_void_p(cr), ctypes.c_double(scale), ctypes.c_double(scale))
    if not rsvg.rsvg_handle_render_cairo(ctypes.c_void_p(handle), ctypes.c_void_p(cr)):
        raise RuntimeError(f"{svg}: librsvg could not render it")
    status = cairo.cairo_surface_write_to_png(ctypes.c_void_p(surface), png.encode())
    cairo.cairo_destroy(ctypes.c_void_p(cr))
    cairo.cairo_surface_destroy(ctypes.c_void_p(surface))
    if status != 0:
        raise RuntimeError(f"{png}: cairo could not write it (status {status})")


if __name__ == "__main__":
    args = sys.argv[1:]
    scale = 1.0
    if "--scale" in args:
        i = args.index("--scale")
        scale = float(args[i + 1])
        del args[i : i + 2]
    svg_to_png(args[0], args[1], scale)

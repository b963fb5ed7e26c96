"""cffi build script for jacknet's real-time path (``rt.c``, ``generator.c``, ``send.c``, ``recv.c``).

Run by setuptools at install time (``cffi_modules`` in ``setup.py``); it
produces the extension module ``jacknet.rt._rt``.  The declarations come from
``rt.h``, the same header the C files include, so the two cannot drift apart.
"""
import re
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).parent


def cdef_from_header(text: str) -> str:
    """``rt.h`` as cffi's cdef: its ``#define NAME number`` constants written
    into the declarations, preprocessor lines dropped, ``sem_t`` opaque (cffi
    learns its size from the compiler)."""
    constants = dict(re.findall(r"^#define (JN_\w+) (\d+)$", text, re.M))
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    for name, value in constants.items():
        body = re.sub(rf"\b{name}\b", value, body)
    return "typedef struct { ...; } sem_t;\n" + body


ffibuilder = FFI()
ffibuilder.cdef(cdef_from_header((HERE / "rt.h").read_text()))
ffibuilder.set_source(
    "jacknet.rt._rt",
    '#include "rt.h"',
    sources=[str(HERE / "rt.c"), str(HERE / "generator.c"), str(HERE / "send.c"),
             str(HERE / "recv.c")],
    include_dirs=[str(HERE)],
    extra_compile_args=["-O2", "-std=gnu11"],
    libraries=["m", "pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)

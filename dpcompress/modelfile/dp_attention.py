"""The ``.dpc`` arrays of DPA-1's attention layers (part kind 6): the checks of ``read_attention`` in
``src_c/dpc_model.c``, with the same messages (docs/model-file.md)."""

import numpy as np

ATTENTION_ARRAYS = ("att_int", "att_real", "att_w_in", "att_b_in", "att_w_out", "att_b_out", "att_ln")


def check_attention(c, p, nt, M, avg):
    """Refuse a kind-6 part whose attention arrays are missing, mis-shaped, out of range or not finite."""
    name = f"part{p}.gate_pad"
    if name in c.arrays:
        c.fail(f"array '{name}': not used by DPA-1 with attention layers (att_int[4] says whether the gate is switched)")
    nz = np.nonzero(np.asarray(avg).ravel() != 0.0)[0]
    if nz.size:
        k = int(nz[0])
        c.fail(f"array 'part{p}.avg': entry {k} is {np.asarray(avg).ravel()[k]:g}; DPA-1 with attention layers needs "
               "davg = 0")
    name = f"part{p}.att_int"
    ai = [int(v) for v in c.need(name, "i8", (5,))]
    if not (1 <= ai[0] <= 64 and 1 <= ai[1] <= 512 and all(v in (0, 1) for v in ai[2:])):
        c.fail(f"array '{name}': layers {ai[0]} (1..64), hidden {ai[1]} (1..512), flags {ai[2]} {ai[3]} {ai[4]} "
               "(0 or 1)")
    L, d = ai[0], ai[1]
    if M > 1024:
        c.fail(f"part {p}: {M} channels (at most 1024 with attention)")
    name = f"part{p}.att_real"
    ar = c.need(name, "f8", (L + 1,))
    for k, v in enumerate(ar):
        if not (np.isfinite(v) and v > 0):
            c.fail(f"array '{name}': entry {k} is {float(v):g} (alpha, then each layer's layer-norm eps: finite and > 0)")
    for suffix, shape in (("att_w_in", (L, M, 3 * d)), ("att_b_in", (L, 3 * d)), ("att_w_out", (L, d, M)),
                          ("att_b_out", (L, M)), ("att_ln", (L, 2, M))):
        c.finite(f"part{p}.{suffix}", "f8", shape)
    return bool(ai[4])

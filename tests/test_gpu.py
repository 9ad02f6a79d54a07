"""The GPU path (``Potential(..., device="gpu")``, dpcompress/gpu/, src_c/cuda/).

Four tiers, each skipping with its reason when its tool is missing:

1. compile checks: every ``.cu`` with ``nvcc -cubin`` for sm_80 and sm_90 (warnings are
   errors), and with NVRTC through CuPy's bindings (what ``cupy.RawModule`` runs) —
   no device needed;
2. behaviour without a GPU: ``import dpcompress.gpu`` and ``is_available()`` never
   raise, ``device="gpu"`` raises an error naming what is missing;
3. the CPU emulator (``dpcompress.gpu.emulator``, needs g++): the very same kernel
   sources and the very same Python orchestration, run on the CPU, against the CPU
   kernels and the CPU Potential — neighbor lists bit for bit, every compiled kernel
   variant, whole steps on the fixtures;
4. on a CUDA device (skipped here unless ``cupy.is_available()``): GPU against CPU to
   1e-11 relative on every se_e2_a / se_e2_r / hybrid fixture, CuPy inputs, run-to-run
   reproducibility.
"""

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import types as pytypes

import numpy as np
import pytest

from kernel_helpers import cpu_step
from conftest import DATA, REPO, TINY, SHARED_DEEPMD
from dpcompress import Potential
from dpcompress import compress
from dpcompress.core.errors import InputError, UnsupportedModelError
from dpcompress.gpu import GPUUnavailableError, is_available, modules, unavailable_reason
from dpcompress import load_model

NVCC = shutil.which("nvcc")
HAS_GPU = is_available()
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason=f"needs a CUDA GPU: {unavailable_reason()}")
needs_emulator = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++").split()[0]) is None, reason="the CUDA emulator needs g++ (or $CXX)"
)
ARCHS = ("sm_80", "sm_90")
VARIANTS = os.path.join(DATA, "deepmd_variants")
REL = 1e-11  # acceptance: GPU against CPU, relative, on every fixture


def _nvrtc_reason():
    try:
        from cupy.cuda import nvrtc

        nvrtc.getVersion()
    except ImportError:
        return "CuPy is not installed (pip install cupy-cuda13x nvidia-cuda-nvrtc)"
    except Exception as exc:  # no NVRTC library
        return f"no NVRTC library ({type(exc).__name__}: {exc})"
    return None


NVRTC_REASON = _nvrtc_reason()


# ----------------------------------------------------------------------------- 1. compile checks


@pytest.mark.skipif(NVCC is None, reason="nvcc is not on PATH")
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("module", sorted(modules.MODULES))
def test_nvcc_compiles_every_kernel(module, arch, tmp_path):
    src = modules.kernel_files()[module]
    root = modules.source_root()
    cmd = [NVCC, "-cubin", f"-arch={arch}", "-std=c++17", "-Werror", "all-warnings",
           "-I", root, "-I", os.path.join(root, "cuda"), "-o", str(tmp_path / f"{module}.cubin"), src]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout}\n{res.stderr}"
    assert (tmp_path / f"{module}.cubin").stat().st_size > 0


@pytest.mark.skipif(NVRTC_REASON is not None, reason=str(NVRTC_REASON))
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("module", sorted(modules.MODULES))
def test_nvrtc_compiles_every_kernel(module, arch):
    cubin, log = modules.nvrtc_compile(module, arch)  # every name expression must resolve too
    assert len(cubin) > 0
    assert "warning" not in log.lower(), log


def test_sources_share_the_c_headers():
    """The CUDA modules compile the C kernels' own headers (one source of truth), fully inlined."""
    root = modules.source_root()
    for module in modules.MODULES:
        src = modules.load_source(module)
        assert '#include "' not in src
        for header in ("dpc_table.h", "dpc_env_mat.h", "dpc_common.h"):
            assert f'#line 1 "{header}"' in src, (module, header)
        with open(os.path.join(root, "dpc_table.h")) as fh:
            body = fh.read()
        assert body[body.index("DPC_HD dpc_index dpc_table_locate") :][:400] in src
        if module == "se_a_tab":
            assert body[body.index("DPC_HD void dpc_table_unpack") :][:400] in src


def _sources(root, suffixes):
    for folder, _, files in os.walk(root):
        for name in sorted(files):
            if name.endswith(suffixes):
                path = os.path.join(folder, name)
                with open(path) as fh:
                    yield os.path.relpath(path, root), fh.read()


def test_packed_tables_are_unpacked_in_one_place():
    """C, CUDA and the emulator read a packed table row only through dpc_table.h; NEP uses its formulas."""
    root = os.path.join(REPO, "src_c")  # the C sources: not in a wheel's copy of the headers
    row_read = re.compile(r"\btab_(real|count)(\s*\+|\[)")
    readers = {rel for rel, text in _sources(root, (".c", ".h", ".cu", ".cuh")) if row_read.search(text)}
    assert "dpc_table.h" in readers and readers <= {"dpc_table.h", "dpc_model.c"}  # the .dpc reader checks raw rows
    text = dict(_sources(root, (".c",)))
    for user in ("dpc_se_a_tab.c", "dpc_se_t_tab.c"):
        assert "dpc_table_unpack(" in text[user], user
    assert "dpc_uniform_locate(" in text["dpc_nep.c"] and "dpc_poly_eval(" in text["dpc_nep.c"]
    assert "dpc_table_unpack(" in modules.load_source("se_a_tab")


# kernel-name suffixes of the GPU-only split of a C function: the C kernels' one-row mode, the binning step
_TWIN_SUFFIXES = ("_radial", "_bin_periodic", "_bin_open")


def test_kernels_are_named_after_their_c_twins():
    """Every CUDA kernel is a public C function of src_c/ (up to a _radial / _bin_* suffix)."""
    root = modules.source_root()
    headers = "\n".join(text for _, text in _sources(root, (".h",)))
    for _, plain, templates in modules.MODULES.values():
        for name in tuple(plain) + tuple(templates):
            twin = name.split("<")[0]
            for suffix in _TWIN_SUFFIXES:
                twin = twin.removesuffix(suffix)
            assert f" {twin}(" in headers, f"CUDA kernel {name} has no C twin {twin} in src_c/*.h"


# ----------------------------------------------------------------------------- 2. without a GPU


@pytest.fixture(scope="module")
def tiny_compressed():
    return compress(load_model(os.path.join(TINY, "frozen.dp")), step=0.01)


def test_availability_never_raises():
    assert isinstance(is_available(), bool)
    reason = unavailable_reason()
    assert (reason is None) == is_available()


@pytest.mark.skipif(HAS_GPU, reason="a GPU is present")
def test_device_gpu_without_gpu_names_what_is_missing(tiny_compressed):
    with pytest.raises(GPUUnavailableError) as err:
        Potential(tiny_compressed, device="gpu")
    assert isinstance(err.value, RuntimeError)
    assert "CuPy" in str(err.value)


def test_device_gpu_without_cupy_says_how_to_install(tiny_compressed, monkeypatch):
    import dpcompress.gpu as gpu

    monkeypatch.setattr(gpu, "_import_cupy", lambda: None)
    assert gpu.is_available() is False
    with pytest.raises(GPUUnavailableError, match="pip install"):
        Potential(tiny_compressed, device="gpu")


@pytest.mark.parametrize("device", ["tpu", "cuda", "gpu:x", 0, None])
def test_bad_device_is_an_input_error(tiny_compressed, device):
    with pytest.raises(InputError, match="device must be"):
        Potential(tiny_compressed, device=device)


def test_gpu_does_not_combine_with_mpi(tiny_compressed):
    fake_comm = pytypes.SimpleNamespace(size=2)
    with pytest.raises(InputError, match="comm"):
        Potential(tiny_compressed, n_threads=1, comm=fake_comm, device="gpu")


class _HostOnly:
    """A backend that can only upload (enough to reach the model checks)."""

    xp = np

    def asarray(self, a, dtype=None):
        return np.ascontiguousarray(a, dtype=dtype)

    def launch(self, *args):
        raise AssertionError("no kernel should run")


def test_unsupported_models_are_refused_clearly(tiny_compressed):
    from dpcompress.gpu.se_a_compressed import GpuEvaluator

    with pytest.raises(UnsupportedModelError, match="compress"):
        GpuEvaluator(load_model(os.path.join(TINY, "frozen.dp")), _HostOnly())
    for name in ("se_e3_tiny", "se_atten_v2_tiny"):
        folder = os.path.join(DATA, "deepmd", name)
        if not os.path.isdir(folder):
            continue
        try:
            model = compress(load_model(os.path.join(folder, "frozen.dp")), step=0.01)
        except Exception:  # that descriptor's CPU compression is not available in this build
            continue
        with pytest.raises(UnsupportedModelError, match="GPU path"):
            GpuEvaluator(model, _HostOnly())


def test_benchmark_fails_clearly_without_gpu():
    script = os.path.join(REPO, "benchmarks", "bench_gpu.py")
    res = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "atom-steps" in res.stdout, res.stderr
    if HAS_GPU:
        return
    res = subprocess.run([sys.executable, script, "--sizes", "1"], capture_output=True, text=True)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "GPU" in res.stderr and "Traceback" not in res.stderr


# ----------------------------------------------------------------------------- 3. the CPU emulator


@pytest.fixture(scope="module")
def emu():
    from dpcompress.gpu.emulator import EmulatorBackend

    return EmulatorBackend(max_blocks=2, block=128)


def _tiny_frame(k=0):
    frames = np.load(os.path.join(TINY, "test_frames.npz"))
    return (
        frames["coord"][k].reshape(-1, 3).astype(np.float64),
        frames["box"][k].reshape(3, 3).astype(np.float64),
        frames["atype"].astype(np.int64),
    )


def _small_triclinic(natoms=13, edge=5.0, seed=3):
    """A triclinic cell thinner than rcut: every atom sees several images of itself and of the others."""
    rng = np.random.default_rng(seed)
    cell = edge * np.array([[1.0, 0.0, 0.0], [0.2, 1.0, 0.0], [0.1, -0.15, 1.0]])
    coords = rng.uniform(-0.5, 1.5, size=(natoms, 3)) @ cell  # not wrapped
    return coords, cell, rng.integers(0, 2, natoms).astype(np.int64)


NL_CASES = {
    "periodic": (6.0, (46, 92), "periodic"),
    "periodic_overflow": (6.0, (9, 17), "periodic"),
    "open": (5.0, (46, 92), "open"),
    "open_overflow": (6.0, (5, 9), "open"),
    "small_triclinic": (6.0, (80, 160), "small"),
    "small_triclinic_overflow": (6.0, (20, 30), "small"),
}


@needs_emulator
@pytest.mark.parametrize("case", sorted(NL_CASES))
def test_emulated_neighbor_list_is_the_cpu_one_bit_for_bit(emu, case):
    from dpcompress.gpu import neighbor_list as gnl
    from dpcompress.neighbors import build_neighbor_list

    rcut, sel, kind = NL_CASES[case]
    coords, cell, types = _tiny_frame()
    if kind == "open":
        cell = None
        coords = coords + 1000.0  # far from the origin: the hash grid has no origin
    elif kind == "small":
        coords, cell, types = _small_triclinic()
    err = gnl.new_error_words(emu)
    got = gnl.build(emu, np.ascontiguousarray(coords), cell, types, rcut, sel, err)
    ref = build_neighbor_list(coords, cell, types, rcut, list(sel))
    gnl.raise_device_errors(err, len(types))
    for key in ("index", "vectors", "counts", "overflow"):
        np.testing.assert_array_equal(getattr(got, key), getattr(ref, key), err_msg=key)
    assert (ref.overflow.sum() > 0) == case.endswith("overflow")


@needs_emulator
def test_emulated_neighbor_list_reports_bad_coordinates(emu):
    from dpcompress.gpu import neighbor_list as gnl

    coords, cell, types = _tiny_frame()
    for mutate, match in (
        (lambda c: c.__setitem__((7, 1), np.nan), "atom 7 are not finite"),
        (lambda c: c.__setitem__((3, 0), 1e20), "atom 3 lie more than"),
        (lambda c: c.__setitem__(11, c[4]), "atoms 4 and 11 coincide"),
    ):
        c = coords.copy()
        mutate(c)
        err = gnl.new_error_words(emu)
        gnl.build(emu, c, cell, types, 6.0, (46, 92), err)
        with pytest.raises(InputError, match=match):
            gnl.raise_device_errors(err, len(types))


def _random_tables(rng, M, ncoef, natoms=13, sel=(7, 11), n_rows=4):
    """Random tables, block modes 0/1/2, a missing table, neighbors inside, beyond and below the table."""
    from dpcompress._ext.se_a_tab import PackedTables

    nt = nb = len(sel)
    n_fine, n_coarse, ntab = 40, 10, 3
    tab_real = np.array([[-0.2, -0.2 + n_fine * 0.05, -0.2 + n_fine * 0.05 + n_coarse * 0.5, 0.05, 0.5]] * ntab)
    tab_count = np.array([[n_fine, n_coarse, 0]] * ntab, dtype=np.int64)
    size = (n_fine + n_coarse) * ncoef * M
    table_of = rng.integers(0, ntab, size=(nt, nb)).astype(np.int64)
    table_of[1, 0] = -1
    avg = np.zeros((nt, nb, 4))
    avg[..., 0] = 0.1
    std = np.full((nt, nb, 4), 0.7)
    std[..., 0] = 0.3
    mode = np.zeros((nt, nb), dtype=np.int8)
    mode[0, 1], mode[1, 1] = 1, 2
    offsets = np.concatenate([[0], np.cumsum(sel)]).astype(np.int64)
    packed = PackedTables(offsets, avg, std, mode, table_of, tab_real, tab_count,
                          np.arange(ntab, dtype=np.int64) * size, rng.normal(size=ntab * size) * 0.3,
                          ncoef, M, 6.0, 0.5, 0.0, n_rows=n_rows)
    packed.axis_neuron = min(4, M)
    center_types = rng.integers(0, nt, natoms).astype(np.int64)
    counts = np.stack([rng.integers(0, s + 1, natoms) for s in sel], axis=1).astype(np.int64)
    counts[0] = sel  # a full row
    vectors = np.zeros((natoms, int(offsets[-1]), 3))
    for i in range(natoms):
        for b in range(nb):
            for s in range(counts[i, b]):
                d = rng.normal(size=3)
                r = rng.uniform(0.8, 5.99) if rng.random() > 0.15 else rng.uniform(0.15, 0.3)  # some beyond xmax
                vectors[i, offsets[b] + s] = d / np.linalg.norm(d) * r
    return packed, center_types, vectors, counts


@needs_emulator
@pytest.mark.parametrize("n_rows", [4, 1], ids=["se_e2_a", "radial"])
@pytest.mark.parametrize("M,ncoef", [(8, 6), (100, 4), (300, 6)])
def test_emulated_fused_kernels_match_the_c_kernels(emu, M, ncoef, n_rows):
    """Every compiled variant (CPL 1-4, G 4-32), channel tiles (M = 300 > 128), quintic and cubic,
    block modes 0/1/2, the se_e2_a and the radial (se_e2_r) family."""
    from dpcompress._ext.se_a_tab import se_a_tab_backward, se_a_tab_forward
    from dpcompress.gpu import se_a_compressed as gsa

    rng = np.random.default_rng(M + ncoef)
    packed, ctypes_, vectors, counts = _random_tables(rng, M, ncoef, n_rows=n_rows)
    T, beyond = se_a_tab_forward(packed, ctypes_, vectors, counts, 1, True)
    assert beyond[1].sum() > 0  # the extrapolation branch is exercised
    dT = rng.normal(size=T.shape)
    grad = se_a_tab_backward(packed, ctypes_, vectors, counts, dT, 1)
    part = gsa.upload(emu, packed, np.diff(packed.sel_offsets))
    nl = pytypes.SimpleNamespace(vectors=vectors, counts=counts)
    for cpl in (1, 2, 3, 4):
        Tg, bg = gsa.forward(emu, part, ctypes_, nl, check=True, cpl=cpl)
        np.testing.assert_allclose(Tg, T, rtol=0, atol=1e-13 * np.abs(T).max())
        np.testing.assert_array_equal(bg, beyond)
    for G in (4, 8, 16, 32):
        gg = gsa.backward(emu, part, ctypes_, nl, dT, G=G)
        np.testing.assert_allclose(gg, grad, rtol=0, atol=1e-13 * np.abs(grad).max())


def _rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _compare(got, ref, tol=REL, keys=("energy", "force", "virial", "atom_energy", "atom_virial")):
    for key in keys:
        assert _rel(got[key], ref[key]) <= tol, (key, _rel(got[key], ref[key]))


def _reduce_sel(model, sel):
    """The same model with smaller sel (neighbors overflow; statistics sliced per block)."""
    d = model.descriptor
    offsets = np.concatenate([[0], np.cumsum(d.sel)])
    idx = np.concatenate([np.arange(offsets[b], offsets[b] + s) for b, s in enumerate(sel)])
    desc = dataclasses.replace(d, sel=tuple(sel), davg=d.davg[:, idx], dstd=d.dstd[:, idx])
    return dataclasses.replace(model, descriptor=desc)


def _hybrid_of_two_se_e2_a():
    """A hybrid of two compressed se_e2_a parts (different rcut and sel) with a small random fitting net."""
    from dpcompress.core.networks import Layer, Network
    from dpcompress.descriptors import DescriptorHybrid

    base = compress(load_model(os.path.join(TINY, "frozen.dp")), step=0.01)
    d1 = base.descriptor
    d2 = dataclasses.replace(_reduce_sel(base, (20, 40)).descriptor, rcut=4.5)
    dim = d1.dim_out + d2.dim_out
    rng = np.random.default_rng(7)
    net = Network((
        Layer(w=rng.normal(size=(dim, 8)) * 0.2, b=rng.normal(size=8), idt=None, activation="tanh", resnet=False),
        Layer(w=rng.normal(size=(8, 1)), b=rng.normal(size=1), idt=None, activation="linear", resnet=False),
    ))
    fitting = dataclasses.replace(base.fitting, networks=(net,))
    return dataclasses.replace(base, descriptor=DescriptorHybrid(parts=(d1, d2)), fitting=fitting)


def _variant_frame(name):
    frames = np.load(os.path.join(VARIANTS, name, "frames.npz"))
    cell = None if bool(frames["nopbc"]) else frames["box"][0].reshape(3, 3).astype(np.float64)
    return frames["coord"][0].reshape(-1, 3).astype(np.float64), cell, frames["atype"].astype(np.int64)


EMULATED_MODELS = {
    "tiny": lambda: (compress(load_model(os.path.join(TINY, "frozen.dp")), step=0.01), _tiny_frame()),
    "tiny_order3": lambda: (compress(load_model(os.path.join(TINY, "frozen.dp")), step=0.01, order=3), _tiny_frame(1)),
    "tiny_sel_overflow": lambda: (_reduce_sel(compress(load_model(os.path.join(TINY, "frozen.dp")), step=0.01), (9, 17)),
                                  _tiny_frame()),
}
EMULATED_MODELS["hybrid_se_e2_a"] = lambda: (_hybrid_of_two_se_e2_a(), _tiny_frame(1))


def _fixture_model_and_frame(name, k=0):
    folder = os.path.join(DATA, "deepmd", name)
    frames = np.load(os.path.join(folder, "test_frames.npz"))
    frame = (frames["coord"][k].reshape(-1, 3).astype(np.float64), frames["box"][k].reshape(3, 3).astype(np.float64),
             frames["atype"].astype(np.int64))
    return compress(load_model(os.path.join(folder, "frozen.dp")), step=0.01), frame


EMULATED_MODELS["se_e2_r_tiny"] = lambda: _fixture_model_and_frame("se_e2_r_tiny")
EMULATED_MODELS["hybrid_tiny"] = lambda: _fixture_model_and_frame("hybrid_tiny", 1)
for _name in ("pair_atom_exclude", "tos_false_exclude", "resnet_dt", "act_gelu", "nopbc_cluster", "env_protection"):
    EMULATED_MODELS[_name] = (lambda n: lambda: (compress(load_model(os.path.join(VARIANTS, n, "model.dp")), step=0.01),
                                                 _variant_frame(n)))(_name)


@needs_emulator
@pytest.mark.parametrize("name", sorted(EMULATED_MODELS))
def test_emulated_step_matches_the_cpu_step(emu, name):
    from dpcompress.gpu.se_a_compressed import GpuEvaluator

    model, (coords, cell, types) = EMULATED_MODELS[name]()
    ref = cpu_step(model, coords, cell, types)
    ev = GpuEvaluator(model, emu, chunk=50)  # several fitting chunks per type
    got = ev.evaluate_to_host(coords, cell, types, check=True)
    _compare(got, ref, tol=1e-13)
    for a, b in zip(got["overflow"], ref["overflow"]):
        np.testing.assert_array_equal(a, b)
    assert (got["beyond_fine"], got["beyond_table"]) == (ref["beyond_fine"], ref["beyond_table"])


@needs_emulator
@pytest.mark.slow
def test_emulated_step_on_the_water_fixture(emu):
    folder = os.path.join(SHARED_DEEPMD, "se_e2_a")
    if not os.path.isdir(folder):
        pytest.skip(f"shared fixture se_e2_a not found at {SHARED_DEEPMD}")
    from dpcompress.gpu.se_a_compressed import GpuEvaluator

    model = compress(load_model(os.path.join(folder, "frozen.dp")), step=0.01)
    frames = np.load(os.path.join(folder, "test_frames.npz"))
    coords, cell = frames["coord"][0].reshape(-1, 3), frames["box"][0].reshape(3, 3)
    types = frames["atype"].astype(np.int64)
    ref = cpu_step(model, coords, cell, types)
    _compare(GpuEvaluator(model, emu).evaluate_to_host(coords, cell, types), ref, tol=1e-13)


@needs_emulator
def test_emulated_potential_keeps_the_deeppot_contract(emu, tiny_compressed):
    frames = np.load(os.path.join(TINY, "test_frames.npz"))
    coords, cells, types = frames["coord"][:2], frames["box"][:2], frames["atype"]
    cpu = Potential(tiny_compressed, n_threads=1, check_frequency=1)
    gpu = Potential(tiny_compressed, device=emu, check_frequency=1)
    got, ref = gpu.eval(coords, cells, types, atomic=True), cpu.eval(coords, cells, types, atomic=True)
    for a, b in zip(got, ref):
        assert a.shape == b.shape
        assert _rel(a, b) <= 1e-13
    assert gpu.n_evaluations == 2 and gpu.table_overflow == cpu.table_overflow
    bad = np.array(coords[:1]).reshape(1, -1, 3)
    bad[0, 9] = bad[0, 2]
    with pytest.raises(InputError, match="frame 0: atoms 2 and 9 coincide"):
        gpu.eval(bad, cells[:1], types)


# ----------------------------------------------------------------------------- 4. on a GPU


GPU_KINDS = ("se_e2_a", "se_e2_r", "hybrid")  # descriptors the GPU path evaluates (hybrid: of those)


def _fixture_cases():
    cases = []
    for kind in GPU_KINDS:
        for where, folder in (("tiny", os.path.join(DATA, "deepmd", f"{kind}_tiny")), ("shared", os.path.join(SHARED_DEEPMD, kind))):
            for frames in ("test_frames.npz", "test_frames_stress.npz"):
                label = f"{where}_{kind}" + ("_stress" if "stress" in frames else "")
                cases.append((label, os.path.join(folder, "frozen.dp"), os.path.join(folder, frames)))
    for name in sorted(os.listdir(VARIANTS)) if os.path.isdir(VARIANTS) else []:
        if os.path.isfile(os.path.join(VARIANTS, name, "model.dp")):
            cases.append((name, os.path.join(VARIANTS, name, "model.dp"), os.path.join(VARIANTS, name, "frames.npz")))
    return cases


def _frames(path):
    frames = np.load(path)
    coords = frames["coord"].astype(np.float64)
    nopbc = bool(frames["nopbc"]) if "nopbc" in frames else "box" not in frames
    cells = None if nopbc else frames["box"].astype(np.float64).reshape(len(coords), 9)
    return coords, cells, frames["atype"].astype(np.int64)


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name,model_path,frames_path", _fixture_cases(), ids=[c[0] for c in _fixture_cases()])
def test_gpu_matches_cpu_on_every_fixture(name, model_path, frames_path):
    if not (os.path.isfile(model_path) and os.path.isfile(frames_path)):
        pytest.skip(f"fixture {name} not found ({frames_path})")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # kinked activations (relu) warn at compression
        model = compress(load_model(model_path), step=0.01)
    coords, cells, types = _frames(frames_path)
    cpu, gpu = Potential(model, n_threads=1), Potential(model, device="gpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = cpu.eval(coords, cells, types, atomic=True)
        got = gpu.eval(coords, cells, types, atomic=True)
    for key, a, b in zip(("energy", "force", "virial", "atom_energy", "atom_virial"), got, ref):
        assert _rel(a, b) <= REL, (name, key, _rel(a, b))


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("name", sorted(EMULATED_MODELS))
def test_gpu_matches_cpu_on_the_emulated_cases(name):
    from dpcompress.gpu.se_a_compressed import GpuEvaluator

    model, (coords, cell, types) = EMULATED_MODELS[name]()
    ref = cpu_step(model, coords, cell, types)
    got = GpuEvaluator(model, chunk=50).evaluate_to_host(coords, cell, types, check=True)
    _compare(got, ref)
    for a, b in zip(got["overflow"], ref["overflow"]):
        np.testing.assert_array_equal(a, b)


@needs_gpu
@pytest.mark.gpu
def test_gpu_takes_cupy_inputs_and_is_reproducible(tiny_compressed):
    import cupy

    frames = np.load(os.path.join(TINY, "test_frames.npz"))
    coords, cells, types = frames["coord"][:2], frames["box"][:2], frames["atype"]
    gpu = Potential(tiny_compressed, device="gpu")
    a = gpu.eval(coords, cells, types, atomic=True)
    b = gpu.eval(cupy.asarray(coords), cupy.asarray(cells), cupy.asarray(types), atomic=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)  # no float atomics: bitwise reproducible
    bad = cupy.asarray(coords[:1]).copy()
    bad[0, 5] = cupy.nan
    with pytest.raises(InputError, match="not finite"):
        gpu.eval(bad, cells[:1], types)


@needs_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("n_rows", [4, 1], ids=["se_e2_a", "radial"])
@pytest.mark.parametrize("M,ncoef", [(8, 6), (100, 4), (300, 6), (1200, 6)])
def test_gpu_fused_kernels_match_the_c_kernels(M, ncoef, n_rows):
    """Every compiled variant on the device; M = 1200 > 1024 (no block-per-atom limit)."""
    import cupy

    from dpcompress._ext.se_a_tab import se_a_tab_backward, se_a_tab_forward
    from dpcompress.gpu import se_a_compressed as gsa
    from dpcompress.gpu.backend import CupyBackend

    be = CupyBackend()
    rng = np.random.default_rng(M)
    packed, ctypes_, vectors, counts = _random_tables(rng, M, ncoef, natoms=300, n_rows=n_rows)
    T, beyond = se_a_tab_forward(packed, ctypes_, vectors, counts, 1, True)
    dT = rng.normal(size=T.shape)
    grad = se_a_tab_backward(packed, ctypes_, vectors, counts, dT, 1)
    part = gsa.upload(be, packed, np.diff(packed.sel_offsets))
    nl = pytypes.SimpleNamespace(vectors=cupy.asarray(vectors), counts=cupy.asarray(counts))
    ct = cupy.asarray(ctypes_)
    for cpl in (1, 2, 3, 4):
        Tg, bg = gsa.forward(be, part, ct, nl, check=True, cpl=cpl)
        np.testing.assert_allclose(Tg.get(), T, rtol=0, atol=1e-13 * np.abs(T).max())
        np.testing.assert_array_equal(bg.get(), beyond)
    for G in (4, 8, 16, 32):
        gg = gsa.backward(be, part, ct, nl, cupy.asarray(dT), G=G)
        np.testing.assert_allclose(gg.get(), grad, rtol=0, atol=1e-13 * np.abs(grad).max())

"""The i-PI front end (dpcompress.ipi): units and conventions against numpy, the socket protocol
against a scripted server, and i-PI itself driving the water example through every route.

The end-to-end tests run ``i-pi`` on examples/ipi/input.xml (10 NVT steps of 192 atoms of water)
and check that the step-0 potential energy i-PI prints equals ``Potential.eval`` on the
init file's structure to 1e-8 eV.  They skip only when i-PI is not installed
(``pip install -e '.[ipi]'``).
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import pytest

from conftest import REPO
from dpcompress import Potential, compress, save_model
from dpcompress.core.errors import InputError
from dpcompress.ipi import (BOHR_PER_ANGSTROM, HARTREE_PER_EV, IPIAdapter, IPIClient, ProtocolError, atom_types,
                            elements_from, parse_elements, read_elements, results_to_ipi, structure_from_ipi)
from dpcompress.ipi.__main__ import main as ipi_main, pes_driver_path
from dpcompress.ipi.client import header

EXAMPLE = os.path.join(REPO, "examples", "ipi")
WATER = os.path.join(REPO, "examples", "data", "water")
IPI_TIMEOUT = 60  # seconds for one whole i-PI run; a run takes about 3 s


@pytest.fixture(scope="module")
def water_dpc(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("ipi_model") / "water.dpc")
    save_model(compress(os.path.join(WATER, "model.dp")), path)
    return path


@pytest.fixture(scope="module")
def water_potential(water_dpc):
    return Potential(water_dpc, n_threads=1)


def read_init_xyz(path):
    """(names, coords Å, cubic cell rows Å) of examples/ipi/init.xyz, with numpy only."""
    lines = open(path).read().splitlines()
    n = int(lines[0])
    abc = [float(v) for v in re.search(r"CELL\(abcABC\):\s*(\S+)\s+(\S+)\s+(\S+)", lines[1]).groups()]
    rows = [l.split() for l in lines[2:2 + n]]
    return [r[0] for r in rows], np.array([[float(v) for v in r[1:4]] for r in rows]), np.diag(abc)


# ---------------------------------------------------------------------------------------------
# units and conventions


def test_constants_are_ipis_own():
    units = pytest.importorskip("ipi.utils.units", reason="i-PI is not installed: pip install -e '.[ipi]'")
    assert BOHR_PER_ANGSTROM == units.UnitMap["length"]["angstrom"] == 1.8897261
    assert HARTREE_PER_EV == units.UnitMap["energy"]["electronvolt"] == 0.036749326
    # i-PI's rounded force entry is within 1.1e-7 of the derived factor the driver uses
    assert abs(units.UnitMap["force"]["ev/ang"] / (HARTREE_PER_EV / BOHR_PER_ANGSTROM) - 1) < 1.2e-7


def test_structure_from_ipi_transposes_and_scales():
    rng = np.random.default_rng(1)
    rows = np.array([[9.0, 0.0, 0.0], [1.5, 8.0, 0.0], [-0.7, 2.1, 10.0]])  # Å, vectors as rows
    coords = rng.uniform(-2, 12, size=(7, 3))
    h = rows.T * BOHR_PER_ANGSTROM  # i-PI: columns, Bohr
    cell, xyz = structure_from_ipi(h.reshape(9), (coords * BOHR_PER_ANGSTROM).reshape(-1))
    np.testing.assert_allclose(cell, rows, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(xyz, coords, rtol=1e-15, atol=1e-15)
    assert structure_from_ipi(np.zeros((3, 3)), coords, periodic=False)[0] is None
    with pytest.raises(InputError, match="no volume"):
        structure_from_ipi(np.zeros((3, 3)), coords)
    with pytest.raises(InputError, match="non-finite positions"):
        structure_from_ipi(h, np.full((2, 3), np.nan))


def test_results_to_ipi_units_and_virial_transpose():
    rng = np.random.default_rng(2)
    r, f = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    w = np.einsum("ia,ib->ab", r, f)  # DeePMD-kit: W_ab = sum_i r_ia F_ib; not symmetric here
    e, fi, xi = results_to_ipi(-12.5, f, w.reshape(9))
    assert e == -12.5 * 0.036749326
    np.testing.assert_allclose(fi, f * 0.036749326 / 1.8897261, rtol=1e-15)
    # i-PI: Xi_ab = sum_i F_ia r_ib = -dE/d(eps_ab) for h -> (1 + eps) h
    np.testing.assert_allclose(xi, np.einsum("ia,ib->ab", f, r) * 0.036749326, rtol=1e-14)
    assert xi.flags.c_contiguous and fi.flags.c_contiguous


def test_potential_virial_is_r_outer_f(water_potential):
    """The convention results_to_ipi assumes: dpcompress's virial is sum_i r_i (x) F_i (a cluster,
    where no periodic images enter the sum)."""
    names, coords, _ = read_init_xyz(os.path.join(EXAMPLE, "init.xyz"))
    x = coords[:24]  # eight molecules, no cell
    _, f, w = water_potential.eval(x[None], None, names[:24])
    np.testing.assert_allclose(w[0].reshape(3, 3), np.einsum("ia,ib->ab", x, f[0]), atol=1e-10)


def test_adapter_virial_and_forces_are_ipi_derivatives(water_potential):
    """Through the whole adapter, in i-PI's units on a triclinic (upper-triangular) cell:
    Xi = -dE/d(eps) with h -> (1 + eps) h, r -> (1 + eps) r, and F = -dE/dr, by central differences."""
    names, coords, cell = read_init_xyz(os.path.join(EXAMPLE, "init.xyz"))
    shear = np.array([[1.0, 0.04, -0.03], [0.0, 1.0, 0.05], [0.0, 0.0, 1.0]])
    h = shear @ cell.T * BOHR_PER_ANGSTROM
    r = coords @ shear.T * BOHR_PER_ANGSTROM
    adapter = IPIAdapter(water_potential, names)
    e0, f0, xi, extras = adapter(h, r)
    assert extras == "" and f0.shape == r.shape
    d = 1e-5
    fd = np.empty((3, 3))
    for a in range(3):
        for b in range(3):
            eps = np.zeros((3, 3))
            eps[a, b] = d
            ep = adapter((np.eye(3) + eps) @ h, r @ (np.eye(3) + eps).T)[0]
            em = adapter((np.eye(3) - eps) @ h, r @ (np.eye(3) - eps).T)[0]
            fd[a, b] = -(ep - em) / (2 * d)
    np.testing.assert_allclose(xi, fd, atol=2e-7)  # Hartree; |Xi| ~ 0.2
    for i, a in ((0, 0), (5, 2)):
        dr = np.zeros_like(r)
        dr[i, a] = 1e-4
        fd_f = -(adapter(h, r + dr)[0] - adapter(h, r - dr)[0]) / 2e-4
        assert abs(fd_f - f0[i, a]) < 1e-7  # Hartree/Bohr


# ---------------------------------------------------------------------------------------------
# elements


def test_elements_from_files_and_lists(tmp_path):
    names = read_elements(os.path.join(EXAMPLE, "init.xyz"))
    assert len(names) == 192 and names.count("O") == 64 and names.count("H") == 128
    assert parse_elements(" O, H ,H") == ["O", "H", "H"]
    assert elements_from(elements=["O", "H"]) == ["O", "H"]
    np.testing.assert_array_equal(atom_types(["H", "O", "H"], ["O", "H"]), [1, 0, 1])
    with pytest.raises(InputError, match=r"\['Xx'\] \(first at atom 1\).*type_map \['O', 'H'\]"):
        atom_types(["O", "Xx", "H"], ["O", "H"])
    with pytest.raises(InputError, match="empty name at position 1"):
        parse_elements("O,,H")
    with pytest.raises(InputError, match="not both"):
        elements_from(init="a.xyz", elements="O")
    with pytest.raises(InputError, match="does not exist"):
        read_elements(tmp_path / "missing.xyz")
    bad = tmp_path / "bad.xyz"
    bad.write_text("3\ncomment\nO 0 0 0\nH 1 0\n")
    with pytest.raises(InputError, match=r"line 4 should be 'element x y z' \(atom 1 of 3\)"):
        read_elements(bad)


def test_adapter_rejects_wrong_atom_count(water_potential):
    adapter = IPIAdapter(water_potential, ["O", "H", "H"])
    with pytest.raises(InputError, match="i-PI sent 4 atoms but the element list has 3"):
        adapter(np.eye(3) * 20, np.zeros((4, 3)))


# ---------------------------------------------------------------------------------------------
# the socket protocol against a scripted server


class _Stub:
    """An evaluate callable with known results (energy = sum of positions, F = -2 r, Xi = 3 h)."""

    natoms = 2

    def __call__(self, h, pos):
        return float(pos.sum()), -2.0 * pos, 3.0 * h, '{"tag": 1}'


def _recvn(sock, n):
    buf = b""
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        assert part, f"client closed after {len(buf)} of {n} bytes"
        buf += part
    return buf


def _start(evaluate):
    """A client on one end of a socket pair, running in a thread; the test plays i-PI on the other."""
    server, peer = socket.socketpair()
    server.settimeout(10)
    client = IPIClient(evaluate, "unused", unix=True)
    client.sock = peer
    outcome = {}

    def run():
        try:
            outcome["n"] = client.run()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return server, thread, outcome


def _finish(server, thread, outcome):
    thread.join(10)
    server.close()
    assert not thread.is_alive(), "the client did not stop"
    return outcome


def _posdata(h, pos):
    return (header("POSDATA") + np.asarray(h, np.float64).tobytes() + np.linalg.inv(h).tobytes()
            + np.int32(len(pos)).tobytes() + np.asarray(pos, np.float64).tobytes())


def test_client_speaks_the_protocol():
    server, thread, outcome = _start(_Stub())
    h = np.array([[10.0, 1.0, 2.0], [0.0, 11.0, 3.0], [0.0, 0.0, 12.0]])
    pos = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]])
    server.sendall(header("STATUS"))
    assert _recvn(server, 12) == b"NEEDINIT    "
    server.sendall(header("INIT") + np.int32(0).tobytes() + np.int32(3).tobytes() + b"abc")
    for step in range(2):
        server.sendall(header("STATUS"))
        assert _recvn(server, 12) == b"READY       "
        server.sendall(_posdata(h, pos + step))
        server.sendall(header("STATUS"))
        assert _recvn(server, 12) == b"HAVEDATA    "
        server.sendall(header("GETFORCE"))
        assert _recvn(server, 12) == b"FORCEREADY  "
        energy = np.frombuffer(_recvn(server, 8), np.float64)[0]
        natoms = np.frombuffer(_recvn(server, 4), np.int32)[0]
        forces = np.frombuffer(_recvn(server, 48), np.float64).reshape(2, 3)
        virial = np.frombuffer(_recvn(server, 72), np.float64).reshape(3, 3)
        nextra = np.frombuffer(_recvn(server, 4), np.int32)[0]
        extras = _recvn(server, int(nextra)).decode()
        assert energy == (pos + step).sum() and natoms == 2 and extras == '{"tag": 1}'
        np.testing.assert_array_equal(forces, -2 * (pos + step))
        np.testing.assert_array_equal(virial, 3 * h)  # row-major, as sent
    server.sendall(header("EXIT"))
    assert _finish(server, thread, outcome) == {"n": 2}


@pytest.mark.parametrize("case", ["count", "batch", "header", "getforce", "hangup", "midway"])
def test_client_fails_clearly(case):
    server, thread, outcome = _start(_Stub())
    init = header("INIT") + np.int32(0).tobytes()
    if case == "count":
        server.sendall(init + np.int32(0).tobytes() + _posdata(np.eye(3) * 9, np.zeros((3, 3))))
    elif case == "batch":
        server.sendall(init + np.int32(12).tobytes() + b"batch_size:4")
    elif case == "header":
        server.sendall(header("BOGUS"))
    elif case == "getforce":
        server.sendall(init + np.int32(0).tobytes() + header("GETFORCE"))
    elif case == "midway":
        server.sendall(init + np.int32(0).tobytes() + header("POSDATA") + b"\0" * 20)
        server.shutdown(socket.SHUT_WR)
    else:
        server.shutdown(socket.SHUT_WR)
    out = _finish(server, thread, outcome)
    expected = {
        "count": (InputError, "i-PI sent 3 atoms but the element list has 2"),
        "batch": (ProtocolError, "batches of 4 structures"),
        "header": (ProtocolError, "unknown i-PI message header b'BOGUS"),
        "getforce": (ProtocolError, "GETFORCE.*before sending a structure"),
        "midway": (ProtocolError, r"closed the connection in the middle of the POSDATA cell \(20 of 72 bytes\)"),
    }
    if case == "hangup":
        assert out == {"n": 0}
        return
    kind, message = expected[case]
    assert isinstance(out.get("error"), kind), out
    assert re.search(message, str(out["error"])), str(out["error"])


def test_connect_times_out_with_a_clear_message():
    name = f"dpc-absent-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=rf"no i-PI server at unix socket /tmp/ipi_{name} after 0.3 s"):
        IPIClient(_Stub(), name, unix=True, connect_timeout=0.3).run()
    assert time.monotonic() - t0 < 5
    with pytest.raises(InputError, match="longer than 107 bytes"):
        IPIClient(_Stub(), "x" * 120, unix=True)


def test_command_line_errors_and_path(capsys, water_dpc):
    assert ipi_main(["path"]) == 0
    assert capsys.readouterr().out.strip() == pes_driver_path()
    assert os.path.isfile(pes_driver_path())
    assert ipi_main(["--address", "x", "--unix", "--model", water_dpc, "--elements", "O,Xx"]) == 2
    assert "['Xx'] (first at atom 1) are not in the model's type_map ['O', 'H']" in capsys.readouterr().err
    assert ipi_main(["--address", f"dpc-absent-{uuid.uuid4().hex[:8]}", "--unix", "--model", water_dpc,
                     "--elements", "O,H,H", "--connect-timeout", "0.2", "-q"]) == 2
    assert "no i-PI server at unix socket" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# i-PI drives the water example


def _ipi_script(name):
    """A script of the ipi package (i-pi, i-pi-py_driver): next to this interpreter, else on PATH."""
    path = os.path.join(os.path.dirname(sys.executable), name)
    path = path if os.path.isfile(path) else shutil.which(name)
    assert path, f"ipi is importable but its script {name!r} is neither next to {sys.executable} nor on PATH"
    return path


def _properties(path):
    """{column name: values} of i-PI's properties output, names as written in input.xml."""
    names = re.findall(r"^# column +\d+(?: *- *\d+)? *--> (\S+)", open(path).read(), flags=re.M)
    data = np.atleast_2d(np.loadtxt(path))
    return {n: data[:, k] for k, n in enumerate(names)}


def _stop(proc):
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the process and anything it started; never a broad name
        except ProcessLookupError:
            pass
        proc.wait(10)


def _run_ipi(tmp_path, driver_command, prefix=None, forcefield=None):
    """Run i-PI on the example with ``driver_command(address, prefix)`` (or none, with the
    ``<ffsocket>`` replaced by ``forcefield``); return i-PI's properties and the driver's log.

    Both processes are killed on any failure or after IPI_TIMEOUT seconds."""
    address = f"dpc-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    if prefix is None:
        # a unix socket path must fit in 107 bytes; the test's own folder is preferred when it fits
        prefix = str(tmp_path) + os.sep if len(str(tmp_path)) + len(address) < 100 else "/tmp/ipi_"
    xml = open(os.path.join(EXAMPLE, "input.xml")).read()
    xml = xml.replace("<address> dpcompress-water </address>", f"<address>{address}</address>")
    xml = xml.replace("<simulation ", f"<simulation sockets_prefix='{prefix}' ", 1)
    assert address in xml and prefix in xml
    if forcefield is not None:
        xml, n = re.subn(r"<ffsocket .*?</ffsocket>", forcefield, xml, flags=re.S)
        assert n == 1
    (tmp_path / "input.xml").write_text(xml)
    shutil.copy(os.path.join(EXAMPLE, "init.xyz"), tmp_path / "init.xyz")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    procs = []
    try:
        with open(tmp_path / "ipi.log", "w") as ipi_log, open(tmp_path / "driver.log", "w") as driver_log:
            procs.append(subprocess.Popen([sys.executable, _ipi_script("i-pi"), "input.xml"], cwd=tmp_path, env=env,
                                          stdout=ipi_log, stderr=subprocess.STDOUT, start_new_session=True))
            if driver_command is not None:
                procs.append(subprocess.Popen(driver_command(address, prefix), cwd=tmp_path, env=env,
                                              stdout=driver_log, stderr=subprocess.STDOUT, start_new_session=True))
            deadline = time.monotonic() + IPI_TIMEOUT
            # a failed process ends the wait at once: the other would wait for it forever
            while any(p.poll() is None for p in procs) and not any(p.poll() for p in procs):
                if time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired("i-pi", IPI_TIMEOUT)
                time.sleep(0.05)
        logs = "\n".join(f"--- {f}\n" + (tmp_path / f).read_text()[-3000:] for f in ("ipi.log", "driver.log"))
        assert [p.poll() for p in procs] == [0] * len(procs), logs
    except subprocess.TimeoutExpired:
        pytest.fail(f"i-PI run did not finish in {IPI_TIMEOUT} s:\n" + "\n".join(
            (tmp_path / f).read_text()[-3000:] for f in ("ipi.log", "driver.log")))
    finally:
        for p in procs:
            _stop(p)
        if os.path.exists(prefix + address):
            os.unlink(prefix + address)
    return _properties(tmp_path / "simulation.out"), (tmp_path / "driver.log").read_text()


@pytest.fixture(scope="module")
def reference_energy(water_potential):
    names, coords, cell = read_init_xyz(os.path.join(EXAMPLE, "init.xyz"))
    return float(water_potential.eval(coords[None], cell.reshape(1, 9), names)[0][0, 0])


def _check(props, reference, tolerance=1e-8):
    assert props["step"][0] == 0 and len(props["step"]) >= 6, props["step"]  # step 0 and >= 5 MD steps
    e_ev = props["potential{electronvolt}"][0]
    e_au = props["potential"][0] / HARTREE_PER_EV  # Hartree -> eV with the driver's constant
    assert abs(e_au - reference) < tolerance, (e_au, reference)
    assert abs(e_ev - reference) < tolerance, (e_ev, reference)
    return e_au - reference


def test_ipi_drives_our_client(tmp_path, water_dpc, reference_energy):
    pytest.importorskip("ipi", reason="i-PI is not installed: pip install -e '.[ipi]'")
    props, log = _run_ipi(tmp_path, lambda address, prefix: [
        sys.executable, "-m", "dpcompress.ipi", "--address", address, "--unix", "--sockets-prefix", prefix,
        "--model", water_dpc, "--init", "init.xyz", "--threads", "1", "--connect-timeout", "30"])
    _check(props, reference_energy)
    assert "i-PI sent EXIT after 11 structures" in log or "i-PI closed the connection after 11 structures" in log, log


def test_ipi_drives_its_own_driver_with_our_class(tmp_path, water_dpc, reference_energy):
    pytest.importorskip("ipi", reason="i-PI is not installed: pip install -e '.[ipi]'")
    # i-pi-py_driver connects once: start it after i-PI has created the socket
    def command(address, prefix):
        wait = (f"import os,sys,time; t=time.monotonic()+30\nwhile not os.path.exists({prefix + address!r}) "
                "and time.monotonic()<t: time.sleep(0.1)\ntime.sleep(0.2)\nos.execv(sys.argv[1], sys.argv[1:])")
        return [sys.executable, "-c", wait, sys.executable, _ipi_script("i-pi-py_driver"), "-m", "custom",
                "-P", pes_driver_path(), "-o", f"model={water_dpc},template=init.xyz,threads=1",
                "-a", address, "-u", "-S", prefix]

    props, _ = _run_ipi(tmp_path, command)
    _check(props, reference_energy)


def test_ipi_drives_ase_socket_client(tmp_path, water_dpc, reference_energy):
    pytest.importorskip("ipi", reason="i-PI is not installed: pip install -e '.[ipi]'")
    units = pytest.importorskip("ase.units", reason="the ASE route needs ASE")
    # ASE's client always uses i-PI's default prefix
    props, _ = _run_ipi(tmp_path, lambda address, prefix: [
        sys.executable, os.path.join(EXAMPLE, "ase_client.py"), water_dpc, "init.xyz", address,
        "--connect-timeout", "30"], prefix="/tmp/ipi_")
    # ASE's Hartree is CODATA 2014's: i-PI's printed eV differ by that ratio (and ASE's Bohr moves
    # the atoms by 1.4e-8 relative: a few 1e-7 eV here)
    expected = reference_energy / units.Hartree / HARTREE_PER_EV
    assert abs(props["potential{electronvolt}"][0] - expected) < 1e-5
    assert abs(props["potential{electronvolt}"][0] - reference_energy) > 1e-4  # the documented difference exists


def test_ipi_runs_our_class_in_process(tmp_path, water_dpc, reference_energy):
    pytest.importorskip("ipi", reason="i-PI is not installed: pip install -e '.[ipi]'")
    ffdirect = (f"<ffdirect name='dpcompress' pbc='true'><pes>custom</pes><pes_path>{pes_driver_path()}</pes_path>"
                f"<parameters>{{model: {water_dpc}, template: init.xyz, threads: 1}}</parameters></ffdirect>")
    props, _ = _run_ipi(tmp_path, None, forcefield=ffdirect)
    _check(props, reference_energy)

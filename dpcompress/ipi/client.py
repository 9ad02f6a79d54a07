"""An i-PI socket client: i-PI (the server) sends structures, this client answers with the energy,
forces and virial of a dpcompress model.  No i-PI installation is needed on the client's side.

The protocol (i-PI's "socket" interface; every message starts with a 12-byte ASCII header padded
with blanks, numbers are in the machine's byte order)::

    i-PI -> client                               client -> i-PI
    STATUS                                       NEEDINIT | READY | HAVEDATA
    INIT     int32 id, int32 n, n bytes          (nothing)
    POSDATA  float64 h[3][3], float64 h^-1[3][3],
             int32 natoms, float64 r[natoms][3]  (nothing: the client computes now)
    GETFORCE                                     FORCEREADY float64 E, int32 natoms,
                                                 float64 F[natoms][3], float64 Xi[3][3],
                                                 int32 n, n bytes of "extras"
    EXIT                                         (the client stops)

Units and conventions (Bohr, Hartree; ``h`` has the cell vectors as columns; ``Xi`` is
:math:`W^\\mathsf{T}`): :mod:`dpcompress.ipi.units`.  i-PI's batched (``batch_size`` > 1) and
shared-memory (``mode='shm'``) variants are not spoken here: use ``mode='unix'`` or
``mode='inet'`` without ``batch_size``.
"""

import logging
import os
import socket
import time
from typing import Callable, Optional, Tuple

import numpy as np

from ..core.errors import DPCompressError, InputError

__all__ = ["IPIClient", "ProtocolError", "HEADER_LENGTH", "DEFAULT_SOCKETS_PREFIX"]

HEADER_LENGTH = 12
#: i-PI's default prefix of unix-socket addresses (``<simulation sockets_prefix=...>``).
DEFAULT_SOCKETS_PREFIX = "/tmp/ipi_"
# the kernel's limit on sun_path (108 bytes with the terminating NUL on Linux)
_UNIX_PATH_MAX = 107
# numbers travel in native byte order on both sides, as in every i-PI driver
_F8 = np.dtype(np.float64)
_I4 = np.dtype(np.int32)

log = logging.getLogger(__name__)


class ProtocolError(DPCompressError, RuntimeError):
    """i-PI sent something this client does not understand, or the connection broke mid-message."""


def header(name: str) -> bytes:
    """A message header: the name, upper case, blank-padded to 12 bytes."""
    raw = name.upper().encode("ascii")
    if len(raw) > HEADER_LENGTH:
        raise ValueError(f"header {name!r} is longer than {HEADER_LENGTH} bytes")
    return raw.ljust(HEADER_LENGTH)


Evaluate = Callable[[np.ndarray, np.ndarray], Tuple[float, np.ndarray, np.ndarray, str]]


class IPIClient:
    """Connect to an i-PI server and answer its requests until it sends EXIT or hangs up.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(h, positions) -> (energy, forces, virial, extras)`` in i-PI's units and
        conventions: a :class:`dpcompress.ipi.adapter.IPIAdapter`.
    address : str
        Unix: the socket's name (i-PI's ``<address>``; the file is ``sockets_prefix + address``).
        Inet: the host name or IP address.
    unix : bool
        A unix-domain socket (same machine) instead of TCP.
    port : int
        TCP port (inet only); i-PI's ``<port>``.
    sockets_prefix : str
        i-PI's ``<simulation sockets_prefix=...>`` (unix only).
    connect_timeout : float
        Seconds to keep trying to connect (i-PI may still be starting) before giving up with a
        ``TimeoutError`` that says where it looked.
    idle_timeout : float or None
        Seconds to wait for i-PI's next message once connected; ``None`` waits as long as i-PI
        takes (it may be busy with other force fields).  A dead i-PI closes the socket, which
        ends :meth:`run` either way.

    Raises
    ------
    InputError
        A bad address, port or timeout.
    """

    def __init__(self, evaluate: Evaluate, address: str, *, unix: bool = False, port: int = 65535,
                 sockets_prefix: str = DEFAULT_SOCKETS_PREFIX, connect_timeout: float = 60.0,
                 idle_timeout: Optional[float] = None):
        if not address:
            raise InputError("the i-PI address is empty (i-PI's <address>: a socket name for unix, a host for inet)")
        if not unix and not (isinstance(port, int) and 0 < port < 65536):
            raise InputError(f"port must be an integer in 1..65535, got {port!r}")
        if not connect_timeout > 0:
            raise InputError(f"connect_timeout must be positive, got {connect_timeout!r}")
        if idle_timeout is not None and not idle_timeout > 0:
            raise InputError(f"idle_timeout must be positive or None, got {idle_timeout!r}")
        self.evaluate = evaluate
        self.unix = bool(unix)
        self.address = address
        self.port = port
        self.path = sockets_prefix + address if unix else None
        if self.path is not None and len(os.fsencode(self.path)) > _UNIX_PATH_MAX:
            raise InputError(f"the unix socket path {self.path!r} is longer than {_UNIX_PATH_MAX} bytes: use a shorter name or prefix")
        self.connect_timeout = float(connect_timeout)
        self.idle_timeout = idle_timeout
        self.sock: Optional[socket.socket] = None
        self.n_structures = 0

    def where(self) -> str:
        return f"unix socket {self.path}" if self.unix else f"{self.address}:{self.port} (inet)"

    # ------------------------------------------------------------------ connection

    def connect(self) -> None:
        """Connect, retrying until ``connect_timeout``: the driver is often started before i-PI
        has created its socket."""
        deadline = time.monotonic() + self.connect_timeout
        last = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                hint = (f"is i-pi running with <ffsocket mode='unix'><address>{self.address}</address>? "
                        "(a file left by a crashed i-PI refuses connections: remove it)") if self.unix else \
                       f"is i-pi running with <ffsocket mode='inet'><address>{self.address}</address><port>{self.port}</port>?"
                raise TimeoutError(f"no i-PI server at {self.where()} after {self.connect_timeout:g} s ({last}): {hint}")
            s = socket.socket(socket.AF_UNIX if self.unix else socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(max(left, 0.01))
            try:
                s.connect(self.path if self.unix else (self.address, self.port))
            except socket.gaierror as exc:
                s.close()
                raise InputError(f"cannot resolve the i-PI host {self.address!r}: {exc}") from None
            except OSError as exc:  # no socket yet, refused, unreachable: i-PI may still be starting
                s.close()
                last = exc.strerror or type(exc).__name__
                time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
                continue
            except BaseException:
                s.close()
                raise
            break
        if not self.unix:
            # the protocol's many small messages would each wait for Nagle's algorithm otherwise
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(self.idle_timeout)
        self.sock = s
        log.info("connected to i-PI at %s", self.where())

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ wire

    def _recv(self, n: int, what: str) -> Optional[bytes]:
        """Exactly ``n`` bytes, or None if i-PI hung up before the first one."""
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            try:
                k = self.sock.recv_into(view[got:], n - got)
            except socket.timeout:
                raise TimeoutError(f"i-PI sent nothing for {self.idle_timeout:g} s while the client waited for {what}") from None
            if k == 0:
                if got == 0:
                    return None
                raise ProtocolError(f"i-PI closed the connection in the middle of {what} ({got} of {n} bytes)")
            got += k
        return bytes(buf)

    def _recv_required(self, n: int, what: str) -> bytes:
        raw = self._recv(n, what)
        if raw is None:
            raise ProtocolError(f"i-PI closed the connection before {what}")
        return raw

    def _recv_array(self, dtype, count: int, what: str) -> np.ndarray:
        return np.frombuffer(self._recv_required(dtype.itemsize * count, what), dtype=dtype, count=count)

    # ------------------------------------------------------------------ loop

    def run(self) -> int:
        """Answer i-PI until it sends EXIT or closes the connection; return the structures evaluated.

        Connects first if :meth:`connect` was not called.  The socket is closed on return and on
        every error.

        Raises
        ------
        ProtocolError
            An unknown header, a batched or shared-memory request, a broken message.
        InputError
            A structure the model cannot take (atom count, cell), from ``evaluate``.
        TimeoutError
            No server within ``connect_timeout``; silence beyond ``idle_timeout``.
        """
        if self.sock is None:
            self.connect()
        initialized = False
        result = None
        try:
            while True:
                raw = self._recv(HEADER_LENGTH, "a message header")
                if raw is None:
                    log.info("i-PI closed the connection after %d structures", self.n_structures)
                    return self.n_structures
                name = raw.rstrip(b" \0").decode("ascii", errors="replace")
                if name == "STATUS":
                    reply = "HAVEDATA" if result is not None else ("READY" if initialized else "NEEDINIT")
                    self.sock.sendall(header(reply))
                elif name == "INIT":
                    self._read_init()
                    initialized = True
                elif name == "POSDATA":
                    result = self._read_posdata()
                elif name == "GETFORCE":
                    if result is None:
                        raise ProtocolError("i-PI asked for forces (GETFORCE) before sending a structure (POSDATA)")
                    self.sock.sendall(self._forceready(*result))
                    result = None
                elif name == "EXIT":
                    log.info("i-PI sent EXIT after %d structures", self.n_structures)
                    return self.n_structures
                else:
                    raise ProtocolError(f"unknown i-PI message header {raw!r}")
        finally:
            self.close()

    def _read_init(self):
        rid, n = self._recv_array(_I4, 2, "the INIT message")
        if n < 0:
            raise ProtocolError(f"INIT announces a parameter string of {n} bytes")
        text = self._recv_required(int(n), "the INIT parameter string").decode("utf-8", errors="replace") if n else ""
        for token in text.split(","):
            key, sep, value = token.partition(":")
            if sep and key.strip() == "batch_size" and value.strip() not in ("", "1"):
                raise ProtocolError(
                    f"i-PI asks for batches of {value.strip()} structures (<batch_size> in <ffsocket>), which this "
                    "client does not speak: remove <batch_size>, or use i-pi-py_driver -m custom "
                    "-P $(python -m dpcompress.ipi path)"
                )
        log.debug("INIT replica %d: %r", int(rid), text)

    def _read_posdata(self):
        h = self._recv_array(_F8, 9, "the POSDATA cell").reshape(3, 3)
        self._recv_array(_F8, 9, "the POSDATA inverse cell")  # redundant with h
        (natoms,) = self._recv_array(_I4, 1, "the POSDATA atom count")
        natoms = int(natoms)
        if natoms <= 0:
            raise ProtocolError(f"POSDATA announces {natoms} atoms (is i-PI's <ffsocket> in mode='shm'? use mode='unix')")
        expected = getattr(self.evaluate, "natoms", None)
        # checked before reading the positions: a wrong count would otherwise wait for bytes that never come
        if expected is not None and natoms != expected:
            raise InputError(
                f"i-PI sent {natoms} atoms but the element list has {expected}: the init file / element list must "
                "describe the same atoms, in the same order, as i-PI's input"
            )
        positions = self._recv_array(_F8, 3 * natoms, "the POSDATA positions").reshape(natoms, 3)
        energy, forces, virial, extras = self.evaluate(h, positions)
        self.n_structures += 1
        return natoms, energy, forces, virial, extras

    @staticmethod
    def _forceready(natoms, energy, forces, virial, extras) -> bytes:
        forces = np.ascontiguousarray(forces, dtype=_F8)
        virial = np.ascontiguousarray(virial, dtype=_F8)
        if forces.size != 3 * natoms or virial.size != 9:
            raise ProtocolError(f"the driver returned {forces.size} force components for {natoms} atoms and "
                                f"{virial.size} virial components (want {3 * natoms} and 9)")
        text = extras.encode("utf-8") if extras else b""
        # one buffer, one send: i-PI reads the reply as a block of known size
        return b"".join((header("FORCEREADY"), np.array(energy, _F8).tobytes(), np.array(natoms, _I4).tobytes(),
                         forces.tobytes(), virial.tobytes(), np.array(len(text), _I4).tobytes(), text))

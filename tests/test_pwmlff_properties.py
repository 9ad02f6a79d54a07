"""PWMLFF's type-embedding property vectors from the user's PWMLFF source
(dpcompress/models/pwmlff_properties.py, docs/pwmlff.md).

(a) A synthetic table in PWMLFF's format with our own numbers, written here: the parser and the
scaling v = (x - min) / (max - min) against hand-computed values (exact to 1e-15), and the errors.
(b) PWMLFF's real ``utils/atom_type_emb_dict.py`` from ``$DPCOMPRESS_PWMLFF_SOURCE`` (skipped
without it; CI has no PWMLFF source): the vectors equal those a PWMLFF-compressed checkpoint
stores (tests/data/pwmlff/alcu_te_pwmlff_cmp.ckpt, written by PWMLFF's own code) and those stored
with the public-alloy references, and the public type-embedding checkpoint
(``$DPCOMPRESS_PWMLFF_FIXTURES/dp_type_embedding/dp_model.ckpt``) loaded through
:func:`load_model` alone matches PWMLFF's outputs (1e-10 eV/atom, 1e-9 eV/Å).
"""

import os

import numpy as np
import pytest

from dpcompress import Potential
from dpcompress.core.errors import InputError, ModelFormatError
from dpcompress.modelfile import load_model
from dpcompress.models.pwmlff_properties import (
    find_table,
    read_table,
    type_vectors_from_source,
    type_vectors_from_table,
)
from dpcompress.models.torch_zip import read_checkpoint

from test_pwmlff import DATA, E_TOL, F_TOL, PUBLIC, _check

SYNTHETIC = '''import numpy as np

element_table = ['', 'H', 'He', 'Li']

physical = {
    "atomic_number" : {
    1:"H", 2:"He", 3:"Li", 4:"Be", 5:"B",
    },
    "atom_mass" : {
    "H": 1.0, "He": 4.0, "Li": 7.0, "Be": 9.0, "B": 11.0,
    },
    "_atom_mass": "a comment string",
    "pauling" : {
    "H": 2.0, "He": float("NaN"), "Li": 1.0, "Be": 1.5, "B": -0.5,
    },
}

physical_scale = {}  # code after the table is never run
for typ in physical.keys():
    raise SystemExit("executed")
'''


def _write(tmp_path, text, sub="utils"):
    d = tmp_path / sub
    d.mkdir(parents=True, exist_ok=True)
    (d / "atom_type_emb_dict.py").write_text(text)
    return tmp_path


def test_synthetic_table(tmp_path):
    root = _write(tmp_path, SYNTHETIC)
    assert find_table(root) == str(root / "utils" / "atom_type_emb_dict.py")
    table = read_table(root)
    assert table["atomic_number"] == {1: "H", 2: "He", 3: "Li", 4: "Be", 5: "B"}
    assert np.isnan(table["pauling"]["He"]) and "_atom_mass" not in table
    vec = type_vectors_from_source(root, [3, 1], ["atomic_number", "atom_mass", "pauling"])
    # Z in [1, 5]; mass in [1, 11]; pauling (NaN dropped) in [-0.5, 2]
    np.testing.assert_allclose(vec[3], [2 / 4, 6 / 10, 1.5 / 2.5], rtol=0, atol=1e-15)
    np.testing.assert_allclose(vec[1], [0.0, 0.0, 1.0], rtol=0, atol=1e-15)


@pytest.mark.parametrize("atom_type,props,match", [
    ([2], ["pauling"], r"'pauling' of He \(Z = 2\) is missing or NaN"),
    ([6], ["atom_mass"], "atomic number 6 is not in"),
    ([1], ["melting_point"], "'melting_point' is not in the table"),
])
def test_synthetic_table_errors(tmp_path, atom_type, props, match):
    root = _write(tmp_path, SYNTHETIC)
    with pytest.raises(ModelFormatError, match=match):
        type_vectors_from_source(root, atom_type, props)


@pytest.mark.parametrize("text,match", [
    ('physical = {"atomic_number": {1: "H"}, "x": {"H": __import__("os").getpid()}}', "line 1: expected a number"),
    ('physical = {\n"atomic_number": {1: "H"},\n"x": {"H": [1]}}', "line 3: expected a number"),
    ('physical = {"atomic_number": {"H": 1}}', "expected atomic number: symbol"),
    ('physical = {"atom_mass": {"H": 1.0}}', "no 'atomic_number'"),
    ('table = {}', "no top-level 'physical"),
    ('physical = {', "not a readable Python source"),
    ('physical = {"atomic_number": {1: "H"}, **other}', "'\\*\\*'"),
])
def test_bad_tables(tmp_path, text, match):
    path = tmp_path / "atom_type_emb_dict.py"
    path.write_text(text)
    with pytest.raises(ModelFormatError, match=match) as exc:
        read_table(path)
    assert str(path) in str(exc.value)


def test_missing_source(tmp_path):
    with pytest.raises(InputError, match="DPCOMPRESS_PWMLFF_SOURCE"):
        find_table(tmp_path)


def test_env_variable_feeds_load_model(tmp_path, monkeypatch):
    # the synthetic table has no Al / Cu: the error shows load_model went to it
    monkeypatch.setenv("DPCOMPRESS_PWMLFF_SOURCE", str(_write(tmp_path, SYNTHETIC)))
    with pytest.raises(ModelFormatError, match="atomic number 13 is not in"):
        load_model(os.path.join(DATA, "alcu_te.ckpt"))


# --- PWMLFF's own table, when available -------------------------------------------------------------

SOURCE = os.environ.get("DPCOMPRESS_PWMLFF_SOURCE")


def _source():
    if not SOURCE:
        pytest.skip("$DPCOMPRESS_PWMLFF_SOURCE unset (PWMLFF's source, with utils/atom_type_emb_dict.py)")
    return SOURCE


def test_real_table_equals_pwmlff_compressed_vectors():
    ck = read_checkpoint(os.path.join(DATA, "alcu_te_pwmlff_cmp.ckpt"))
    props = ck["json_file"]["model"]["descriptor"]["type_embedding"]["physical_property"]
    vec = type_vectors_from_source(_source(), ck["json_file"]["atom_type"], props)
    for z, stored in ck["compress"]["type_vector"].items():
        np.testing.assert_allclose(vec[z], np.asarray(stored, dtype=float), rtol=0, atol=1e-15)
    # and the uncompressed checkpoint now loads with them and matches PWMLFF's outputs
    ref = np.load(os.path.join(DATA, "alcu_te_ref.npz"))
    _check(Potential(load_model(os.path.join(DATA, "alcu_te.ckpt"))), ref, E_TOL, F_TOL)


@pytest.mark.slow
def test_real_table_public_type_embedding():
    src = _source()
    path = os.path.join(PUBLIC, "dp_type_embedding", "dp_model.ckpt")
    if not os.path.exists(path):
        pytest.skip(f"{path} absent (PWMLFF_library's alloy/models/dp_type_embedding/dp_model.ckpt)")
    ref = np.load(os.path.join(DATA, "public_alloy_refs.npz"))
    js = read_checkpoint(path)["json_file"]
    vec = type_vectors_from_table(read_table(src), js["atom_type"],
                                  js["model"]["descriptor"]["type_embedding"]["physical_property"])
    np.testing.assert_allclose([vec[z] for z in js["atom_type"]], ref["dp_type_embedding_type_vectors"],
                               rtol=0, atol=1e-15)
    _check(Potential(load_model(path)), ref, E_TOL, F_TOL, prefix="dp_type_embedding_")

"""The ``--help`` texts of the ``dpcompress`` command line: a description and examples per command.

Kept apart from :mod:`dpcompress.cli` (the parser and the commands) so that the prose and the code
change separately.  ``dpcompress scan`` has its own parser (:mod:`dpcompress.scan.command`).
"""

import argparse
import textwrap

TOP = dict(
    description="Compress Deep Potential (DeePMD-kit) and NEP (GPUMD) models into exact piecewise-polynomial "
    "tables, describe model files, and evaluate models on training data.",
    epilog="""\
examples:
  dpcompress compress -i model.dp -o model.dpc       # DeePMD-kit model -> compressed .dpc
  dpcompress compress -i nep.txt -o nep.dpc          # GPUMD NEP model -> tabulated .dpc
  dpcompress info model.dpc                          # what a model file holds
  dpcompress eval model.dpc data/valid               # energies and errors on labelled frames
  dpcompress scan data/train -m model.dp -o scan.json
  dpcompress COMMAND --help                          # the options of one command

User errors (a missing file, a bad option) exit with status 2 and one line on stderr.""",
)

COMMANDS = {
    "info": dict(
        description="Describe a model file: a DeePMD-kit .dp/.yaml (descriptor, sizes, types, min_nbor_dist), "
        "a compressed .dpc (also its tables and their provenance), or a GPUMD nep.txt / NEP .dpc (cutoffs, "
        "descriptor sizes, network, ZBL, tables).",
        epilog="""\
examples:
  dpcompress info model.dp
  dpcompress info model.dpc
  dpcompress info model.dpc --plot err.png                         # --tolerance models: error vs stride
  dpcompress info nep.txt""",
    ),
    "compress": dict(
        description="Tabulate a model into a self-contained .dpc file (written atomically, never over the input). "
        "DeePMD-kit models: the embedding nets, with DeePMD-kit's dp compress command line (-i/-o and their "
        "defaults, -s, -e, -f, -t JSON or YAML, -c, -v, -l, -m) and the "
        "training set's minimum neighbor distance (stored in the model, or from -t, --scan or --min-nbor-dist). "
        "GPUMD nep.txt: the radial functions, with -s and --max-bytes only (the DP-only options are refused).",
        epilog="""\
examples:
  dpcompress compress -i model.dp -o model.dpc
  dpcompress compress -i model.dp -o model.dpc -s 0.005 -e 10 -f 100
  dpcompress compress -i model.dp -o model.dpc -t input.json      # min_nbor_dist from the training data
  dpcompress compress -i model.dp -o model.dpc --scan scan.json   # ... or from 'dpcompress scan'
  dpcompress compress -i model.dp -o model.dpc --tolerance 1e-6 -t input.json  # strides per table (docs/accuracy.md)
  dpcompress compress -v INFO -l compress.log   # dp's defaults: frozen_model.dp -> frozen_model_compressed.dpc
  dpcompress compress -i nep.txt -o nep.dpc""",
    ),
    "eval": dict(
        description="Evaluate a model (.dpc, .dp/.yaml or nep.txt) on every frame of training-data systems "
        "(deepmd/npy folders, searched recursively, or deepmd/hdf5 files); print the energy and max |force| of "
        "each frame and, when the data carry labels, the energy error per atom.",
        epilog="""\
examples:
  dpcompress eval model.dpc data/valid
  dpcompress eval model.dpc data/valid/data_3 data.hdf5 --threads 4""",
    ),
}


def command_help(name):
    """Keyword arguments of ``add_parser``/``ArgumentParser`` for ``name`` ("top" for the program)."""
    texts = TOP if name == "top" else COMMANDS[name]
    # the raw formatter keeps the examples' layout; the description is wrapped here once
    return dict(texts, description=textwrap.fill(texts["description"], 88),
                formatter_class=argparse.RawDescriptionHelpFormatter)

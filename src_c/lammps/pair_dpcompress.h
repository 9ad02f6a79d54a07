/* pair_style dpcompress: a LAMMPS pair style over the dpcompress model runtime (src_c/dpc_model.h).
 *
 *   pair_style dpcompress MODEL [threads N] [check N] [overflow warn|error|ignore]
 *                         [fparam V1 ... | fparam_from_compute ID] [aparam V1 ... | aparam_from_compute ID]
 *
 * MODEL is the .dpc file of `dpcompress compress` (any model kind) or a GPUMD nep.txt, which rank 0
 * tabulates once into MODEL.dpc with the dpcompress of the Python that built the plugin.
 *   pair_coeff * * O H [NULL ...]
 *
 * Every step hands the runtime this rank's frame as it is: local atoms (the centers), ghost atoms
 * (neighbors only, with their own coordinates, so no cell is needed) and LAMMPS's full neighbor
 * list as the candidate list.  The runtime returns forces on every atom, ghosts included; with
 * newton on LAMMPS reverse-communicates the ghosts' forces and per-atom virials itself, with
 * newton off this style does it (pack/unpack_reverse_comm).  Nothing of the model's physics lives
 * here: Potential (Python) and this style call the same dpc_compute, so they cannot disagree.
 *
 * Frame and atomic parameters (a model trained with numb_fparam / numb_aparam, DeePMD-kit's pair_style
 * deepmd keywords): constants, or every step a global compute's scalar/vector (fparam) and a per-atom
 * compute's vector/array (aparam, local atoms), passed RAW to the runtime, which normalises them with
 * the model's statistics (the same code as for Python).  A model's default_fparam serves when no
 * fparam keyword is given.
 *
 * Message passing (a DPA-2 model, dpc_model_passes_messages): a center's energy depends on atoms up to
 * dpc_model_ghost_width away, and the ghosts within w = ghost_width - rcut of a center are evaluated as
 * senders (dpc_frame.nsender) with their own candidate lists.  This style then asks for a full list
 * with ghosts' neighbors (REQ_GHOST, cutghost = rcut), keeps its list cutoff at rcut, and raises the
 * communication cutoff (comm->cutghostuser) to ghost_width + 2 skin; each step the frame is reordered
 * (centers, senders, other ghosts) into a copy, and the forces come back in LAMMPS's order.
 *
 * Per-atom virials: the runtime's W_ab of every atom (DeePMD-kit's convention, eV) goes to
 * cvatom as (xx, yy, zz, xy, xz, yz, yx, zx, zy) and, symmetrised, to vatom.
 *
 * docs/lammps.md has the user's side: install, keywords, type mapping, threads, overflow.
 */
#ifndef DPC_PAIR_DPCOMPRESS_H
#define DPC_PAIR_DPCOMPRESS_H

#include <cstdint>
#include <string>
#include <vector>

#include "pair.h"

#include "dpc_model.h"

namespace LAMMPS_NS {

class PairDPCompress : public Pair {
 public:
  PairDPCompress(class LAMMPS *);
  ~PairDPCompress() override;

  void compute(int, int) override;
  void settings(int, char **) override;
  void coeff(int, char **) override;
  void init_style() override;
  double init_one(int, int) override;
  void finish() override;
  int pack_reverse_comm(int, int, double *) override;
  void unpack_reverse_comm(int, int *, double *) override;
  double memory_usage() override;

 private:
  enum { OVERFLOW_IGNORE, OVERFLOW_WARN, OVERFLOW_ERROR };

  std::string path;                 // the model file
  const void *mapped = nullptr;     // its bytes (read-only shared map: ranks on a node share pages)
  size_t mapped_bytes = 0;
  dpc_model *model = nullptr;
  dpc_workspace *workspace = nullptr;
  double rcut = 0.0;
  int n_threads = 0;                // 0: LAMMPS's threads per rank (OMP_NUM_THREADS / package omp)
  int check_every = 100;            // steps between the reductions of the table counts
  int overflow_action = OVERFLOW_WARN;

  std::vector<int> type_of;         // LAMMPS type (1..ntypes) -> model type, -1 for NULL

  // frame / atomic parameters: constant values, or the ID of a compute read every step
  int64_t dim_fparam = 0, dim_aparam = 0;
  std::vector<double> fparam_const, aparam_const;
  std::string fparam_compute, aparam_compute;
  bool fparam_given = false, aparam_given = false;
  std::vector<double> fparam_now, aparam_now;   // this step's values ([dim_fparam], [nlocal][dim_aparam])

  // per-step buffers, grown with the atom count, never shrunk
  std::vector<int32_t> types, counts;
  std::vector<const int32_t *> rows;
  std::vector<int64_t> tags;
  std::vector<double> forces, atom_energy, atom_virial;
  int reverse_width = 3;            // values per atom in the reverse communication (3 or 12)

  // message passing (DPA-2): senders among the ghosts, a reordered copy of the frame
  bool messages = false;            // the model passes messages (or the test build forces the path)
  double ghost_width = 0.0;         // dpc_model_ghost_width
  double cutghost_before = -1.0;    // comm->cutghostuser before this style raised it (-1: not raised)
  double cutghost_set = 0.0;        // the value it set
  std::vector<int> order, place;    // frame atom -> LAMMPS atom, LAMMPS atom -> frame atom
  std::vector<double> mx, mforces, mvirial;
  std::vector<int32_t> mtypes, mcounts, mflat;
  std::vector<int64_t> mtags, mstart;
  std::vector<const int32_t *> mrows;
  std::vector<char> has_row;

  int64_t message_frame(int nlocal, int nall, bool per_atom_virial);
  bool is_sender(const double *x, double reach) const;

  // table counts since the last report: beyond the fine table, beyond the whole table, dropped by sel
  int64_t pending[3] = {0, 0, 0};

  void open_model();
  std::string tabulated_nep(const std::string &text);
  void close_model();
  void report_counts(bool force_now);
  void check_parameters();
  class Compute *parameter_compute(const std::string &id, bool atomic);
  const double *frame_parameters();
  const double *atomic_parameters(int nlocal);
};

}    // namespace LAMMPS_NS

#endif

/* pair_style dpcompress: see pair_dpcompress.h.  SPDX-License-Identifier: BSD-3-Clause */

#include "pair_dpcompress.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "atom.h"
#include "comm.h"
#include "compute.h"
#include "domain.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "modify.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"

using namespace LAMMPS_NS;

/* The BLAS the build recorded (the one scipy uses in Python, so both front ends run the same
 * dgemm): its library, its dgemm symbol and, for OpenBLAS, the call that keeps it on one thread
 * (the runtime calls dgemm from inside its own OpenMP threads). */
#ifndef DPC_BLAS_LIBRARY
#define DPC_BLAS_LIBRARY ""
#endif
#ifndef DPC_BLAS_DGEMM
#define DPC_BLAS_DGEMM "dgemm_"
#endif
#ifndef DPC_BLAS_SET_THREADS
#define DPC_BLAS_SET_THREADS ""
#endif

#ifndef DPC_PYTHON
#define DPC_PYTHON "python3"
#endif

static const char *REBUILD = "rebuild the plugin with: python -m dpcompress.lammps build";

/* The first bytes of a file (fewer when it is shorter); empty when it cannot be read. */
/* element symbols by atomic number (Z = 1 ... 118): pair_coeff may name a type by its atomic number, as
   PWMLFF's LAMMPS inputs do (`pair_coeff * * 8 72`) */
static const char *const ELEMENT_SYMBOLS[] = {
    "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si", "P",  "S",  "Cl", "Ar",
    "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr",
    "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe",
    "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf",
    "Ta", "W",  "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th",
    "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr", "Rf", "Db", "Sg", "Bh", "Hs",
    "Mt", "Ds", "Rg", "Cn", "Nh", "Fl", "Mc", "Lv", "Ts", "Og"};

/* the element a pair_coeff word names: itself, or the symbol of an atomic number ("" when out of range) */
static std::string element_of(const std::string &word)
{
  if (word.empty() || word.size() > 3 || word.find_first_not_of("0123456789") != std::string::npos) return word;
  const int z = std::atoi(word.c_str());
  return z >= 1 && z <= (int) (sizeof(ELEMENT_SYMBOLS) / sizeof(*ELEMENT_SYMBOLS)) ? ELEMENT_SYMBOLS[z - 1] : "";
}

static std::string file_head(const std::string &path, size_t n)
{
  std::string head(n, '\0');
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return "";
  const ssize_t got = pread(fd, &head[0], n, 0);
  close(fd);
  head.resize(got > 0 ? (size_t) got : 0);
  return head;
}

static bool newer_or_same(const std::string &a, const std::string &b)
{
  struct stat sa, sb;
  if (stat(a.c_str(), &sa) != 0 || stat(b.c_str(), &sb) != 0) return false;
  return sa.st_mtime >= sb.st_mtime;
}

static std::string shell_quote(const std::string &s)
{
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/* dgemm from the recorded library (or, with none recorded, from the process); nullptr and a
 * reason when it cannot be found. */
static dpc_dgemm_t find_dgemm(std::string &why)
{
  void *lib = RTLD_DEFAULT;
  if (DPC_BLAS_LIBRARY[0]) {
    lib = dlopen(DPC_BLAS_LIBRARY, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      why = std::string("cannot load the BLAS library ") + DPC_BLAS_LIBRARY + " (" + dlerror() + ")";
      return nullptr;
    }
  }
  auto gemm = reinterpret_cast<dpc_dgemm_t>(dlsym(lib, DPC_BLAS_DGEMM));
  if (!gemm) {
    why = std::string("the BLAS library has no ") + DPC_BLAS_DGEMM;
    return nullptr;
  }
  if (DPC_BLAS_SET_THREADS[0]) {
    auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(lib, DPC_BLAS_SET_THREADS));
    if (set_threads) set_threads(1);
  }
  return gemm;
}

PairDPCompress::PairDPCompress(LAMMPS *lmp) : Pair(lmp)
{
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  centroidstressflag = CENTROID_AVAIL;
  no_virial_fdotr_compute = 1;    // the runtime returns the virial itself
  // ghosts' forces (3) and per-atom virials (9), sent back to their owners under newton off
  comm_reverse = 12;
  comm_reverse_off = 12;
  ghostneigh = 0;                 // set by open_model for a model that passes messages
  cutghost = nullptr;
}

PairDPCompress::~PairDPCompress()
{
  close_model();
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
    memory->destroy(cutghost);
  }
}

void PairDPCompress::close_model()
{
  if (workspace) dpc_workspace_free(workspace);
  if (model) dpc_model_close(model);
  if (mapped) munmap(const_cast<void *>(mapped), mapped_bytes);
  workspace = nullptr;
  model = nullptr;
  mapped = nullptr;
  mapped_bytes = 0;
}

/* A GPUMD nep.txt is tabulated once into <file>.dpc by dpcompress itself (the Python that built
 * this plugin), on rank 0, like LAMMPS's `shell` command; a .dpc newer than the text is reused.
 * One reader of models, in C: the plugin never parses the text format on its own. */
std::string PairDPCompress::tabulated_nep(const std::string &text)
{
  const std::string out = text + ".dpc";
  int status = 0;
  std::string reason;
  if (comm->me == 0) {
    const bool fresh = file_head(out, 8) == "DPCMODEL" && newer_or_same(out, text);
    if (!fresh) {
      utils::logmesg(lmp, "pair_style dpcompress: tabulating {} into {} (once)\n", text, out);
      const std::string cmd = shell_quote(DPC_PYTHON) + " -m dpcompress compress -i " + shell_quote(text) +
          " -o " + shell_quote(out) + " > " + shell_quote(out + ".log") + " 2>&1";
      status = std::system(cmd.c_str());
      if (status != 0) reason = "`" + cmd + "` failed (status " + std::to_string(status) + "; see " + out + ".log)";
    }
  }
  MPI_Bcast(&status, 1, MPI_INT, 0, world);
  if (status != 0)
    error->all(FLERR, "pair_style dpcompress: {}: could not tabulate the NEP model: {}", text,
               comm->me == 0 ? reason : std::string("see rank 0"));
  return out;
}

void PairDPCompress::open_model()
{
  close_model();
  if (file_head(path, 3) == "nep") path = tabulated_nep(path);
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) error->all(FLERR, "pair_style dpcompress: cannot open {}: {}", path, std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size <= 0) {
    close(fd);
    error->all(FLERR, "pair_style dpcompress: {} is empty or unreadable", path);
  }
  if (file_head(path, 8) != "DPCMODEL") {
    close(fd);
    error->all(FLERR,
               "pair_style dpcompress: {} is not a .dpc model file (nor a GPUMD nep.txt); LAMMPS reads "
               "the file that `dpcompress compress` writes (from a DeePMD-kit .dp/.yaml: dpcompress "
               "compress -i model.dp -o model.dpc)",
               path);
  }
  void *p = mmap(nullptr, (size_t) st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) error->all(FLERR, "pair_style dpcompress: cannot map {}: {}", path, std::strerror(errno));
  mapped = p;
  mapped_bytes = (size_t) st.st_size;

  std::string why;
  dpc_dgemm_t gemm = find_dgemm(why);
  dpc_error err;
  const int status = dpc_model_open(mapped, mapped_bytes, gemm, &model, &err);
  if (status != DPC_OK) {
    std::string msg = err.message;
    if (!gemm && msg.find("dgemm") != std::string::npos)
      msg += ": " + why + "; " + REBUILD;
    close_model();
    error->all(FLERR, "pair_style dpcompress: {}: {}", path, msg);
  }
  workspace = dpc_workspace_new();
  if (!workspace) error->one(FLERR, "pair_style dpcompress: out of memory for the workspace");
  rcut = dpc_model_rcut(model);
  ghost_width = dpc_model_ghost_width(model);
  messages = dpc_model_passes_messages(model) != 0;
#ifdef DPC_LAMMPS_TEST_SENDERS
  // test build only (tests/test_dpa2_domains.py): every model takes the message-passing path, with
  // senders within rcut of a center, so the ghost lists, the reordering and the force return can be
  // checked against Potential with any model
  if (!messages) ghost_width = 2.0 * rcut;
  messages = true;
#endif
  ghostneigh = messages ? 1 : 0;
}

/* pair_style dpcompress MODEL [threads N] [check N] [overflow warn|error|ignore]
 *                         [fparam V1 ... | fparam_from_compute ID] [aparam V1 ... | aparam_from_compute ID] */
static bool is_keyword(const std::string &s)
{
  static const char *const KEYS[] = {"threads", "check", "overflow", "fparam", "aparam", "fparam_from_compute",
                                     "aparam_from_compute", nullptr};
  for (const char *const *k = KEYS; *k; k++)
    if (s == *k) return true;
  return false;
}

void PairDPCompress::settings(int narg, char **arg)
{
  if (narg < 1) error->all(FLERR, "Illegal pair_style dpcompress command: the model file is missing");
  if (std::strcmp(update->unit_style, "metal") != 0)
    error->all(FLERR, "pair_style dpcompress needs units metal (Å, eV, ps); the input uses units {}",
               update->unit_style);
  path = arg[0];
  fparam_const.clear();
  aparam_const.clear();
  fparam_compute.clear();
  aparam_compute.clear();
  fparam_given = aparam_given = false;
  int k = 1;
  while (k < narg) {
    const std::string key = arg[k];
    if (key == "fparam" || key == "aparam") {
      // the values up to the next keyword (DeePMD-kit's pair_style deepmd syntax)
      std::vector<double> &values = key == "fparam" ? fparam_const : aparam_const;
      bool &given = key == "fparam" ? fparam_given : aparam_given;
      if (given) error->all(FLERR, "pair_style dpcompress: {} is given twice (or with {}_from_compute)", key, key);
      given = true;
      for (k++; k < narg && !is_keyword(arg[k]); k++) values.push_back(utils::numeric(FLERR, arg[k], false, lmp));
      if (values.empty()) error->all(FLERR, "pair_style dpcompress: keyword {} needs one or more values", key);
      continue;
    }
    if (k + 1 >= narg) error->all(FLERR, "pair_style dpcompress: keyword {} needs a value", key);
    if (key == "threads") {
      n_threads = utils::inumeric(FLERR, arg[k + 1], false, lmp);
      if (n_threads < 0) error->all(FLERR, "pair_style dpcompress: threads must be >= 0 (0: LAMMPS's count)");
    } else if (key == "check") {
      check_every = utils::inumeric(FLERR, arg[k + 1], false, lmp);
      if (check_every < 0) error->all(FLERR, "pair_style dpcompress: check must be >= 0 (0: at the end of a run only)");
    } else if (key == "overflow") {
      const std::string v = arg[k + 1];
      if (v == "warn") overflow_action = OVERFLOW_WARN;
      else if (v == "error") overflow_action = OVERFLOW_ERROR;
      else if (v == "ignore") overflow_action = OVERFLOW_IGNORE;
      else error->all(FLERR, "pair_style dpcompress: overflow must be warn, error or ignore, not {}", v);
    } else if (key == "fparam_from_compute" || key == "aparam_from_compute") {
      const bool frame = key == "fparam_from_compute";
      bool &given = frame ? fparam_given : aparam_given;
      if (given)
        error->all(FLERR, "pair_style dpcompress: {} is given twice (or with {})", key, frame ? "fparam" : "aparam");
      given = true;
      (frame ? fparam_compute : aparam_compute) = arg[k + 1];
    } else {
      error->all(FLERR,
                 "pair_style dpcompress: unknown keyword {} (known: threads, check, overflow, fparam, aparam, "
                 "fparam_from_compute, aparam_from_compute)",
                 key);
    }
    k += 2;
  }
  open_model();
  check_parameters();
}

/* The parameter keywords against what the model takes (numb_fparam, numb_aparam, default_fparam). */
void PairDPCompress::check_parameters()
{
  dim_fparam = dpc_model_dim_fparam(model);
  dim_aparam = dpc_model_dim_aparam(model);
  const struct {
    const char *key, *what;
    int64_t dim;
    bool given;
    const std::vector<double> &values;
  } kinds[2] = {{"fparam", "frame", dim_fparam, fparam_given, fparam_const},
                {"aparam", "atomic", dim_aparam, aparam_given, aparam_const}};
  for (const auto &p : kinds) {
    if (p.given && p.dim == 0)
      error->all(FLERR, "pair_style dpcompress: {} given, but the model {} takes no {} parameters (numb_{} = 0)", p.key,
                 path, p.what, p.key);
    if (!p.values.empty() && (int64_t) p.values.size() != p.dim)
      error->all(FLERR, "pair_style dpcompress: {} has {} values; the model {} takes numb_{} = {}", p.key,
                 p.values.size(), path, p.key, p.dim);
  }
  if (dim_fparam && !fparam_given && !dpc_model_has_default_fparam(model))
    error->all(FLERR,
               "pair_style dpcompress: the model {} takes {} frame parameters (numb_fparam) and stores no "
               "default_fparam: give fparam V1 ... or fparam_from_compute ID",
               path, dim_fparam);
  if (dim_aparam && !aparam_given)
    error->all(FLERR,
               "pair_style dpcompress: the model {} takes {} atomic parameters per atom (numb_aparam): give "
               "aparam V1 ... (the same for every atom) or aparam_from_compute ID",
               path, dim_aparam);
}

/* The compute named by fparam_from_compute / aparam_from_compute, checked for the shape the model
 * needs: a global scalar (one frame parameter) or vector of at least dim_fparam values; a per-atom
 * vector (one atomic parameter) or array of dim_aparam columns. */
Compute *PairDPCompress::parameter_compute(const std::string &id, bool atomic)
{
  const char *key = atomic ? "aparam_from_compute" : "fparam_from_compute";
  Compute *c = modify->get_compute_by_id(id);
  if (!c) error->all(FLERR, "pair_style dpcompress: {}: no compute with ID {}", key, id);
  if (atomic) {
    const bool ok = c->peratom_flag && ((dim_aparam == 1 && c->size_peratom_cols == 0) ||
                                        c->size_peratom_cols == dim_aparam);
    if (!ok)
      error->all(FLERR,
                 "pair_style dpcompress: aparam_from_compute: compute {} gives no per-atom {} of {} value(s) per "
                 "atom (numb_aparam = {})",
                 id, dim_aparam == 1 ? "vector" : "array", dim_aparam, dim_aparam);
  } else {
    const bool ok = (dim_fparam == 1 && c->scalar_flag) || (c->vector_flag && c->size_vector >= dim_fparam);
    if (!ok)
      error->all(FLERR,
                 "pair_style dpcompress: fparam_from_compute: compute {} gives no global {} (numb_fparam = {})", id,
                 dim_fparam == 1 ? "scalar or vector" : "vector of that many values", dim_fparam);
  }
  return c;
}

/* This step's frame parameters (raw), or nullptr: the model's default. */
const double *PairDPCompress::frame_parameters()
{
  if (!dim_fparam) return nullptr;
  if (fparam_compute.empty()) return fparam_const.empty() ? nullptr : fparam_const.data();
  Compute *c = parameter_compute(fparam_compute, false);
  fparam_now.resize((size_t) dim_fparam);
  // as LAMMPS's fixes invoke a compute: once per step (invoked_flag), then schedule the next
  modify->clearstep_compute();
  if (dim_fparam == 1 && c->scalar_flag) {
    if (!(c->invoked_flag & Compute::INVOKED_SCALAR)) {
      c->compute_scalar();
      c->invoked_flag |= Compute::INVOKED_SCALAR;
    }
    fparam_now[0] = c->scalar;
  } else {
    if (!(c->invoked_flag & Compute::INVOKED_VECTOR)) {
      c->compute_vector();
      c->invoked_flag |= Compute::INVOKED_VECTOR;
    }
    for (int64_t q = 0; q < dim_fparam; q++) fparam_now[q] = c->vector[q];
  }
  modify->addstep_compute(update->ntimestep + 1);
  return fparam_now.data();
}

/* This step's atomic parameters (raw) of the local atoms, [nlocal][dim_aparam]. */
const double *PairDPCompress::atomic_parameters(int nlocal)
{
  if (!dim_aparam) return nullptr;
  const size_t na = (size_t) dim_aparam;
  aparam_now.resize(std::max<size_t>(1, (size_t) nlocal * na));
  if (aparam_compute.empty()) {
    for (int i = 0; i < nlocal; i++) std::copy(aparam_const.begin(), aparam_const.end(), aparam_now.begin() + i * na);
    return aparam_now.data();
  }
  Compute *c = parameter_compute(aparam_compute, true);
  modify->clearstep_compute();
  if (!(c->invoked_flag & Compute::INVOKED_PERATOM)) {
    c->compute_peratom();
    c->invoked_flag |= Compute::INVOKED_PERATOM;
  }
  for (int i = 0; i < nlocal; i++)
    for (size_t q = 0; q < na; q++)
      aparam_now[i * na + q] = c->size_peratom_cols == 0 ? c->vector_atom[i] : c->array_atom[i][q];
  modify->addstep_compute(update->ntimestep + 1);
  return aparam_now.data();
}

/* pair_coeff * * E1 E2 ... : one element name (from the model's type map), atomic number or NULL per LAMMPS type */
void PairDPCompress::coeff(int narg, char **arg)
{
  if (!model) error->all(FLERR, "pair_coeff before pair_style dpcompress opened a model");
  const int ntypes = atom->ntypes;
  if (narg != 2 + ntypes || std::strcmp(arg[0], "*") != 0 || std::strcmp(arg[1], "*") != 0)
    error->all(FLERR, "pair_coeff for dpcompress is `pair_coeff * * E1 ... E{}`: one element (or NULL) per atom type",
               ntypes);
  if (!allocated) {
    allocated = 1;
    memory->create(setflag, ntypes + 1, ntypes + 1, "pair:setflag");
    memory->create(cutsq, ntypes + 1, ntypes + 1, "pair:cutsq");
    memory->create(cutghost, ntypes + 1, ntypes + 1, "pair:cutghost");
  }
  const int64_t nmodel = dpc_model_ntypes(model);
  std::string known;
  for (int64_t t = 0; t < nmodel; t++) known += std::string(t ? " " : "") + dpc_model_type_name(model, t);
  type_of.assign(ntypes + 1, -1);
  for (int i = 1; i <= ntypes; i++) {
    if (std::strcmp(arg[1 + i], "NULL") == 0) continue;
    const std::string name = element_of(arg[1 + i]);  // a symbol, or an atomic number (PWMLFF's inputs)
    if (name.empty())
      error->all(FLERR, "pair_coeff: atomic number {} of atom type {} is not in 1 ... 118", arg[1 + i], i);
    for (int64_t t = 0; t < nmodel; t++)
      if (name == dpc_model_type_name(model, t)) type_of[i] = (int) t;
    if (type_of[i] < 0)
      error->all(FLERR, "pair_coeff: element {} of atom type {} is not in the model's type map ({}) of {}", name, i,
                 known, path);
  }
  for (int i = 1; i <= ntypes; i++)
    for (int j = 1; j <= ntypes; j++) setflag[i][j] = type_of[i] >= 0 && type_of[j] >= 0;
}

void PairDPCompress::init_style()
{
  if (!atom->tag_enable) error->all(FLERR, "pair_style dpcompress needs atom IDs");
  // the computes exist and have the right shape (they may be defined after pair_style)
  if (!fparam_compute.empty()) parameter_compute(fparam_compute, false);
  if (!aparam_compute.empty()) parameter_compute(aparam_compute, true);
  if (!messages) {
    // every neighbor of every local atom, ghosts included: the model is many-body
    neighbor->add_request(this, NeighConst::REQ_FULL);
    return;
  }
  // Message passing: the ghosts within w = ghost_width - rcut of a center are senders and need their
  // own neighbors within rcut (REQ_GHOST: LAMMPS lists the ghosts' neighbors too, within cutghost + skin
  // = rcut + skin).  A sender within w of a center now was within w + skin of the sub-domain at the last
  // reneighboring (each atom moves at most skin/2 in between), and its neighbors within rcut now were
  // within rcut + skin of it: they are ghosts when the communication cutoff is ghost_width + 2 skin.
  // The list cutoff stays rcut (init_one): LAMMPS's communication cutoff is the larger of the
  // neighbor cutoff and comm->cutghostuser (comm_modify cutoff), so only the latter is raised.
  if (comm->mode != Comm::SINGLE)
    error->all(FLERR,
               "pair_style dpcompress: the model {} passes messages (DPA-2) and needs one communication cutoff "
               "(comm_modify mode single)",
               path);
  neighbor->add_request(this, NeighConst::REQ_FULL | NeighConst::REQ_GHOST);
  const double need = ghost_width + 2.0 * neighbor->skin;
  if (comm->cutghostuser < need) {
    comm->cutghostuser = need;
    if (comm->me == 0)
      utils::logmesg(lmp,
                     "pair_style dpcompress: {} passes messages: ghost width {:.8g} A, communication cutoff "
                     "raised to {:.8g} A (ghost width + 2 x skin)\n",
                     path, ghost_width, need);
  }
}

double PairDPCompress::init_one(int i, int j)
{
  // the ghosts' lists (message passing) have the model's cutoff, as the local atoms' lists
  if (messages) cutghost[i][j] = cutghost[j][i] = rcut;
  return rcut;
}

/* Is a ghost at x within reach of this rank's sub-domain?  Per axis, as LAMMPS's Comm picks ghosts:
 * a slab test, in fractional coordinates for a triclinic box (a distance d along x moves the
 * fractional coordinate k by at most d |row k of H^-1|); a superset of the points within reach. */
bool PairDPCompress::is_sender(const double *x, double reach) const
{
  if (!domain->triclinic) {
    for (int k = 0; k < 3; k++)
      if (x[k] < domain->sublo[k] - reach || x[k] > domain->subhi[k] + reach) return false;
    return true;
  }
  const double *hi = domain->h_inv;
  const double len[3] = {std::sqrt(hi[0] * hi[0] + hi[5] * hi[5] + hi[4] * hi[4]),
                         std::sqrt(hi[1] * hi[1] + hi[3] * hi[3]), hi[2]};
  double xx[3] = {x[0], x[1], x[2]}, lamda[3];
  domain->x2lamda(xx, lamda);
  for (int k = 0; k < 3; k++)
    if (lamda[k] < domain->sublo_lamda[k] - reach * len[k] || lamda[k] > domain->subhi_lamda[k] + reach * len[k])
      return false;
  return true;
}

/* The frame of a model that passes messages, in a copy: the local atoms, then the senders (ghosts that
 * have a neighbor list, a model type and lie within ghost_width - rcut + skin/2 of the sub-domain: a
 * superset of the ghosts within ghost_width - rcut of a local atom, which may have moved skin/2 out of
 * it), then the other ghosts; candidate rows for the first nsender atoms, their indices renumbered into
 * the copy.  Returns nsender.  An extra sender (farther than ghost_width - rcut from every center, its
 * list maybe cut short by the ghost shell) is harmless: its state reaches no center. */
int64_t PairDPCompress::message_frame(int nlocal, int nall, bool per_atom_virial)
{
  const size_t n = (size_t) (nall > 0 ? nall : 1);
  order.resize(n);
  place.resize(n);
  has_row.assign(n, 0);
  for (int ii = 0; ii < list->inum + list->gnum; ii++) has_row[list->ilist[ii]] = 1;
  const double reach = ghost_width - rcut + 0.5 * neighbor->skin;
  double **x = atom->x;
  int64_t m = 0;
  for (int i = 0; i < nlocal; i++) order[m++] = i;
  for (int i = nlocal; i < nall; i++)
    if (has_row[i] && types[i] >= 0 && is_sender(x[i], reach)) {
      has_row[i] = 2;
      order[m++] = i;
    }
  const int64_t nsender = m;
  for (int i = nlocal; i < nall; i++)
    if (has_row[i] != 2) order[m++] = i;
  mx.resize(3 * n);
  mtypes.resize(n);
  mtags.resize(n);
  for (int64_t k = 0; k < nall; k++) {
    const int i = order[k];
    place[i] = (int) k;
    for (int a = 0; a < 3; a++) mx[3 * k + a] = x[i][a];
    mtypes[k] = types[i];
    mtags[k] = tags[i];
  }
  const size_t nrow = (size_t) (nsender > 0 ? nsender : 1);
  mstart.resize(nrow + 1);
  mcounts.resize(nrow);
  mrows.resize(nrow);
  mflat.clear();
  for (int64_t k = 0; k < nsender; k++) {
    const int i = order[k];
    mstart[k] = (int64_t) mflat.size();
    if (!has_row[i]) continue;    // a local atom this (sub-)style does not compute
    const int *cand = list->firstneigh[i];
    for (int c = 0; c < list->numneigh[i]; c++) mflat.push_back(place[cand[c] & NEIGHMASK]);
  }
  mstart[nsender] = (int64_t) mflat.size();
  for (int64_t k = 0; k < nsender; k++) {
    mcounts[k] = (int32_t) (mstart[k + 1] - mstart[k]);
    mrows[k] = mflat.data() + mstart[k];
  }
  mforces.assign(3 * n, 0.0);
  if (per_atom_virial) mvirial.assign(9 * n, 0.0);
  return nsender;
}

void PairDPCompress::compute(int eflag, int vflag)
{
  ev_init(eflag, vflag);
  const int nlocal = atom->nlocal;
  const int nall = nlocal + atom->nghost;
  const bool newton = force->newton_pair != 0;
  const size_t n = (size_t) (nall > 0 ? nall : 1);
  if (types.size() < n) {
    types.resize(n);
    tags.resize(n);
    forces.resize(3 * n);
    atom_virial.resize(9 * n);
  }
  if (counts.size() < (size_t) (nlocal > 0 ? nlocal : 1)) {
    counts.resize(nlocal > 0 ? nlocal : 1);
    rows.resize(nlocal > 0 ? nlocal : 1);
    atom_energy.resize(nlocal > 0 ? nlocal : 1);
  }
  for (int i = 0; i < nall; i++) {
    types[i] = type_of[atom->type[i]];
    tags[i] = (int64_t) atom->tag[i];
  }
  // the list's centers (a hybrid sub-style gets a subset); other local atoms have no candidates
  for (int i = 0; i < nlocal; i++) {
    counts[i] = 0;
    rows[i] = nullptr;
  }
  for (int ii = 0; ii < list->inum; ii++) {
    const int i = list->ilist[ii];
    counts[i] = list->numneigh[i];
    rows[i] = list->firstneigh[i];
  }
  std::fill(forces.begin(), forces.begin() + 3 * (size_t) nall, 0.0);
  const bool per_atom_virial = vflag_atom || cvflag_atom;
  if (per_atom_virial) std::fill(atom_virial.begin(), atom_virial.begin() + 9 * (size_t) nall, 0.0);
  if (eflag_atom) std::fill(atom_energy.begin(), atom_energy.begin() + nlocal, 0.0);

  dpc_frame frame;
  std::memset(&frame, 0, sizeof frame);
  frame.natoms = nall;
  frame.nlocal = nlocal;
  frame.x = nall ? atom->x[0] : nullptr;
  frame.type = types.data();
  frame.tag = tags.data();
  frame.numneigh = counts.data();
  frame.firstneigh = rows.data();
  frame.neighmask = NEIGHMASK;
  frame.fparam = frame_parameters();
  frame.aparam = atomic_parameters(nlocal);
  dpc_outputs out;
  out.force = forces.data();
  out.atom_energy = eflag_atom ? atom_energy.data() : nullptr;
  out.atom_virial = per_atom_virial ? atom_virial.data() : nullptr;
  out.descriptor = nullptr;
  if (messages) {
    // the reordered copy: centers, senders, other ghosts (local atoms keep their places)
    const int64_t nsender = message_frame(nlocal, nall, per_atom_virial);
    frame.x = nall ? mx.data() : nullptr;
    frame.type = mtypes.data();
    frame.tag = mtags.data();
    frame.numneigh = mcounts.data();
    frame.firstneigh = mrows.data();
    frame.neighmask = 0;    // renumbered indices carry no special bits
    // (the test build sends no senders to a model that does not pass messages)
    frame.nsender = dpc_model_passes_messages(model) ? nsender : 0;
    out.force = mforces.data();
    out.atom_virial = per_atom_virial ? mvirial.data() : nullptr;
  }
  dpc_result res;
  dpc_error err;
  const int nth = n_threads > 0 ? n_threads : comm->nthreads;
  const int status = dpc_compute(model, workspace, &frame, nth, &out, &res, &err);
  if (status != DPC_OK) {
    const int64_t *id = messages ? mtags.data() : tags.data();
    if (status == DPC_ERR_COINCIDENT && err.atom_i >= 0 && err.atom_i < nall && err.atom_j >= 0 && err.atom_j < nall)
      error->one(FLERR, "pair_style dpcompress on step {}: atoms {} and {} (IDs) coincide (distance^2 {:.3g} Å^2)",
                 update->ntimestep, id[err.atom_i], id[err.atom_j], err.d2);
    error->one(FLERR, "pair_style dpcompress on step {}: {}", update->ntimestep, err.message);
  }
  if (messages) {
    // back to LAMMPS's order (forces[] and atom_virial[] were zeroed above)
    for (int64_t k = 0; k < nall; k++) {
      const size_t i = (size_t) order[k];
      for (int a = 0; a < 3; a++) forces[3 * i + a] = mforces[3 * k + a];
      if (per_atom_virial)
        for (int c = 0; c < 9; c++) atom_virial[9 * i + c] = mvirial[9 * k + c];
    }
  }

  // ghosts' contributions go to their owners: LAMMPS does it under newton on, this style under off
  if (!newton) {
    reverse_width = per_atom_virial ? 12 : 3;
    comm->reverse_comm(this, reverse_width);
  }
  const int nout = newton ? nall : nlocal;
  double **f = atom->f;
  for (int i = 0; i < nout; i++)
    for (int a = 0; a < 3; a++) f[i][a] += forces[3 * (size_t) i + a];
  if (eflag_global) eng_vdwl += res.energy;
  if (eflag_atom)
    for (int i = 0; i < nlocal; i++) eatom[i] += atom_energy[i];
  if (vflag_global) {
    const double *W = res.virial;
    virial[0] += W[0];
    virial[1] += W[4];
    virial[2] += W[8];
    virial[3] += 0.5 * (W[1] + W[3]);
    virial[4] += 0.5 * (W[2] + W[6]);
    virial[5] += 0.5 * (W[5] + W[7]);
  }
  if (per_atom_virial) {
    for (int i = 0; i < nout; i++) {
      const double *W = atom_virial.data() + 9 * (size_t) i;
      if (vflag_atom) {
        vatom[i][0] += W[0];
        vatom[i][1] += W[4];
        vatom[i][2] += W[8];
        vatom[i][3] += 0.5 * (W[1] + W[3]);
        vatom[i][4] += 0.5 * (W[2] + W[6]);
        vatom[i][5] += 0.5 * (W[5] + W[7]);
      }
      if (cvflag_atom) {
        const int order[9] = {0, 4, 8, 1, 2, 5, 3, 6, 7};
        for (int c = 0; c < 9; c++) cvatom[i][c] += W[order[c]];
      }
    }
  }

  pending[0] += res.beyond_fine;
  pending[1] += res.beyond_table;
  pending[2] += res.overflow;
  report_counts(false);
}

/* Every check_every steps (and when asked): the table counts summed over ranks, reported once. */
void PairDPCompress::report_counts(bool force_now)
{
  if (overflow_action == OVERFLOW_IGNORE) return;
  const bool due = force_now || (check_every > 0 && update->ntimestep % check_every == 0);
  if (!due) return;
  int64_t total[3];
  MPI_Allreduce(pending, total, 3, MPI_INT64_T, MPI_SUM, world);
  for (int k = 0; k < 3; k++) pending[k] = 0;
  if (total[1] == 0 && total[2] == 0) return;
  const std::string what = fmt::format(
      "pair_style dpcompress, up to step {}: {} neighbor entries beyond the model's table (extrapolated; "
      "{} beyond the fine part), {} neighbors dropped because a sel block was full: the structure "
      "left what the model was compressed for (recompress with a larger -e, or check the run)",
      update->ntimestep, total[1], total[0], total[2]);
  if (overflow_action == OVERFLOW_ERROR) error->all(FLERR, what);
  if (comm->me == 0) error->warning(FLERR, what);
}

/* End of a run: what the last partial interval counted. */
void PairDPCompress::finish()
{
  report_counts(true);
}

int PairDPCompress::pack_reverse_comm(int n, int first, double *buf)
{
  int m = 0;
  for (int i = first; i < first + n; i++) {
    for (int a = 0; a < 3; a++) buf[m++] = forces[3 * (size_t) i + a];
    if (reverse_width == 12)
      for (int c = 0; c < 9; c++) buf[m++] = atom_virial[9 * (size_t) i + c];
  }
  return m;
}

void PairDPCompress::unpack_reverse_comm(int n, int *list_of, double *buf)
{
  int m = 0;
  for (int k = 0; k < n; k++) {
    const int j = list_of[k];
    for (int a = 0; a < 3; a++) forces[3 * (size_t) j + a] += buf[m++];
    if (reverse_width == 12)
      for (int c = 0; c < 9; c++) atom_virial[9 * (size_t) j + c] += buf[m++];
  }
}

double PairDPCompress::memory_usage()
{
  double bytes = Pair::memory_usage();
  bytes += (double) types.capacity() * (sizeof(int32_t) + sizeof(int64_t));
  bytes += (double) (forces.capacity() + atom_virial.capacity() + atom_energy.capacity()) * sizeof(double);
  bytes += (double) counts.capacity() * (sizeof(int32_t) + sizeof(void *));
  bytes += (double) (fparam_now.capacity() + aparam_now.capacity()) * sizeof(double);
  if (workspace) bytes += (double) dpc_workspace_bytes(workspace);
  return bytes;
}

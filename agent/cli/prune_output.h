// The result of a prune (retention/prune.h) as `mailvault prune` shows it, shared with
// `mailvault forget --prune`.
#pragma once

#include <nlohmann/json.hpp>

#include "retention/prune.h"

namespace mv::agent {

nlohmann::json PruneJson(const retention::PruneResult& r);
void PrintPruneHuman(const retention::PruneResult& r);  // on stdout; a stale-lock note on stderr

}  // namespace mv::agent

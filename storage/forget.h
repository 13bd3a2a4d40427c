// Removing a snapshot manifest (`mailvault forget`, docs/FORMAT.md §7): the manifest goes, the
// packs it referenced stay until a prune decides which blobs no remaining snapshot needs.
#pragma once

#include <string>

#include "storage/repository.h"
#include "storage/status.h"

namespace mv::storage {

// Unlinks snapshots/<id> through repo.env() and fsyncs snapshots/, so the removal survives a
// crash once this returns. `id` is a full snapshot ID (32 hex digits); kNotFound when there is
// no such manifest. The caller holds the exclusive lock (storage/lock.h).
Status RemoveSnapshot(Repository& repo, const std::string& id);

}  // namespace mv::storage

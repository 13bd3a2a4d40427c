// Extended attributes kept by backups (docs/FORMAT.md §7, §10): user.* and the POSIX ACLs
// (system.posix_acl_access, system.posix_acl_default). Other namespaces (security.*, trusted.*)
// are not kept: they belong to the host's security policy and are counted so the backup can say so.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/snapshot.h"
#include "storage/status.h"

namespace mv::storage {

// Whether backups keep the attribute `name`.
bool KeptXattr(std::string_view name);

// Reads the kept attributes of `name` in directory `dirfd` without following a final symlink
// (one llistxattr when there are none). `*not_kept` counts attributes present but not kept
// (other namespaces, or unreadable). A filesystem without xattr support yields none.
std::vector<Xattr> ReadXattrs(int dirfd, const std::string& name, uint64_t* not_kept);

// Sets `xattrs` on the open file or directory `fd`; `path` is for messages. The first failure
// is returned, naming the attribute; the others are still tried.
Status WriteXattrs(int fd, const std::vector<Xattr>& xattrs, const std::string& path);

}  // namespace mv::storage

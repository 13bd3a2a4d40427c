// The header fields `mailvault find` searches (docs/FORMAT.md §15), parsed from the first bytes of
// a message file as it is, whatever it is: folded lines are unfolded, RFC 2047 encoded words in
// UTF-8, US-ASCII, ISO-8859-1/-15 and Windows-1252 are decoded, other bytes that are not UTF-8 are
// read as Latin-1, and anything else (no header at all, binary junk, a missing field) gives empty
// fields, never an error: a backup never fails on a malformed message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mv::mailfiles {

// How much of a message the parser reads at most: headers beyond it are not seen.
constexpr size_t kHeaderScanBytes = 64 * 1024;
// Each field is cut to this many bytes (a Subject of a megabyte is junk, not a subject).
constexpr size_t kHeaderFieldMax = 1024;

struct HeaderFields {
  std::string date, from, to, subject, message_id;  // valid UTF-8; message_id without <>
  int64_t date_unix = 0;  // the Date field as Unix seconds (UTC); 0 when it does not parse
};

// Parses the header of the message whose first bytes are `data` (up to kHeaderScanBytes are
// looked at). The first occurrence of each field wins; To includes Cc.
HeaderFields ParseHeaders(std::string_view data);

// RFC 5322 date-time ("Tue, 1 Jul 2003 10:52:37 +0200", day name and seconds optional, obsolete
// zone names accepted) as Unix seconds; 0 when it does not parse.
int64_t ParseRfc5322Date(std::string_view s);

// Lower-cases ASCII letters and folds a few common accented Latin letters no further: what
// find's case-insensitive substring match compares.
std::string FoldCase(std::string_view s);

}  // namespace mv::mailfiles

// Where the S3 credentials come from (issue #6): the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY) or a file in the AWS shared credentials format, which is also how a
// swarm secret is mounted:
//   [default]
//   aws_access_key_id = AKIA...
//   aws_secret_access_key = ...
// The secret never appears in an error message, whatever is wrong.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "storage/s3/sigv4.h"
#include "storage/status.h"

namespace mv::storage::s3 {

// Parses the text of a shared credentials file and returns `profile`'s keys. `path` is only
// named in messages. Fails (kInvalidArgument) naming the file, the line or the profile: no such
// profile (listing the ones there are), a key missing, a line that is neither a [section], a
// comment (# or ;) nor key = value.
Result<Credentials> ParseCredentialsFile(std::string_view text, const std::string& path,
                                         const std::string& profile);

// The credentials to use: from `file` (its `profile`, default "default") when one is given,
// else from the environment as `getenv` reads it (AWS_PROFILE is not consulted without a file).
// Fails naming what to set when neither has them.
Result<Credentials> LoadCredentials(const std::string& file, const std::string& profile,
                                    const std::function<const char*(const char*)>& getenv);

}  // namespace mv::storage::s3

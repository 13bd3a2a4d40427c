// The real Ceph RGW the S3 tests run against (tests/s3/rgw.sh: mon, memstore OSD, RGW on
// loopback). Under ctest the rgw_start fixture has started one for every test and MV_RGW_DIR
// names its directory; a test binary run by hand starts its own on kPort and stops it at exit.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>

#include "storage/s3/http.h"
#include "storage/s3/location.h"

namespace mv::testing {

class Rgw {
 public:
  static constexpr int kPort = 17480;  // not RGW's default, so a developer's own is left alone

  // The running RGW's env file (MV_S3_ENDPOINT, AWS_ACCESS_KEY_ID, ...), or nullptr when it
  // could not be started (the test then fails, naming the log).
  static const Rgw* Get() {
    static Rgw* rgw = Start();
    return rgw && rgw->env.count("AWS_SECRET_ACCESS_KEY") ? rgw : nullptr;
  }
  std::string operator[](const std::string& k) const {
    auto it = env.find(k);
    return it == env.end() ? "" : it->second;
  }
  std::string log;
  std::map<std::string, std::string> env;

  // Creates `bucket` as the main user (200, or 409 when it exists and is ours).
  static ::testing::AssertionResult MakeBucket(const std::string& bucket) {
    storage::s3::Request req;
    req.method = "PUT";
    return AsOwner(bucket, req);
  }
  // Sets `bucket`'s policy (JSON) as the main user.
  static ::testing::AssertionResult PutBucketPolicy(const std::string& bucket,
                                                    const std::string& policy) {
    storage::s3::Request req;
    req.method = "PUT";
    req.query = {{"policy", ""}};
    req.body = policy;
    return AsOwner(bucket, req);
  }

 private:
  static ::testing::AssertionResult AsOwner(const std::string& bucket,
                                            const storage::s3::Request& req) {
    const Rgw* r = Get();
    if (!r) return ::testing::AssertionFailure() << "no RGW";
    auto loc = storage::s3::ParseLocation("s3:" + (*r)["MV_S3_ENDPOINT"] + "/" + bucket, true);
    if (!loc.ok()) return ::testing::AssertionFailure() << loc.status().ToString();
    storage::s3::Client c(*loc, {(*r)["AWS_ACCESS_KEY_ID"], (*r)["AWS_SECRET_ACCESS_KEY"]},
                          "us-east-1");
    auto res = c.Send(req);
    if (!res.ok()) return ::testing::AssertionFailure() << res.status().ToString();
    if (res->status / 100 != 2 && res->status != 409)
      return ::testing::AssertionFailure() << storage::s3::DescribeError(*res);
    return ::testing::AssertionSuccess();
  }
  static Rgw* Start() {
    auto* r = new Rgw;
    const char* shared = std::getenv("MV_RGW_DIR");
    std::string dir;
    if (shared && *shared) {
      dir = shared;
    } else {
      dir = ::testing::TempDir() + "/mv-rgw-" + std::to_string(::getpid());
      r->log = dir + ".log";
      std::string cmd = "bash " + std::string(MAILVAULT_SOURCE_DIR) + "/tests/s3/rgw.sh start " +
                        dir + " " + std::to_string(kPort) + " >" + r->log + " 2>&1";
      if (std::system(cmd.c_str()) != 0) return r;
      static std::string stop;
      stop = "bash " + std::string(MAILVAULT_SOURCE_DIR) + "/tests/s3/rgw.sh stop " + dir +
             " >/dev/null 2>&1";
      std::atexit([] { (void)std::system(stop.c_str()); });
    }
    std::ifstream f(dir + "/env");
    for (std::string line; std::getline(f, line);) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) r->env[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return r;
  }
};

}  // namespace mv::testing

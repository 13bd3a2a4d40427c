#include <malloc.h>

#include "agent/cli/cli.h"

int main(int argc, char** argv) {
  // One malloc arena: the workers' short-lived pack and read buffers otherwise spread over
  // per-thread arenas that keep their freed memory (measured: 104 -> 85 MB peak RSS on a
  // 100k-message backup, same speed).
  mallopt(M_ARENA_MAX, 1);
  return mv::agent::RunCli(argc, argv);
}

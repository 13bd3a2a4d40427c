#include "agent/cli.h"

int main(int argc, char** argv) { return mv::agent::RunCli(argc, argv); }

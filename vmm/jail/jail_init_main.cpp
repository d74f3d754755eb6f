// vmm/jail/jail_init_main.cpp — `warren-jail-init`: the jail's single-threaded setup helper as
// a small binary of its own. The daemon spawns it once per create; starting it costs
// about a millisecond where re-executing the whole daemon binary cost ~10 ms.
#include "vmm/jail/jail_driver.hpp"

int main(int argc, char** argv) { return warren::vmm::jail_init_main(argc, argv); }

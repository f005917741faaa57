/*
 * webgwctl_main.c - the `webgwctl` CLI's entry point (the work is in ctl.c).
 */
#include <signal.h>

#include "node/node.h"

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    return node_ctl_main(argc, argv);
}

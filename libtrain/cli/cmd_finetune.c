#include "cli.h"
int cmd_finetune(int argc, char **argv) { (void)argc; (void)argv; return 0; }

// libFuzzer's driver entry (libclang_rt.fuzzer, linked by -sanitize=fuzzer). SwiftPM on Linux links an
// executable target with `--defsym main=<module>_main`, so libFuzzer's own main is never pulled in; each
// harness defines <module>_main and hands its arguments and LLVMFuzzerTestOneInput to this driver.
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

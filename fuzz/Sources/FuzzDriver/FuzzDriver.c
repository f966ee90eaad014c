// Empty: the header declares a function libFuzzer defines.
#include "FuzzDriver.h"

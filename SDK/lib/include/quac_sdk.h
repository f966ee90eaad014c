#ifndef QUAC_SDK_H
#define QUAC_SDK_H
#include "quac_plugin.h"
#endif

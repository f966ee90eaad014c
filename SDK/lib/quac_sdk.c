#include "quac_sdk.h"

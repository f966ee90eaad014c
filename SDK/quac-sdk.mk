# quac-sdk.mk -- build support for quac-host plugins written in C (or C++).
#
# Include it from a plugin's Makefile, after setting BUILD_DIR if you want another one:
#
#     QUAC_SDK ?= path/to/SDK
#     BUILD_DIR ?= build
#     include $(QUAC_SDK)/quac-sdk.mk
#
#     $(BUILD_DIR)/libmy_plugin.so: my_plugin.c $(QUAC_SDK_LIB) $(QUAC_SDK_HEADERS)
#     	@mkdir -p $(@D)
#     	$(CC) $(QUAC_SDK_CFLAGS) $(CFLAGS) $(QUAC_SDK_LDFLAGS) $(LDFLAGS) -o $@ my_plugin.c $(QUAC_SDK_LIBS)
#
# It defines
#   QUAC_SDK_DIR      the SDK folder (found from this file's own location)
#   QUAC_SDK_BUILD    where the helper library is built; default $(BUILD_DIR)/quac-sdk, so each plugin
#                     builds its own copy and nothing is written inside the SDK
#   QUAC_SDK_CFLAGS   include paths (the ABI header and quac_sdk.h), -std=c11 -fPIC -fvisibility=hidden,
#                     and QUAC_SDK_OPT (default -O2 -Wall -Wextra; override it to change those)
#   QUAC_SDK_LDFLAGS  -shared, and "no undefined symbols" where the linker supports it
#   QUAC_SDK_LIB      $(QUAC_SDK_BUILD)/libquacsdk.a, the helper library (make it a prerequisite)
#   QUAC_SDK_LIBS     what to link: the helper library, json-c (via pkg-config) and libm
#   QUAC_SDK_HEADERS  the two headers, for prerequisites
# and the rules that build $(QUAC_SDK_LIB) from $(QUAC_SDK_DIR)/lib/*.c. Including it does not change
# the including Makefile's default goal.
#
# -fvisibility=hidden keeps every symbol of the plugin and of the helper library private; only what is
# marked QUAC_EXPORT (quac_plugin_entry) is exported.

quac_sdk_goal_before := $(.DEFAULT_GOAL)

QUAC_SDK_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

BUILD_DIR ?= build
QUAC_SDK_BUILD ?= $(BUILD_DIR)/quac-sdk
PKG_CONFIG ?= pkg-config
AR ?= ar

QUAC_SDK_VERSION := 1.0.0
QUAC_SDK_OPT ?= -O2 -Wall -Wextra
QUAC_SDK_CFLAGS = -I$(QUAC_SDK_DIR)/include -I$(QUAC_SDK_DIR)/lib/include -std=c11 -fPIC -fvisibility=hidden \
                  $(QUAC_SDK_OPT)

quac_sdk_os := $(shell uname -s 2>/dev/null)
ifeq ($(quac_sdk_os),Darwin)
QUAC_SDK_LDFLAGS := -shared -Wl,-undefined,error
else
QUAC_SDK_LDFLAGS := -shared -Wl,-z,defs
endif

# json-c: its include flags go to the helper library only (the plugin never includes json-c).
QUAC_SDK_JSONC_CFLAGS := $(shell $(PKG_CONFIG) --cflags json-c 2>/dev/null)
QUAC_SDK_JSONC_LIBS := $(shell $(PKG_CONFIG) --libs json-c 2>/dev/null || echo -ljson-c)

QUAC_SDK_HEADERS := $(QUAC_SDK_DIR)/include/quac_plugin.h $(QUAC_SDK_DIR)/lib/include/quac_sdk.h
QUAC_SDK_SRCS := $(wildcard $(QUAC_SDK_DIR)/lib/*.c)
QUAC_SDK_OBJS := $(patsubst $(QUAC_SDK_DIR)/lib/%.c,$(QUAC_SDK_BUILD)/%.o,$(QUAC_SDK_SRCS))
QUAC_SDK_LIB := $(QUAC_SDK_BUILD)/libquacsdk.a
QUAC_SDK_LIBS = $(QUAC_SDK_LIB) $(QUAC_SDK_JSONC_LIBS) -lm

$(QUAC_SDK_OBJS): $(QUAC_SDK_BUILD)/%.o: $(QUAC_SDK_DIR)/lib/%.c $(QUAC_SDK_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(QUAC_SDK_CFLAGS) $(QUAC_SDK_JSONC_CFLAGS) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(QUAC_SDK_LIB): $(QUAC_SDK_OBJS)
	@mkdir -p $(@D)
	@rm -f $@
	$(AR) rcs $@ $(QUAC_SDK_OBJS)

.DEFAULT_GOAL := $(quac_sdk_goal_before)

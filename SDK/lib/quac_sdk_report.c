/* Reporting to the host: error messages (set_error), log lines, progress and cancellation. */
#include "quac_sdk.h"

#include <stdio.h>
#include <stdlib.h>

enum { STACK_MESSAGE_SIZE = 512 };

/* Formats into `stack` (size STACK_MESSAGE_SIZE) or, when longer, into a heap buffer the caller frees
 * when the result is not `stack`. Never fails: on a formatting error or without memory it returns the
 * (possibly truncated) stack text. Newlines become spaces. */
static char *format_line(char *stack, const char *fmt, va_list args) QUAC_SDK_PRINTF(2, 0);
static char *format_line(char *stack, const char *fmt, va_list args) {
    if (fmt == NULL) {
        snprintf(stack, STACK_MESSAGE_SIZE, "(no message)");
        return stack;
    }
    va_list again;
    va_copy(again, args);
    char *text = stack;
    int n = vsnprintf(stack, STACK_MESSAGE_SIZE, fmt, args);
    if (n < 0) {
        snprintf(stack, STACK_MESSAGE_SIZE, "(unformattable message: %s)", fmt);
    } else if ((size_t)n >= STACK_MESSAGE_SIZE) {
        char *heap = malloc((size_t)n + 1);
        if (heap != NULL) {
            vsnprintf(heap, (size_t)n + 1, fmt, again);
            text = heap;
        }
    }
    va_end(again);
    for (char *c = text; *c != '\0'; c++) {
        if (*c == '\n' || *c == '\r') *c = ' ';
    }
    return text;
}

quac_status quac_sdk_vfail(const quac_host *host, quac_status status, const char *fmt, va_list args) {
    if (!QUAC_SDK_HAS(host, quac_host, set_error)) return status;
    char stack[STACK_MESSAGE_SIZE];
    char *text = format_line(stack, fmt, args);
    host->set_error(host, text);
    if (text != stack) free(text);
    return status;
}

quac_status quac_sdk_fail(const quac_host *host, quac_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    quac_sdk_vfail(host, status, fmt, args);
    va_end(args);
    return status;
}

void quac_sdk_vlog(const quac_host *host, quac_log_level level, const char *fmt, va_list args) {
    if (!QUAC_SDK_HAS(host, quac_host, log)) return;
    char stack[STACK_MESSAGE_SIZE];
    char *text = format_line(stack, fmt, args);
    host->log(host, level, text);
    if (text != stack) free(text);
}

void quac_sdk_log(const quac_host *host, quac_log_level level, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    quac_sdk_vlog(host, level, fmt, args);
    va_end(args);
}

const char *quac_sdk_status_name(quac_status status) {
    switch (status) {
    case QUAC_OK: return "ok";
    case QUAC_ERR_INVALID_ARGUMENT: return "invalid argument";
    case QUAC_ERR_UNSUPPORTED: return "unsupported";
    case QUAC_ERR_OUT_OF_MEMORY: return "out of memory";
    case QUAC_ERR_CANCELLED: return "cancelled";
    case QUAC_ERR_IO: return "i/o error";
    case QUAC_ERR_VERSION: return "version mismatch";
    case QUAC_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

bool quac_sdk_is_cancelled(const quac_host *host) {
    return QUAC_SDK_HAS(host, quac_host, is_cancelled) && host->is_cancelled(host);
}

quac_status quac_sdk_cancelled(const quac_host *host) {
    return quac_sdk_fail(host, QUAC_ERR_CANCELLED, "cancelled");
}

void quac_sdk_progress(const quac_host *host, int64_t done, int64_t total, const char *label) {
    if (QUAC_SDK_HAS(host, quac_host, progress)) host->progress(host, done, total, label);
}

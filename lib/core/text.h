/* Untrusted text made safe to print, log and put in JSON. */
#ifndef LLMUX_CORE_TEXT_H
#define LLMUX_CORE_TEXT_H

#include <stddef.h>

/* Copy up to cap-1 bytes of untrusted text into out, replacing control
 * characters with spaces and bytes that are not UTF-8 with '?', and cutting
 * only between characters, so the message is valid UTF-8, safe to print and
 * log. */
void llmux__sanitize_text(char *out, size_t cap, const char *in, size_t len);

#endif

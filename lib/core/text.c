#include "core/text.h"

#include <string.h>

#include "core/utf8.h"

void llmux__sanitize_text(char *out, size_t cap, const char *in, size_t len)
{
    size_t o = 0;
    if (!cap)
        return;
    for (size_t i = 0; i < len && in[i] && o + 1 < cap;) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x80) {
            out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
            i++;
            continue;
        }
        size_t n = llmux__utf8_seq((const unsigned char *)in + i, len - i);
        if (!n) { /* not UTF-8: one '?' for the byte */
            out[o++] = '?';
            i++;
        } else if (o + n < cap) {
            memcpy(out + o, in + i, n);
            o += n;
            i += n;
        } else {
            break; /* the character does not fit whole: cut before it */
        }
    }
    out[o] = '\0';
}

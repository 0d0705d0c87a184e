/* The public header compiles alone as C11 -pedantic. */
#include "llmux.h"
#include "llmux.h" /* twice: the include guard works */
int llmux_header_c11_check(void);
int llmux_header_c11_check(void)
{
    llmux_call_options o = LLMUX_CALL_OPTIONS_INIT;
    return (int)o.version + LLMUX_OK;
}

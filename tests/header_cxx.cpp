// The public header compiles alone as C++.
#include "llmux.h"
int llmux_header_cxx_check();
int llmux_header_cxx_check()
{
    llmux_call_options o = LLMUX_CALL_OPTIONS_INIT;
    llmux_chunk_cb cb = nullptr;
    return static_cast<int>(o.version) + (cb ? 1 : 0) + LLMUX_ERR_BUDGET;
}

-- wrk script for llmux-sim: POST a small chat request.
--   wrk -t2 -c8 -d5s -s tools/llmux-sim/wrk_chat.lua http://127.0.0.1:PORT/bench/v1/chat/completions
-- Set WRK_STREAM=1 in the environment for a streaming request.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local stream = os.getenv("WRK_STREAM") == "1" and ',"stream":true' or ''
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},'
    .. '{"role":"user","content":"Say hello to the benchmark in a few words."}]' .. stream .. '}'

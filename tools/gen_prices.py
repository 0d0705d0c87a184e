#!/usr/bin/env python3
"""Generate lib/prices/prices_data.c, llmux's built-in price table, from
LiteLLM's model_prices_and_context_window.json.

The JSON ships inside the `litellm` wheel on PyPI, so no other network access
is needed:

    pip download litellm --no-deps -d /tmp/litellm
    tools/gen_prices.py /tmp/litellm/litellm-*.whl > lib/prices/prices_data.c

The argument is the wheel (the JSON is read from it) or the JSON itself (then
pass --version). Kept: chat models of OpenAI, Anthropic, Gemini (Google AI),
Bedrock and Azure that have an input and an output price and whose
deprecation date, if any, is not before the day the table is taken. Prices
become integers in femto-dollars per token (= nano-dollars per million
tokens), converted exactly from the JSON's decimal text.
"""
import argparse
import datetime
import json
import re
import sys
import zipfile
from decimal import Decimal

FAMILIES = ["openai", "anthropic", "gemini", "bedrock", "azure"]  # order of lx_price_family
PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "gemini": "gemini",
             "bedrock": "bedrock", "bedrock_converse": "bedrock", "azure": "azure"}
PREFIXES = {"gemini": "gemini/", "bedrock": "bedrock/", "azure": "azure/"}
# Bedrock cross-region inference profiles: priced as their base model
REGION = re.compile(r"^(us|eu|apac|global|jp|au|ca|us-gov)\.")
TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


def femto(v):
    """USD per token (a JSON number) -> integer femto-dollars per token, exactly."""
    d = Decimal(repr(v)) * (10 ** 15)
    if d != d.to_integral_value() or d < 0:
        raise ValueError("price %r is not a whole number of femto-dollars" % v)
    return int(d)


def price(v, key, fallback=-1):
    return femto(v[key]) if isinstance(v.get(key), (int, float)) else fallback


def load(path, version):
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist()
                        if n.endswith("litellm/model_prices_and_context_window_backup.json"))
            data = json.loads(z.read(name))
            if not version:
                m = re.search(r"litellm-([^-]+)-", path.split("/")[-1])
                version = m.group(1) if m else "unknown"
    else:
        with open(path) as f:
            data = json.load(f)
    return data, version or "unknown"


def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source", help="the litellm wheel, or model_prices_and_context_window.json")
    ap.add_argument("--version", help="the litellm version the JSON comes from")
    ap.add_argument("--date", help="the day the table is taken (YYYY-MM-DD; default today, UTC)")
    a = ap.parse_args()
    data, version = load(a.source, a.version)
    today = a.date or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")

    rows = {}
    for key, v in data.items():
        if not isinstance(v, dict) or v.get("mode") != "chat":
            continue
        fam = PROVIDERS.get(v.get("litellm_provider"))
        if not fam or "input_cost_per_token" not in v or "output_cost_per_token" not in v:
            continue
        if v.get("deprecation_date") and v["deprecation_date"] < today:
            continue
        model = key
        pre = PREFIXES.get(fam)
        if pre and model.startswith(pre):
            model = model[len(pre):]
        if "/" in model or model.startswith("ft:"):
            continue  # regional Azure copies (azure/eu/...), fine-tunes, routed ids
        if fam == "bedrock" and REGION.match(model):
            continue  # the lookup strips the region prefix
        tiers = sorted(int(m.group(1)) for k in v for m in [TIER.match(k)] if m)
        t = tiers[0] if tiers else 0
        sfx = "_above_%dk_tokens" % t
        r = {
            "input": price(v, "input_cost_per_token"),
            "output": price(v, "output_cost_per_token"),
            "cache_read": price(v, "cache_read_input_token_cost"),
            "cache_write": price(v, "cache_creation_input_token_cost"),
            "cache_write_1h": price(v, "cache_creation_input_token_cost_above_1hr"),
            "tier": t * 1000,
            "input_hi": price(v, "input_cost_per_token" + sfx) if t else -1,
            "output_hi": price(v, "output_cost_per_token" + sfx) if t else -1,
            "cache_read_hi": price(v, "cache_read_input_token_cost" + sfx) if t else -1,
            "cache_write_hi": price(v, "cache_creation_input_token_cost" + sfx) if t else -1,
            "cache_write_1h_hi": price(v, "cache_creation_input_token_cost_above_1hr" + sfx) if t else -1,
            "context": int(v.get("max_input_tokens") or 0),
            "max_output": int(v.get("max_output_tokens") or 0),
            "caps": " | ".join(c for c, f in [("LX_CAP_TOOLS", "supports_function_calling"),
                                              ("LX_CAP_VISION", "supports_vision"),
                                              ("LX_CAP_JSON_SCHEMA", "supports_response_schema"),
                                              ("LX_CAP_REASONING", "supports_reasoning")]
                               if v.get(f)) or "0",
        }
        k = (FAMILIES.index(fam), model)
        # the provider's own spelling (no prefix) wins over a prefixed duplicate
        if k not in rows or key == model:
            rows[k] = r

    # an Azure id the table does not hold falls back to OpenAI's: keep only the
    # Azure entries that differ
    az, oa = FAMILIES.index("azure"), FAMILIES.index("openai")
    for k in [k for k in rows if k[0] == az and rows.get((oa, k[1])) == rows[k]]:
        del rows[k]

    out = sys.stdout
    out.write("/* GENERATED by tools/gen_prices.py; do not edit. Regenerate:\n"
              " *   pip download litellm --no-deps -d /tmp/litellm\n"
              " *   tools/gen_prices.py /tmp/litellm/litellm-*.whl > lib/prices/prices_data.c\n"
              " * Source: LiteLLM's model_prices_and_context_window.json, from the litellm %s\n"
              " * wheel (PyPI), taken %s. Prices in femto-dollars per token; -1 = not given. */\n"
              % (version, today))
    out.write('#include "prices/prices.h"\n\n')
    out.write("const char llmux__prices_builtin_source[] = \"built-in (LiteLLM %s, %s)\";\n\n"
              % (version, today))
    out.write("const lx_price llmux__prices_builtin[] = {\n")
    starts = [0] * (len(FAMILIES) + 1)
    n = 0
    for fi in range(len(FAMILIES)):
        starts[fi] = n
        out.write("    /* %s */\n" % FAMILIES[fi])
        for (f, model) in sorted(k for k in rows if k[0] == fi):
            r = rows[(f, model)]
            out.write("    {%s, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %d, %s, NULL},\n" % (
                c_str(model), r["input"], r["output"], r["cache_read"], r["cache_write"],
                r["cache_write_1h"], r["tier"], r["input_hi"], r["output_hi"], r["cache_read_hi"],
                r["cache_write_hi"], r["cache_write_1h_hi"], r["context"], r["max_output"], r["caps"]))
            n += 1
    starts[len(FAMILIES)] = n
    out.write("};\n\n")
    out.write("const size_t llmux__prices_family_start[LX_PF_COUNT + 1] = {%s};\n"
              % ", ".join(str(s) for s in starts))
    sys.stderr.write("%d entries (%s)\n" % (n, ", ".join(
        "%s %d" % (FAMILIES[i], starts[i + 1] - starts[i]) for i in range(len(FAMILIES)))))


if __name__ == "__main__":
    main()

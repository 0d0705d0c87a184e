#include "ledger/ledger.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

int llmux__ledger_new(lx_ledger **out, long max_rows)
{
    lx_ledger *l = calloc(1, sizeof *l);
    if (!l)
        return LLMUX_ERR_NO_MEMORY;
    l->ops = &llmux__memory_store_ops;
    int rc = llmux__memory_store_new(&l->store, max_rows);
    if (rc) {
        free(l);
        return rc;
    }
    *out = l;
    return LLMUX_OK;
}

int llmux__ledger_open_journal(lx_ledger **out, const lx_journal_options *o, lx_err *err)
{
    lx_ledger *l = calloc(1, sizeof *l);
    if (!l)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    int rc = llmux__journal_open(&l->journal, o, err);
    if (rc) {
        free(l);
        return rc;
    }
    l->ops = &llmux__journal_store_ops;
    l->store = l->journal;
    *out = l;
    return LLMUX_OK;
}

void llmux__ledger_free(lx_ledger *l)
{
    if (!l)
        return;
    l->ops->free(l->store);
    free(l);
}

int llmux__ledger_reserve(lx_ledger *l, const lx_charge *expected, lx_reservation *r, lx_err *err)
{
    memset(r, 0, sizeof *r);
    int rc = l->ops->reserve(l->store, expected, r, err);
    r->active = rc == LLMUX_OK;
    return rc;
}

int llmux__ledger_settle(lx_ledger *l, lx_reservation *r, const lx_charge *actual, lx_err *err)
{
    if (!r->active)
        return LLMUX_OK;
    r->active = 0;
    return l->ops->settle(l->store, r, actual, err);
}

int llmux__ledger_report(lx_ledger *l, const char *group_by, char **out, lx_err *err)
{
    return l->ops->report(l->store, group_by, out, err);
}

void llmux__key_fingerprint(const char *key, char out[21])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "key-", 4);
    if (!EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL) || n < 8) {
        memcpy(out + 4, "unhashable", 11);
        return;
    }
    for (int i = 0; i < 8; i++) {
        out[4 + 2 * i] = hex[md[i] >> 4];
        out[5 + 2 * i] = hex[md[i] & 15];
    }
    out[20] = '\0';
}

/*
 * CRC-32 (IEEE 802.3, zlib's crc32): Bedrock's event-stream frames and the
 * ledger journal's records both check theirs with it.
 */
#ifndef LLMUX_CORE_CRC32_H
#define LLMUX_CORE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* The CRC of data, continued from crc (0 to start). */
uint32_t llmux__crc32(uint32_t crc, const void *data, size_t len);

#endif

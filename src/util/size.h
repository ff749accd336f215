/* Byte sizes as people write them in configs and on command lines:
 * "8GiB", "512 MiB", "1.5GB", "24G", "2k", "4096". */
#ifndef NS_UTIL_SIZE_H
#define NS_UTIL_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* A number (digits with at most one decimal point: no sign, exponent, hex
 * or inf) and a unit, case-insensitive, spaces around allowed: none or B;
 * KiB/MiB/GiB/TiB and their short forms K/Ki, M/Mi, G/Gi, T/Ti (powers of
 * 1024, as memory is counted); KB/MB/GB/TB (powers of 1000, as disks are).
 * At most 2^62 bytes. 0, or -1 with err ("unknown unit \"parsecs\" ..."). */
int ns_size_parse(const char *s, int64_t *out, char *err, size_t errlen);

#endif

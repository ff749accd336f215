/* Writes the seed corpus for fuzz_snapshot: small valid snapshots made with
 * the writer (empty, tokens only, messages, longest strings, no digest).
 *
 *   fuzz_snapshot_seeds OUT_DIR */
#include <stdio.h>
#include <string.h>

#include "runtime/snapshot.h"

static int seed(const char *dir, const char *name, int n_tokens, const char *messages, size_t kv_bytes,
                bool long_strings) {
    ns_snapshot_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.session, sizeof m.session, "s1");
    snprintf(m.model, sizeof m.model, "stories:260k");
    snprintf(m.model_digest, sizeof m.model_digest,
             "sha256:0000000000000000000000000000000000000000000000000000000000000000");
    snprintf(m.fingerprint, sizeof m.fingerprint, "llama layers=2 kv_dim=8 kv=f16");
    if (long_strings) {
        memset(m.session, 's', 64);
        memset(m.model, 'm', sizeof m.model - 1);
        m.model_digest[0] = '\0';
    }
    m.n_keep = 1;
    m.created = 1764000000000000000LL;
    m.n_tokens = n_tokens;
    m.messages_len = messages ? strlen(messages) : 0;
    m.kv_bytes = kv_bytes;
    int32_t tokens[64];
    unsigned char kv[512];
    for (int i = 0; i < 64; i++) tokens[i] = i * 37 + 1;
    for (size_t i = 0; i < sizeof kv; i++) kv[i] = (unsigned char)(i * 13);
    char err[512];
    if (ns_snapshot_write(dir, &m, tokens, messages, kv, false, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_snapshot_seeds OUT_DIR\n");
        return 2;
    }
    const char *d = argv[1];
    int bad = 0;
    bad |= seed(d, "empty", 0, NULL, 0, false);
    bad |= seed(d, "tokens", 16, NULL, 64, false);
    bad |= seed(d, "messages", 5, "[{\"role\":\"user\",\"content\":\"hi\"}]", 40, false);
    bad |= seed(d, "long", 64, "[]", 512, true);
    return bad;
}

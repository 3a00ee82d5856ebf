// cimages.h: the C libraries the image half of berth streams through: OpenSSL's libcrypto for sha256/sha512
// (assembly, SHA-NI where the CPU has it), zlib for gzip and libzstd for zstd. Each is a small opaque
// context fed in chunks, so download, decompression and hashing happen in one pass over the bytes.
#ifndef CIMAGES_H
#define CIMAGES_H
#include <stddef.h>
#include <stdint.h>

// ---- hashing ----
typedef struct bi_hash bi_hash;
#define BI_SHA256 0
#define BI_SHA512 1
/// NULL when libcrypto cannot make the context.
bi_hash *bi_hash_new(int algorithm);
void bi_hash_update(bi_hash *h, const void *data, size_t len);
/// Writes the digest (32 or 64 bytes) to out; returns its length, or -1. The context may be reused after.
int bi_hash_final(bi_hash *h, unsigned char *out);
void bi_hash_free(bi_hash *h);

// ---- decompression ----
typedef struct bi_dec bi_dec;
#define BI_GZIP 1
#define BI_ZSTD 2
bi_dec *bi_dec_new(int kind);
/// Runs the decoder over in[0..inlen) into out[0..outcap). *consumed and *produced say how much of each
/// was used. Returns 0 while the stream goes on, 1 when the (last) frame ended, -1 on corrupt input
/// (bi_dec_error says why). Concatenated gzip members and zstd frames are one stream, as gzip -d reads them.
int bi_dec_run(bi_dec *d, const void *in, size_t inlen, size_t *consumed, void *out, size_t outcap,
               size_t *produced);
const char *bi_dec_error(const bi_dec *d);
void bi_dec_free(bi_dec *d);

// ---- compression (push, save) ----
typedef struct bi_enc bi_enc;
bi_enc *bi_enc_new(int kind, int level);
/// Compresses in[0..inlen) into out; with finish != 0 flushes the end of the stream. Returns 0 when more
/// output room is needed or input is left (call again), 1 when all input was taken (and, finishing, the
/// stream is complete), -1 on error.
int bi_enc_run(bi_enc *e, const void *in, size_t inlen, size_t *consumed, void *out, size_t outcap,
               size_t *produced, int finish);
void bi_enc_free(bi_enc *e);

#endif

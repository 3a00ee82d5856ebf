// cimages.c: see cimages.h.
#include "cimages.h"
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

struct bi_hash {
    EVP_MD_CTX *ctx;
    const EVP_MD *md;
};

bi_hash *bi_hash_new(int algorithm) {
    bi_hash *h = calloc(1, sizeof(*h));
    if (!h) return NULL;
    h->md = algorithm == BI_SHA512 ? EVP_sha512() : EVP_sha256();
    h->ctx = EVP_MD_CTX_new();
    if (!h->ctx || EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1) {
        bi_hash_free(h);
        return NULL;
    }
    return h;
}

void bi_hash_update(bi_hash *h, const void *data, size_t len) {
    if (len) EVP_DigestUpdate(h->ctx, data, len);
}

int bi_hash_final(bi_hash *h, unsigned char *out) {
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1) return -1;
    if (EVP_DigestInit_ex(h->ctx, h->md, NULL) != 1) return -1;
    return (int)n;
}

void bi_hash_free(bi_hash *h) {
    if (!h) return;
    if (h->ctx) EVP_MD_CTX_free(h->ctx);
    free(h);
}

struct bi_dec {
    int kind;
    int ended;        // the last frame/member ended; more input starts a new one
    z_stream z;
    ZSTD_DStream *zs;
    char err[160];
};

bi_dec *bi_dec_new(int kind) {
    bi_dec *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    d->kind = kind;
    if (kind == BI_GZIP) {
        if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK) { free(d); return NULL; }
    } else if (kind == BI_ZSTD) {
        d->zs = ZSTD_createDStream();
        if (!d->zs) { free(d); return NULL; }
        ZSTD_initDStream(d->zs);
    } else {
        free(d);
        return NULL;
    }
    return d;
}

int bi_dec_run(bi_dec *d, const void *in, size_t inlen, size_t *consumed, void *out, size_t outcap,
               size_t *produced) {
    *consumed = 0;
    *produced = 0;
    if (d->kind == BI_GZIP) {
        if (d->ended && inlen > 0) {
            // Another gzip member follows (pigz, concatenated streams).
            if (inflateReset(&d->z) != Z_OK) { snprintf(d->err, sizeof d->err, "gzip: reset failed"); return -1; }
            d->ended = 0;
        }
        d->z.next_in = (Bytef *)in;
        d->z.avail_in = (uInt)inlen;
        d->z.next_out = out;
        d->z.avail_out = (uInt)outcap;
        int r = inflate(&d->z, Z_NO_FLUSH);
        *consumed = inlen - d->z.avail_in;
        *produced = outcap - d->z.avail_out;
        if (r == Z_STREAM_END) { d->ended = 1; return 1; }
        if (r == Z_OK) return 0;
        if (r == Z_BUF_ERROR && (*consumed > 0 || *produced > 0 || inlen == 0)) return 0;
        snprintf(d->err, sizeof d->err, "gzip: %s", d->z.msg ? d->z.msg : "corrupt stream");
        return -1;
    }
    ZSTD_inBuffer ib = {in, inlen, 0};
    ZSTD_outBuffer ob = {out, outcap, 0};
    size_t r = ZSTD_decompressStream(d->zs, &ob, &ib);
    *consumed = ib.pos;
    *produced = ob.pos;
    if (ZSTD_isError(r)) {
        snprintf(d->err, sizeof d->err, "zstd: %s", ZSTD_getErrorName(r));
        return -1;
    }
    if (r == 0) { d->ended = 1; return 1; }
    d->ended = 0;
    return 0;
}

const char *bi_dec_error(const bi_dec *d) { return d->err[0] ? d->err : "corrupt stream"; }

void bi_dec_free(bi_dec *d) {
    if (!d) return;
    if (d->kind == BI_GZIP) inflateEnd(&d->z);
    if (d->zs) ZSTD_freeDStream(d->zs);
    free(d);
}

struct bi_enc {
    int kind;
    z_stream z;
    ZSTD_CStream *zs;
};

bi_enc *bi_enc_new(int kind, int level) {
    bi_enc *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->kind = kind;
    if (kind == BI_GZIP) {
        if (deflateInit2(&e->z, level < 0 ? Z_DEFAULT_COMPRESSION : level, Z_DEFLATED, 16 + MAX_WBITS, 8,
                         Z_DEFAULT_STRATEGY) != Z_OK) { free(e); return NULL; }
    } else if (kind == BI_ZSTD) {
        e->zs = ZSTD_createCStream();
        if (!e->zs) { free(e); return NULL; }
        ZSTD_initCStream(e->zs, level < 0 ? 3 : level);
    } else {
        free(e);
        return NULL;
    }
    return e;
}

int bi_enc_run(bi_enc *e, const void *in, size_t inlen, size_t *consumed, void *out, size_t outcap,
               size_t *produced, int finish) {
    if (e->kind == BI_GZIP) {
        e->z.next_in = (Bytef *)in;
        e->z.avail_in = (uInt)inlen;
        e->z.next_out = out;
        e->z.avail_out = (uInt)outcap;
        int r = deflate(&e->z, finish ? Z_FINISH : Z_NO_FLUSH);
        *consumed = inlen - e->z.avail_in;
        *produced = outcap - e->z.avail_out;
        if (r == Z_STREAM_ERROR) return -1;
        if (finish) return r == Z_STREAM_END ? 1 : 0;
        return e->z.avail_in == 0 ? 1 : 0;
    }
    ZSTD_inBuffer ib = {in, inlen, 0};
    ZSTD_outBuffer ob = {out, outcap, 0};
    size_t r = ZSTD_compressStream2(e->zs, &ob, &ib, finish ? ZSTD_e_end : ZSTD_e_continue);
    *consumed = ib.pos;
    *produced = ob.pos;
    if (ZSTD_isError(r)) return -1;
    if (finish) return r == 0 ? 1 : 0;
    return ib.pos == ib.size ? 1 : 0;
}

void bi_enc_free(bi_enc *e) {
    if (!e) return;
    if (e->kind == BI_GZIP) deflateEnd(&e->z);
    if (e->zs) ZSTD_freeCStream(e->zs);
    free(e);
}

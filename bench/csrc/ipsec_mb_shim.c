/* Benchmark reference only: intel-ipsec-mb's direct AES-GCM API (IMB_AES*_GCM_PRE/ENC/DEC),
 * whose entry points are function pointers inside IMB_MGR, wrapped in plain functions so that
 * Rust can call them without mirroring the manager's layout. One packet per call. */
#include <intel-ipsec-mb.h>
#include <stdint.h>
#include <stdlib.h>

/* arch 0: the best this CPU runs (init_mb_mgr_auto); 1: the AVX2 code (128-bit AES-NI and
 * PCLMULQDQ with AVX2), the like-for-like reference for a CPU without VAES. */
IMB_MGR *rampart_imb_new(int arch)
{
        IMB_MGR *m = alloc_mb_mgr(0);
        if (m == NULL)
                return NULL;
        if (arch == 1)
                init_mb_mgr_avx2(m);
        else
                init_mb_mgr_auto(m, NULL);
        if (imb_get_errno(m) != 0) {
                free_mb_mgr(m);
                return NULL;
        }
        return m;
}

void rampart_imb_free(IMB_MGR *m) { free_mb_mgr(m); }

/* 1 SSE, 2 AVX, 3 AVX2, 4 AVX512 (IMB_ARCH); features as IMB_FEATURE_* bits. */
uint32_t rampart_imb_arch(const IMB_MGR *m) { return m->used_arch; }
uint64_t rampart_imb_features(const IMB_MGR *m) { return m->features; }

struct gcm_key_data *rampart_imb_gcm_key_new(IMB_MGR *m, const uint8_t *key, size_t key_len)
{
        struct gcm_key_data *kd = aligned_alloc(64, (sizeof(*kd) + 63) & ~(size_t)63);
        if (kd == NULL)
                return NULL;
        if (key_len == 16)
                IMB_AES128_GCM_PRE(m, key, kd);
        else
                IMB_AES256_GCM_PRE(m, key, kd);
        return kd;
}

void rampart_imb_gcm_key_free(struct gcm_key_data *kd)
{
        volatile uint8_t *p = (volatile uint8_t *)kd;
        for (size_t i = 0; i < sizeof(*kd); i++)
                p[i] = 0;
        free(kd);
}

void rampart_imb_gcm_seal(IMB_MGR *m, const struct gcm_key_data *kd, size_t key_len, const uint8_t *iv,
                          const uint8_t *aad, size_t aad_len, uint8_t *data, size_t len, uint8_t *tag)
{
        struct gcm_context_data ctx;
        if (key_len == 16)
                IMB_AES128_GCM_ENC(m, kd, &ctx, data, data, len, iv, aad, aad_len, tag, 16);
        else
                IMB_AES256_GCM_ENC(m, kd, &ctx, data, data, len, iv, aad, aad_len, tag, 16);
}

/* Returns 1 when the tag matches (compared without early exit). */
int rampart_imb_gcm_open(IMB_MGR *m, const struct gcm_key_data *kd, size_t key_len, const uint8_t *iv,
                         const uint8_t *aad, size_t aad_len, uint8_t *data, size_t len, const uint8_t *tag)
{
        struct gcm_context_data ctx;
        uint8_t t[16];
        uint8_t diff = 0;
        if (key_len == 16)
                IMB_AES128_GCM_DEC(m, kd, &ctx, data, data, len, iv, aad, aad_len, t, 16);
        else
                IMB_AES256_GCM_DEC(m, kd, &ctx, data, data, len, iv, aad, aad_len, t, 16);
        for (int i = 0; i < 16; i++)
                diff |= t[i] ^ tag[i];
        return diff == 0;
}

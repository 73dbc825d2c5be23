/* ecg12 frame encoder: portable C99 (see ecg12_frame.h). */
#include "ecg12_frame.h"

uint32_t ecg12_crc32(uint32_t crc, const uint8_t *data, size_t len) {
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int b = 0; b < 8; b++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)((v >> (8 * i)) & 0xFFu);
    }
}

size_t ecg12_encode_frame(uint8_t stream_id, uint8_t format, uint8_t status, uint16_t seq,
                          uint16_t fs_hz, uint32_t timestamp_us, const int32_t *samples_uv,
                          uint8_t n, uint8_t *out, size_t out_cap) {
    if (format > ECG12_FMT_INT24 || n == 0 || fs_hz == 0 || samples_uv == 0 || out == 0) {
        return 0;
    }
    const size_t width = (format == ECG12_FMT_INT16) ? 2u : 3u;
    const size_t total = ECG12_HEADER_LEN + width * n + ECG12_CRC_LEN;
    if (out_cap < total) {
        return 0;
    }
    const int32_t hi = (format == ECG12_FMT_INT16) ? 32767 : 8388607;
    const int32_t lo = -hi - 1;
    uint8_t *p = out + ECG12_HEADER_LEN;
    for (uint8_t i = 0; i < n; i++) {
        int32_t v = samples_uv[i];
        if (v > hi) {
            v = hi;
            status |= ECG12_STATUS_SATURATION;
        } else if (v < lo) {
            v = lo;
            status |= ECG12_STATUS_SATURATION;
        }
        uint32_t u = (uint32_t)v;
        for (size_t k = 0; k < width; k++) {
            *p++ = (uint8_t)((u >> (8 * k)) & 0xFFu);
        }
    }
    out[0] = ECG12_SYNC0;
    out[1] = ECG12_SYNC1;
    out[2] = ECG12_VERSION;
    out[3] = format;
    out[4] = stream_id;
    out[5] = status;
    put_u16(out + 6, seq);
    put_u16(out + 8, fs_hz);
    put_u32(out + 10, timestamp_us);
    out[14] = n;
    put_u32(p, ecg12_crc32(0, out, (size_t)(p - out)));
    return total;
}

void ecg12_encoder_init(ecg12_encoder_t *enc, uint8_t stream_id, uint8_t format,
                        uint16_t fs_hz) {
    enc->stream_id = stream_id;
    enc->format = format;
    enc->fs_hz = fs_hz;
    enc->seq = 0;
}

size_t ecg12_encoder_next(ecg12_encoder_t *enc, uint8_t status, uint32_t timestamp_us,
                          const int32_t *samples_uv, uint8_t n, uint8_t *out, size_t out_cap) {
    size_t len = ecg12_encode_frame(enc->stream_id, enc->format, status, enc->seq, enc->fs_hz,
                                    timestamp_us, samples_uv, n, out, out_cap);
    if (len) {
        enc->seq = (uint16_t)(enc->seq + 1u);
    }
    return len;
}

/* Host tool: reads test vectors, one per line, from stdin:
 *   stream_id format status seq fs_hz timestamp_us n s1 ... sn
 * and prints each encoded frame as lowercase hex on its own line ("ERROR" if rejected).
 * Build: cc -std=c99 -I../ecg12_sketch/src ecg12_encode_vectors.c ../ecg12_sketch/src/ecg12_frame.c
 */
#include <stdio.h>

#include "ecg12_frame.h"

int main(void) {
    unsigned sid, fmt, status, seq, fs, n;
    unsigned long ts;
    while (scanf("%u %u %u %u %u %lu %u", &sid, &fmt, &status, &seq, &fs, &ts, &n) == 7) {
        int32_t samples[ECG12_MAX_SAMPLES];
        long v;
        for (unsigned i = 0; i < n; i++) {
            if (scanf("%ld", &v) != 1) {
                return 2;
            }
            if (i < ECG12_MAX_SAMPLES) {
                samples[i] = (int32_t)v;
            }
        }
        uint8_t out[ECG12_MAX_FRAME_LEN];
        size_t len = (n > ECG12_MAX_SAMPLES) ? 0
            : ecg12_encode_frame((uint8_t)sid, (uint8_t)fmt, (uint8_t)status, (uint16_t)seq,
                                 (uint16_t)fs, (uint32_t)ts, samples, (uint8_t)n, out,
                                 sizeof out);
        if (len == 0) {
            puts("ERROR");
            continue;
        }
        for (size_t i = 0; i < len; i++) {
            printf("%02x", out[i]);
        }
        putchar('\n');
    }
    return 0;
}

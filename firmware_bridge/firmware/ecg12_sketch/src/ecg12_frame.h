/* ecg12 frame encoder: portable C99, no Arduino dependency. See firmware_bridge/SPEC.md.
 *
 * Frame (little-endian): EC 12 | version | flags | stream_id | status | seq u16 | fs_hz u16 |
 * timestamp_us u32 | n u8 | n x int16/int24 µV | CRC-32 (IEEE, as zlib.crc32) of all before.
 */
#ifndef ECG12_FRAME_H
#define ECG12_FRAME_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ECG12_SYNC0 0xECu
#define ECG12_SYNC1 0x12u
#define ECG12_VERSION 1u
#define ECG12_HEADER_LEN 15u
#define ECG12_CRC_LEN 4u
#define ECG12_MAX_SAMPLES 255u
#define ECG12_MAX_FRAME_LEN (ECG12_HEADER_LEN + 3u * ECG12_MAX_SAMPLES + ECG12_CRC_LEN)

/* sample formats (flags bits 0-1); 1 LSB = 1 µV */
#define ECG12_FMT_INT16 0u
#define ECG12_FMT_INT24 1u

/* status bits */
#define ECG12_STATUS_LEAD_OFF 0x01u       /* LO+ or LO- high during the frame */
#define ECG12_STATUS_SATURATION 0x02u     /* a sample hit the ADC rail or was clipped */
#define ECG12_STATUS_BATTERY_LOW 0x04u    /* battery below threshold */
#define ECG12_STATUS_CLOCK_UNSYNCED 0x08u /* clock not synchronised since boot */

typedef struct {
    uint8_t stream_id;
    uint8_t format; /* ECG12_FMT_* */
    uint16_t fs_hz; /* > 0 */
    uint16_t seq;   /* next sequence number; incremented (wrapping) per frame */
} ecg12_encoder_t;

/* CRC-32 (reflected, poly 0xEDB88320, init/xorout 0xFFFFFFFF); crc = 0 to start. */
uint32_t ecg12_crc32(uint32_t crc, const uint8_t *data, size_t len);

/* Encode one frame into out (capacity out_cap). Samples outside the format's range are
 * clipped and ECG12_STATUS_SATURATION is set. Returns the frame length, or 0 if the
 * arguments are invalid (n == 0 or > 255, fs_hz == 0, bad format, out_cap too small). */
size_t ecg12_encode_frame(uint8_t stream_id, uint8_t format, uint8_t status, uint16_t seq,
                          uint16_t fs_hz, uint32_t timestamp_us, const int32_t *samples_uv,
                          uint8_t n, uint8_t *out, size_t out_cap);

void ecg12_encoder_init(ecg12_encoder_t *enc, uint8_t stream_id, uint8_t format,
                        uint16_t fs_hz);

/* Encode the next frame of a stream and advance enc->seq. Returns the length or 0. */
size_t ecg12_encoder_next(ecg12_encoder_t *enc, uint8_t status, uint32_t timestamp_us,
                          const int32_t *samples_uv, uint8_t n, uint8_t *out, size_t out_cap);

#ifdef __cplusplus
}
#endif
#endif /* ECG12_FRAME_H */

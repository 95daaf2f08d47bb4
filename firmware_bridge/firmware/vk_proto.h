/*
 * vardkoll device protocol, framing v1: the reference device-side implementation.
 *
 * Portable C99: no dynamic allocation, no floating point, no libc beyond <stdint.h>/<stddef.h>,
 * fixed buffers sized by the macros below (a decoder takes VK_MAX_BODY + 8 bytes of RAM).
 * Suitable for ESP32 (ESP-IDF, Arduino) and AVR (avr-gcc). Not thread-safe: one decoder per port.
 *
 * The protocol is described in docs/firmware-protocol.md. Wire layout of one frame:
 *
 *   0x7E  stuffed( LEN | VER | TYPE | SEQ_lo | SEQ_hi | PAYLOAD[LEN] | CRC_lo | CRC_hi )
 *
 * Stuffing: 0x7E and 0x7D inside the frame are sent as 0x7D followed by (byte ^ 0x20).
 * CRC: CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor; check value
 * 0x29B1 for "123456789") over LEN..PAYLOAD, unstuffed. All integers little-endian.
 */
#ifndef VK_PROTO_H
#define VK_PROTO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VK_SOF 0x7Eu
#define VK_ESC 0x7Du
#define VK_ESC_XOR 0x20u
#define VK_FRAME_VERSION 1u
#define VK_PROTOCOL_VERSION 1u
#define VK_HEADER_LEN 5u
#define VK_CRC_LEN 2u
#define VK_MAX_PAYLOAD 128u
#define VK_MAX_BODY (VK_HEADER_LEN + VK_MAX_PAYLOAD + VK_CRC_LEN)
/* Worst case on the wire: the start byte plus every body byte escaped. */
#define VK_MAX_WIRE (1u + 2u * VK_MAX_BODY)

/* Message types */
#define VK_MSG_HELLO 0x01u
#define VK_MSG_HELLO_ACK 0x02u
#define VK_MSG_EVENT 0x03u
#define VK_MSG_ACK 0x04u
#define VK_MSG_TIME 0x05u
#define VK_MSG_NACK 0x06u

/* Device kinds (HELLO) */
#define VK_KIND_TICKET_DISPENSER 1u
#define VK_KIND_BUTTON_PANEL 2u
#define VK_KIND_QUEUE_PANEL 3u

/* EVENT flags */
#define VK_EVENT_TIME_SYNCED 0x01u

/* Reason codes (HELLO_ACK refusals and NACK) */
#define VK_REASON_NONE 0x00u
#define VK_REASON_UNSUPPORTED_VERSION 0x01u
#define VK_REASON_UNKNOWN_DEVICE 0x02u
#define VK_REASON_WRONG_UNIT 0x03u
#define VK_REASON_WRONG_KIND 0x04u
#define VK_REASON_NOT_HELLOED 0x05u
#define VK_REASON_UNKNOWN_INPUT 0x06u
#define VK_REASON_INVALID_EVENT 0x07u
#define VK_REASON_MALFORMED 0x08u
#define VK_REASON_TIME_NOT_SYNCED 0x09u
#define VK_REASON_SINK_UNAVAILABLE 0x0Au
#define VK_REASON_UNKNOWN_TYPE 0x0Bu

#define VK_MAX_DEVICE_ID 32u
#define VK_MAX_UNIT 39u
#define VK_MAX_ACK_SEQS 16u

/* ---- CRC ---------------------------------------------------------------------------------- */

/* Feed `len` bytes into a running CRC; start with crc = 0xFFFF. */
uint16_t vk_crc16(uint16_t crc, const uint8_t *data, size_t len);

/* ---- Encoder ------------------------------------------------------------------------------ */

/* Write one complete frame to `out`. Returns the number of bytes written, or 0 when the payload
 * is longer than VK_MAX_PAYLOAD or `out_cap` is too small (VK_MAX_WIRE always suffices). */
size_t vk_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t payload_len, uint8_t *out,
                 size_t out_cap);

/* ---- Decoder ------------------------------------------------------------------------------ */

typedef enum {
    VK_NEED_MORE = 0,      /* nothing to report yet */
    VK_FRAME = 1,          /* a complete, valid frame is in `out` */
    VK_ERR_CRC = 2,        /* a complete frame whose CRC did not match: dropped */
    VK_ERR_TRUNCATED = 3,  /* a start byte arrived inside a frame: the partial frame is dropped */
    VK_ERR_OVERSIZED = 4,  /* LEN > VK_MAX_PAYLOAD: dropped, hunting for the next start byte */
    VK_ERR_ESCAPE = 5,     /* 0x7D followed by a byte that does not unescape to 0x7E/0x7D */
    VK_ERR_VERSION = 6     /* valid CRC but a frame version this decoder does not speak */
} vk_result;

typedef struct {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    uint8_t payload_len;
    const uint8_t *payload; /* points into the decoder's buffer: valid until the next push */
} vk_frame;

typedef struct {
    uint8_t in_frame;        /* 0: hunting for a start byte */
    uint8_t escaped;         /* the previous byte was 0x7D */
    uint16_t pos;            /* unstuffed bytes in buf */
    uint32_t garbage_bytes;  /* bytes skipped while hunting (noise, the rest of a broken frame) */
    uint8_t buf[VK_MAX_BODY];
} vk_decoder;

void vk_decoder_init(vk_decoder *dec);

/* Push one received byte. On VK_FRAME, `out` describes the frame. */
vk_result vk_decoder_push(vk_decoder *dec, uint8_t byte, vk_frame *out);

/* ---- Messages ----------------------------------------------------------------------------- */

/* Builders return the payload length written to `out` (which must hold VK_MAX_PAYLOAD bytes),
 * or 0 on invalid input (e.g. an empty or over-long device id). Strings are not NUL-terminated
 * on the wire. */
size_t vk_build_hello(uint8_t kind, uint8_t fw_major, uint8_t fw_minor, uint8_t fw_patch, uint32_t store_id,
                      const char *device_id, const char *unit, uint8_t *out);
size_t vk_build_event(uint32_t local_seq, uint8_t input, uint8_t flags, uint64_t device_time_ms, uint32_t ref,
                      uint8_t *out);
/* A device answers a frame it cannot use (unknown type, malformed payload) with a NACK. */
size_t vk_build_nack(uint8_t reason, uint8_t ref_type, uint16_t ref_frame_seq, uint32_t ref_local_seq, uint8_t *out);

typedef struct {
    uint8_t accepted;
    uint8_t reason;
    uint64_t time_ms; /* Unix time in ms (UTC) */
} vk_hello_ack;

typedef struct {
    uint8_t count;
    uint32_t local_seqs[VK_MAX_ACK_SEQS];
} vk_ack;

typedef struct {
    uint8_t reason;
    uint8_t ref_type;
    uint16_t ref_frame_seq;
    uint32_t ref_local_seq;
} vk_nack;

/* Parsers return 1 on success, 0 when the payload has the wrong length or shape. */
int vk_parse_hello_ack(const uint8_t *payload, size_t len, vk_hello_ack *out);
int vk_parse_ack(const uint8_t *payload, size_t len, vk_ack *out);
int vk_parse_time(const uint8_t *payload, size_t len, uint64_t *time_ms);
int vk_parse_nack(const uint8_t *payload, size_t len, vk_nack *out);

#ifdef __cplusplus
}
#endif

#endif /* VK_PROTO_H */

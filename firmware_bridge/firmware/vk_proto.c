/* vardkoll device protocol, framing v1: see vk_proto.h and docs/firmware-protocol.md. */
#include "vk_proto.h"

uint16_t vk_crc16(uint16_t crc, const uint8_t *data, size_t len)
{
    size_t i;
    uint8_t bit;
    for (i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)data[i] << 8);
        for (bit = 0; bit < 8; bit++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

/* Append one body byte, escaped when needed. Returns the new position, or 0 when out of room. */
static size_t put_stuffed(uint8_t *out, size_t pos, size_t cap, uint8_t byte)
{
    if (byte == VK_SOF || byte == VK_ESC) {
        if (pos + 2u > cap) {
            return 0;
        }
        out[pos++] = VK_ESC;
        out[pos++] = (uint8_t)(byte ^ VK_ESC_XOR);
        return pos;
    }
    if (pos + 1u > cap) {
        return 0;
    }
    out[pos++] = byte;
    return pos;
}

size_t vk_encode(uint8_t type, uint16_t seq, const uint8_t *payload, size_t payload_len, uint8_t *out,
                 size_t out_cap)
{
    uint8_t header[VK_HEADER_LEN];
    uint8_t trailer[VK_CRC_LEN];
    uint16_t crc;
    size_t pos = 0;
    size_t i;

    if (payload_len > VK_MAX_PAYLOAD || out_cap < 1u || (payload_len > 0u && payload == NULL)) {
        return 0;
    }
    header[0] = (uint8_t)payload_len;
    header[1] = VK_FRAME_VERSION;
    header[2] = type;
    header[3] = (uint8_t)(seq & 0xFFu);
    header[4] = (uint8_t)(seq >> 8);
    crc = vk_crc16(0xFFFFu, header, VK_HEADER_LEN);
    crc = vk_crc16(crc, payload, payload_len);
    trailer[0] = (uint8_t)(crc & 0xFFu);
    trailer[1] = (uint8_t)(crc >> 8);

    out[pos++] = VK_SOF;
    for (i = 0; i < VK_HEADER_LEN; i++) {
        if ((pos = put_stuffed(out, pos, out_cap, header[i])) == 0u) {
            return 0;
        }
    }
    for (i = 0; i < payload_len; i++) {
        if ((pos = put_stuffed(out, pos, out_cap, payload[i])) == 0u) {
            return 0;
        }
    }
    for (i = 0; i < VK_CRC_LEN; i++) {
        if ((pos = put_stuffed(out, pos, out_cap, trailer[i])) == 0u) {
            return 0;
        }
    }
    return pos;
}

void vk_decoder_init(vk_decoder *dec)
{
    dec->in_frame = 0;
    dec->escaped = 0;
    dec->pos = 0;
    dec->garbage_bytes = 0;
}

static vk_result hunt(vk_decoder *dec, vk_result why)
{
    dec->in_frame = 0;
    dec->escaped = 0;
    dec->pos = 0;
    return why;
}

vk_result vk_decoder_push(vk_decoder *dec, uint8_t byte, vk_frame *out)
{
    uint16_t body_len;
    uint16_t got_crc;

    if (!dec->in_frame) {
        if (byte == VK_SOF) {
            dec->in_frame = 1;
            dec->escaped = 0;
            dec->pos = 0;
        } else {
            dec->garbage_bytes++;
        }
        return VK_NEED_MORE;
    }
    if (byte == VK_SOF) {
        /* A start byte never occurs inside a frame: whatever came before it is cut short. */
        vk_result result = (dec->pos > 0u || dec->escaped) ? VK_ERR_TRUNCATED : VK_NEED_MORE;
        dec->escaped = 0;
        dec->pos = 0;
        return result;
    }
    if (byte == VK_ESC) {
        if (dec->escaped) {
            return hunt(dec, VK_ERR_ESCAPE);
        }
        dec->escaped = 1;
        return VK_NEED_MORE;
    }
    if (dec->escaped) {
        dec->escaped = 0;
        byte = (uint8_t)(byte ^ VK_ESC_XOR);
        if (byte != VK_SOF && byte != VK_ESC) {
            return hunt(dec, VK_ERR_ESCAPE);
        }
    }
    dec->buf[dec->pos++] = byte;
    if (dec->pos == 1u && dec->buf[0] > VK_MAX_PAYLOAD) {
        return hunt(dec, VK_ERR_OVERSIZED);
    }
    body_len = (uint16_t)(VK_HEADER_LEN + dec->buf[0]);
    if (dec->pos < body_len + VK_CRC_LEN) {
        return VK_NEED_MORE;
    }
    got_crc = (uint16_t)(dec->buf[body_len] | ((uint16_t)dec->buf[body_len + 1u] << 8));
    if (vk_crc16(0xFFFFu, dec->buf, body_len) != got_crc) {
        return hunt(dec, VK_ERR_CRC);
    }
    if (dec->buf[1] != VK_FRAME_VERSION) {
        return hunt(dec, VK_ERR_VERSION);
    }
    out->version = dec->buf[1];
    out->type = dec->buf[2];
    out->seq = (uint16_t)(dec->buf[3] | ((uint16_t)dec->buf[4] << 8));
    out->payload_len = dec->buf[0];
    out->payload = &dec->buf[VK_HEADER_LEN];
    return hunt(dec, VK_FRAME);
}

/* ---- Messages ----------------------------------------------------------------------------- */

static void put_u16(uint8_t *out, uint16_t value)
{
    out[0] = (uint8_t)(value & 0xFFu);
    out[1] = (uint8_t)(value >> 8);
}

static void put_u32(uint8_t *out, uint32_t value)
{
    uint8_t i;
    for (i = 0; i < 4u; i++) {
        out[i] = (uint8_t)((value >> (8u * i)) & 0xFFu);
    }
}

static void put_u64(uint8_t *out, uint64_t value)
{
    uint8_t i;
    for (i = 0; i < 8u; i++) {
        out[i] = (uint8_t)((value >> (8u * i)) & 0xFFu);
    }
}

static uint16_t get_u16(const uint8_t *in)
{
    return (uint16_t)(in[0] | ((uint16_t)in[1] << 8));
}

static uint32_t get_u32(const uint8_t *in)
{
    return (uint32_t)in[0] | ((uint32_t)in[1] << 8) | ((uint32_t)in[2] << 16) | ((uint32_t)in[3] << 24);
}

static uint64_t get_u64(const uint8_t *in)
{
    uint64_t value = 0;
    int8_t i;
    for (i = 7; i >= 0; i--) {
        value = (value << 8) | in[i];
    }
    return value;
}

static int id_char_ok(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
}

static size_t text_len(const char *text, size_t max)
{
    size_t n = 0;
    while (text[n] != '\0') {
        if (n == max || !id_char_ok(text[n])) {
            return max + 1u;
        }
        n++;
    }
    return n;
}

size_t vk_build_hello(uint8_t kind, uint8_t fw_major, uint8_t fw_minor, uint8_t fw_patch, uint32_t store_id,
                      const char *device_id, const char *unit, uint8_t *out)
{
    size_t id_len;
    size_t unit_len;
    size_t pos = 0;
    size_t i;

    if (device_id == NULL || unit == NULL) {
        return 0;
    }
    id_len = text_len(device_id, VK_MAX_DEVICE_ID);
    unit_len = text_len(unit, VK_MAX_UNIT);
    if (id_len == 0u || id_len > VK_MAX_DEVICE_ID || unit_len == 0u || unit_len > VK_MAX_UNIT) {
        return 0;
    }
    out[pos++] = VK_PROTOCOL_VERSION;
    out[pos++] = kind;
    out[pos++] = fw_major;
    out[pos++] = fw_minor;
    out[pos++] = fw_patch;
    put_u32(&out[pos], store_id);
    pos += 4u;
    out[pos++] = (uint8_t)id_len;
    for (i = 0; i < id_len; i++) {
        out[pos++] = (uint8_t)device_id[i];
    }
    out[pos++] = (uint8_t)unit_len;
    for (i = 0; i < unit_len; i++) {
        out[pos++] = (uint8_t)unit[i];
    }
    return pos;
}

size_t vk_build_event(uint32_t local_seq, uint8_t input, uint8_t flags, uint64_t device_time_ms, uint32_t ref,
                      uint8_t *out)
{
    put_u32(&out[0], local_seq);
    out[4] = input;
    out[5] = flags;
    put_u64(&out[6], device_time_ms);
    put_u32(&out[14], ref);
    return 18u;
}

int vk_parse_hello_ack(const uint8_t *payload, size_t len, vk_hello_ack *out)
{
    if (len != 10u || payload[0] > 1u) {
        return 0;
    }
    out->accepted = payload[0];
    out->reason = payload[1];
    out->time_ms = get_u64(&payload[2]);
    return 1;
}

int vk_parse_ack(const uint8_t *payload, size_t len, vk_ack *out)
{
    uint8_t i;
    if (len < 1u || payload[0] == 0u || payload[0] > VK_MAX_ACK_SEQS || len != 1u + 4u * (size_t)payload[0]) {
        return 0;
    }
    out->count = payload[0];
    for (i = 0; i < out->count; i++) {
        out->local_seqs[i] = get_u32(&payload[1u + 4u * i]);
    }
    return 1;
}

int vk_parse_time(const uint8_t *payload, size_t len, uint64_t *time_ms)
{
    if (len != 8u) {
        return 0;
    }
    *time_ms = get_u64(payload);
    return 1;
}

int vk_parse_nack(const uint8_t *payload, size_t len, vk_nack *out)
{
    if (len != 8u) {
        return 0;
    }
    out->reason = payload[0];
    out->ref_type = payload[1];
    out->ref_frame_seq = get_u16(&payload[2]);
    out->ref_local_seq = get_u32(&payload[4]);
    return 1;
}

size_t vk_build_nack(uint8_t reason, uint8_t ref_type, uint16_t ref_frame_seq, uint32_t ref_local_seq, uint8_t *out)
{
    out[0] = reason;
    out[1] = ref_type;
    put_u16(&out[2], ref_frame_seq);
    put_u32(&out[4], ref_local_seq);
    return 8u;
}

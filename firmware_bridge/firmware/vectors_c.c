/*
 * Test harness for the reference implementation: reads commands from stdin, one per line, and
 * writes results to stdout, so the Python tests can check C and Python against the same vectors.
 * Hex strings are lowercase without separators; "-" stands for no bytes.
 *
 *   crc HEX                                   -> crc XXXX
 *   encode TYPE SEQ HEX                       -> wire HEX | wire error
 *   decode HEX                                -> frame VER TYPE SEQ HEX | error NAME ... then end GARBAGE PENDING
 *   hello KIND MAJ MIN PATCH STORE_ID DEVICE UNIT  -> payload HEX | payload error
 *   event LOCAL_SEQ INPUT FLAGS TIME_MS REF  -> payload HEX
 *   nack REASON REF_TYPE REF_FRAME_SEQ REF_LOCAL_SEQ -> payload HEX
 *   parse TYPE HEX                            -> hello_ack A R T | ack S... | time T | nack R T F L | invalid
 *
 * Numbers are decimal. Build: cc -std=c99 -Wall -Wextra -pedantic -O2 vk_proto.c vectors_c.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_proto.h"

#define LINE_MAX_CHARS 16384
#define BYTES_MAX (LINE_MAX_CHARS / 2)

static char line[LINE_MAX_CHARS];
static uint8_t bytes[BYTES_MAX];
static uint8_t wire[VK_MAX_WIRE];

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Returns the byte count, or -1 on a malformed hex string. */
static long parse_hex(const char *text, uint8_t *out, size_t cap)
{
    size_t n = 0;
    if (text == NULL) return -1;
    if (strcmp(text, "-") == 0) return 0;
    while (text[0] != '\0' && text[1] != '\0') {
        int hi = hex_value(text[0]);
        int lo = hex_value(text[1]);
        if (hi < 0 || lo < 0 || n == cap) return -1;
        out[n++] = (uint8_t)((hi << 4) | lo);
        text += 2;
    }
    return text[0] == '\0' ? (long)n : -1;
}

static void print_hex(const uint8_t *data, size_t len)
{
    size_t i;
    if (len == 0) {
        fputs("-", stdout);
        return;
    }
    for (i = 0; i < len; i++) printf("%02x", data[i]);
}

static unsigned long long number(const char *text)
{
    return text == NULL ? 0ull : strtoull(text, NULL, 10);
}

static const char *error_name(vk_result result)
{
    switch (result) {
    case VK_ERR_CRC: return "crc";
    case VK_ERR_TRUNCATED: return "truncated";
    case VK_ERR_OVERSIZED: return "oversized";
    case VK_ERR_ESCAPE: return "escape";
    case VK_ERR_VERSION: return "version";
    default: return "unknown";
    }
}

static void cmd_decode(const char *hex)
{
    static vk_decoder dec;
    vk_frame frame;
    long n = parse_hex(hex, bytes, sizeof bytes);
    long i;
    if (n < 0) {
        puts("bad input");
        return;
    }
    vk_decoder_init(&dec);
    for (i = 0; i < n; i++) {
        vk_result result = vk_decoder_push(&dec, bytes[i], &frame);
        if (result == VK_FRAME) {
            printf("frame %u %u %u ", frame.version, frame.type, frame.seq);
            print_hex(frame.payload, frame.payload_len);
            putchar('\n');
        } else if (result != VK_NEED_MORE) {
            printf("error %s\n", error_name(result));
        }
    }
    printf("end %lu %d\n", (unsigned long)dec.garbage_bytes, dec.in_frame && (dec.pos > 0 || dec.escaped) ? 1 : 0);
}

static void cmd_parse(unsigned type, const char *hex)
{
    long n = parse_hex(hex, bytes, sizeof bytes);
    if (n < 0) {
        puts("bad input");
        return;
    }
    if (type == VK_MSG_HELLO_ACK) {
        vk_hello_ack ack;
        if (vk_parse_hello_ack(bytes, (size_t)n, &ack)) {
            printf("hello_ack %u %u %llu\n", ack.accepted, ack.reason, (unsigned long long)ack.time_ms);
            return;
        }
    } else if (type == VK_MSG_ACK) {
        vk_ack ack;
        if (vk_parse_ack(bytes, (size_t)n, &ack)) {
            uint8_t i;
            fputs("ack", stdout);
            for (i = 0; i < ack.count; i++) printf(" %lu", (unsigned long)ack.local_seqs[i]);
            putchar('\n');
            return;
        }
    } else if (type == VK_MSG_TIME) {
        uint64_t time_ms;
        if (vk_parse_time(bytes, (size_t)n, &time_ms)) {
            printf("time %llu\n", (unsigned long long)time_ms);
            return;
        }
    } else if (type == VK_MSG_NACK) {
        vk_nack nack;
        if (vk_parse_nack(bytes, (size_t)n, &nack)) {
            printf("nack %u %u %u %lu\n", nack.reason, nack.ref_type, nack.ref_frame_seq,
                   (unsigned long)nack.ref_local_seq);
            return;
        }
    }
    puts("invalid");
}

int main(void)
{
    while (fgets(line, sizeof line, stdin) != NULL) {
        char *argv[10];
        int argc = 0;
        char *token = strtok(line, " \r\n");
        while (token != NULL && argc < 10) {
            argv[argc++] = token;
            token = strtok(NULL, " \r\n");
        }
        if (argc == 0) continue;
        if (strcmp(argv[0], "crc") == 0 && argc == 2) {
            long n = parse_hex(argv[1], bytes, sizeof bytes);
            if (n < 0) {
                puts("bad input");
            } else {
                printf("crc %04x\n", vk_crc16(0xFFFFu, bytes, (size_t)n));
            }
        } else if (strcmp(argv[0], "encode") == 0 && argc == 4) {
            long n = parse_hex(argv[3], bytes, sizeof bytes);
            size_t written = n < 0 ? 0 : vk_encode((uint8_t)number(argv[1]), (uint16_t)number(argv[2]), bytes, (size_t)n,
                                                  wire, sizeof wire);
            fputs("wire ", stdout);
            if (written == 0) {
                fputs("error", stdout);
            } else {
                print_hex(wire, written);
            }
            putchar('\n');
        } else if (strcmp(argv[0], "decode") == 0 && argc == 2) {
            cmd_decode(argv[1]);
        } else if (strcmp(argv[0], "hello") == 0 && argc == 8) {
            uint8_t payload[VK_MAX_PAYLOAD];
            size_t n = vk_build_hello((uint8_t)number(argv[1]), (uint8_t)number(argv[2]), (uint8_t)number(argv[3]),
                                      (uint8_t)number(argv[4]), (uint32_t)number(argv[5]), argv[6], argv[7], payload);
            fputs("payload ", stdout);
            if (n == 0) {
                fputs("error", stdout);
            } else {
                print_hex(payload, n);
            }
            putchar('\n');
        } else if (strcmp(argv[0], "event") == 0 && argc == 6) {
            uint8_t payload[VK_MAX_PAYLOAD];
            size_t n = vk_build_event((uint32_t)number(argv[1]), (uint8_t)number(argv[2]), (uint8_t)number(argv[3]),
                                      (uint64_t)number(argv[4]), (uint32_t)number(argv[5]), payload);
            fputs("payload ", stdout);
            print_hex(payload, n);
            putchar('\n');
        } else if (strcmp(argv[0], "nack") == 0 && argc == 5) {
            uint8_t payload[VK_MAX_PAYLOAD];
            size_t n = vk_build_nack((uint8_t)number(argv[1]), (uint8_t)number(argv[2]), (uint16_t)number(argv[3]),
                                     (uint32_t)number(argv[4]), payload);
            fputs("payload ", stdout);
            print_hex(payload, n);
            putchar('\n');
        } else if (strcmp(argv[0], "parse") == 0 && argc == 3) {
            cmd_parse((unsigned)number(argv[1]), argv[2]);
        } else {
            puts("bad command");
        }
        fflush(stdout);
    }
    return 0;
}

/*
 * fuzz_handshake.c - libFuzzer target: arbitrary bytes into a server-role
 * driver from the first byte on (HTTP head parsing, refusals, keep-alive,
 * the switch to frames). See fuzz_util.h for the input layout.
 *
 * flags: bit 0 subprotocols configured, bit 1 max_head_size 256,
 *        bit 2 answer non-upgrades with eev_driver_http_reply,
 *        bit 3 echo messages, bit 4 eev_driver_eof at the end.
 */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const protos[] = {"chat", "superchat", "x", NULL};
    eev_options opt = {.role = EEV_ROLE_SERVER};
    fuzz_ctx c = {0};
    eev_driver *d;

    if (size < 2)
        return 0;
    if (data[0] & 1)
        opt.protocols = protos;
    if (data[0] & 2)
        opt.max_head_size = 256;
    c.http_reply = data[0] & 4;
    c.echo = data[0] & 8;
    c.rng = 0x9E3779B9u ^ data[1];
    if (eev_driver_new(&d, &fuzz_callbacks, &opt, &c) != 0)
        return 0;
    fuzz_feed(d, &c, data[1] == 0, data + 2, size - 2);
    if (data[0] & 16)
        eev_driver_eof(d);
    fuzz_drain(d, &c, NULL, 0);
    (void)eev_driver_finished(d);
    (void)eev_driver_protocol(d);
    eev_driver_del(d);
    return 0;
}

/*
 * hostile_consumer: an importer written against include/extmem.h alone, for a hostile
 * producer (extmem-hostile-peer). It listens at the path given, serves one connection with
 * the raw message API (extmem_channel_recv, then the checked imports), and prints
 *   CLEAN                      the producer said Bye after a good hand-off
 *   REFUSED <status>: <text>   the first thing refused (answered with a Verdict, ok 0)
 * then "FDS <before> <after>" (descriptors open before accepting and after cleaning up) and
 * "VALIDATION <n>". Exit 0 for CLEAN, 3 for REFUSED; anything else is a bug.
 */
#include "extmem.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int open_fds(void) {
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

static extmem_message msg, reply;

static void send_verdict(extmem_channel *ch, int ok, const char *detail) {
    memset(&reply, 0, sizeof reply);
    reply.struct_size = sizeof reply;
    reply.kind = EXTMEM_MESSAGE_VERDICT;
    reply.fd = -1;
    reply.ok = ok ? VK_TRUE : VK_FALSE;
    snprintf(reply.detail, sizeof reply.detail, "%s", detail);
    (void)extmem_channel_send(ch, &reply);
}

/* Serves until Bye (EXTMEM_OK) or the first failure (its status). */
static extmem_status serve(extmem_context *ctx, extmem_channel *ch) {
    extmem_memory *shared = NULL;
    extmem_pool_importer *pool = NULL;
    extmem_pooled_import *held[16];
    int n_held = 0;
    extmem_status s = extmem_pool_importer_create(ctx, &pool);
    static unsigned char data[1 << 20];
    while (s == EXTMEM_OK) {
        memset(&msg, 0, sizeof msg);
        msg.struct_size = sizeof msg;
        if ((s = extmem_channel_recv(ch, &msg)) != EXTMEM_OK) break;
        if (msg.kind == EXTMEM_MESSAGE_SHARE) {
            extmem_memory_destroy(shared);
            shared = NULL;
            if ((s = extmem_memory_import(ctx, &msg.descriptor, msg.fd, &shared)) == EXTMEM_OK)
                send_verdict(ch, 1, "imported");
        } else if (msg.kind == EXTMEM_MESSAGE_POOL_BLOCK) {
            s = extmem_pool_importer_add_block(pool, &msg.block, msg.fd);
        } else if (msg.kind == EXTMEM_MESSAGE_POOL_SHARE) {
            if (n_held == 16) {
                s = EXTMEM_ERROR_MISUSE;
                break;
            }
            if ((s = extmem_pool_importer_bind(pool, &msg.pooled, &held[n_held])) == EXTMEM_OK) {
                n_held++;
                reply = msg;
                reply.kind = EXTMEM_MESSAGE_POOL_HELD;
                reply.handle = msg.pooled.handle;
                reply.fd = -1;
                s = extmem_channel_send(ch, &reply);
            }
        } else if (msg.kind == EXTMEM_MESSAGE_FRAME_READY && shared) {
            uint64_t size = 0;
            if ((s = extmem_memory_data_size(shared, &size)) == EXTMEM_OK && size <= sizeof data &&
                (s = extmem_memory_read(shared, data, (size_t)size, NULL)) == EXTMEM_OK)
                s = extmem_frames_signal_done(ch, msg.frame);
        } else if (msg.kind == EXTMEM_MESSAGE_BYE) {
            break;
        } else {
            if (msg.fd >= 0) close(msg.fd);
            fprintf(stderr, "unexpected message %u\n", msg.kind);
            s = EXTMEM_ERROR_PROTOCOL;
        }
    }
    if (s != EXTMEM_OK) {
        printf("REFUSED %s: %s\n", extmem_status_name(s), extmem_last_error_message());
        send_verdict(ch, 0, extmem_last_error_message());
    }
    for (int i = 0; i < n_held; i++) (void)extmem_pooled_import_release(held[i], NULL);
    extmem_pool_importer_destroy(pool);
    extmem_memory_destroy(shared); /* NULL when nothing was imported: refused, harmless */
    return s;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: hostile_consumer SOCKET\n");
        return 2;
    }
    extmem_context_options o;
    memset(&o, 0, sizeof o);
    o.struct_size = sizeof o;
    o.validation = VK_TRUE;
    o.device_index = -1;
    extmem_context *ctx = NULL;
    extmem_listener *l = NULL;
    extmem_channel *ch = NULL;
    if (extmem_context_create(&o, &ctx) != EXTMEM_OK || extmem_listener_bind(argv[1], &l) != EXTMEM_OK) {
        fprintf(stderr, "setup: %s\n", extmem_last_error_message());
        return 1;
    }
    int before = open_fds();
    printf("LISTENING %s\n", extmem_listener_path(l));
    fflush(stdout);
    extmem_channel_options co = {sizeof co, 20ull * 1000000000ull};
    extmem_status s = extmem_listener_accept(l, 120ull * 1000000000ull, &co, &ch);
    if (s == EXTMEM_OK) {
        s = serve(ctx, ch);
        if (s == EXTMEM_OK) printf("CLEAN\n");
    } else {
        printf("REFUSED %s: %s\n", extmem_status_name(s), extmem_last_error_message());
    }
    extmem_channel_destroy(ch);
    int after = open_fds();
    extmem_context_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    (void)extmem_context_get_info(ctx, &info);
    printf("FDS %d %d\nVALIDATION %u\n", before, after, info.validation_messages);
    extmem_listener_destroy(l);
    extmem_context_destroy(ctx);
    return s == EXTMEM_OK ? 0 : 3;
}
